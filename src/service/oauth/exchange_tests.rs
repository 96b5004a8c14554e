//! Unit tests of the exchange rules (`exchange.rs`): scope narrowing, audience
//! resolution, grant names, and the grant checks of `check_token` on a real (temporary
//! SQLite) store. The HTTP behaviour is covered by tests/it; these pin the rules
//! themselves, each failure naming the rule.
use super::*;
use crate::service::Principal;

fn roles(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn cfg(audiences: &[&str]) -> Config {
    let dir = std::env::temp_dir();
    let mut c = Config::for_test("sqlite://unused.db", &dir);
    c.issuer = "https://issuer.example".into();
    c.api_audience = "https://issuer.example/api".into();
    c.audiences = roles(audiences);
    c
}

// ---- narrow: scope can only narrow what is granted ----

#[test]
fn narrow_without_scope_keeps_the_grant() {
    let granted = roles(&["metrics:read", "org:member"]);
    assert_eq!(narrow(granted.clone(), None).unwrap(), granted);
    assert_eq!(narrow(granted.clone(), Some("")).unwrap(), granted, "an empty scope names nothing");
    assert_eq!(narrow(granted.clone(), Some("   ")).unwrap(), granted, "a blank scope names nothing");
}

#[test]
fn narrow_to_a_subset_is_sorted_and_deduplicated() {
    let granted = roles(&["logs:write", "metrics:read", "org:member"]);
    let got = narrow(granted, Some(" org:member  metrics:read org:member ")).unwrap();
    assert_eq!(got, roles(&["metrics:read", "org:member"]));
}

#[test]
fn narrow_follows_the_role_ladder() {
    // org:admin holds org:member (the built-in ladder), so it may be asked for alone.
    assert_eq!(narrow(roles(&["org:admin"]), Some("org:member")).unwrap(), roles(&["org:member"]));
    // The owner holds every role of the org.
    assert_eq!(narrow(roles(&["org:owner"]), Some("org:admin")).unwrap(), roles(&["org:admin"]));
}

#[test]
fn narrow_refuses_more_than_granted() {
    for (granted, scope) in [
        (&["org:member"][..], "org:admin"),
        (&["metrics:read"][..], "metrics:read logs:write"),
        (&["org:admin"][..], "org:owner"),
        (&[][..], "org:member"),
    ] {
        match narrow(roles(granted), Some(scope)) {
            Err(GrantError::InvalidScope(m)) => assert!(m.contains("is not available"), "{m}"),
            other => panic!("{granted:?} narrowed to {scope:?} must be invalid_scope, got {other:?}"),
        }
    }
}

// ---- resolve_audience: a configured audience, never the management API by default ----

#[test]
fn no_audience_named_gives_the_first_resource_audience() {
    let c = cfg(&["https://metrics.example", "https://logs.example"]);
    assert_eq!(resolve_audience(&c, None, None).unwrap(), "https://metrics.example");
}

#[test]
fn no_default_without_resource_audiences() {
    let c = cfg(&[]);
    assert!(matches!(resolve_audience(&c, None, None), Err(GrantError::InvalidTarget(_))));
    // The management audience is reachable only by naming it.
    assert_eq!(resolve_audience(&c, None, Some("https://issuer.example/api")).unwrap(), "https://issuer.example/api");
}

#[test]
fn resource_or_audience_names_a_configured_audience() {
    let c = cfg(&["https://metrics.example", "https://logs.example"]);
    assert_eq!(resolve_audience(&c, Some("https://logs.example"), None).unwrap(), "https://logs.example");
    assert_eq!(resolve_audience(&c, None, Some("https://logs.example/")).unwrap(), "https://logs.example");
    assert_eq!(
        resolve_audience(&c, Some("https://logs.example/"), Some("https://logs.example")).unwrap(),
        "https://logs.example",
        "resource and audience may both be sent when they agree (trailing slash aside)"
    );
    assert_eq!(resolve_audience(&c, Some("https://issuer.example/api"), None).unwrap(), "https://issuer.example/api");
}

#[test]
fn unknown_or_disagreeing_targets_are_invalid_target() {
    let c = cfg(&["https://metrics.example", "https://logs.example"]);
    for (resource, audience) in [
        (Some("https://elsewhere.example"), None),
        (None, Some("https://metrics.example.evil")),
        (None, Some("https://issuer.example")),
        (Some("https://metrics.example"), Some("https://logs.example")),
    ] {
        assert!(
            matches!(resolve_audience(&c, resource, audience), Err(GrantError::InvalidTarget(_))),
            "{resource:?} / {audience:?} must be invalid_target"
        );
    }
}

// ---- grant types and who may introspect ----

#[test]
fn grant_types_are_the_three_implemented() {
    assert_eq!(GrantType::from_param("client_credentials"), Some(GrantType::ClientCredentials));
    assert_eq!(GrantType::from_param("refresh_token"), Some(GrantType::RefreshToken));
    assert_eq!(GrantType::from_param(GrantType::TOKEN_EXCHANGE), Some(GrantType::TokenExchange));
    for other in ["password", "authorization_code", "implicit", "", "Refresh_Token", "refresh_token "] {
        assert_eq!(GrantType::from_param(other), None, "{other:?} is not implemented");
    }
    assert_eq!(GrantType::TokenExchange.label(), "token_exchange");
}

#[test]
fn only_api_tokens_are_revocable_by_their_holder() {
    use crate::secrets::{generate, SecretKind};
    assert!(revocable(&generate(SecretKind::Personal).value));
    assert!(revocable(&generate(SecretKind::Service).value));
    assert!(!revocable(&generate(SecretKind::ClientSecret).value));
    assert!(!revocable("tkd_pat_not-a-real-token"));
    assert!(!revocable(""));
}

fn principal(r: &[&str]) -> Principal {
    Principal {
        org_id: "o".into(),
        acct: Acct::User,
        id: "u".into(),
        roles: roles(r).into(),
        interactive: true,
        token_id: None,
        ip: None,
        sid: None,
        jti: "j".into(),
        exp: 0,
    }
}

#[test]
fn introspection_needs_org_admin_or_an_allowed_app() {
    assert!(bearer_may_introspect(&principal(&["org:admin"])).is_ok());
    assert!(bearer_may_introspect(&principal(&["org:owner"])).is_ok(), "the owner holds org:admin");
    for r in [&["org:member"][..], &["org:developer", "metrics:read"][..], &[][..]] {
        assert!(matches!(bearer_may_introspect(&principal(r)), Err(GrantError::AccessDenied(_))), "{r:?}");
    }
}

// ---- check_token: the grant checks, on a temporary SQLite store ----

struct Store {
    _dir: tempfile::TempDir,
    db: store::Db,
    owner_pat: String,
}

fn store_with_an_org(now: i64) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let db = store::Db::connect(&format!("sqlite://{}/t.db", dir.path().display()), 1).unwrap();
    db.migrate().unwrap();
    let created = {
        let mut conn = db.write().unwrap();
        crate::service::org::orgs::create(&mut conn, "default", "owner@example.test", Some("pw-123456789".into()), now)
            .unwrap()
    };
    Store { _dir: dir, db, owner_pat: created.token }
}

fn reason(r: Result<(Grant, Acct, Vec<String>, i64), GrantError>) -> (&'static str, bool) {
    match r {
        Err(GrantError::InvalidGrant { known, reason }) => (reason.as_str(), known.is_some()),
        Err(e) => panic!("expected invalid_grant, got {e:?}"),
        Ok(_) => panic!("expected invalid_grant, the token was accepted"),
    }
}

#[test]
fn check_token_refuses_what_is_not_a_live_api_token() {
    use crate::secrets::{generate, SecretKind};
    let now = 1_800_000_000;
    let s = store_with_an_org(now);
    let usage = Usage::default();
    let mut conn = s.db.write().unwrap();
    // Before any read: malformed strings and client secrets; neither names a token.
    assert_eq!(reason(check_token(&mut conn, "nonsense", &usage, now)), ("malformed", false));
    let cs = generate(SecretKind::ClientSecret).value;
    assert_eq!(reason(check_token(&mut conn, &cs, &usage, now)), ("client secret", false));
    // Well-formed but never issued.
    let unknown = generate(SecretKind::Personal).value;
    assert_eq!(reason(check_token(&mut conn, &unknown, &usage, now)), ("unknown", false));
    // The owner's token: live, a user's, with the owner's roles.
    let (grant, acct, granted, _) = check_token(&mut conn, &s.owner_pat, &usage, now).expect("the owner's PAT is live");
    assert_eq!(acct, Acct::User);
    assert!(granted.iter().any(|r| r == "org:owner"), "{granted:?}");
    // Past its expiry: refused, and the refusal names the token (for the audit log).
    assert_eq!(reason(check_token(&mut conn, &s.owner_pat, &usage, grant.expires_at)), ("expired", true));
    // Revoked: refused at once.
    store::tokens::revoke(&mut conn, &grant.id, "someone", now).unwrap();
    assert_eq!(reason(check_token(&mut conn, &s.owner_pat, &usage, now)), ("revoked", true));
}
