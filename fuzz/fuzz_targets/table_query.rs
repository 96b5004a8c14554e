//! `tokend::service::tokens::table::parse`: the query string of `GET /api/v1/tokens`.
//!
//! The body is `fuzz/bodies/table_query.rs`, which `cargo test` also runs on every seed.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../bodies/table_query.rs"]
mod body;

fuzz_target!(|q: &str| body::run(q));
