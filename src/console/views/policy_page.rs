//! The token policy: owners edit it, admins read it (`service::org::policy::read`/`update`, as
//! `GET`/`PUT /api/v1/policy`; the owner-only rule is the service's).
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::app::State;
use crate::console::{done, read, render, sudo, write, Chrome, Fail, FieldErrors, Post, Ui};
use crate::service::org::policy::{self, PolicyView};

const BASE: &str = "/console/policy";

/// The form's fields: (name, label, help, required).
const FIELDS: [(&str, &str, &str, bool); 5] = [
    (
        "personal_token_max_ttl_days",
        "Personal token lifetime, at most (days)",
        "1 to 3650. New personal tokens cannot live longer.",
        true,
    ),
    ("service_token_max_ttl_days", "Service account token lifetime, at most (days)", "1 to 3650.", true),
    (
        "idle_ttl_days",
        "Idle limit (days)",
        "A token unused this long stops working (status idle). Empty: no limit.",
        false,
    ),
    ("max_tokens_per_service_account", "Live tokens per service account, at most", "1 to 1000.", true),
    (
        "retention_days",
        "Keep ended tokens in lists (days)",
        "Revoked and expired tokens are listed (and then purged) for this many days.",
        false,
    ),
];

/// The self-rotation checkbox (`allow_self_rotation`).
const SELF_ROTATION: &str = "allow_self_rotation";
/// A hidden field: the form had the checkbox.
const SHOWN: &str = "self_rotation_shown";

pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub required: bool,
    pub value: String,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    chrome: Chrome,
    fields: Vec<Field>,
    editable: bool,
    /// Whether API tokens may rotate themselves (`POST /api/v1/tokens/self/rotate`).
    self_rotation: bool,
    updated: String,
    errors: FieldErrors,
    notice: Option<&'static str>,
}

fn current(v: &PolicyView) -> Vec<(&'static str, String)> {
    vec![
        ("personal_token_max_ttl_days", v.personal_token_max_ttl_days.to_string()),
        ("service_token_max_ttl_days", v.service_token_max_ttl_days.to_string()),
        ("idle_ttl_days", v.idle_ttl_days.map(|d| d.to_string()).unwrap_or_default()),
        ("max_tokens_per_service_account", v.max_tokens_per_service_account.to_string()),
        ("retention_days", v.retention_days.to_string()),
        (SELF_ROTATION, if v.allow_self_rotation { "on" } else { "" }.to_string()),
    ]
}

async fn show(
    ui: &Ui,
    st: &web::Data<State>,
    values: Option<Vec<(&'static str, String)>>,
    errors: FieldErrors,
    notice: Option<&'static str>,
) -> Result<HttpResponse, Fail> {
    let p = ui.p.clone();
    let v = read(st, move |conn, _, _| policy::read(conn, &p)).await?;
    let values = values.unwrap_or_else(|| current(&v));
    let fields = FIELDS
        .iter()
        .map(|(name, label, help, required)| Field {
            name,
            label,
            help,
            required: *required,
            value: values.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default(),
        })
        .collect();
    let status = if errors.any() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = PolicyPage {
        chrome: ui.chrome("policy"),
        fields,
        editable: ui.p.is_owner(),
        self_rotation: values.iter().any(|(n, v)| *n == SELF_ROTATION && !v.is_empty()),
        updated: v.updated_at.as_deref().map(super::parts::when).unwrap_or_else(|| "never (the defaults)".into()),
        errors,
        notice,
    };
    Ok(render(status, &page))
}

#[derive(serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn show_page(ui: Ui, q: web::Query<Done>, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    let notice = (q.done.as_deref() == Some("saved")).then_some("The policy is saved.");
    show(&ui, &st, None, FieldErrors::default(), notice).await
}

/// The form as the JSON body of `PUT /api/v1/policy`: numbers, or null for an empty
/// optional field; anything else is refused at its field before the service is called.
fn body(values: &[(&'static str, String)]) -> Result<serde_json::Value, FieldErrors> {
    let mut out = serde_json::Map::new();
    let mut errors = FieldErrors::default();
    for (name, _, _, required) in FIELDS {
        let v = values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.trim()).unwrap_or("");
        if v.is_empty() {
            if required {
                errors.fields.push((name.into(), "Enter a whole number.".into()));
            } else if name != "retention_days" {
                out.insert(name.into(), serde_json::Value::Null);
            }
            // An empty retention leaves it as it is (it has no "none").
            continue;
        }
        match v.parse::<i64>() {
            Ok(n) => {
                out.insert(name.into(), n.into());
            }
            // Every field's error at once.
            Err(_) => errors.fields.push((name.into(), "Enter a whole number.".into())),
        }
    }
    if errors.any() {
        return Err(errors);
    }
    // The checkbox counts only when the form showed it (an unticked box sends nothing).
    if values.iter().any(|(n, _)| *n == SHOWN) {
        let on = values.iter().any(|(n, v)| *n == SELF_ROTATION && !v.is_empty());
        out.insert(SELF_ROTATION.into(), on.into());
    }
    Ok(serde_json::Value::Object(out))
}

pub async fn save(req: HttpRequest, post: Post, st: web::Data<State>) -> Result<HttpResponse, Fail> {
    // Only owners may change it: others meet the service's refusal, not a prompt.
    if post.ui.p.is_owner() {
        if let Some(prompt) = sudo::check(&post, &req, &st, "change the policy").await? {
            return Ok(prompt);
        }
    }
    let Post { ui, form } = post;
    let mut values: Vec<(&'static str, String)> = FIELDS.iter().map(|(n, ..)| (*n, form.get(n).to_string())).collect();
    values.push((SELF_ROTATION, form.opt(SELF_ROTATION).map(|_| "on").unwrap_or("").to_string()));
    if form.opt(SHOWN).is_some() {
        values.push((SHOWN, "1".into()));
    }
    let result = match body(&values) {
        Err(errors) => Err(errors),
        Ok(body) => {
            let p = ui.p.clone();
            match write(&st, move |conn, s, now| policy::update(conn, &s.cfg, &p, &body, now)).await {
                Ok(_) => Ok(()),
                Err(e) => Err(FieldErrors::from_error(e)?),
            }
        }
    };
    match result {
        Ok(()) => Ok(done(&ui, BASE, "The policy is saved.".into(), None)),
        Err(errors) => show(&ui, &st, Some(values), errors, None).await,
    }
}
