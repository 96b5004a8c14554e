//! Saved searches of the token table, shared by every admin of the org.
use diesel::Connection;
use serde::{Deserialize, Serialize};

use crate::service::events::{self, Action, Event};
use crate::service::list::{PageQuery, Paged};
use crate::service::{new_id, Error, Principal, Result};
use crate::store::models::SavedSearch;
use crate::store::{self, AnyConnection};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSearch {
    pub name: crate::service::text::Name,
    /// Trimmed, a leading ? removed; must be a query GET /api/v1/tokens accepts (else 422
    /// on field query).
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub query: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchView {
    pub id: String,
    pub name: String,
    /// A query string for GET /api/v1/tokens, without the leading ?.
    pub query: String,
    pub created_by: String,
    #[schema(schema_with = crate::service::Timestamp::schema)]
    pub created_at: crate::service::Timestamp,
}

fn view(s: &SavedSearch) -> SearchView {
    SearchView {
        id: s.id.clone(),
        name: s.name.clone(),
        query: s.query.clone(),
        created_by: s.created_by.clone(),
        created_at: crate::service::Timestamp::at(s.created_at),
    }
}

pub fn create(conn: &mut AnyConnection, p: &Principal, input: &NewSearch, now: i64) -> Result<SearchView> {
    p.require(crate::service::Role::OrgAdmin)?;
    let name = input.name.to_string();
    let query = input.query.trim().trim_start_matches('?').to_string();
    if query.len() > 2000 {
        return Err(crate::service::invalid("query", "must be at most 2000 characters"));
    }
    // Only queries the table accepts can be saved.
    crate::service::tokens::table::parse(&query).map_err(|e| match e {
        Error::Invalid { field, message } => crate::service::invalid("query", format!("{field}: {message}")),
        other => other,
    })?;
    let s =
        SavedSearch { id: new_id(), org_id: p.org_id.clone(), name, query, created_by: p.id.clone(), created_at: now };
    conn.transaction(|conn| {
        store::saved::insert(conn, &s)?;
        events::emit(conn, Event::by(p, Action::SavedSearchCreate, "saved_search", &s.id), now)
    })?;
    Ok(view(&s))
}

pub fn list(conn: &mut AnyConnection, p: &Principal, pq: &PageQuery) -> Result<Paged<SearchView>> {
    p.require(crate::service::Role::OrgAdmin)?;
    let page = pq.validate_sorted::<Sort>()?;
    let rows = store::saved::list(conn, &p.org_id, &page)?;
    Ok(page.view(rows, |s| view(&s)))
}

pub fn delete(conn: &mut AnyConnection, p: &Principal, id: &str, now: i64) -> Result<()> {
    p.require(crate::service::Role::OrgAdmin)?;
    conn.transaction(|conn| {
        let s = store::saved::find(conn, &p.org_id, id)?.ok_or(Error::NotFound)?;
        if s.created_by != p.id && !p.is_owner() {
            return Err(Error::Forbidden("only its creator or an owner deletes a saved search".into()));
        }
        store::saved::delete(conn, &s.id)?;
        events::emit(conn, Event::by(p, Action::SavedSearchDelete, "saved_search", &s.id), now)
    })
}

crate::service::words!(
    /// Sort keys of the saved-search list.
    pub Sort { CreatedAt = "created_at", Name = "name" }
);
