//! Keyless clients and delegation (issue #22), over real HTTP: a real local OIDC issuer
//! (its own key pair, discovery and JWKS on a loopback port, started by the test) signs
//! tokens shaped like GitHub Actions' and Kubernetes'; tokend exchanges them through trust
//! policies for service-account access tokens, verified independently against tokend's
//! JWKS. Then RFC 8693 delegation: an app acting for a user.
use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{Backend, Resp, Server};
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tokend::clock::Clock;

const TE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

// ---------------------------------------------------------------------------------------
// a local OIDC issuer
// ---------------------------------------------------------------------------------------

/// A signing key of the test issuer: ES256 (P-256) or EdDSA (Ed25519), made by ring, or
/// RS256, made by the openssl command line at test time (ring does not generate RSA keys).
struct SigningKey {
    kid: String,
    alg: jsonwebtoken::Algorithm,
    pkcs8: Vec<u8>,
    /// The public key as published (EC: 0x04‖x‖y; Ed25519: 32 bytes; RSA: its PEM). For
    /// RSA, `pkcs8` holds the private key's PEM.
    public: Vec<u8>,
}

impl SigningKey {
    fn es256(kid: &str) -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap().as_ref().to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        SigningKey { kid: kid.into(), alg: jsonwebtoken::Algorithm::ES256, pkcs8, public }
    }

    fn ed25519(kid: &str) -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref().to_vec();
        let public = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap().public_key().as_ref().to_vec();
        SigningKey { kid: kid.into(), alg: jsonwebtoken::Algorithm::EdDSA, pkcs8, public }
    }

    fn rs256(kid: &str) -> SigningKey {
        let private = common::helpers::rsa_private_pem();
        let public = common::helpers::openssl(&["pkey", "-pubout"], private.as_bytes());
        SigningKey { kid: kid.into(), alg: jsonwebtoken::Algorithm::RS256, pkcs8: private.into_bytes(), public }
    }

    fn jwk(&self) -> Value {
        match self.alg {
            jsonwebtoken::Algorithm::RS256 => {
                // n and e read from the key by ring, not by the code under test.
                let der = pem::parse(&self.pkcs8).unwrap();
                let pair = ring::signature::RsaKeyPair::from_pkcs8(der.contents()).unwrap();
                let c: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
                let strip = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
                json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                    "n": B64.encode(strip(&c.n)), "e": B64.encode(strip(&c.e))})
            }
            jsonwebtoken::Algorithm::ES256 => json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
                "kid": self.kid, "x": B64.encode(&self.public[1..33]), "y": B64.encode(&self.public[33..65])}),
            _ => json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
                "x": B64.encode(&self.public)}),
        }
    }

    /// A JWS of `claims` with this key, `kid` in the header (another kid when given).
    fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut h = jsonwebtoken::Header::new(self.alg);
        h.typ = Some("JWT".into());
        h.kid = Some(kid.unwrap_or(&self.kid).to_string());
        let key = match self.alg {
            jsonwebtoken::Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(&self.pkcs8).unwrap(),
            jsonwebtoken::Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8),
            _ => jsonwebtoken::EncodingKey::from_ed_der(&self.pkcs8),
        };
        jsonwebtoken::encode(&h, claims, &key).unwrap()
    }
}

/// An OIDC issuer on 127.0.0.1: `/.well-known/openid-configuration` and `/jwks` (the
/// current keys, `Cache-Control: public, max-age=300`). Counts JWKS fetches.
struct Issuer {
    base: String,
    keys: Arc<Mutex<Vec<SigningKey>>>,
    jwks_fetches: Arc<AtomicUsize>,
}

impl Issuer {
    fn start(first: SigningKey) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let keys = Arc::new(Mutex::new(vec![first]));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (b, k, n) = (base.clone(), keys.clone(), jwks_fetches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let (status, body) = match path.as_str() {
                    "/.well-known/openid-configuration" => (
                        "200 OK",
                        json!({"issuer": b, "jwks_uri": format!("{b}/jwks"), "response_types_supported": ["id_token"],
                            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"]}),
                    ),
                    "/jwks" => {
                        n.fetch_add(1, Ordering::SeqCst);
                        let keys: Vec<Value> = k.lock().unwrap().iter().map(SigningKey::jwk).collect();
                        ("200 OK", json!({"keys": keys}))
                    }
                    _ => ("404 Not Found", json!({})),
                };
                let body = body.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nCache-Control: public, max-age=300\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Issuer { base, keys, jwks_fetches }
    }

    fn sign(&self, claims: &Value) -> String {
        self.keys.lock().unwrap()[0].sign(claims, None)
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Rotation: the new key is published and signs; the old one is withdrawn.
    fn rotate(&self, next: SigningKey) {
        *self.keys.lock().unwrap() = vec![next];
    }
}

/// Claims shaped like a GitHub Actions OIDC token for a push to main of acme/billing.
fn github_claims(iss: &str, aud: &str, now: i64, git_ref: &str) -> Value {
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": format!("repo:acme/billing:ref:{git_ref}"),
        "aud": aud,
        "ref": git_ref,
        "sha": "2f5c1b2b6d5e3c3f4a1e9a8d7c6b5a4f3e2d1c0b",
        "repository": "acme/billing",
        "repository_owner": "acme",
        "repository_owner_id": "4211",
        "repository_id": "90210",
        "repository_visibility": "private",
        "run_id": "7781234567",
        "run_number": "42",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "583231",
        "workflow": "deploy",
        "workflow_ref": format!("acme/billing/.github/workflows/deploy.yml@{git_ref}"),
        "job_workflow_ref": format!("acme/billing/.github/workflows/deploy.yml@{git_ref}"),
        "event_name": "push",
        "ref_type": "branch",
        "environment": "production",
        "runner_environment": "github-hosted",
        "iss": iss,
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 300,
    })
}

/// Claims shaped like a projected Kubernetes service-account token.
fn kubernetes_claims(iss: &str, aud: &str, now: i64, namespace: &str, sa: &str) -> Value {
    json!({
        "aud": [aud],
        "exp": now + 3600,
        "iat": now - 10,
        "nbf": now - 10,
        "iss": iss,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "node-a", "uid": "0b7e5b36-3d3c-4b8e-9f0e-1c1b8b5f6e11"},
            "pod": {"name": format!("{sa}-7d9f8c6b5-x2x4z"), "uid": "5e2c1c8e-8f4e-4a59-9f7e-3b0f2e6f7a10"},
            "serviceaccount": {"name": sa, "uid": "b1e3c5a7-9d2f-4e6b-8a0c-2d4f6a8c0e12"},
        },
        "sub": format!("system:serviceaccount:{namespace}:{sa}"),
    })
}

/// `alg: none` with the claims as given.
fn unsigned(claims: &Value, kid: &str) -> String {
    let h = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!("{}.{}.", B64.encode(h.to_string()), B64.encode(claims.to_string()))
}

/// HS256 with the issuer's public key as the HMAC secret (the classic confusion).
fn hs256_with_public_key(key: &SigningKey, claims: &Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &jsonwebtoken::EncodingKey::from_secret(&key.public)).unwrap()
}

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

fn exchange(s: &Server, token: &str, ty: &str, extra: &[(&str, &str)]) -> Resp {
    let mut form = vec![("grant_type", TE), ("subject_token", token), ("subject_token_type", ty)];
    form.extend_from_slice(extra);
    s.form("/oauth/token", &form, None)
}

#[track_caller]
fn refused(r: &Resp, error: &str, what: &str) {
    assert_eq!(r.body["error"], json!(error), "{what}: {} {}", r.status, r.text);
    assert_eq!(r.status, if error == "invalid_client" { 401 } else { 400 }, "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

/// The audit rows of `action` (newest first) the owner sees.
fn audit(s: &Server, owner: &str, action: &str, outcome: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/v1/audit?action={action}&outcome={outcome}&order=desc&page_size=200"), owner);
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

/// Refused, with the RFC error `error`, and one more failure row of `action` whose reason
/// is `reason`.
#[track_caller]
fn refused_and_audited(s: &Server, owner: &str, r: &Resp, error: &str, action: &str, reason: &str) {
    refused(r, error, reason);
    let rows = audit(s, owner, action, "failure");
    let row = rows.first().unwrap_or_else(|| panic!("{reason}: no failure audited"));
    assert_eq!(row["detail"]["reason"], json!(reason), "{reason}: newest failure row {row}");
    assert_eq!(row["detail"]["error"], json!(error), "{reason}: {row}");
}

fn create_policy(s: &Server, owner: &str, body: Value) -> String {
    let r = s.post("/api/v1/trust-policies", owner, body);
    assert_eq!(r.status, 201, "create trust policy: {}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

fn new_sa(s: &Server, owner: &str, name: &str, roles: &[&str]) -> String {
    let r = s.post("/api/v1/service-accounts", owner, json!({"name": name, "roles": roles}));
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------
// federation
// ---------------------------------------------------------------------------------------

/// GitHub Actions and Kubernetes tokens through trust policies: the matching ones are
/// exchanged for the mapped service account; every way a token can be wrong is refused
/// with its RFC error and audited; key rotation at the issuer is followed without restart,
/// and an attacker's made-up kids do not make tokend fetch on every request.
fn keyless_ci_and_kubernetes(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    s.role(&owner, "metrics:write");
    let deployer = new_sa(&s, &owner, "ci-deployer", &["metrics:read", "metrics:write"]);
    let collector = new_sa(&s, &owner, "collector", &["metrics:read"]);
    // RS256, as GitHub signs; it rotates to an ES256 key below.
    let gh = Issuer::start(SigningKey::rs256("gh-1"));
    let k8s = Issuer::start(SigningKey::ed25519("k8s-1"));
    let rogue = Issuer::start(SigningKey::es256("rogue-1"));
    let gh_policy = create_policy(
        &s,
        &owner,
        json!({"name": "billing deploys", "issuer": gh.base, "audience": "tokend-ci",
            "conditions": {"repository": "acme/billing", "ref": "refs/heads/main", "sub": "repo:acme/billing:*"},
            "service_account_id": deployer, "roles": ["metrics:write"]}),
    );
    let k8s_policy = create_policy(
        &s,
        &owner,
        json!({"name": "prod collector", "issuer": k8s.base, "audience": "https://tokend.example",
            "conditions": {"sub": "system:serviceaccount:prod:collector", "kubernetes.io/namespace": "prod"},
            "service_account_id": collector, "roles": ["metrics:read"], "max_age_seconds": 600}),
    );
    let now = || s.clock.now();

    // A matching GitHub Actions token → an access token of the deployer.
    let gh_token = gh.sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main"));
    let r = exchange(&s, &gh_token, JWT, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["issued_token_type"], json!(ACCESS));
    assert_eq!(r.body["token_type"], json!("Bearer"));
    assert_eq!(r.body["scope"], json!("metrics:write"));
    let c = s.verify_resource(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], json!(deployer), "{c}");
    assert_eq!(c["acct"], json!("service_account"));
    assert_eq!(c["roles"], json!(["metrics:write"]));
    assert_eq!(c["client_id"], json!(gh_policy));
    assert_eq!(
        c["external"],
        json!({"iss": gh.base, "sub": "repo:acme/billing:ref:refs/heads/main", "policy": gh_policy}),
        "the external identity is recorded in the token"
    );
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 1800);
    // tokend's introspection fails closed on identities it does not resolve (README: limits).
    let admin_at = s.exchange_api(&s.owner_pat);
    let body = format!("token={}", r.body["access_token"].as_str().unwrap());
    let auth = format!("Bearer {admin_at}");
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("authorization", auth.as_str())];
    let i = s.raw("POST", "/oauth/introspect", &headers, body.as_bytes());
    assert_eq!((i.status, i.body.clone()), (200, json!({"active": false})), "{}", i.text);
    // Replays within the external token's life are allowed; the keys are cached.
    assert_eq!(exchange(&s, &gh_token, JWT, &[]).status, 200);
    assert_eq!(gh.fetches(), 1, "the JWKS is fetched once and cached");
    // Narrowing works as on every grant.
    let r = exchange(&s, &gh_token, JWT, &[("scope", "metrics:write")]);
    assert_eq!(r.status, 200, "{}", r.text);

    // A Kubernetes service-account token, sent as an ID token → the collector.
    let k8s_token = k8s.sign(&kubernetes_claims(&k8s.base, "https://tokend.example", now(), "prod", "collector"));
    let r = exchange(&s, &k8s_token, ID_TOKEN, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    let c = s.verify_resource(r.body["access_token"].as_str().unwrap());
    assert_eq!((c["sub"].clone(), c["roles"].clone()), (json!(collector), json!(["metrics:read"])));
    assert_eq!(c["external"]["sub"], json!("system:serviceaccount:prod:collector"));
    assert_eq!(c["external"]["policy"], json!(k8s_policy));

    // Both successes are audited with the external subject.
    let ok = audit(&s, &owner, "trust_policy.exchange", "success");
    assert_eq!(ok.len(), 4, "{ok:?}");
    assert_eq!(ok[0]["actor_kind"], json!("external"));
    assert_eq!(ok[0]["actor_id"], json!("system:serviceaccount:prod:collector"));
    assert_eq!(ok[0]["object_id"], json!(k8s_policy));
    assert_eq!(ok[0]["detail"]["external_iss"], json!(k8s.base));
    assert_eq!(ok[0]["detail"]["service_account_id"], json!(collector));
    assert_eq!(ok[3]["detail"]["external_sub"], json!("repo:acme/billing:ref:refs/heads/main"));

    let act = "trust_policy.exchange";
    let before = s.data_snapshot();
    // Wrong audience.
    let t = gh.sign(&github_claims(&gh.base, "someone-else", now(), "refs/heads/main"));
    refused_and_audited(&s, &owner, &exchange(&s, &t, JWT, &[]), "invalid_grant", act, "wrong audience");
    // A claim that fails a condition (a push to another branch).
    let t = gh.sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/dev"));
    refused_and_audited(&s, &owner, &exchange(&s, &t, JWT, &[]), "invalid_grant", act, "no policy matches");
    let row = &audit(&s, &owner, act, "failure")[0];
    assert_eq!(row["detail"]["policies"][0]["failed"], json!("condition on ref"), "{row}");
    // Another namespace's Kubernetes token.
    let t = k8s.sign(&kubernetes_claims(&k8s.base, "https://tokend.example", now(), "dev", "collector"));
    refused_and_audited(&s, &owner, &exchange(&s, &t, JWT, &[]), "invalid_grant", act, "no policy matches");
    // Expired (beyond the skew).
    let mut claims = github_claims(&gh.base, "tokend-ci", now() - 1000, "refs/heads/main");
    claims["exp"] = json!(now() - 120);
    refused_and_audited(&s, &owner, &exchange(&s, &gh.sign(&claims), JWT, &[]), "invalid_grant", act, "expired");
    // Not yet valid.
    let mut claims = github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main");
    claims["nbf"] = json!(now() + 600);
    refused_and_audited(&s, &owner, &exchange(&s, &gh.sign(&claims), JWT, &[]), "invalid_grant", act, "not yet valid");
    // Older than the policy's max age (600 s), though not expired.
    let t = k8s.sign(&kubernetes_claims(&k8s.base, "https://tokend.example", now() - 900, "prod", "collector"));
    refused_and_audited(&s, &owner, &exchange(&s, &t, JWT, &[]), "invalid_grant", act, "no policy matches");
    let row = &audit(&s, &owner, act, "failure")[0];
    assert_eq!(row["detail"]["policies"][0]["failed"], json!("older than max_age_seconds"), "{row}");
    // alg: none.
    let claims = github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main");
    refused_and_audited(
        &s,
        &owner,
        &exchange(&s, &unsigned(&claims, "gh-1"), JWT, &[]),
        "invalid_grant",
        act,
        "unsupported or malformed header",
    );
    // HS256 with the issuer's public key as the secret.
    let forged = hs256_with_public_key(&gh.keys.lock().unwrap()[0], &claims);
    refused_and_audited(&s, &owner, &exchange(&s, &forged, JWT, &[]), "invalid_grant", act, "algorithm not allowed");
    // The issuer's kid with another algorithm (an ES256 signature of someone else's key).
    let rogue_signed = rogue.keys.lock().unwrap()[0].sign(&claims, Some("gh-1"));
    refused_and_audited(
        &s,
        &owner,
        &exchange(&s, &rogue_signed, JWT, &[]),
        "invalid_grant",
        act,
        "key does not fit the algorithm",
    );
    // A genuine signature over other claims: another repository's token with this payload.
    let genuine = gh.sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main"));
    let mut other = github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main");
    other["repository"] = json!("mallory/billing");
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(other.to_string()), parts[2]);
    refused_and_audited(&s, &owner, &exchange(&s, &tampered, JWT, &[]), "invalid_grant", act, "bad signature");
    // Roles beyond the policy (the service account holds metrics:read, the policy does not grant it).
    let r = exchange(&s, &gh_token, JWT, &[("scope", "metrics:read")]);
    refused_and_audited(&s, &owner, &r, "invalid_scope", act, "invalid_scope");
    // The management audience is not for external identities.
    let r = exchange(&s, &gh_token, JWT, &[("audience", &s.api_audience())]);
    refused(&r, "invalid_target", "management audience");
    // Wrong issuer: a token of an issuer no policy trusts. Nothing is fetched from it; the
    // refusal is audited without an org (no org's policy concerns it).
    let t = rogue.sign(&github_claims(&rogue.base, "tokend-ci", now(), "refs/heads/main"));
    refused(&exchange(&s, &t, JWT, &[]), "invalid_grant", "untrusted issuer");
    assert_eq!(rogue.fetches(), 0, "nothing is fetched from an issuer no policy names");
    let unattributed = s.rows("audit_events").into_iter().filter(|r| r.contains("untrusted issuer")).count();
    assert_eq!(unattributed, 1, "the untrusted issuer's token is audited once");
    // A token claiming the trusted issuer, signed by another issuer's key (its kid).
    let t = rogue.sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main"));
    refused_and_audited(&s, &owner, &exchange(&s, &t, JWT, &[]), "invalid_grant", act, "unknown kid");
    assert_eq!(s.data_snapshot(), before, "refusals change nothing but the audit log");

    // Unknown kids: at most one JWKS fetch per issuer per 30 s, whatever is presented.
    let fetched = gh.fetches();
    for i in 0..5 {
        let t = gh.keys.lock().unwrap()[0]
            .sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main"), Some(&format!("made-up-{i}")));
        refused(&exchange(&s, &t, JWT, &[]), "invalid_grant", "unknown kid");
    }
    assert_eq!(gh.fetches(), fetched, "made-up kids right after a fetch fetch nothing");
    s.clock.advance(31);
    for i in 0..5 {
        let t = gh.keys.lock().unwrap()[0]
            .sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main"), Some(&format!("again-{i}")));
        refused(&exchange(&s, &t, JWT, &[]), "invalid_grant", "unknown kid");
    }
    assert_eq!(gh.fetches(), fetched + 1, "one refresh per interval for unknown kids");

    // Key rotation at the issuer, followed without a restart.
    let old_token = gh.sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main"));
    gh.rotate(SigningKey::es256("gh-2"));
    s.clock.advance(31);
    let t = gh.sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main"));
    let r = exchange(&s, &t, JWT, &[]);
    assert_eq!(r.status, 200, "a token of the new key after rotation: {}", r.text);
    assert_eq!(s.verify_resource(r.body["access_token"].as_str().unwrap())["sub"], json!(deployer));
    assert_eq!(gh.fetches(), fetched + 2);
    // The withdrawn key is gone once the issuer stopped publishing it.
    refused(&exchange(&s, &old_token, JWT, &[]), "invalid_grant", "withdrawn key");
    // The JWKS answer's max-age (300 s) is honoured: no fetch before it ends, one after.
    s.clock.advance(200);
    assert_eq!(exchange(&s, &t, JWT, &[]).status, 200);
    assert_eq!(gh.fetches(), fetched + 2, "fresh keys are not fetched again");
    s.clock.advance(120);
    let t = gh.sign(&github_claims(&gh.base, "tokend-ci", now(), "refs/heads/main"));
    assert_eq!(exchange(&s, &t, JWT, &[]).status, 200);
    assert_eq!(gh.fetches(), fetched + 3, "keys past their max-age are fetched again");

    // A disabled policy lets nothing through; neither does a disabled service account.
    let r = s.patch(&format!("/api/v1/trust-policies/{gh_policy}"), &owner, json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    refused(&exchange(&s, &t, JWT, &[]), "invalid_grant", "disabled policy");
    let r = s.patch(&format!("/api/v1/service-accounts/{collector}"), &owner, json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    let t = k8s.sign(&kubernetes_claims(&k8s.base, "https://tokend.example", now(), "prod", "collector"));
    refused(&exchange(&s, &t, JWT, &[]), "invalid_grant", "disabled service account");
}

/// The trust-policy API: validation, interactive creation and widening, narrowing from
/// any admin bearer, org isolation, the list.
fn trust_policy_api(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    s.role(&owner, "metrics:read");
    s.role(&owner, "metrics:write");
    let sa = new_sa(&s, &owner, "bot", &["metrics:read"]);
    let good = json!({"name": "ci", "issuer": "https://token.actions.githubusercontent.com", "audience": "tokend",
        "conditions": {"repository": "acme/*"}, "service_account_id": sa, "roles": ["metrics:read"]});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("issuer", json!("http://issuer.example")), "issuer"),
        (with("issuer", json!("https://user:pw@issuer.example")), "issuer"),
        (with("issuer", json!("not a url")), "issuer"),
        (with("conditions", json!({})), "conditions"),
        (with("conditions", json!({"sub": "*"})), "conditions"),
        (with("roles", json!([])), "roles"),
        (with("roles", json!(["metrics:write"])), "roles"),
        (with("service_account_id", json!("nope")), "service_account_id"),
        (with("max_age_seconds", json!(5)), "max_age_seconds"),
        (with("extra", json!(1)), "extra"),
    ] {
        let r = s.post("/api/v1/trust-policies", &owner, body.clone());
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(r.text.contains(field), "{field}: {}", r.text);
    }
    // Creating needs an interactive login.
    let pat_at = s.exchange_api(&s.owner_pat);
    let r = s.post("/api/v1/trust-policies", &pat_at, good.clone());
    assert_eq!(r.status, 403, "{}", r.text);
    let id = create_policy(&s, &owner, good.clone());
    let r = s.get(&format!("/api/v1/trust-policies/{id}"), &owner);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["conditions"], json!({"repository": "acme/*"}));
    assert_eq!(r.body["max_age_seconds"], json!(3600));
    assert_eq!(r.body["disabled"], json!(false));
    let r = s.get("/api/v1/trust-policies?sort=issuer", &owner);
    assert_eq!((r.status, r.body["total_count"].clone()), (200, json!(1)), "{}", r.text);
    // Narrowing from a non-interactive bearer; widening needs a login.
    let path = format!("/api/v1/trust-policies/{id}");
    let r = s.patch(&path, &pat_at, json!({"max_age_seconds": 300, "disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    for widen in [
        json!({"disabled": false}),
        json!({"max_age_seconds": 600}),
        json!({"conditions": {"repository": "*/*"}}),
        json!({"audience": "other"}),
    ] {
        let r = s.patch(&path, &pat_at, widen.clone());
        assert_eq!(r.status, 403, "{widen}: {}", r.text);
    }
    let r = s.patch(&path, &owner, json!({"disabled": false, "conditions": {"repository": "acme/billing"}}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["conditions"], json!({"repository": "acme/billing"}));
    // Every change is audited.
    let rows = audit(&s, &owner, "trust_policy.update", "success");
    assert_eq!(rows.len(), 2);
    // Another org sees nothing of it.
    {
        let mut conn = s.state.db.write().unwrap();
        tokend::service::org::orgs::create(
            &mut conn,
            "other",
            "owner@other.test",
            Some("other-password-123".into()),
            s.state.now(),
        )
        .unwrap();
    }
    let other = s.login("owner@other.test", "other-password-123");
    assert_eq!(s.get(&path, &other).status, 404);
    assert_eq!(s.delete(&path, &other).status, 404);
    assert_eq!(s.get("/api/v1/trust-policies", &other).body["total_count"], json!(0));
    assert_eq!(s.delete(&path, &pat_at).status, 204);
    assert_eq!(s.get(&path, &owner).status, 404);
    assert_eq!(audit(&s, &owner, "trust_policy.delete", "success").len(), 1);
}

// ---------------------------------------------------------------------------------------
// delegation
// ---------------------------------------------------------------------------------------

/// An app acting for a user (RFC 8693 actor): allowed → a token with `act`, the user as
/// `sub`, roles both hold, never outliving the subject token; not allowed →
/// unauthorized_client; a revoked token or a disabled user's token is refused.
fn delegation(b: &Backend) {
    let reports = "https://reports.example".to_string();
    let s = b.start_with(|c| c.audiences.push("https://reports.example".into()));
    let owner = s.owner_login();
    s.role(&owner, "reports:read");
    s.role(&owner, "metrics:read");
    let (alice, alice_login) = s.user(&owner, "alice@example.test", &["org:member", "reports:read", "metrics:read"]);
    let (_, alice_pat) =
        s.pat(&alice_login, json!({"name": "laptop", "ttl_days": 7, "roles": ["reports:read", "metrics:read"]}));
    // The user's access token for the frontend (the default resource audience).
    let user_at = s.exchange_ok(&alice_pat);
    let user_claims = s.verify_resource(&user_at);
    let (app_id, client_id, secret) =
        s.app(&owner, json!({"name": "frontend", "roles": ["reports:read"], "management": false}));
    let basic = Some((client_id.as_str(), secret.as_str()));
    let delegate = |subject: &str, extra: &[(&str, &str)], basic: Option<(&str, &str)>| {
        let mut form = vec![("grant_type", TE), ("subject_token", subject), ("subject_token_type", ACCESS)];
        form.extend_from_slice(extra);
        s.form("/oauth/token", &form, basic)
    };
    let aud = [("audience", reports.as_str())];

    // Not allowed yet.
    let r = delegate(&user_at, &aud, basic);
    refused_and_audited(&s, &owner, &r, "unauthorized_client", "token.delegate", "unauthorized_client");
    let row = &audit(&s, &owner, "token.delegate", "failure")[0];
    assert_eq!((row["actor_kind"].clone(), row["actor_id"].clone()), (json!("app"), json!(client_id)), "{row}");
    assert_eq!((row["object_kind"].clone(), row["object_id"].clone()), (json!("app"), json!(app_id)), "{row}");
    // The allowance: org:admin, widening from an interactive login only.
    let path = format!("/api/v1/apps/{app_id}/delegation");
    assert_eq!(s.get(&path, &owner).body, json!({"audiences": []}));
    let pat_at = s.exchange_api(&s.owner_pat);
    assert_eq!(s.put(&path, &pat_at, json!({"audiences": [reports]})).status, 403);
    let r = s.put(&path, &owner, json!({"audiences": [s.api_audience()]}));
    assert_eq!(r.status, 422, "the management audience is never delegated: {}", r.text);
    let r = s.put(&path, &owner, json!({"audiences": [reports]}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get(&path, &owner).body, json!({"audiences": [reports]}));
    assert_eq!(audit(&s, &owner, "app.delegation", "success").len(), 1);

    // Allowed, by client authentication.
    let r = delegate(&user_at, &aud, basic);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["issued_token_type"], json!(ACCESS));
    let token = r.body["access_token"].as_str().unwrap().to_string();
    let c = s.verify(&token, &reports);
    assert_eq!(c["sub"], json!(alice));
    assert_eq!(c["acct"], json!("user"));
    assert_eq!(c["act"], json!({"sub": client_id}), "{c}");
    assert_eq!(c["client_id"], json!(client_id));
    assert_eq!(c["roles"], json!(["reports:read"]), "the roles both hold");
    assert!(c["exp"].as_i64().unwrap() <= user_claims["exp"].as_i64().unwrap(), "never outlives the subject token");
    // By an actor_token of the app's own.
    let app_at = {
        let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], basic);
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["access_token"].as_str().unwrap().to_string()
    };
    let r = delegate(&user_at, &[aud[0], ("actor_token", &app_at), ("actor_token_type", ACCESS)], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.verify(r.body["access_token"].as_str().unwrap(), &reports)["act"], json!({"sub": client_id}));
    // Later in the subject token's life, the delegated token ends with it.
    s.clock.advance(1500);
    let r = delegate(&user_at, &aud, basic);
    assert_eq!(r.status, 200, "{}", r.text);
    let c = s.verify(r.body["access_token"].as_str().unwrap(), &reports);
    assert_eq!(c["exp"], user_claims["exp"], "capped at the subject token's exp");
    let ok = audit(&s, &owner, "token.delegate", "success");
    assert_eq!(ok.len(), 3);
    assert_eq!((ok[0]["actor_kind"].clone(), ok[0]["actor_id"].clone()), (json!("app"), json!(client_id)));
    assert_eq!(ok[0]["object_id"], json!(alice));

    // Refusals.
    refused(&delegate(&user_at, &aud, Some((&client_id, "tkd_cs_wrong"))), "invalid_client", "wrong secret");
    refused(&delegate(&user_at, &aud, None), "invalid_request", "no actor");
    refused(&delegate(&user_at, &[("audience", &s.api_audience())], basic), "invalid_target", "management");
    refused(&delegate(&user_at, &[aud[0], ("scope", "metrics:read")], basic), "invalid_scope", "beyond the app");
    refused(&delegate(&token, &aud, basic), "invalid_grant", "a delegated token is not delegated again");
    refused(&delegate(&app_at, &aud, basic), "invalid_grant", "an app's own token is no user's");
    // Another audience than the allowed one (the default audience).
    refused(&delegate(&user_at, &[], basic), "unauthorized_client", "audience not allowed");
    // An app the admin did not allow, with the same user token.
    let (_, other_id, other_secret) =
        s.app(&owner, json!({"name": "other", "roles": ["reports:read"], "management": false}));
    refused(&delegate(&user_at, &aud, Some((&other_id, &other_secret))), "unauthorized_client", "other app");

    // A revoked access token cannot be exchanged.
    let fresh = s.exchange_ok(&alice_pat);
    assert_eq!(delegate(&fresh, &aud, basic).status, 200);
    let r = s.form("/oauth/revoke", &[("token", &fresh)], None);
    assert_eq!(r.status, 200);
    refused_and_audited(
        &s,
        &owner,
        &delegate(&fresh, &aud, basic),
        "invalid_grant",
        "token.delegate",
        "subject token not active",
    );
    // Nor the token of an API token revoked since.
    let (pat2_id, pat2) = s.pat(&alice_login, json!({"name": "second", "ttl_days": 7, "roles": ["reports:read"]}));
    let at2 = s.exchange_ok(&pat2);
    assert_eq!(s.delete(&format!("/api/v1/me/tokens/{pat2_id}"), &alice_login).status, 204);
    refused(&delegate(&at2, &aud, basic), "invalid_grant", "revoked API token");
    // Nor a disabled user's.
    let user_at = s.exchange_ok(&alice_pat);
    assert_eq!(delegate(&user_at, &aud, basic).status, 200);
    let r = s.patch(&format!("/api/v1/users/{alice}"), &owner, json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    refused(&delegate(&user_at, &aud, basic), "invalid_grant", "disabled user");
    // Narrowing the allowance needs no login, and takes effect at once.
    let (_, bob_login) = s.user(&owner, "bob@example.test", &["org:member", "reports:read"]);
    let (_, bob_pat) = s.pat(&bob_login, json!({"name": "laptop", "ttl_days": 7, "roles": ["reports:read"]}));
    let bob_at = s.exchange_ok(&bob_pat);
    assert_eq!(delegate(&bob_at, &aud, basic).status, 200);
    assert_eq!(s.put(&path, &pat_at, json!({"audiences": []})).status, 200);
    refused(&delegate(&bob_at, &aud, basic), "unauthorized_client", "allowance removed");
}

/// Discovery and the OpenAPI document name the new token types.
fn discovery_names_token_types(b: &Backend) {
    let s = b.start();
    let r = s.call("GET", "/.well-known/oauth-authorization-server", None, None);
    assert!(r.body["grant_types_supported"].as_array().unwrap().contains(&json!(TE)));
    let types = r.body["token_exchange_subject_token_types_supported"].as_array().unwrap();
    for t in [JWT, ID_TOKEN, ACCESS] {
        assert!(types.contains(&json!(t)), "{t} in {types:?}");
    }
    let doc = s.call("GET", "/openapi.json", None, None).body;
    assert!(doc["paths"]["/api/v1/trust-policies"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/apps/{id}/delegation"]["put"].is_object());
    let grant = doc["components"]["schemas"]["TokenExchangeGrant"].to_string();
    for t in [JWT, ID_TOKEN, ACCESS, "actor_token_type"] {
        assert!(grant.contains(t), "{t} in the token-exchange form: {grant}");
    }
}

backend_tests!(keyless_ci_and_kubernetes, trust_policy_api, delegation, discovery_names_token_types);
