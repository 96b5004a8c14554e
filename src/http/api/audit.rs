//! `/audit`: the append-only audit log as read.
use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use super::{ok, read};
use crate::app::State;
use crate::error::ApiError;
use crate::http::auth::Caller;
use crate::service::list::PageQuery;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::list::Paged;
use crate::service::org::audit_log as audit;
#[allow(unused_imports)] // named in the #[utoipa::path] annotations
use crate::service::org::audit_log::{AuditFilter, AuditView};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit").route(web::get().to(list)));
}

super::sort_param!(AuditSort, crate::service::org::audit_log::Sort::ALL, "at");

/// This file's operations (paths relative to `/api/v1`, nested there by `super::Doc`).
#[derive(OpenApi)]
#[openapi(paths(list))]
pub struct Doc;

/// The audit log
///
/// Requires org:admin. Default order: oldest first.
#[utoipa::path(get, path = "/audit", tag = "Audit", operation_id = "listAudit",
    params(AuditFilter, PageQuery, AuditSort),
    responses(
        (status = 200, description = "OK.", body = Paged<AuditView>),
        (status = 403),
        (status = 422),
    ))]
pub async fn list(
    c: Caller,
    f: web::Query<audit::AuditFilter>,
    q: web::Query<PageQuery>,
    st: web::Data<State>,
) -> Result<HttpResponse, ApiError> {
    let page = q.validate()?;
    ok(read(&st, move |conn, _, _| audit::list(conn, &c.0, &f, &page)).await?)
}
