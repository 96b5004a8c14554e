//! `tokend::service::tokens::table::parse`: the query string of `GET /api/v1/tokens`.
//!
//! Shared by the cargo-fuzz target `fuzz/fuzz_targets/table_query.rs` and the replay of its
//! seeds in `cargo test` (tests/it/fuzz_replay.rs): one body, so they cannot drift.

/// One fuzz input.
pub fn run(q: &str) {
    if let Ok(t) = tokend::service::tokens::table::parse(q) {
        assert!((1..=1_000_000).contains(&t.page.page), "{q:?}: page {}", t.page.page);
        assert!((1..=tokend::service::list::MAX_PAGE_SIZE).contains(&t.page.size), "{q:?}: page_size {}", t.page.size);
        // Paging never overflows for an accepted query.
        assert!(t.page.offset() >= 0);
        if let Some(k) = &t.owner_kind {
            assert!(matches!(k.as_str(), "user" | "service_account"));
        }
        if let Some(s) = &t.status {
            assert!(["active", "expired", "revoked", "idle"].contains(&s.as_str()));
        }
        if let Some(s) = &t.page.sort {
            assert!(["created_at", "name", "expires_at", "last_used_at", "owner"].contains(&s.as_str()));
        }
    }
}
