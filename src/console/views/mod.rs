//! One file per page; `routes` registers them under `/console` (paths relative to it).
pub mod accounts;
pub mod admin;
pub mod apps;
pub mod audit_log;
pub mod my_tokens;
pub mod org_tokens;
pub mod parts;
pub mod password;
pub mod people;
pub mod policy_page;
pub mod roles_page;
pub mod secret;
pub mod signin;
pub mod token_page;
pub mod webhooks;

use actix_web::web::{self, get, post, resource};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("").route(get().to(signin::home)))
        .service(resource("/").route(get().to(signin::home)))
        .service(resource("/static/{file}").route(get().to(super::assets::serve)))
        .service(resource("/sign-in").route(get().to(signin::form)).route(post().to(signin::submit)))
        .service(resource("/secret/{slot}").route(get().to(secret::show)))
        .service(resource("/sign-out").route(post().to(signin::sign_out)))
        .service(resource("/reset").route(get().to(password::reset_form)).route(post().to(password::reset)))
        .service(resource("/me/sessions/revoke").route(post().to(password::sign_out_everywhere)))
        .service(resource("/me/password").route(get().to(password::form)).route(post().to(password::change)))
        .service(resource("/me/tokens").route(get().to(my_tokens::list)).route(post().to(my_tokens::create)))
        .service(resource("/me/tokens/revoke-all").route(post().to(my_tokens::revoke_all)))
        .service(resource("/me/tokens/{id}/revoke").route(post().to(my_tokens::revoke)))
        .service(resource("/me/tokens/{id}/rotate").route(post().to(my_tokens::rotate)))
        .configure(token_page::routes)
        .configure(accounts::routes)
        .configure(apps::routes)
        .configure(admin::routes)
        .configure(webhooks::routes);
}
