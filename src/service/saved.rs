//! Saved searches of the token table, shared by every admin of the org.
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::audit::{self, Event};
use super::list::{PageQuery, Paged};
use super::{check_text, new_id, Error, Principal, Result};
use crate::clock::rfc3339;
use crate::store::models::SavedSearch;
use crate::store::schema::saved_searches;
use crate::store::AnyConnection;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSearch {
    pub name: String,
    pub query: String,
}

#[derive(Serialize)]
pub struct SearchView {
    pub id: String,
    pub name: String,
    pub query: String,
    pub created_by: String,
    pub created_at: String,
}

fn view(s: &SavedSearch) -> SearchView {
    SearchView {
        id: s.id.clone(),
        name: s.name.clone(),
        query: s.query.clone(),
        created_by: s.created_by.clone(),
        created_at: rfc3339(s.created_at),
    }
}

pub fn create(conn: &mut AnyConnection, p: &Principal, input: &NewSearch, now: i64) -> Result<SearchView> {
    p.require("org:admin")?;
    let name = check_text("name", &input.name, 1, 100)?;
    let query = input.query.trim().trim_start_matches('?').to_string();
    if query.len() > 2000 {
        return Err(super::invalid("query", "must be at most 2000 characters"));
    }
    // Only queries the table accepts can be saved.
    super::table::parse(&query).map_err(|e| match e {
        Error::Invalid { field, message } => super::invalid("query", format!("{field}: {message}")),
        other => other,
    })?;
    let s =
        SavedSearch { id: new_id(), org_id: p.org_id.clone(), name, query, created_by: p.id.clone(), created_at: now };
    conn.transaction(|conn| {
        diesel::insert_into(saved_searches::table).values(&s).execute(conn)?;
        audit::record(conn, Event::by(p, "saved_search.create", "saved_search", &s.id), now)
    })?;
    Ok(view(&s))
}

pub fn list(conn: &mut AnyConnection, p: &Principal, pq: &PageQuery) -> Result<Paged<SearchView>> {
    p.require("org:admin")?;
    let page = pq.validate()?;
    page.check_sort(&["created_at", "name"])?;
    let base = || saved_searches::table.filter(saved_searches::org_id.eq(&p.org_id)).into_boxed();
    let total: i64 = base().count().get_result(conn)?;
    let q = match (page.sort.as_deref(), page.desc) {
        (Some("name"), false) => base().order((saved_searches::name.asc(), saved_searches::id.asc())),
        (Some("name"), true) => base().order((saved_searches::name.desc(), saved_searches::id.desc())),
        (_, false) => base().order((saved_searches::created_at.asc(), saved_searches::id.asc())),
        (_, true) => base().order((saved_searches::created_at.desc(), saved_searches::id.desc())),
    };
    let rows: Vec<SavedSearch> =
        q.limit(page.size).offset(page.offset()).select(SavedSearch::as_select()).load(conn)?;
    Ok(page.wrap(rows.iter().map(view).collect(), total))
}

pub fn delete(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<()> {
    p.require("org:admin")?;
    conn.transaction(|conn| {
        let s: SavedSearch = saved_searches::table
            .find(id)
            .filter(saved_searches::org_id.eq(&p.org_id))
            .select(SavedSearch::as_select())
            .first(conn)
            .optional()?
            .ok_or(Error::NotFound)?;
        if s.created_by != p.id && !p.is_owner() {
            return Err(Error::Forbidden("only its creator or an owner deletes a saved search".into()));
        }
        diesel::delete(saved_searches::table.find(&s.id)).execute(conn)?;
        audit::record(conn, Event::by(p, "saved_search.delete", "saved_search", &s.id), now)
    })
}
