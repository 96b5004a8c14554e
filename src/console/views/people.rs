//! People (admins): the list (search, role and status filters, pages), invite a person
//! (roles from the catalogue), and a person's page: rename, change roles, disable or
//! enable, and a one-time password reset code shown once. Every action is the service
//! function of `/api/v1/users…` (`service::principals::users`, `service::principals::sessions::issue_reset_code`).
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::admin::{Query, QueryPager};
use super::my_tokens::own_roles;
use super::parts::{role_choices, when, RoleChoice};
use crate::app::State;
use crate::console::{read, render, see_other, show_secret, slots, sudo, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::list::PageQuery;
use crate::service::principals::users::{self, CredentialsQuery, NewUser, UserPatch, UserView};
use crate::service::{authz::roles, principals::sessions};

const BASE: &str = "/console/people";

pub struct PersonRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: String,
    pub disabled: bool,
    pub has_password: bool,
    pub created: String,
}

impl PersonRow {
    fn new(u: &UserView) -> PersonRow {
        PersonRow {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            roles: u.roles.join(", "),
            disabled: u.disabled,
            has_password: u.has_password,
            created: when(&u.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "people.html")]
struct People {
    chrome: Chrome,
    q: Query,
    rows: Vec<PersonRow>,
    pager: QueryPager,
    all_roles: Vec<String>,
    roles: Vec<RoleChoice>,
    email: String,
    name: String,
    errors: FieldErrors,
    /// Errors of the filter form (a bad `disabled` value).
    filter_errors: FieldErrors,
    open: bool,
}

impl People {
    fn sel(&self, name: &str, value: &str) -> bool {
        self.q.get(name) == value
    }
}

struct Form {
    email: String,
    name: String,
    chosen: Vec<String>,
    errors: FieldErrors,
}

async fn show_list(ui: &Ui, st: &web::Data<State>, q: Query, form: Option<Form>) -> Result<HttpResponse, Fail> {
    ui.p.require(crate::service::Role::OrgAdmin)?;
    let p = ui.p.clone();
    let q2 = q.clone();
    let loaded = read(st, move |conn, _, _| {
        let f = users::UserFilter { q: q2.opt("q"), role: q2.opt("role"), disabled: q2.opt("disabled") };
        let pq = PageQuery {
            page: q2.opt("page"),
            page_size: Some(super::parts::PAGE_SIZE.to_string()),
            sort: Some("email".into()),
            order: None,
        };
        let page = users::list(conn, &p, &f, &pq);
        let all: Vec<String> = roles::list(conn, &p)?.into_iter().map(|r| r.name).collect();
        Ok((page, all, own_roles(conn, &p)?, super::parts::role_notes(conn, &p)?))
    })
    .await?;
    let (page, all_roles, grantable, notes) = loaded;
    let (page, filter_errors) = match page {
        Ok(pg) => (pg, FieldErrors::default()),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            (crate::service::list::Paged { items: vec![], total_count: 0, page: 1, page_size: 1 }, errors)
        }
    };
    let failed = form.as_ref().is_some_and(|f| f.errors.any()) || filter_errors.any();
    let form = form.unwrap_or(Form {
        email: String::new(),
        name: String::new(),
        chosen: vec![crate::service::Role::OrgMember.as_str().into()],
        errors: FieldErrors::default(),
    });
    let v = People {
        chrome: ui.chrome("people"),
        rows: page.items.iter().map(PersonRow::new).collect(),
        pager: QueryPager::new(BASE, &q, &page),
        q,
        all_roles,
        roles: super::parts::noted(role_choices(&grantable, &form.chosen), &notes),
        email: form.email,
        name: form.name,
        open: form.errors.any(),
        errors: form.errors,
        filter_errors,
    };
    Ok(render(if failed { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK }, &v))
}

pub async fn list(ui: Ui, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let q = Query::from_raw(req.query_string());
    show_list(&ui, &st, q, None).await
}

/// `service::principals::users::create` (no password: the person gets a reset code next).
pub async fn create(post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let Post { ui, form } = post;
    let (email, name, chosen) = (form.get("email").to_string(), form.get("name").trim().to_string(), form.all("roles"));
    // An empty name: the service's default (the part of the email before @).
    let parsed =
        if name.is_empty() { Ok(None) } else { crate::service::text::PersonName::parse("name", &name).map(Some) };
    let p = ui.p.clone();
    let created = match parsed {
        Err(e) => Err(e),
        Ok(pname) => {
            let input = NewUser { email: email.clone(), name: pname, roles: Some(chosen.clone()), disabled: false };
            write(&st, move |conn, _, now| users::create(conn, &p, &input, now)).await
        }
    };
    match created {
        Ok(u) => Ok(see_other(&format!("{BASE}/{}?done=created", u.id))),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show_list(&ui, &st, Query::default(), Some(Form { email, name, chosen, errors })).await
        }
    }
}

#[derive(Template)]
#[template(path = "person.html")]
struct Person {
    chrome: Chrome,
    u: PersonRow,
    roles: Vec<RoleChoice>,
    name: String,
    credentials: String,
    errors: FieldErrors,
    notice: Option<&'static str>,
    /// Email is sent (TOKEND_SMTP_URL): the link can be emailed too.
    mail: bool,
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

async fn show_person(
    ui: &Ui,
    st: &web::Data<State>,
    id: String,
    edit: Option<(String, Vec<String>, String)>,
    errors: FieldErrors,
    notice: Option<&'static str>,
) -> Result<HttpResponse, Fail> {
    let p = ui.p.clone();
    let (u, grantable, notes) = read(st, move |conn, _, _| {
        Ok((users::get(conn, &p, &id)?, own_roles(conn, &p)?, super::parts::role_notes(conn, &p)?))
    })
    .await?;
    let (name, chosen, credentials) = edit.unwrap_or_else(|| (u.name.clone(), u.roles.clone(), String::new()));
    // Roles the person holds that the caller cannot grant are still shown (checked).
    let mut names = grantable;
    for r in &u.roles {
        if !names.contains(r) {
            names.push(r.clone());
        }
    }
    let status = if errors.any() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let v = Person {
        chrome: ui.chrome("people"),
        u: PersonRow::new(&u),
        roles: super::parts::noted(role_choices(&names, &chosen), &notes),
        name,
        credentials,
        errors,
        notice,
        mail: st.notify.email(),
    };
    Ok(render(status, &v))
}

pub async fn show(
    ui: Ui,
    id: web::Path<String>,
    q: web::Query<Done>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    // Admins only: `users::get` in `show_person` refuses anyone else (the 403 page).
    let notice = match q.done.as_deref() {
        Some("created") => {
            Some("Created. They have no password yet: create their invitation link below and give it to them.")
        }
        Some("saved") => Some("Saved."),
        Some("disabled") => Some("Disabled: their sign-ins and access tokens have ended."),
        Some("enabled") => Some("Enabled again. Their old sign-ins stay ended."),
        _ => None,
    };
    show_person(&ui, &st, id.into_inner(), None, FieldErrors::default(), notice).await
}

/// `service::principals::users::patch` with name and roles; a demotion below what their apps or
/// service accounts hold needs the `credentials` choice, as `?credentials=` in the API.
pub async fn update(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    let id = id.into_inner();
    let (p, id2) = (post.ui.p.clone(), id.clone());
    let held = read(&st, move |conn, _, _| users::get(conn, &p, &id2)).await?.roles;
    if post.form.all("roles").iter().any(|r| !held.contains(r)) {
        if let Some(prompt) = sudo::check(&post, &req, &st, "grant roles").await? {
            return Ok(prompt);
        }
    }
    let Post { ui, form } = post;
    let (name, chosen, credentials) =
        (form.get("name").to_string(), form.all("roles"), form.get("credentials").to_string());
    let cq = CredentialsQuery { credentials: (!credentials.is_empty()).then(|| credentials.clone()) };
    let result = match cq.choice() {
        Err(e) => Err(e),
        Ok(choice) => 'arm: {
            let pname = match crate::service::text::PersonName::parse("name", &name) {
                Ok(n) => n,
                Err(e) => break 'arm Err(e),
            };
            let input = UserPatch { name: Some(pname), roles: Some(chosen.clone()), disabled: None };
            let (p, id2) = (ui.p.clone(), id.clone());
            write(&st, move |conn, s, now| users::patch(conn, &p, &s.notify.sealer, &id2, &input, choice, now)).await
        }
    };
    match result {
        Ok(_) => Ok(see_other(&format!("{BASE}/{id}?done=saved"))),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show_person(&ui, &st, id, Some((name, chosen, credentials)), errors, None).await
        }
    }
}

async fn set_disabled(post: Post, id: String, st: web::Data<State>, disabled: bool) -> Result<HttpResponse, Fail> {
    let ui = post.ui;
    let input = UserPatch { name: None, roles: None, disabled: Some(disabled) };
    let (p, id2) = (ui.p.clone(), id.clone());
    let choice = users::CredentialsChoice::Ask;
    match write(&st, move |conn, s, now| users::patch(conn, &p, &s.notify.sealer, &id2, &input, choice, now)).await {
        Ok(_) => Ok(see_other(&format!("{BASE}/{id}?done={}", if disabled { "disabled" } else { "enabled" }))),
        Err(e) => {
            let errors = FieldErrors::from_error(e)?;
            show_person(&ui, &st, id, None, errors, None).await
        }
    }
}

pub async fn disable(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    set_disabled(post, id.into_inner(), st, true).await
}

pub async fn enable(post: Post, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    set_disabled(post, id.into_inner(), st, false).await
}

/// `service::principals::sessions::issue_reset_code`: the code is shown once (`console::show_secret`).
pub async fn reset(
    req: HttpRequest,
    post: Post,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, Fail> {
    post.ui.p.require(crate::service::Role::OrgAdmin)?;
    if let Some(prompt) = sudo::check(&post, &req, &st, "create a password reset code").await? {
        return Ok(prompt);
    }
    // Emailed too when asked and email is sent at all (the box is offered only then).
    let mail = post.form.get("email") == "1" && st.notify.email();
    let ui = post.ui;
    let id = id.into_inner();
    let (p, id2) = (ui.p.clone(), id.clone());
    let reset_url = format!("{}/console/reset", st.cfg.issuer);
    let (u, issued) = write(&st, move |conn, s, now| {
        let u = users::get(conn, &p, &id2)?;
        let issued = if mail {
            sessions::issue_and_mail_code(conn, &p, &s.notify.sealer, &id2, &reset_url, now)?
        } else {
            sessions::issue_reset_code(conn, &p, &id2, now)?
        };
        Ok((u, issued))
    })
    .await?;
    // The one-time link carries the code: whoever opens it only types a password.
    let link = format!("{}/console/reset?code={}", st.cfg.issuer, issued.code);
    let invite = !u.has_password;
    let mut facts =
        vec![("Valid until", when(&issued.expires_at)), ("Where", format!("{}/console/reset", st.cfg.issuer))];
    if mail {
        facts.push(("Emailed to", u.email.clone()));
    }
    let shown = slots::ShownSecret {
        nav: "people",
        title: if invite {
            format!("Invitation for {}", u.email)
        } else {
            format!("Password reset code for {}", u.email)
        },
        what: if invite { "invitation code" } else { "reset code" },
        secret: issued.code,
        extra: Some(("One-time link (give it to them; it fills the code in)", link)),
        facts,
        usage: Vec::new(),
        back: format!("{BASE}/{id}"),
    };
    Ok(show_secret(&ui, shown))
}
