use crate::common;
use common::Backend;
use serde_json::json;

fn smoke(b: &Backend) {
    let s = b.start();
    let at = s.owner_login();
    let r = s.get("/api/v1/me", &at);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["email"], json!(s.owner_email));
    let access = s.exchange_ok(&s.owner_pat);
    let claims = s.verify_resource(&access);
    assert_eq!(claims["acct"], "user");
}

/// GET /openapi.json is valid OpenAPI 3.x and documents every route the server registers
/// (read from src/http/*.rs so that a new route without documentation fails here), each
/// with exactly the methods the server answers on it (its 405 `Allow` header).
fn openapi_documents_every_route(b: &Backend) {
    let s = b.start();
    let r = ureq::get(&s.url("/openapi.json")).call().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).expect("OpenAPI is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    let normalise = |p: &str| {
        let mut out = String::new();
        let mut in_param = false;
        for c in p.chars() {
            match c {
                '{' => {
                    in_param = true;
                    out.push_str("{}");
                }
                '}' => in_param = false,
                _ if !in_param => out.push(c),
                _ => {}
            }
        }
        out
    };
    let documented: Vec<String> = paths.keys().map(|k| normalise(k)).collect();
    let sources = [
        ("/api/v1", include_str!("../../src/http/api.rs")),
        ("/oauth", include_str!("../../src/http/oauth.rs")),
        ("", include_str!("../../src/http/gateway.rs")),
        ("", include_str!("../../src/http/discovery.rs")),
        ("", include_str!("../../src/http/health.rs")),
        ("", include_str!("../../src/http/leaks.rs")),
    ];
    let mut missing = Vec::new();
    for (prefix, src) in sources {
        for piece in src.split("resource(\"").skip(1).chain(src.split(".route(\"").skip(1)) {
            let route = piece.split('"').next().unwrap();
            if route.starts_with('/') && !route.starts_with("/bench") {
                let full = normalise(&format!("{prefix}{route}"));
                if !documented.contains(&full) {
                    missing.push(full);
                }
            }
        }
    }
    assert!(missing.is_empty(), "routes without OpenAPI documentation: {missing:?}");

    // And the methods: the server's own 405 + Allow lists the methods a path has; they
    // must be the documented ones, no more, no fewer.
    let at = s.owner_login();
    for (path, item) in paths {
        let mut documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
            .map(|m| m.to_uppercase())
            .collect();
        documented.sort();
        let concrete = path.replace("{id}", "x").replace("{tid}", "y").replace("{name}", "a:b");
        let r = s.call("TRACE", &concrete, Some(&at), None);
        assert_eq!(r.status, 405, "TRACE {concrete}: {}", r.text);
        let mut allowed: Vec<String> =
            r.header("allow").unwrap_or_default().split(',').map(|m| m.trim().to_string()).collect();
        allowed.sort();
        assert_eq!(allowed, documented, "{path}: methods served vs documented");
    }
}

backend_tests!(smoke, openapi_documents_every_route);
