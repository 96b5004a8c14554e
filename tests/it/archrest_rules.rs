//! Rules that live in service/ once (issue #25 item 3): the per-org webhook test-event limit
//! is `service::events::webhooks::send_test`'s, so the API and the console count against
//! the same budget and both refuse past it (429), queueing nothing; console pages that
//! rely on the service call's refusal still answer the 403 page to non-admins.
use serde_json::json;

use crate::common::browser::ConsoleHttp;
use crate::common::helpers::{new_user, redeem, reset_code};
use crate::common::Backend;
use tokend::service::events::webhooks::TEST_EVENTS_PER_MINUTE;

fn test_events_are_limited_per_org_in_both_front_ends(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let r = s.post("/api/v1/webhooks", &owner, json!({"url": "http://127.0.0.1:9/x", "events": ["token.revoked"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    let hook = r.body["id"].as_str().unwrap().to_string();
    let console = ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password);
    // Half through the console, half through the API: one budget.
    for i in 0..TEST_EVENTS_PER_MINUTE {
        if i % 2 == 0 {
            let r = console.post(&format!("/console/webhooks/{hook}/test"), &[]);
            assert!(r.status == 303 || r.status == 200, "console test event {i}: {} {}", r.status, r.text);
        } else {
            let r = s.post(&format!("/api/v1/webhooks/{hook}/test"), &owner, json!({}));
            assert_eq!(r.status, 202, "API test event {i}: {}", r.text);
        }
    }
    let queued = s.count("outbox");
    assert_eq!(queued, TEST_EVENTS_PER_MINUTE as i64);
    let r = s.post(&format!("/api/v1/webhooks/{hook}/test"), &owner, json!({}));
    assert_eq!(r.status, 429, "API past the limit: {}", r.text);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    let r = console.post(&format!("/console/webhooks/{hook}/test"), &[]);
    assert_eq!(r.status, 429, "console past the limit: {}", r.text);
    assert!(r.text.contains("Too many attempts"), "{}", r.text);
    assert_eq!(s.count("outbox"), queued, "nothing queued past the limit");
    // A minute later the budget is back.
    s.clock.advance(61);
    let r = s.post(&format!("/api/v1/webhooks/{hook}/test"), &owner, json!({}));
    assert_eq!(r.status, 202, "{}", r.text);
}

fn guarded_pages_still_answer_403_to_members(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let member_id = new_user(&s, &owner, "member@example.test", &["org:member"]);
    let code = reset_code(&s, &owner, &member_id);
    assert_eq!(redeem(&s, &code, "member-password-123").status, 204);
    let console = ConsoleHttp::sign_in(&s, "member@example.test", "member-password-123");
    for path in [
        "/console/audit".to_string(),
        format!("/console/people/{member_id}"),
        format!("/console/people/{}", s.owner_id),
    ] {
        let r = console.get(&path);
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert!(r.text.contains("You need another role"), "{path}: {}", r.text);
    }
}

backend_tests!(test_events_are_limited_per_org_in_both_front_ends, guarded_pages_still_answer_403_to_members);
