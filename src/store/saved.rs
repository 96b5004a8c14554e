//! Saved searches of the token table.
use diesel::prelude::*;

use super::models::SavedSearch;
use super::page::{self, Page, Rows};
use super::schema::saved_searches;
use super::AnyConnection;

pub fn insert(conn: &mut AnyConnection, s: &SavedSearch) -> QueryResult<()> {
    diesel::insert_into(saved_searches::table).values(s).execute(conn)?;
    Ok(())
}

/// A saved search of the org, by id.
pub fn find(conn: &mut AnyConnection, org_id: &str, id: &str) -> QueryResult<Option<SavedSearch>> {
    saved_searches::table
        .find(id)
        .filter(saved_searches::org_id.eq(org_id))
        .select(SavedSearch::as_select())
        .first(conn)
        .optional()
}

/// One page of the org's saved searches. Sorts: `name`, else `created_at`.
pub fn list(conn: &mut AnyConnection, org_id: &str, page: &Page) -> QueryResult<Rows<SavedSearch>> {
    let query = || {
        saved_searches::table
            .filter(saved_searches::org_id.eq(org_id))
            .select((SavedSearch::as_select(), page::total()))
            .into_boxed()
    };
    page.load(conn, query, |q| match page.key() {
        Some("name") => page.order(q, saved_searches::name, saved_searches::id),
        _ => page.order(q, saved_searches::created_at, saved_searches::id),
    })
}

pub fn delete(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    diesel::delete(saved_searches::table.find(id)).execute(conn)?;
    Ok(())
}
