//! `/api/v1` handlers: extract, authenticate, call one service function on the blocking
//! pool, answer JSON. Errors are problem+json.
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::{client_ip, Caller};
use crate::app::{blocking, State};
use crate::error::ApiError;
use crate::service::exchange;
use crate::service::list::PageQuery;
use crate::service::{self, accounts, apps, audit, policy, roles, saved, sessions, table, tokens, users};
use crate::store::AnyConnection;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(64 * 1024).error_handler(|err, _req| {
        let e = match &err {
            JsonPayloadError::ContentType => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json")
            }
            JsonPayloadError::Deserialize(e) if e.is_data() => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid request body: {e}"))
            }
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than 64 KiB")
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, "the body is not valid JSON"),
        };
        e.into()
    })
}

/// A JSON object body. serde's derived structs also accept arrays (fields by position),
/// which would bypass `deny_unknown_fields`; this insists on an object.
pub struct Obj<T>(pub T);

impl<T> std::ops::Deref for Obj<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for Obj<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let json = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            if !value.is_object() {
                return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "the body must be a JSON object").into());
            }
            // The path of the value that did not fit names the field, as in every other 422.
            serde_path_to_error::deserialize(value).map(Obj).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                if field.is_empty() || field == "." {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid request body: {inner}")).into()
                } else {
                    ApiError::from(service::invalid(&field, inner.to_string())).into()
                }
            })
        })
    }
}

/// An optional JSON object body: `None` when the body is empty; otherwise what `Obj`
/// accepts (application/json, an object, fields named on 422), within the same 64 KiB.
fn optional_obj<T: serde::de::DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if body.len() > 64 * 1024 {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than 64 KiB"));
    }
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !(mime.eq_ignore_ascii_case("application/json") || mime.to_ascii_lowercase().ends_with("+json")) {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json"));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not valid JSON"))?;
    if !value.is_object() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "the body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map(Some).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if field.is_empty() || field == "." {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid request body: {inner}"))
        } else {
            ApiError::from(service::invalid(&field, inner.to_string()))
        }
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid query string: {err}")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_err: PathError, _req| ApiError::new(StatusCode::NOT_FOUND, "no such object").into())
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(StatusCode::NOT_FOUND, "no such route"))
}

/// Runs `f` on the blocking pool with a pooled read connection, or with the writer
/// (`write = true`; one transaction inside `f`).
async fn run<T, F>(st: &web::Data<State>, write: bool, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    let st = st.clone();
    blocking(move || -> Result<T, ApiError> {
        let mut conn = if write { st.db.write() } else { st.db.read() }.map_err(service::Error::from)?;
        Ok(f(&mut conn, &st, st.now())?)
    })
    .await
}

async fn read<T, F>(st: &web::Data<State>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    run(st, false, f).await
}

async fn write<T, F>(st: &web::Data<State>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut AnyConnection, &State, i64) -> service::Result<T> + Send + 'static,
{
    run(st, true, f).await
}

fn ok<T: Serialize>(v: T) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(v))
}

fn created<T: Serialize>(v: T) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(v))
}

fn no_content() -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::NoContent().finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post, put, resource};
    cfg.service(resource("/login").route(post().to(login)))
        .service(resource("/logout").route(post().to(logout)))
        .service(resource("/password-reset").route(post().to(redeem_reset)))
        .service(resource("/me").route(get().to(me)))
        .service(resource("/me/password").route(put().to(change_password)))
        .service(resource("/me/sessions/revoke").route(post().to(sign_out_everywhere)))
        .service(
            resource("/me/tokens")
                .route(get().to(my_tokens))
                .route(post().to(my_create))
                .route(delete().to(my_revoke_all)),
        )
        .service(
            resource("/me/tokens/{id}")
                .route(get().to(my_get))
                .route(patch().to(my_patch))
                .route(delete().to(my_revoke)),
        )
        .service(resource("/me/tokens/{id}/rotate").route(post().to(my_rotate)))
        .service(resource("/users").route(get().to(users_list)).route(post().to(users_create)))
        .service(
            resource("/users/{id}")
                .route(get().to(users_get))
                .route(patch().to(users_patch))
                .route(delete().to(users_delete)),
        )
        .service(resource("/users/{id}/password-reset").route(post().to(users_password_reset)))
        .service(resource("/roles").route(get().to(roles_list)).route(post().to(roles_create)))
        .service(resource("/roles/{name}").route(delete().to(roles_delete)))
        .service(resource("/service-accounts").route(get().to(sa_list)).route(post().to(sa_create)))
        .service(
            resource("/service-accounts/{id}")
                .route(get().to(sa_get))
                .route(patch().to(sa_patch))
                .route(delete().to(sa_delete)),
        )
        .service(resource("/service-accounts/{id}/tokens").route(get().to(sa_tokens)).route(post().to(sa_token_create)))
        .service(
            resource("/service-accounts/{id}/tokens/{tid}")
                .route(get().to(sa_token_get))
                .route(patch().to(sa_token_patch))
                .route(delete().to(sa_token_revoke)),
        )
        .service(resource("/service-accounts/{id}/tokens/{tid}/rotate").route(post().to(sa_token_rotate)))
        .service(resource("/apps").route(get().to(apps_list)).route(post().to(apps_create)))
        .service(
            resource("/apps/{id}")
                .route(get().to(apps_get))
                .route(patch().to(apps_patch))
                .route(delete().to(apps_delete)),
        )
        .service(resource("/apps/{id}/secret").route(post().to(apps_secret)))
        .service(resource("/tokens").route(get().to(table_list)))
        .service(resource("/tokens/self/rotate").route(post().to(self_rotate)))
        .service(resource("/tokens/{id}").route(get().to(table_get)))
        .service(resource("/tokens/{id}/revoke").route(post().to(table_revoke)))
        .service(resource("/policy").route(get().to(policy_get)).route(put().to(policy_put)))
        .service(resource("/saved-searches").route(get().to(saved_list)).route(post().to(saved_create)))
        .service(resource("/saved-searches/{id}").route(delete().to(saved_delete)))
        .service(resource("/audit").route(get().to(audit_list)));
}

// ---- login and the caller ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
    #[serde(default)]
    org: Option<String>,
}

async fn login(req: HttpRequest, body: Obj<Login>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    let Login { email, password, org } = body.0;
    // Password verification (argon2, tens of ms, bounded in service::passwords) on the
    // blocking pool, holding no database connection while it hashes. The session and audit
    // rows take the writer briefly after.
    let ip2 = ip.clone();
    let s = st.clone();
    let user = blocking(move || -> Result<_, ApiError> {
        let now = s.now();
        Ok(users::login(&s.db, &s.password_gate(), &email, &password, org.as_deref(), &ip2, now)?.user)
    })
    .await?;
    let token = write(&st, move |conn, s, _| exchange::login_token(conn, &s.ctx(&ip), &user)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(
            serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": st.cfg.access_token_ttl}),
        ))
}

async fn logout(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| sessions::logout(conn, &c.0, now)).await?;
    no_content()
}

async fn sign_out_everywhere(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| sessions::sign_out_everywhere(conn, &c.0, now)).await?;
    no_content()
}

/// Own password change: the current password is checked and the new one hashed with no
/// database connection held; failures count against the login throttle.
async fn change_password(
    req: HttpRequest,
    c: Caller,
    body: Obj<sessions::PasswordChange>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let p = c.0;
    p.require_interactive()?;
    users::check_password(&body.new_password)
        .map_err(|_| ApiError::from(service::invalid("new_password", "must be 8 to 1024 characters")))?;
    let (org, id) = (p.org_id.clone(), p.user_id()?.to_string());
    let user = read(&st, move |conn, _, _| users::load(conn, &org, &id)).await?;
    let ip = client_ip(&req);
    let body = body.0;
    let s = st.clone();
    let new_hash = blocking(move || -> Result<Option<String>, ApiError> {
        if !users::check_current_password(&s.password_gate(), &user, &body.current_password, &ip, s.now())? {
            return Ok(None);
        }
        Ok(Some(s.hashing.hash(&body.new_password)?))
    })
    .await?;
    let Some(new_hash) = new_hash else {
        return Err(service::invalid("current_password", "is not correct").into());
    };
    write(&st, move |conn, _, now| sessions::change_password(conn, &p, &new_hash, now)).await?;
    no_content()
}

async fn users_password_reset(
    c: Caller,
    id: web::Path<String>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let issued = write(&st, move |conn, _, now| sessions::issue_reset_code(conn, &c.0, &id, now)).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(issued))
}

/// Anyone holding a reset code sets the password: the code is checked before hashing.
async fn redeem_reset(
    req: HttpRequest,
    body: Obj<sessions::Redeem>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    users::check_password(&body.new_password)
        .map_err(|_| ApiError::from(service::invalid("new_password", "must be 8 to 1024 characters")))?;
    let code_text = body.code.clone();
    let code = read(&st, move |conn, _, now| sessions::find_code(conn, &code_text, now)).await?;
    let pw = body.new_password;
    let s = st.clone();
    let new_hash = blocking(move || -> Result<String, ApiError> { Ok(s.hashing.hash(&pw)?) }).await?;
    let ip = client_ip(&req);
    write(&st, move |conn, _, now| sessions::redeem(conn, &code, &new_hash, &ip, now)).await?;
    no_content()
}

async fn me(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| users::me(conn, &c.0)).await?)
}

// ---- personal tokens ----

async fn my_tokens(c: Caller, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let q = table::parse_in(req.query_string(), table::Scope::Owner)?;
    ok(read(&st, move |conn, s, now| tokens::my_list(conn, &c.0, &q, &s.usage, now)).await?)
}

async fn my_create(c: Caller, body: Obj<tokens::CreateToken>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| tokens::my_create(conn, &c.0, &body, &s.usage, now)).await?)
}

async fn my_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, s, now| tokens::my_get(conn, &c.0, &id, &s.usage, now)).await?)
}

async fn my_patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<tokens::PatchToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| tokens::my_patch(conn, &c.0, &id, &body, &s.usage, now)).await?)
}

async fn my_revoke(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| tokens::my_revoke(conn, &c.0, &id, now)).await?;
    no_content()
}

async fn my_revoke_all(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let n = write(&st, move |conn, _, now| tokens::my_revoke_all(conn, &c.0, now)).await?;
    ok(serde_json::json!({ "revoked": n }))
}

async fn my_rotate(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| tokens::my_rotate(conn, &c.0, &id, &s.usage, now)).await?)
}

// ---- people ----

async fn users_list(
    c: Caller,
    f: web::Query<users::UserFilter>,
    q: web::Query<PageQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| users::list(conn, &c.0, &f, &q)).await?)
}

/// Hashes a password being set on the blocking pool, holding no database connection.
async fn users_create(c: Caller, body: Obj<users::NewUser>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| users::create(conn, &c.0, &body, now)).await?)
}

async fn users_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| users::get(conn, &c.0, &id)).await?)
}

async fn users_patch(
    c: Caller,
    id: web::Path<String>,
    q: web::Query<users::CredentialsQuery>,
    body: Obj<users::UserPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let choice = q.choice()?;
    ok(write(&st, move |conn, _, now| users::patch(conn, &c.0, &id, &body, choice, now)).await?)
}

async fn users_delete(
    c: Caller,
    id: web::Path<String>,
    q: web::Query<users::CredentialsQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let choice = q.choice()?;
    write(&st, move |conn, _, now| users::delete(conn, &c.0, &id, choice, now)).await?;
    no_content()
}

// ---- roles ----

async fn roles_list(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let items = read(&st, move |conn, _, _| roles::list(conn, &c.0)).await?;
    let n = items.len() as i64;
    ok(serde_json::json!({ "items": items, "total_count": n, "page": 1, "page_size": n }))
}

async fn roles_create(c: Caller, body: Obj<roles::NewRole>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| roles::create(conn, &c.0, &body, now)).await?)
}

async fn roles_delete(c: Caller, name: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| roles::delete(conn, &c.0, &name, now)).await?;
    no_content()
}

// ---- service accounts ----

async fn sa_list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| accounts::list(conn, &c.0, &q)).await?)
}

async fn sa_create(c: Caller, body: Obj<accounts::NewAccount>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| accounts::create(conn, &c.0, &body, now)).await?)
}

async fn sa_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| accounts::get(conn, &c.0, &id)).await?)
}

async fn sa_patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<accounts::AccountPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| accounts::patch(conn, &c.0, &id, &body, now)).await?)
}

async fn sa_delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| accounts::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

async fn sa_tokens(
    c: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let q = table::parse_in(req.query_string(), table::Scope::Owner)?;
    ok(read(&st, move |conn, s, now| accounts::token_list(conn, &c.0, &id, &q, &s.usage, now)).await?)
}

async fn sa_token_get(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    ok(read(&st, move |conn, s, now| accounts::token_get(conn, &c.0, &id, &tid, &s.usage, now)).await?)
}

async fn sa_token_rotate(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    created(write(&st, move |conn, s, now| accounts::token_rotate(conn, &c.0, &id, &tid, &s.usage, now)).await?)
}

async fn sa_token_create(
    c: Caller,
    id: web::Path<String>,
    body: Obj<tokens::CreateToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, s, now| accounts::token_create(conn, &c.0, &id, &body, &s.usage, now)).await?)
}

async fn sa_token_patch(
    c: Caller,
    path: web::Path<(String, String)>,
    body: Obj<tokens::PatchToken>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    ok(write(&st, move |conn, s, now| accounts::token_patch(conn, &c.0, &id, &tid, &body, &s.usage, now)).await?)
}

async fn sa_token_revoke(
    c: Caller,
    path: web::Path<(String, String)>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let (id, tid) = path.into_inner();
    write(&st, move |conn, _, now| accounts::token_revoke(conn, &c.0, &id, &tid, now)).await?;
    no_content()
}

// ---- apps ----

async fn apps_list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| apps::list(conn, &c.0, &q)).await?)
}

async fn apps_create(c: Caller, body: Obj<apps::NewApp>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    // Apps live 300 s to 86400 s; a shorter server default still gives apps a valid one.
    created(
        write(&st, move |conn, s, now| apps::create(conn, &c.0, &body, s.cfg.access_token_ttl.max(300), now)).await?,
    )
}

async fn apps_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| apps::get(conn, &c.0, &id)).await?)
}

async fn apps_patch(
    c: Caller,
    id: web::Path<String>,
    body: Obj<apps::AppPatch>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| apps::patch(conn, &c.0, &id, &body, now)).await?)
}

async fn apps_delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| apps::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

/// The body is optional: none keeps the old behaviour (the old secret dies at once).
async fn apps_secret(
    c: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let input: apps::SecretRotation = optional_obj(&req, &body)?.unwrap_or_default();
    created(write(&st, move |conn, _, now| apps::regenerate_secret(conn, &c.0, &id, &input, now)).await?)
}

// ---- org-wide token table, policy, saved searches, audit ----

async fn table_list(c: Caller, req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let q = table::parse(req.query_string())?;
    ok(read(&st, move |conn, s, now| table::list(conn, &c.0, &q, &s.usage, now)).await?)
}

async fn table_get(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, s, now| table::get(conn, &c.0, &id, &s.usage, now)).await?)
}

/// `POST /api/v1/tokens/self/rotate`: the bearer is the API token itself (`tkd_pat_…` or
/// `tkd_sat_…`), not an access token. A bearer that is not a live API token counts as a
/// credential failure of the caller's address (429 over the limit), like every bearer.
async fn self_rotate(req: HttpRequest, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req);
    let secret = super::auth::bearer(&req).map(str::to_string);
    let fail = |secret: Option<&str>, e: ApiError| -> ApiError {
        match super::oauth::credential_failure(&st, &ip, secret) {
            Err(retry) => ApiError {
                retry_after: Some(retry),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many failed requests; retry later")
            },
            Ok(()) => e,
        }
    };
    let Some(secret) = secret.filter(|s| exchange::revocable(s)) else {
        let e = ApiError::new(StatusCode::UNAUTHORIZED, "the bearer must be the API token to rotate");
        return Err(fail(super::auth::bearer(&req), e));
    };
    let (s2, ip2) = (secret.clone(), ip.clone());
    match write(&st, move |conn, s, now| tokens::self_rotate(conn, &s2, &ip2, &s.usage, now)).await {
        Ok(v) => created(v),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Err(fail(Some(&secret), e)),
        Err(e) => Err(e),
    }
}

async fn table_revoke(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, s, now| table::revoke(conn, &c.0, &id, &s.usage, now)).await?)
}

async fn policy_get(c: Caller, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| policy::read(conn, &c.0)).await?)
}

async fn policy_put(c: Caller, body: Obj<serde_json::Value>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(write(&st, move |conn, _, now| policy::update(conn, &c.0, &body, now)).await?)
}

async fn saved_list(c: Caller, q: web::Query<PageQuery>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    ok(read(&st, move |conn, _, _| saved::list(conn, &c.0, &q)).await?)
}

async fn saved_create(c: Caller, body: Obj<saved::NewSearch>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    created(write(&st, move |conn, _, now| saved::create(conn, &c.0, &body, now)).await?)
}

async fn saved_delete(c: Caller, id: web::Path<String>, st: web::Data<State>) -> Result<HttpResponse, ApiError> {
    write(&st, move |conn, _, now| saved::delete(conn, &c.0, &id, now)).await?;
    no_content()
}

async fn audit_list(
    c: Caller,
    f: web::Query<audit::AuditFilter>,
    q: web::Query<PageQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let page = q.validate()?;
    ok(read(&st, move |conn, _, _| audit::list(conn, &c.0, &f, &page)).await?)
}
