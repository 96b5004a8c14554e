//! Lists fetch their page and the total in one query (`COUNT(*) OVER ()`), with a count
//! query only for a page past the end (no row to carry the total): the totals stay exact
//! on every page, past the end and for an empty filter, on both backends, for each list
//! the paginator serves (people, service accounts, apps, tokens, audit, webhooks,
//! saved searches, trust policies).
use serde_json::{json, Value};

use crate::common::helpers::new_sa;
use crate::common::{Backend, Server};

/// GET `path` (with `?` or `&` added) page `page` of size 2: (item count, total_count).
#[track_caller]
fn page(s: &Server, at: &str, path: &str, page: u32) -> (usize, i64) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = s.get(&format!("{path}{sep}page={page}&page_size=2"), at);
    assert_eq!(r.status, 200, "{path} page {page}: {}", r.text);
    let items = r.body["items"].as_array().unwrap_or_else(|| panic!("{path}: {}", r.text)).len();
    assert_eq!(r.body["page"], json!(page), "{path}");
    assert_eq!(r.body["page_size"], json!(2), "{path}");
    (items, r.body["total_count"].as_i64().unwrap())
}

fn totals_are_exact_on_every_page_and_past_the_end(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    for i in 0..5 {
        let r =
            s.post("/api/v1/users", &owner, json!({"email": format!("p{i}@example.test"), "roles": ["org:member"]}));
        assert_eq!(r.status, 201, "{}", r.text);
        new_sa(&s, &owner, &format!("sa-{i}"), &["org:member"]);
    }
    // Five people besides the owner: six; five accounts.
    for (path, total) in [("/api/v1/users", 6), ("/api/v1/service-accounts", 5)] {
        assert_eq!(page(&s, &owner, path, 1), (2, total), "{path}");
        assert_eq!(page(&s, &owner, path, 3), (2.min(total as usize - 4), total), "{path}");
        // Past the end: no rows, the total still exact (the fallback count).
        assert_eq!(page(&s, &owner, path, 4), (0, total), "{path}");
        assert_eq!(page(&s, &owner, path, 99), (0, total), "{path}");
    }
    // A filter that matches nothing: empty first page, total 0 (no count query needed).
    assert_eq!(page(&s, &owner, "/api/v1/users?q=nobody-matches", 1), (0, 0));
    assert_eq!(page(&s, &owner, "/api/v1/users?q=nobody-matches", 2), (0, 0));
    // A filter: the window counts the filtered rows, not the table.
    assert_eq!(page(&s, &owner, "/api/v1/users?q=p3@", 1), (1, 1));
    // The other lists on the same paginator, first page and past the end agree.
    for path in [
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/apps",
        "/api/v1/webhooks",
        "/api/v1/trust-policies",
        "/api/v1/saved-searches",
    ] {
        let (_, total) = page(&s, &owner, path, 1);
        let (n, past) = page(&s, &owner, path, 1000);
        assert_eq!((n, past), (0, total), "{path}");
    }
    let listed: Value = s.get("/api/v1/tokens?page_size=200", &owner).body;
    assert_eq!(listed["total_count"].as_i64().unwrap(), listed["items"].as_array().unwrap().len() as i64);
}

backend_tests!(totals_are_exact_on_every_page_and_past_the_end);
