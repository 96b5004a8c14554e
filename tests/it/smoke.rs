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

/// GET /openapi.json is valid OpenAPI 3.x and documents every route the app registers
/// (`tokend::http::routes()`: actix's own resource map of the app `server` serves, so a new
/// route without documentation fails here whatever file registers it), each with exactly
/// the methods the server answers on it (its 405 `Allow` header).
fn openapi_documents_every_route(b: &Backend) {
    let s = b.start();
    let r = ureq::get(&s.url("/openapi.json")).call().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).expect("OpenAPI is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    let documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let registered = tokend::http::routes();
    // The reader is not vacuous: it sees the routes of every scope and the top level.
    for known in ["/oauth/token", "/api/v1/me/tokens/{id}", "/.well-known/jwks.json", "/healthz", "/console/sign-in"] {
        assert!(registered.iter().any(|r| r == known), "{known} not among the registered routes: {registered:?}");
    }
    // HTML pages (the console and its `/` redirect) are not part of the API document.
    let api: Vec<&String> =
        registered.iter().filter(|r| *r != "/" && !r.starts_with("/console") && !r.starts_with("/bench")).collect();
    let missing: Vec<&&String> = api.iter().filter(|r| !documented.contains(&r.as_str())).collect();
    assert!(missing.is_empty(), "routes without OpenAPI documentation: {missing:?}");
    // And nothing is documented that the app does not route.
    let phantom: Vec<&&str> = documented.iter().filter(|d| !api.iter().any(|r| r == *d)).collect();
    assert!(phantom.is_empty(), "documented paths the app does not route: {phantom:?}");

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
