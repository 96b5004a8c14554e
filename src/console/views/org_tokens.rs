//! The org token table (admins): search, filters, presets, sortable columns, pagination
//! with the total, saved searches in a side panel, and revoke from a row menu.
//!
//! The page's query string IS the query of `GET /api/v1/tokens` (`service::tokens::table::parse`
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
use crate::service::{authz::roles, tokens::saved, tokens::table};

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
    // No sort in the address: the table runs newest first (`effective`).
    let (cur, desc) =
        if q.get("sort").is_empty() { ("created_at", true) } else { (q.get("sort"), q.get("order") == "desc") };
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
    /// Its creator or an owner may delete it (`service::tokens::saved::delete` decides; the button
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
    /// How many filters the query sets (the collapsed filter box says so).
    active_filters: usize,
    /// (size, current, link) of the page-size choice.
    page_sizes: Vec<(i64, bool, String)>,
    /// This query as CSV.
    export_href: String,
}

/// The page-size choice of the table.
const PAGE_SIZES: [i64; 4] = [20, 50, 100, 200];

/// Parameters that are not filters (the collapsed filter box does not count them).
const NOT_FILTERS: [&str; 4] = ["sort", "order", "page", "page_size"];

/// The query the table runs: the page's, newest first unless it sorts otherwise (the
/// address stays as typed, so the API's own default is unchanged).
fn effective(q: &Query) -> Query {
    let mut out = q.clone();
    if q.get("sort").is_empty() {
        out.0.push(("sort".into(), "created_at".into()));
        out.0.push(("order".into(), "desc".into()));
    }
    out
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
    let qs = effective(&q).encoded();
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
    let size = pager.as_ref().map(|_| q.get("page_size").parse().unwrap_or(crate::store::page::DEFAULT_PAGE_SIZE));
    let page_sizes =
        PAGE_SIZES.iter().map(|n| (*n, size == Some(*n), q.with("page_size", &n.to_string()).href(BASE))).collect();
    let active_filters = q.0.iter().filter(|(k, _)| !NOT_FILTERS.contains(&k.as_str())).count();
    let export_href = mine.href(&format!("{BASE}/export.csv"));
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
        active_filters,
        page_sizes,
        export_href,
    };
    Ok(render(status, &v))
}

pub async fn list(ui: Ui, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    ui.p.require(crate::service::Role::OrgAdmin)?;
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

/// `service::tokens::table::revoke`, the same as `POST /api/v1/tokens/{id}/revoke`.
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

/// "Revoke selected" (`service::tokens::table::revoke_many`): the ticked rows, confirmed and
/// counted in the page; the message says how many were revoked.
pub async fn revoke_selected(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let to = back(&post);
    let ids = post.form.all("ids");
    let ui = post.ui;
    let p = ui.p.clone();
    let n = write(&st, move |conn, _, now| table::revoke_many(conn, &p, &ids, now)).await?;
    let s = if n == 1 { "" } else { "s" };
    Ok(done(&ui, &to, format!("Revoked {n} token{s}."), None))
}

/// At most this many rows in one CSV export.
const EXPORT_MAX: i64 = 10_000;

/// The current query as CSV (every page, up to `EXPORT_MAX` rows): the same rows the
/// table shows, through `service::tokens::table::list`.
pub async fn export_csv(ui: Ui, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    ui.p.require(crate::service::Role::OrgAdmin)?;
    let q = effective(&canonical(req.query_string()).without("page").without("page_size"));
    let mut t = table::parse(&q.encoded()).map_err(Fail::from)?;
    let p = ui.p.clone();
    let rows = read(&st, move |conn, s, now| {
        let mut out = Vec::new();
        t.page.size = crate::store::page::MAX_PAGE_SIZE;
        t.page.page = 1;
        loop {
            let pg = table::list(conn, &p, &t, &s.usage, now)?;
            let last = pg.items.len() < pg.page_size as usize;
            out.extend(pg.items);
            if last || out.len() as i64 >= EXPORT_MAX {
                return Ok(out);
            }
            t.page.page += 1;
        }
    })
    .await?;
    let mut body =
        String::from("id,name,owner,owner_email,owner_kind,roles,created_at,expires_at,last_used_at,status\n");
    for r in rows.iter().take(EXPORT_MAX as usize) {
        let t = &r.token;
        let cells = [
            t.id.as_str(),
            &t.name,
            r.owner_name.as_deref().unwrap_or(""),
            r.owner_email.as_deref().unwrap_or(""),
            &t.owner_kind,
            &t.roles.join(" "),
            &t.created_at,
            &t.expires_at,
            t.last_used_at.as_deref().unwrap_or(""),
            t.status.as_str(),
        ];
        body.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        body.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"tokens.csv\""))
        .body(body))
}

/// One CSV cell: quoted when needed; a leading `=`, `+`, `-` or `@` is prefixed with `'`
/// so a spreadsheet does not run a token name as a formula.
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) { format!("'{v}") } else { v.to_string() };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// Saves the query the page shows (`service::tokens::saved::create`); errors at the name field.
pub async fn save(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let q = canonical(post.form.get("query")).without("page");
    let name = post.form.get("name").to_string();
    let p = post.ui.p.clone();
    let saved = match crate::service::text::Name::parse("name", &name) {
        Err(e) => Err(e),
        Ok(n) => {
            let input = saved::NewSearch { name: n, query: q.encoded() };
            write(&st, move |conn, _, now| saved::create(conn, &p, &input, now)).await
        }
    };
    match saved {
        Ok(_) => Ok(done(&post.ui, &q.href(BASE), format!("Saved the search “{name}”."), None)),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show(&post.ui, &st, q, StatusCode::UNPROCESSABLE_ENTITY, name, errors).await
        }
    }
}

/// `service::tokens::saved::delete` (its creator or an owner).
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
        assert_eq!(super::csv_cell("a,b"), "\"a,b\"");
        assert_eq!(super::csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(super::csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
