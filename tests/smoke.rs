mod common;
use common::Backend;
use serde_json::json;

fn smoke(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let r = s.get("/api/v1/me", &at);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["email"], json!(s.owner_email));
    let access = s.exchange_ok(&s.owner_pat);
    let claims = s.verify(&access);
    assert_eq!(claims["acct"], "user");
}

backend_tests!(smoke);
