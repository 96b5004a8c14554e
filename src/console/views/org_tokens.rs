//! The org token table (admins): search, filters, presets, sortable columns, pagination
//! with the total, saved searches in a side panel, and revoke from a row menu.
//!
//! The page's query string IS the query of `GET /api/v1/tokens` (`service::table::parse`
//! reads it): a bookmarked URL, a shared link and a saved search are the same thing. The
//! filter form submits with GET; its empty fields (and a date-only `unused_since`) are
//! normalised by one 303 to the canonical query, so the address bar always holds a query
//! the API accepts as is.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::admin::{Query, QueryPager};
use super::parts::TokenRow;
use crate::app::State;
use crate::console::{done, read, render, see_other, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::list::PageQuery;
use crate::service::{roles, saved, table};

const BASE: &str = "/console/tokens";

/// A query as the page shows it: empty values dropped, a date-only `unused_since` made an
/// RFC 3339 time (midnight UTC).
fn canonical(raw: &str) -> Query {
    let q = Query::from_raw(raw);
    let since = q.get("unused_since");
    if since.len() == 10 && since.as_bytes()[4] == b'-' {
        let full = format!("{since}T00:00:00Z");
        // Keep the parameter's place: rebuild in order.
        return Query(
            q.0.into_iter().map(|(k, v)| if k == "unused_since" { (k, full.clone()) } else { (k, v) }).collect(),
        );
    }
    q
}

pub struct Preset {
    pub label: &'static str,
    pub help: &'static str,
    pub href: String,
    pub current: bool,
}

/// The presets: each one a query of the table. "Expiring soon" is the active tokens, the
/// soonest to expire first (the API has no expires-before filter yet).
fn presets(current: &Query) -> Vec<Preset> {
    let all: [(&str, &str, &str); 5] = [
        ("All tokens", "", "Every token of the organization"),
        (
            "Expiring soon",
            "status=expiring_soon&sort=expires_at&order=asc",
            "Active tokens expiring within 7 days, the soonest first",
        ),
        ("Never used", "usage=never_used", "Tokens never exchanged"),
        ("Idle", "status=idle", "Unused for longer than the idle limit"),
        ("Revoked", "status=revoked", "Revoked tokens"),
    ];
    all.iter()
        .map(|(label, q, help)| {
            let q = Query::from_raw(q);
            Preset { label, help, href: q.href(BASE), current: &q == current }
        })
        .collect()
}

/// A sortable column header.
pub struct Col {
    pub label: &'static str,
    /// The link that sorts by this column (None: not sortable).
    pub href: Option<String>,
    /// `aria-sort`: ascending, descending or none.
    pub sort: &'static str,
}

fn columns(q: &Query) -> Vec<Col> {
    let cols: [(&str, Option<&str>); 8] = [
        ("Name", Some("name")),
        ("Owner", Some("owner")),
        ("Roles", None),
        ("Created", Some("created_at")),
        ("Expires", Some("expires_at")),
        ("Last used", Some("last_used_at")),
        ("Status", None),
        ("", None),
    ];
    let (cur, desc) = (q.get("sort"), q.get("order") == "desc");
    cols.iter()
        .map(|(label, key)| match key {
            None => Col { label, href: None, sort: "none" },
            Some(k) => {
                let here = cur == *k || (cur.is_empty() && *k == "created_at");
                let sort = match (here, desc) {
                    (false, _) => "none",
                    (true, false) => "ascending",
                    (true, true) => "descending",
                };
                let order = if here && !desc { "desc" } else { "asc" };
                Col { label, href: Some(q.with("sort", k).with("order", order).href(BASE)), sort }
            }
        })
        .collect()
}

pub struct OrgRow {
    pub t: TokenRow,
    pub owner: String,
    pub owner_detail: String,
    pub owner_kind: &'static str,
    /// The table filtered to this owner.
    pub owner_href: String,
}

pub struct SavedRow {
    pub id: String,
    pub name: String,
    pub href: String,
    pub query: String,
    pub current: bool,
    /// Its creator or an owner may delete it (`service::saved::delete` decides; the button
    /// is only left out for others).
    pub deletable: bool,
}

#[derive(Template)]
#[template(path = "org_tokens.html")]
struct OrgTokens {
    chrome: Chrome,
    /// The current query, encoded (hidden `back` fields, the save form).
    qs: String,
    q: Query,
    rows: Vec<OrgRow>,
    total: i64,
    pager: Option<QueryPager>,
    presets: Vec<Preset>,
    cols: Vec<Col>,
    saved: Vec<SavedRow>,
    roles: Vec<String>,
    /// The date shown in the `unused_since` input.
    since_date: String,
    errors: FieldErrors,
    save_name: String,
    save_errors: FieldErrors,
}

impl OrgTokens {
    fn sel(&self, name: &str, value: &str) -> bool {
        self.q.get(name) == value
    }
}

async fn show(
    ui: &Ui,
    st: &web::Data<State>,
    q: Query,
    status: StatusCode,
    save_name: String,
    save_errors: FieldErrors,
) -> Result<HttpResponse, Fail> {
    let p = ui.p.clone();
    let qs = q.encoded();
    let (parsed, mut errors) = match table::parse(&qs) {
        Ok(t) => (Some(t), FieldErrors::default()),
        Err(e) => (None, FieldErrors::from_error(e)?),
    };
    let loaded = read(st, move |conn, s, now| {
        let page = parsed.map(|t| table::list(conn, &p, &t, &s.usage, now)).transpose()?;
        let pq = PageQuery { page_size: Some("100".into()), sort: Some("name".into()), ..Default::default() };
        let saved = saved::list(conn, &p, &pq)?.items;
        let roles = roles::list(conn, &p)?.into_iter().map(|r| r.name).collect::<Vec<_>>();
        Ok((page, saved, roles))
    })
    .await?;
    let (page, saved, roles) = loaded;
    if errors.any() && status == StatusCode::OK {
        errors.form.get_or_insert_with(|| "This search could not be run: correct it or clear the filters.".into());
    }
    let status = if errors.any() { StatusCode::UNPROCESSABLE_ENTITY } else { status };
    let (rows, total, pager) = match &page {
        Some(pg) => {
            let rows = pg
                .items
                .iter()
                .map(|r| {
                    let t = &r.token;
                    let service = t.owner_kind == "service_account";
                    OrgRow {
                        t: TokenRow::new(t, ui.now),
                        owner: r.owner_name.clone().unwrap_or_else(|| t.owner_id.clone()),
                        owner_detail: r.owner_email.clone().unwrap_or_default(),
                        owner_kind: if service { "service account" } else { "person" },
                        owner_href: Query::default().with("owner_id", &t.owner_id).href(BASE),
                    }
                })
                .collect();
            (rows, pg.total_count, Some(QueryPager::new(BASE, &q, pg)))
        }
        None => (vec![], 0, None),
    };
    let mine = q.without("page");
    let saved = saved
        .into_iter()
        .map(|s| {
            let sq = Query::from_raw(&s.query);
            let deletable = s.created_by == ui.p.id || ui.p.is_owner();
            SavedRow { current: sq == mine, href: sq.href(BASE), id: s.id, name: s.name, query: s.query, deletable }
        })
        .collect();
    let since_date = q.get("unused_since").get(..10).unwrap_or("").to_string();
    let v = OrgTokens {
        chrome: ui.chrome("admin"),
        qs: mine.encoded(),
        presets: presets(&mine),
        cols: columns(&q),
        q,
        rows,
        total,
        pager,
        saved,
        roles,
        since_date,
        errors,
        save_name,
        save_errors,
    };
    Ok(render(status, &v))
}

pub async fn list(ui: Ui, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    ui.p.require("org:admin")?;
    let raw = req.query_string();
    let q = canonical(raw);
    if q.encoded() != raw {
        return Ok(see_other(&q.href(BASE)));
    }
    show(&ui, &st, q, StatusCode::OK, String::new(), FieldErrors::default()).await
}

/// Where a form of the page goes back to: the table with the query it was sent from.
fn back(post: &Post) -> String {
    canonical(post.form.get("back")).href(BASE)
}

/// `service::table::revoke`, the same as `POST /api/v1/tokens/{id}/revoke`.
pub async fn revoke(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let to = back(&post);
    let ui = post.ui;
    let (p, id) = (ui.p.clone(), id.into_inner());
    let id2 = id.clone();
    let row = write(&st, move |conn, s, now| {
        table::revoke(conn, &p, &id2, &s.usage, now)?;
        table::get(conn, &p, &id2, &s.usage, now)
    })
    .await?;
    let owner = row.owner_name.filter(|n| !n.is_empty()).or(row.owner_email).unwrap_or(row.token.owner_id);
    Ok(done(&ui, &to, format!("Revoked “{}” ({owner}).", row.token.name), Some(&id)))
}

/// Saves the query the page shows (`service::saved::create`); errors at the name field.
pub async fn save(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let q = canonical(post.form.get("query")).without("page");
    let name = post.form.get("name").to_string();
    let input = saved::NewSearch { name: name.clone(), query: q.encoded() };
    let p = post.ui.p.clone();
    match write(&st, move |conn, _, now| saved::create(conn, &p, &input, now)).await {
        Ok(_) => Ok(done(&post.ui, &q.href(BASE), format!("Saved the search “{name}”."), None)),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show(&post.ui, &st, q, StatusCode::UNPROCESSABLE_ENTITY, name, errors).await
        }
    }
}

/// `service::saved::delete` (its creator or an owner).
pub async fn delete_saved(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let to = back(&post);
    let ui = post.ui;
    let p = ui.p.clone();
    write(&st, move |conn, _, now| saved::delete(conn, &p, &id, now)).await?;
    Ok(done(&ui, &to, "Deleted the saved search.".into(), None))
}

#[cfg(test)]
mod tests {
    #[test]
    fn canonical_queries() {
        assert_eq!(
            super::canonical("q=&unused_since=2026-01-02&status=").encoded(),
            "unused_since=2026-01-02T00%3A00%3A00Z"
        );
        assert_eq!(super::canonical("usage=never_used").encoded(), "usage=never_used");
    }
}
