//! The escalation matrix: every acting principal × every sensitive action of the management
//! API, over real HTTP, on SQLite and (when configured) PostgreSQL. The exact status of
//! every cell is written out in `MATRIX`; every refused cell must leave the data exactly as
//! it was (the audit log of refusals aside). After the matrix, the reproductions
//! (a)–(g), each a test of its own.
use crate::common;
use crate::common::helpers::{new_sa, new_user, str_of};

use std::cell::Cell;

use common::{Backend, Resp, Server};
use serde_json::{json, Value};

/// A custom role every "high" target holds and the admin principal lacks.
const BILLING: &str = "billing:write";
/// Roles of a "low" target: every acting admin holds them.
const LOW: [&str; 1] = ["org:member"];
/// Roles of a "high" target: the admin principal lacks billing:write.
const HIGH: [&str; 2] = ["org:member", BILLING];

/// The acting principals, in the order of the MATRIX columns.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// The owner, from a password login (interactive).
    Owner,
    /// An org:admin from a password login who lacks billing:write (which high targets hold).
    Admin,
    /// An org:developer from a password login.
    Developer,
    /// An org:member from a password login.
    Member,
    /// The owner's personal API token (org:owner) exchanged for the management audience:
    /// every role, but not interactive.
    Pat,
    /// A service account holding org:admin, its token exchanged for the management audience.
    ServiceAccount,
    /// An app holding org:admin, client_credentials for the management audience.
    App,
}

const WHO: [Who; 7] = [Who::Owner, Who::Admin, Who::Developer, Who::Member, Who::Pat, Who::ServiceAccount, Who::App];

/// The actions. "Low"/"High" name the target's roles (LOW/HIGH above); "Other" targets
/// objects of a second organization. Every target is created fresh by the owner for each
/// cell (the other org's objects are created once: every cell must leave them alone).
#[derive(Clone, Copy, Debug)]
enum Act {
    // ---- people ----
    /// POST /users with LOW roles.
    UserCreateLow,
    /// POST /users with HIGH roles.
    UserCreateHigh,
    /// POST /users with a password: the field does not exist (422 for everyone).
    UserCreateWithPassword,
    UserGetLow,
    UserGetHigh,
    /// PATCH /users/{id} {"name"}.
    UserRenameLow,
    UserRenameHigh,
    /// PATCH roles org:member → org:developer (raising).
    UserRaiseLow,
    /// PATCH roles [member, billing] → [developer, billing] (raising).
    UserRaiseHigh,
    /// PATCH roles [member] → [member, billing]: granting a role the admin lacks.
    UserGrantBilling,
    /// PATCH {"disabled": true}.
    UserDisableLow,
    UserDisableHigh,
    /// DELETE /users/{id} (the target created no credentials).
    UserDeleteLow,
    UserDeleteHigh,
    /// PATCH {"disabled": false} of a disabled person: an interactive act.
    UserReEnable,
    /// POST /users/{id}/password-reset.
    UserResetLow,
    UserResetHigh,
    // ---- service accounts ----
    SaCreateLow,
    SaCreateHigh,
    /// PATCH roles org:member → org:developer (raising).
    SaRaiseLow,
    /// PATCH roles [member, billing] → [developer, billing] (raising).
    SaRaiseHigh,
    SaDeleteLow,
    SaDeleteHigh,
    // ---- service-account tokens ----
    /// POST /service-accounts/{id}/tokens (the account's roles).
    SaTokenCreateLow,
    SaTokenCreateHigh,
    /// POST /service-accounts/{id}/tokens with roles [org:member] on a HIGH account: a
    /// narrower token is still acting on the account.
    SaTokenCreateHighNarrow,
    /// PATCH /service-accounts/{id}/tokens/{tid} {"name"} on a HIGH account.
    SaTokenRenameHigh,
    /// DELETE /service-accounts/{id}/tokens/{tid}.
    SaTokenRevokeLow,
    /// Revoking is not acting on the account's roles: any admin may deactivate any token of
    /// the org (as at POST /api/v1/tokens/{id}/revoke).
    SaTokenRevokeHigh,
    /// GET /service-accounts/{id}/tokens/{tid} on a HIGH account: reading, like the list.
    SaTokenGetHigh,
    /// POST /service-accounts/{id}/tokens/{tid}/rotate: minting, like creating one.
    SaTokenRotateLow,
    SaTokenRotateHigh,
    /// GET /tokens/{id} (the org table's row) of a service-account token.
    TokenGetLow,
    // ---- apps ----
    AppCreateLow,
    AppCreateHigh,
    /// POST /apps with "introspect": true.
    AppCreateIntrospect,
    /// PATCH roles org:member → org:developer (raising).
    AppRaiseLow,
    /// PATCH roles org:member → org:admin (raising; reproduction (c) for the PAT column).
    AppRaiseToAdmin,
    /// PATCH roles [member, billing] → [developer, billing] (raising).
    AppRaiseHigh,
    /// PATCH {"introspect": true}.
    AppIntrospectLow,
    AppDeleteLow,
    AppDeleteHigh,
    /// POST /apps/{id}/secret.
    AppSecretLow,
    AppSecretHigh,
    /// POST /apps/{id}/secret {"grace_period_seconds": 600}.
    AppSecretGraceLow,
    /// A grace beyond 7 days: 422 for whoever may regenerate at all.
    AppSecretGraceTooLong,
    /// POST /apps/{id}/secret, PATCH {"disabled": true}, DELETE of an app with introspect:
    /// what granting introspect needs (org:admin, interactive).
    AppIntrospectSecret,
    AppIntrospectDisable,
    AppIntrospectDelete,
    // ---- roles and policy ----
    RoleList,
    RoleCreate,
    /// DELETE /roles/{name} of a role nobody holds.
    RoleDelete,
    /// PATCH /roles/{name} {"description"} of a custom role (issue #20).
    RoleDescribe,
    /// PATCH /roles/org:admin: built-in roles keep their descriptions (409).
    RoleDescribeBuiltin,
    /// PATCH /roles/{name} of a role the org does not catalogue (404).
    RoleDescribeMissing,
    PolicyGet,
    /// PUT /policy with a longer personal-token TTL: widening, an interactive act.
    PolicyPut,
    /// PUT /policy with a shorter personal-token TTL: narrowing.
    PolicyPutNarrow,
    /// PUT /policy {"retention_days", "allow_self_rotation": false}: no widening.
    PolicyPutLifecycle,
    /// PUT /policy {"allow_self_rotation": true} (from false): widening.
    PolicySelfRotationOn,
    /// POST /tokens/self/rotate with the column's access token as the bearer: only an API
    /// token itself may rotate itself (self-rotation has its own tests in token_lifecycle).
    SelfRotateWithAccessToken,
    // ---- another organization's objects ----
    OtherUserGet,
    OtherUserRename,
    OtherUserDelete,
    OtherUserReset,
    OtherAppRename,
    OtherAppDelete,
    OtherAppSecret,
    OtherSaRename,
    OtherSaDelete,
    OtherSaTokenCreate,
    OtherSaTokenRevoke,
    // ---- webhooks (org:admin; the signing secret is answered only by create and roll) ----
    WebhookList,
    WebhookCreate,
    WebhookGet,
    /// PATCH {"enabled": false, "events": [...]}.
    WebhookPatch,
    WebhookDelete,
    /// POST /webhooks/{id}/secret: a new signing secret.
    WebhookSecret,
    /// POST /webhooks/{id}/test: queues a test event.
    WebhookTest,
    WebhookDeliveries,
    OtherWebhookGet,
    OtherWebhookPatch,
    OtherWebhookDelete,
    OtherWebhookSecret,
    OtherWebhookTest,
    OtherWebhookDeliveries,
    OtherSaTokenGet,
    OtherSaTokenRotate,
    /// GET /tokens/{id} of another org's token.
    OtherTokenGet,
    // ---- gateways and offline verifiers (issue #19; OAuth errors, not problem+json) ----
    /// GET /oauth/revocations: what introspection needs (org:admin; an app's Basic aside).
    FeedRead,
    /// GET /gateway/auth for the management audience requiring org:admin: the bearer is
    /// passed through when it holds the role, 403 when not.
    GatewayAdminRole,
    /// GET /gateway/auth for the resource audience: a management bearer is never re-targeted.
    GatewayOtherAudience,
    // ---- reach (issue #26): narrowing is editing, widening is minting ----
    /// PATCH a service-account token (LOW account) {"audiences": [the resource audience]}.
    SaTokenReachNarrow,
    /// PATCH {"audiences": ["*"]} of a token narrowed to one audience.
    SaTokenReachWiden,
    /// PATCH {"management": true} of a token without it.
    SaTokenManagementOn,
    /// The same three on an app holding LOW.
    AppReachNarrow,
    AppReachWiden,
    AppManagementOn,
    // ---- leak reports (issue #23): only a signature from a configured reporter key counts ----
    /// POST /leaks/report naming the owner's live personal token, with the principal's
    /// bearer and no reporter signature: 401 for everyone, the token stays live.
    LeakReportBearer,
    // ---- trust policies and delegation (issue #22): trusting an issuer or letting an app act
    // for people is minting; narrowing is editing ----
    TrustPolicyList,
    /// POST /trust-policies mapping to a LOW service account.
    TrustPolicyCreateLow,
    /// POST /trust-policies mapping to a HIGH service account (roles [org:member]).
    TrustPolicyCreateHigh,
    TrustPolicyGet,
    /// PATCH {"disabled": true}: narrowing.
    TrustPolicyDisableLow,
    TrustPolicyDisableHigh,
    /// PATCH {"conditions": …}: widening.
    TrustPolicyWiden,
    TrustPolicyDelete,
    OtherTrustPolicyGet,
    OtherTrustPolicyDelete,
    /// GET /apps/{id}/delegation.
    DelegationGet,
    /// PUT /apps/{id}/delegation adding the resource audience (LOW app): widening.
    DelegationWiden,
    /// PUT {"audiences": []} of a LOW app allowed one: narrowing.
    DelegationNarrowLow,
    DelegationNarrowHigh,
    OtherDelegationSet,
}

/// The exact status of every cell.
#[rustfmt::skip]
const MATRIX: &[(Act, [u16; 7])] = &[
    //                              owner admin  dev  member pat   sa   app
    (Act::UserCreateLow,            [201,  201,  403,  403,  201,  201,  201]),
    (Act::UserCreateHigh,           [201,  422,  403,  403,  201,  422,  422]),
    (Act::UserCreateWithPassword,   [422,  422,  422,  422,  422,  422,  422]),
    (Act::UserGetLow,               [200,  200,  403,  403,  200,  200,  200]),
    (Act::UserGetHigh,              [200,  403,  403,  403,  200,  403,  403]),
    (Act::UserRenameLow,            [200,  200,  403,  403,  200,  200,  200]),
    (Act::UserRenameHigh,           [200,  403,  403,  403,  200,  403,  403]),
    (Act::UserRaiseLow,             [200,  200,  403,  403,  403,  403,  403]),
    (Act::UserRaiseHigh,            [200,  403,  403,  403,  403,  403,  403]),
    (Act::UserGrantBilling,         [200,  422,  403,  403,  403,  422,  422]),
    (Act::UserDisableLow,           [200,  200,  403,  403,  200,  200,  200]),
    (Act::UserDisableHigh,          [200,  403,  403,  403,  200,  403,  403]),
    (Act::UserDeleteLow,            [204,  204,  403,  403,  204,  204,  204]),
    (Act::UserDeleteHigh,           [204,  403,  403,  403,  204,  403,  403]),
    (Act::UserReEnable,             [200,  200,  403,  403,  403,  403,  403]),
    (Act::UserResetLow,             [200,  200,  403,  403,  403,  403,  403]),
    (Act::UserResetHigh,            [200,  403,  403,  403,  403,  403,  403]),
    (Act::SaCreateLow,              [201,  201,  403,  403,  201,  201,  201]),
    (Act::SaCreateHigh,             [201,  422,  403,  403,  201,  422,  422]),
    (Act::SaRaiseLow,               [200,  200,  403,  403,  403,  403,  403]),
    (Act::SaRaiseHigh,              [200,  403,  403,  403,  403,  403,  403]),
    (Act::SaDeleteLow,              [204,  204,  403,  403,  204,  204,  204]),
    (Act::SaDeleteHigh,             [204,  403,  403,  403,  204,  403,  403]),
    (Act::SaTokenCreateLow,         [201,  201,  403,  403,  403,  403,  403]),
    (Act::SaTokenCreateHigh,        [201,  403,  403,  403,  403,  403,  403]),
    (Act::SaTokenCreateHighNarrow,  [201,  403,  403,  403,  403,  403,  403]),
    (Act::SaTokenRenameHigh,        [200,  403,  403,  403,  200,  403,  403]),
    (Act::SaTokenRevokeLow,         [204,  204,  403,  403,  204,  204,  204]),
    (Act::SaTokenRevokeHigh,        [204,  204,  403,  403,  204,  204,  204]),
    (Act::SaTokenGetHigh,           [200,  200,  403,  403,  200,  200,  200]),
    (Act::SaTokenRotateLow,         [201,  201,  403,  403,  403,  403,  403]),
    (Act::SaTokenRotateHigh,        [201,  403,  403,  403,  403,  403,  403]),
    (Act::TokenGetLow,              [200,  200,  403,  403,  200,  200,  200]),
    (Act::AppCreateLow,             [201,  201,  201,  403,  403,  403,  403]),
    (Act::AppCreateHigh,            [201,  422,  422,  403,  403,  403,  403]),
    (Act::AppCreateIntrospect,      [201,  201,  403,  403,  403,  403,  403]),
    (Act::AppRaiseLow,              [200,  200,  200,  403,  403,  403,  403]),
    (Act::AppRaiseToAdmin,          [200,  200,  422,  403,  403,  403,  403]),
    (Act::AppRaiseHigh,             [200,  403,  403,  403,  403,  403,  403]),
    (Act::AppIntrospectLow,         [200,  200,  403,  403,  403,  403,  403]),
    (Act::AppDeleteLow,             [204,  204,  204,  403,  204,  204,  204]),
    (Act::AppDeleteHigh,            [204,  403,  403,  403,  204,  403,  403]),
    (Act::AppSecretLow,             [201,  201,  201,  403,  403,  403,  403]),
    (Act::AppSecretHigh,            [201,  403,  403,  403,  403,  403,  403]),
    (Act::AppSecretGraceLow,        [201,  201,  201,  403,  403,  403,  403]),
    (Act::AppSecretGraceTooLong,    [422,  422,  422,  403,  403,  403,  403]),
    (Act::AppIntrospectSecret,      [201,  201,  403,  403,  403,  403,  403]),
    (Act::AppIntrospectDisable,     [200,  200,  403,  403,  403,  403,  403]),
    (Act::AppIntrospectDelete,      [204,  204,  403,  403,  403,  403,  403]),
    (Act::RoleList,                 [200,  200,  200,  200,  200,  200,  200]),
    (Act::RoleCreate,               [201,  201,  403,  403,  201,  201,  201]),
    (Act::RoleDelete,               [204,  204,  403,  403,  204,  204,  204]),
    (Act::RoleDescribe,             [200,  200,  403,  403,  200,  200,  200]),
    (Act::RoleDescribeBuiltin,      [409,  409,  403,  403,  409,  409,  409]),
    (Act::RoleDescribeMissing,      [404,  404,  403,  403,  404,  404,  404]),
    (Act::PolicyGet,                [200,  200,  403,  403,  200,  200,  200]),
    (Act::PolicyPut,                [200,  403,  403,  403,  403,  403,  403]),
    (Act::PolicyPutNarrow,          [200,  403,  403,  403,  200,  403,  403]),
    (Act::PolicyPutLifecycle,       [200,  403,  403,  403,  200,  403,  403]),
    (Act::PolicySelfRotationOn,     [200,  403,  403,  403,  403,  403,  403]),
    (Act::SelfRotateWithAccessToken,[401,  401,  401,  401,  401,  401,  401]),
    (Act::OtherUserGet,             [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherUserRename,          [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherUserDelete,          [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherUserReset,           [404,  404,  403,  403,  403,  403,  403]),
    (Act::OtherAppRename,           [404,  404,  404,  403,  404,  404,  404]),
    (Act::OtherAppDelete,           [404,  404,  404,  403,  404,  404,  404]),
    (Act::OtherAppSecret,           [404,  404,  404,  403,  403,  403,  403]),
    (Act::OtherSaRename,            [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherSaDelete,            [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherSaTokenCreate,       [404,  404,  403,  403,  403,  403,  403]),
    (Act::OtherSaTokenRevoke,       [404,  404,  403,  403,  404,  404,  404]),
    (Act::SaTokenReachNarrow,       [200,  200,  403,  403,  200,  200,  200]),
    (Act::SaTokenReachWiden,        [200,  200,  403,  403,  403,  403,  403]),
    (Act::SaTokenManagementOn,      [200,  200,  403,  403,  403,  403,  403]),
    (Act::AppReachNarrow,           [200,  200,  200,  403,  200,  200,  200]),
    (Act::AppReachWiden,            [200,  200,  200,  403,  403,  403,  403]),
    (Act::AppManagementOn,          [200,  200,  200,  403,  403,  403,  403]),
    (Act::WebhookList,              [200,  200,  403,  403,  200,  200,  200]),
    (Act::WebhookCreate,            [201,  201,  403,  403,  201,  201,  201]),
    (Act::WebhookGet,               [200,  200,  403,  403,  200,  200,  200]),
    (Act::WebhookPatch,             [200,  200,  403,  403,  200,  200,  200]),
    (Act::WebhookDelete,            [204,  204,  403,  403,  204,  204,  204]),
    (Act::WebhookSecret,            [201,  201,  403,  403,  201,  201,  201]),
    (Act::WebhookTest,              [202,  202,  403,  403,  202,  202,  202]),
    (Act::WebhookDeliveries,        [200,  200,  403,  403,  200,  200,  200]),
    (Act::OtherWebhookGet,          [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherWebhookPatch,        [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherWebhookDelete,       [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherWebhookSecret,       [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherWebhookTest,         [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherWebhookDeliveries,   [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherSaTokenGet,          [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherSaTokenRotate,       [404,  404,  403,  403,  403,  403,  403]),
    (Act::OtherTokenGet,            [404,  404,  403,  403,  404,  404,  404]),
    (Act::FeedRead,                 [200,  200,  403,  403,  200,  200,  200]),
    (Act::GatewayAdminRole,         [200,  200,  403,  403,  200,  200,  200]),
    (Act::GatewayOtherAudience,     [401,  401,  401,  401,  401,  401,  401]),
    (Act::LeakReportBearer,         [401,  401,  401,  401,  401,  401,  401]),
    (Act::TrustPolicyList,          [200,  200,  403,  403,  200,  200,  200]),
    (Act::TrustPolicyCreateLow,     [201,  201,  403,  403,  403,  403,  403]),
    (Act::TrustPolicyCreateHigh,    [201,  403,  403,  403,  403,  403,  403]),
    (Act::TrustPolicyGet,           [200,  200,  403,  403,  200,  200,  200]),
    (Act::TrustPolicyDisableLow,    [200,  200,  403,  403,  200,  200,  200]),
    (Act::TrustPolicyDisableHigh,   [200,  403,  403,  403,  200,  403,  403]),
    (Act::TrustPolicyWiden,         [200,  200,  403,  403,  403,  403,  403]),
    (Act::TrustPolicyDelete,        [204,  204,  403,  403,  204,  204,  204]),
    (Act::OtherTrustPolicyGet,      [404,  404,  403,  403,  404,  404,  404]),
    (Act::OtherTrustPolicyDelete,   [404,  404,  403,  403,  404,  404,  404]),
    (Act::DelegationGet,            [200,  200,  403,  403,  200,  200,  200]),
    (Act::DelegationWiden,          [200,  200,  403,  403,  403,  403,  403]),
    (Act::DelegationNarrowLow,      [200,  200,  403,  403,  200,  200,  200]),
    (Act::DelegationNarrowHigh,     [200,  403,  403,  403,  200,  403,  403]),
    (Act::OtherDelegationSet,       [404,  404,  403,  403,  404,  404,  404]),
];

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

#[track_caller]
fn expect(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    if status >= 400 {
        assert!(
            r.header("content-type").unwrap_or("").starts_with("application/problem+json"),
            "{what}: an error is problem+json: {:?}",
            r.header("content-type")
        );
    }
}

fn create(s: &Server, at: &str, path: &str, body: Value) -> Value {
    let r = s.post(path, at, body);
    assert_eq!(r.status, 201, "POST {path}: {}", r.text);
    r.body
}

/// A token of a service account (its roles); answers (id, secret).
fn new_sa_token(s: &Server, at: &str, sa: &str) -> (String, String) {
    s.sa_token(at, sa, json!({"name": "t", "ttl_days": 1}))
}

/// A row-by-row dump of every table a management call can change, with every column that
/// such a call could change (last-use times are left out: the server flushes them on its
/// own schedule). Stronger than `data_snapshot`, which counts rows and so misses a refused
/// PATCH that changed a field.
fn dump(s: &Server) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    const TABLES: [(&str, &str); 13] = [
        ("orgs", "id, name"),
        ("users", "id, org_id, email, name, password_hash, roles, disabled, deleted_at, updated_at, epoch"),
        (
            "service_accounts",
            "id, org_id, name, description, roles, disabled, deleted_at, created_by, updated_at, epoch",
        ),
        (
            "api_tokens",
            "id, org_id, owner_id, name, description, secret_hash, roles, expires_at, revoked_at, revoked_by, \
             audiences, management",
        ),
        (
            "apps",
            "id, org_id, name, description, client_id, secret_hash, roles, access_token_ttl_seconds, disabled, \
             introspect, created_by, updated_at, epoch, previous_secret_hash, previous_secret_expires_at, \
             audiences, management",
        ),
        ("roles", "org_id, name, kind, description"),
        (
            "policies",
            "org_id, personal_token_max_ttl_days, service_token_max_ttl_days, idle_ttl_days, \
             max_tokens_per_service_account, updated_at, retention_days, allow_self_rotation, \
             default_audiences, allow_management_audience_for",
        ),
        ("reset_codes", "id, user_id, code_hash, used_at"),
        ("sessions", "id, user_id, epoch, revoked_at"),
        ("webhooks", "id, org_id, url, description, events, enabled, secret_sealed, secret_hint, updated_at"),
        ("outbox", "id, org_id, kind, event_type, webhook_id, recipient"),
        (
            "trust_policies",
            "id, org_id, name, issuer, audience, conditions, service_account_id, roles, max_age_seconds, disabled, \
             updated_at",
        ),
        ("app_delegations", "app_id, audience, org_id"),
    ];
    let mut conn = s.state.db.read().unwrap();
    let mut out = Vec::new();
    for (table, cols) in TABLES {
        let expr = cols
            .split(',')
            .map(|c| format!("COALESCE(CAST({} AS TEXT), '~')", c.trim()))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let q = format!("SELECT '{table}|' || {expr} AS v FROM {table} ORDER BY v");
        let rows = diesel::sql_query(&q).load::<Row>(&mut *conn).unwrap_or_else(|e| panic!("{q}: {e}"));
        out.extend(rows.into_iter().map(|r| r.v));
    }
    out
}

/// Everything a refusal must leave alone: the harness's row counts and the full dump.
fn state(s: &Server) -> (common::Snapshot, Vec<String>) {
    (s.data_snapshot(), dump(s))
}

#[track_caller]
fn assert_unchanged(s: &Server, before: &(common::Snapshot, Vec<String>), what: &str) {
    let after = state(s);
    assert_eq!(after.0, before.0, "{what}: row counts changed");
    if after.1 != before.1 {
        let gone: Vec<&String> = before.1.iter().filter(|r| !after.1.contains(r)).collect();
        let new: Vec<&String> = after.1.iter().filter(|r| !before.1.contains(r)).collect();
        panic!("{what}: rows changed\n  before: {gone:?}\n  after:  {new:?}");
    }
}

/// A second organization made with the service layer, with one object of each kind.
struct Other {
    user: String,
    app: String,
    sa: String,
    sa_token: String,
    webhook: String,
    trust_policy: String,
}

fn other_org(s: &Server) -> Other {
    let password = "other-password-123";
    {
        let mut conn = s.state.db.write().unwrap();
        tokend::service::org::orgs::create(
            &mut conn,
            "other",
            "owner@other.test",
            Some(password.into()),
            s.state.now(),
        )
        .expect("create a second org");
    }
    let at = s.login("owner@other.test", password);
    let user = new_user(s, &at, "person@other.test", &LOW);
    let (app, _, _) = s.app(&at, json!({"name": "other-app", "roles": LOW}));
    let sa = new_sa(s, &at, "other-bot", &LOW);
    let (sa_token, _) = new_sa_token(s, &at, &sa);
    let hook = json!({"url": "https://hooks.other.test/", "events": ["token.revoked"]});
    let webhook = str_of(&create(s, &at, "/api/v1/webhooks", hook), "id");
    let trust_policy = str_of(&create(s, &at, "/api/v1/trust-policies", trust_policy_body(&sa, 0)), "id");
    Other { user, app, sa, sa_token, webhook, trust_policy }
}

/// A trust policy mapping to service account `sa` (roles [org:member]).
fn trust_policy_body(sa: &str, n: u32) -> Value {
    json!({"name": format!("ci {n}"), "issuer": "https://token.actions.githubusercontent.com",
        "audience": format!("tokend-{n}"), "conditions": {"repository": "acme/billing"},
        "service_account_id": sa, "roles": ["org:member"]})
}

/// The server, the acting principals' bearers (in WHO order) and the other org.
struct World {
    s: Server,
    owner: String,
    bearers: Vec<String>,
    other: Other,
    n: Cell<u32>,
}

impl World {
    fn new(b: &Backend) -> World {
        let s = b.start();
        let owner = s.owner_login();
        create(&s, &owner, "/api/v1/roles", json!({"name": BILLING, "kind": "custom", "description": "charges"}));
        let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
        let (_, developer) = s.user(&owner, "developer@example.test", &["org:developer"]);
        let (_, member) = s.user(&owner, "member@example.test", &["org:member"]);
        let pat = s.exchange_api(&s.owner_pat);
        let sa = new_sa(&s, &owner, "admin-bot", &["org:admin"]);
        let (_, sa_secret) = new_sa_token(&s, &owner, &sa);
        let sa_at = s.exchange_api(&sa_secret);
        let (_, cid, secret) = s.app(&owner, json!({"name": "admin-app", "roles": ["org:admin"]}));
        let app_at = s.app_api_token(&cid, &secret);
        let bearers = vec![owner.clone(), admin, developer, member, pat, sa_at, app_at];
        // The principals are what the columns say.
        let aud = s.api_audience();
        for (who, at) in WHO.iter().zip(&bearers) {
            let c = s.verify_api(at);
            assert_eq!(c["aud"], json!(aud), "{who:?}: a management-audience token");
            let interactive = c["amr"].as_array().is_some_and(|a| a.contains(&json!("pwd")));
            let (acct, want_interactive) = match who {
                Who::Owner | Who::Admin | Who::Developer | Who::Member => ("user", true),
                Who::Pat => ("user", false),
                Who::ServiceAccount => ("service_account", false),
                Who::App => ("app", false),
            };
            assert_eq!(c["acct"], json!(acct), "{who:?}: {c}");
            assert_eq!(interactive, want_interactive, "{who:?}: {c}");
        }
        assert_eq!(s.verify_api(&bearers[4])["roles"], json!(["org:owner"]), "the PAT column carries org:owner");
        let other = other_org(&s);
        World { s, owner, bearers, other, n: Cell::new(0) }
    }

    fn next(&self) -> u32 {
        self.n.set(self.n.get() + 1);
        self.n.get()
    }

    fn user(&self, roles: &[&str]) -> String {
        let n = self.next();
        new_user(&self.s, &self.owner, &format!("target{n}@example.test"), roles)
    }

    fn sa(&self, roles: &[&str]) -> String {
        let n = self.next();
        new_sa(&self.s, &self.owner, &format!("target-bot-{n}"), roles)
    }

    /// The path of a token of a new service account.
    fn sa_token(&self, roles: &[&str]) -> String {
        let id = self.sa(roles);
        let (tid, _) = new_sa_token(&self.s, &self.owner, &id);
        format!("/api/v1/service-accounts/{id}/tokens/{tid}")
    }

    /// Deletes the org's webhooks (an org holds at most 20; the matrix makes more).
    fn clear_webhooks(&self) {
        let r = self.s.get("/api/v1/webhooks?page_size=200", &self.owner);
        for h in r.body["items"].as_array().expect("webhooks") {
            let r = self.s.delete(&format!("/api/v1/webhooks/{}", str_of(h, "id")), &self.owner);
            assert_eq!(r.status, 204, "{}", r.text);
        }
    }

    /// The path of a new webhook of the org.
    fn webhook(&self) -> String {
        self.clear_webhooks();
        let n = self.next();
        let body = json!({"url": format!("https://hooks{n}.example/"), "events": ["token.created"]});
        format!("/api/v1/webhooks/{}", str_of(&create(&self.s, &self.owner, "/api/v1/webhooks", body), "id"))
    }

    fn app(&self, roles: &[&str]) -> String {
        let n = self.next();
        self.s.app(&self.owner, json!({"name": format!("target-app-{n}"), "roles": roles})).0
    }

    /// The path of a new app allowed to introspect.
    fn introspecting_app(&self) -> String {
        let n = self.next();
        let app = self.s.app(&self.owner, json!({"name": format!("gateway-{n}"), "introspect": true})).0;
        format!("/api/v1/apps/{app}")
    }

    /// The path of a new trust policy (by the owner) mapping to a new account with `roles`.
    fn trust_policy(&self, roles: &[&str]) -> String {
        let sa = self.sa(roles);
        let body = trust_policy_body(&sa, self.next());
        format!(
            "/api/v1/trust-policies/{}",
            str_of(&create(&self.s, &self.owner, "/api/v1/trust-policies", body), "id")
        )
    }

    /// The delegation path of a new app with `roles`, allowed (by the owner) to act for the
    /// resource audience when `allowed`.
    fn delegating_app(&self, roles: &[&str], allowed: bool) -> String {
        let path = format!("/api/v1/apps/{}/delegation", self.app(roles));
        if allowed {
            let r = self.s.put(&path, &self.owner, json!({"audiences": [self.s.resource_audience()]}));
            assert_eq!(r.status, 200, "{}", r.text);
        }
        path
    }

    /// Sets the policy as the owner (a cell's starting point).
    fn policy(&self, body: Value) {
        let r = self.s.put("/api/v1/policy", &self.owner, body);
        assert_eq!(r.status, 200, "{}", r.text);
    }

    /// Creates the cell's targets (as the owner) and answers its request.
    fn prepare(&self, act: Act) -> (&'static str, String, Option<Value>) {
        let n = self.next();
        let o = &self.other;
        let user = |roles: &[&str]| format!("/api/v1/users/{}", self.user(roles));
        let sa = |roles: &[&str]| format!("/api/v1/service-accounts/{}", self.sa(roles));
        let app = |roles: &[&str]| format!("/api/v1/apps/{}", self.app(roles));
        let rename = Some(json!({"name": format!("renamed {n}")}));
        let raise = Some(json!({"roles": ["org:developer"]}));
        let raise_high = Some(json!({"roles": ["org:developer", BILLING]}));
        let disable = Some(json!({"disabled": true}));
        let email = format!("new{n}@example.test");
        match act {
            Act::UserCreateLow => ("POST", "/api/v1/users".into(), Some(json!({"email": email, "roles": LOW}))),
            Act::UserCreateHigh => ("POST", "/api/v1/users".into(), Some(json!({"email": email, "roles": HIGH}))),
            Act::UserCreateWithPassword => (
                "POST",
                "/api/v1/users".into(),
                Some(json!({"email": email, "roles": LOW, "password": "chosen-by-admin-1"})),
            ),
            Act::UserGetLow => ("GET", user(&LOW), None),
            Act::UserGetHigh => ("GET", user(&HIGH), None),
            Act::UserRenameLow => ("PATCH", user(&LOW), rename),
            Act::UserRenameHigh => ("PATCH", user(&HIGH), rename),
            Act::UserRaiseLow => ("PATCH", user(&LOW), raise),
            Act::UserRaiseHigh => ("PATCH", user(&HIGH), raise_high),
            Act::UserGrantBilling => ("PATCH", user(&LOW), Some(json!({"roles": HIGH}))),
            Act::UserDisableLow => ("PATCH", user(&LOW), disable),
            Act::UserDisableHigh => ("PATCH", user(&HIGH), disable),
            Act::UserDeleteLow => ("DELETE", user(&LOW), None),
            Act::UserDeleteHigh => ("DELETE", user(&HIGH), None),
            Act::UserReEnable => {
                let body = json!({"email": format!("off{n}@example.test"), "disabled": true});
                let id = str_of(&create(&self.s, &self.owner, "/api/v1/users", body), "id");
                ("PATCH", format!("/api/v1/users/{id}"), Some(json!({"disabled": false})))
            }
            Act::UserResetLow => ("POST", format!("{}/password-reset", user(&LOW)), None),
            Act::UserResetHigh => ("POST", format!("{}/password-reset", user(&HIGH)), None),
            Act::SaCreateLow => {
                ("POST", "/api/v1/service-accounts".into(), Some(json!({"name": format!("bot-{n}"), "roles": LOW})))
            }
            Act::SaCreateHigh => {
                ("POST", "/api/v1/service-accounts".into(), Some(json!({"name": format!("bot-{n}"), "roles": HIGH})))
            }
            Act::SaRaiseLow => ("PATCH", sa(&LOW), raise),
            Act::SaRaiseHigh => ("PATCH", sa(&HIGH), raise_high),
            Act::SaDeleteLow => ("DELETE", sa(&LOW), None),
            Act::SaDeleteHigh => ("DELETE", sa(&HIGH), None),
            Act::SaTokenCreateLow => {
                ("POST", format!("{}/tokens", sa(&LOW)), Some(json!({"name": "t", "ttl_days": 1})))
            }
            Act::SaTokenCreateHigh => {
                ("POST", format!("{}/tokens", sa(&HIGH)), Some(json!({"name": "t", "ttl_days": 1})))
            }
            Act::SaTokenCreateHighNarrow => (
                "POST",
                format!("{}/tokens", sa(&HIGH)),
                Some(json!({"name": "t", "ttl_days": 1, "roles": ["org:member"]})),
            ),
            Act::SaTokenRenameHigh => ("PATCH", self.sa_token(&HIGH), rename),
            Act::SaTokenRevokeLow => ("DELETE", self.sa_token(&LOW), None),
            Act::SaTokenRevokeHigh => ("DELETE", self.sa_token(&HIGH), None),
            Act::SaTokenGetHigh => ("GET", self.sa_token(&HIGH), None),
            Act::SaTokenRotateLow => ("POST", format!("{}/rotate", self.sa_token(&LOW)), None),
            Act::SaTokenRotateHigh => ("POST", format!("{}/rotate", self.sa_token(&HIGH)), None),
            Act::TokenGetLow => {
                let path = self.sa_token(&LOW);
                let tid = path.rsplit('/').next().unwrap_or_default().to_string();
                ("GET", format!("/api/v1/tokens/{tid}"), None)
            }
            Act::AppCreateLow => {
                ("POST", "/api/v1/apps".into(), Some(json!({"name": format!("app-{n}"), "roles": LOW})))
            }
            Act::AppCreateHigh => {
                ("POST", "/api/v1/apps".into(), Some(json!({"name": format!("app-{n}"), "roles": HIGH})))
            }
            Act::AppCreateIntrospect => (
                "POST",
                "/api/v1/apps".into(),
                Some(json!({"name": format!("app-{n}"), "roles": LOW, "introspect": true})),
            ),
            Act::AppRaiseLow => ("PATCH", app(&LOW), raise),
            Act::AppRaiseToAdmin => ("PATCH", app(&LOW), Some(json!({"roles": ["org:admin"]}))),
            Act::AppRaiseHigh => ("PATCH", app(&HIGH), raise_high),
            Act::AppIntrospectLow => ("PATCH", app(&LOW), Some(json!({"introspect": true}))),
            Act::AppDeleteLow => ("DELETE", app(&LOW), None),
            Act::AppDeleteHigh => ("DELETE", app(&HIGH), None),
            Act::AppSecretLow => ("POST", format!("{}/secret", app(&LOW)), None),
            Act::AppSecretHigh => ("POST", format!("{}/secret", app(&HIGH)), None),
            Act::AppSecretGraceLow => {
                ("POST", format!("{}/secret", app(&LOW)), Some(json!({"grace_period_seconds": 600})))
            }
            Act::AppSecretGraceTooLong => {
                ("POST", format!("{}/secret", app(&LOW)), Some(json!({"grace_period_seconds": 7 * 86_400 + 1})))
            }
            Act::AppIntrospectSecret => ("POST", format!("{}/secret", self.introspecting_app()), None),
            Act::AppIntrospectDisable => ("PATCH", self.introspecting_app(), disable),
            Act::AppIntrospectDelete => ("DELETE", self.introspecting_app(), None),
            Act::RoleList => ("GET", "/api/v1/roles".into(), None),
            Act::RoleCreate => (
                "POST",
                "/api/v1/roles".into(),
                Some(json!({"name": format!("made{n}:read"), "kind": "custom", "description": "x"})),
            ),
            Act::RoleDelete => {
                let name = format!("spare{n}:read");
                create(&self.s, &self.owner, "/api/v1/roles", json!({"name": name, "kind": "service"}));
                ("DELETE", format!("/api/v1/roles/{name}"), None)
            }
            Act::RoleDescribe => {
                let name = format!("described{n}:read");
                create(&self.s, &self.owner, "/api/v1/roles", json!({"name": name, "kind": "custom"}));
                ("PATCH", format!("/api/v1/roles/{name}"), Some(json!({"description": format!("reads {n}")})))
            }
            Act::RoleDescribeBuiltin => {
                ("PATCH", "/api/v1/roles/org:admin".into(), Some(json!({"description": "anything"})))
            }
            Act::RoleDescribeMissing => {
                ("PATCH", format!("/api/v1/roles/nothere{n}:read"), Some(json!({"description": "anything"})))
            }
            Act::PolicyGet => ("GET", "/api/v1/policy".into(), None),
            // From a value set just before, so that a success visibly changes the policy.
            Act::PolicyPut => {
                self.policy(json!({"personal_token_max_ttl_days": 1}));
                ("PUT", "/api/v1/policy".into(), Some(json!({"personal_token_max_ttl_days": n % 1000 + 2})))
            }
            Act::PolicyPutNarrow => {
                self.policy(json!({"personal_token_max_ttl_days": 3000}));
                ("PUT", "/api/v1/policy".into(), Some(json!({"personal_token_max_ttl_days": n % 1000 + 1})))
            }
            // A new retention every time, so that a success visibly changes the policy.
            Act::PolicyPutLifecycle => (
                "PUT",
                "/api/v1/policy".into(),
                Some(json!({"retention_days": n % 1000 + 1, "allow_self_rotation": false})),
            ),
            Act::PolicySelfRotationOn => {
                self.policy(json!({"allow_self_rotation": false}));
                ("PUT", "/api/v1/policy".into(), Some(json!({"allow_self_rotation": true})))
            }
            Act::SelfRotateWithAccessToken => ("POST", "/api/v1/tokens/self/rotate".into(), None),
            Act::OtherUserGet => ("GET", format!("/api/v1/users/{}", o.user), None),
            Act::OtherUserRename => ("PATCH", format!("/api/v1/users/{}", o.user), rename),
            Act::OtherUserDelete => ("DELETE", format!("/api/v1/users/{}", o.user), None),
            Act::OtherUserReset => ("POST", format!("/api/v1/users/{}/password-reset", o.user), None),
            Act::OtherAppRename => ("PATCH", format!("/api/v1/apps/{}", o.app), rename),
            Act::OtherAppDelete => ("DELETE", format!("/api/v1/apps/{}", o.app), None),
            Act::OtherAppSecret => ("POST", format!("/api/v1/apps/{}/secret", o.app), None),
            Act::OtherSaRename => ("PATCH", format!("/api/v1/service-accounts/{}", o.sa), rename),
            Act::OtherSaDelete => ("DELETE", format!("/api/v1/service-accounts/{}", o.sa), None),
            Act::OtherSaTokenCreate => {
                ("POST", format!("/api/v1/service-accounts/{}/tokens", o.sa), Some(json!({"name": "t", "ttl_days": 1})))
            }
            Act::OtherSaTokenRevoke => {
                ("DELETE", format!("/api/v1/service-accounts/{}/tokens/{}", o.sa, o.sa_token), None)
            }
            Act::WebhookList => ("GET", "/api/v1/webhooks".into(), None),
            Act::WebhookCreate => {
                self.clear_webhooks();
                (
                    "POST",
                    "/api/v1/webhooks".into(),
                    Some(json!({"url": format!("https://made{n}.example/"), "events": ["token.revoked"]})),
                )
            }
            Act::WebhookGet => ("GET", self.webhook(), None),
            Act::WebhookPatch => {
                ("PATCH", self.webhook(), Some(json!({"enabled": false, "events": ["policy.changed"]})))
            }
            Act::WebhookDelete => ("DELETE", self.webhook(), None),
            Act::WebhookSecret => ("POST", format!("{}/secret", self.webhook()), None),
            Act::WebhookTest => ("POST", format!("{}/test", self.webhook()), None),
            Act::WebhookDeliveries => ("GET", format!("{}/deliveries", self.webhook()), None),
            Act::OtherWebhookGet => ("GET", format!("/api/v1/webhooks/{}", o.webhook), None),
            Act::OtherWebhookPatch => {
                ("PATCH", format!("/api/v1/webhooks/{}", o.webhook), Some(json!({"enabled": false})))
            }
            Act::OtherWebhookDelete => ("DELETE", format!("/api/v1/webhooks/{}", o.webhook), None),
            Act::OtherWebhookSecret => ("POST", format!("/api/v1/webhooks/{}/secret", o.webhook), None),
            Act::OtherWebhookTest => ("POST", format!("/api/v1/webhooks/{}/test", o.webhook), None),
            Act::OtherWebhookDeliveries => ("GET", format!("/api/v1/webhooks/{}/deliveries", o.webhook), None),
            Act::OtherSaTokenGet => ("GET", format!("/api/v1/service-accounts/{}/tokens/{}", o.sa, o.sa_token), None),
            Act::OtherSaTokenRotate => {
                ("POST", format!("/api/v1/service-accounts/{}/tokens/{}/rotate", o.sa, o.sa_token), None)
            }
            Act::OtherTokenGet => ("GET", format!("/api/v1/tokens/{}", o.sa_token), None),
            Act::FeedRead => ("GET", "/oauth/revocations".into(), None),
            Act::GatewayAdminRole => {
                ("GET", format!("/gateway/auth?audience={}&role=org:admin", self.s.api_audience()), None)
            }
            Act::GatewayOtherAudience => ("GET", "/gateway/auth".into(), None),
            Act::SaTokenReachNarrow => {
                ("PATCH", self.sa_token(&LOW), Some(json!({"audiences": [self.s.resource_audience()]})))
            }
            Act::SaTokenReachWiden => ("PATCH", self.narrowed(self.sa_token(&LOW)), Some(json!({"audiences": ["*"]}))),
            Act::SaTokenManagementOn => {
                ("PATCH", self.narrowed(self.sa_token(&LOW)), Some(json!({"management": true})))
            }
            Act::AppReachNarrow => ("PATCH", app(&LOW), Some(json!({"audiences": [self.s.resource_audience()]}))),
            Act::AppReachWiden => ("PATCH", self.narrowed(app(&LOW)), Some(json!({"audiences": ["*"]}))),
            Act::AppManagementOn => ("PATCH", self.narrowed(app(&LOW)), Some(json!({"management": true}))),
            Act::LeakReportBearer => (
                "POST",
                "/leaks/report".into(),
                Some(
                    json!([{"token": self.s.owner_pat, "type": "tokend_personal_token", "url": "https://example.test/x", "source": "content"}]),
                ),
            ),
            Act::TrustPolicyList => ("GET", "/api/v1/trust-policies".into(), None),
            Act::TrustPolicyCreateLow => {
                ("POST", "/api/v1/trust-policies".into(), Some(trust_policy_body(&self.sa(&LOW), n)))
            }
            Act::TrustPolicyCreateHigh => {
                ("POST", "/api/v1/trust-policies".into(), Some(trust_policy_body(&self.sa(&HIGH), n)))
            }
            Act::TrustPolicyGet => ("GET", self.trust_policy(&LOW), None),
            Act::TrustPolicyDisableLow => ("PATCH", self.trust_policy(&LOW), disable),
            Act::TrustPolicyDisableHigh => ("PATCH", self.trust_policy(&HIGH), disable),
            Act::TrustPolicyWiden => {
                ("PATCH", self.trust_policy(&LOW), Some(json!({"conditions": {"repository": "acme/*"}})))
            }
            Act::TrustPolicyDelete => ("DELETE", self.trust_policy(&LOW), None),
            Act::OtherTrustPolicyGet => ("GET", format!("/api/v1/trust-policies/{}", o.trust_policy), None),
            Act::OtherTrustPolicyDelete => ("DELETE", format!("/api/v1/trust-policies/{}", o.trust_policy), None),
            Act::DelegationGet => ("GET", self.delegating_app(&LOW, true), None),
            Act::DelegationWiden => {
                ("PUT", self.delegating_app(&LOW, false), Some(json!({"audiences": [self.s.resource_audience()]})))
            }
            Act::DelegationNarrowLow => ("PUT", self.delegating_app(&LOW, true), Some(json!({"audiences": []}))),
            Act::DelegationNarrowHigh => ("PUT", self.delegating_app(&HIGH, true), Some(json!({"audiences": []}))),
            Act::OtherDelegationSet => {
                ("PUT", format!("/api/v1/apps/{}/delegation", o.app), Some(json!({"audiences": []})))
            }
        }
    }

    /// The credential at `path`, narrowed by the owner to one audience and off the
    /// management API, so that a later PATCH can widen it.
    fn narrowed(&self, path: String) -> String {
        let body = json!({"audiences": [self.s.resource_audience()], "management": false});
        let r = self.s.patch(&path, &self.owner, body);
        assert_eq!(r.status, 200, "narrowing {path}: {}", r.text);
        path
    }
}

// ---------------------------------------------------------------------------------------
// the matrix
// ---------------------------------------------------------------------------------------

/// Every (principal, action) cell answers exactly its status in MATRIX; a refusal (and a
/// read) changes nothing, a successful write changes something. All disagreements are
/// collected and reported together.
fn escalation_matrix(b: &Backend) {
    let w = World::new(b);
    let s = &w.s;
    let mut wrong = Vec::new();
    let mut cells = 0;
    for (act, row) in MATRIX {
        for (i, who) in WHO.iter().enumerate() {
            cells += 1;
            let (method, path, body) = w.prepare(*act);
            let before = state(s);
            let r = s.call(method, &path, Some(&w.bearers[i]), body.as_ref());
            let cell = format!("{act:?} by {who:?} ({method} {path})");
            if r.status != row[i] {
                wrong.push(format!("{cell}: expected {}, got {} {}", row[i], r.status, r.text));
                continue;
            }
            if r.status >= 400 {
                if path.starts_with("/api/")
                    && !r.header("content-type").unwrap_or("").starts_with("application/problem+json")
                {
                    wrong.push(format!("{cell}: an error must be problem+json, got {:?}", r.header("content-type")));
                }
                assert_unchanged(s, &before, &format!("refused {cell}"));
            } else if method == "GET" {
                assert_unchanged(s, &before, &format!("read {cell}"));
            } else {
                assert_ne!(state(s).1, before.1, "{cell} answered {} but changed nothing", r.status);
            }
        }
    }
    assert_eq!(cells, MATRIX.len() * WHO.len());
    // Every principal is still live: no cell ended one of them.
    for (who, at) in WHO.iter().zip(&w.bearers) {
        assert_eq!(s.get("/api/v1/roles", at).status, 200, "{who:?} still authenticates after the matrix");
    }
    assert!(wrong.is_empty(), "{} of {cells} cells disagree with the matrix:\n{}", wrong.len(), wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------
// the reproductions
// ---------------------------------------------------------------------------------------

/// (a) An admin lacking billing:write can neither reset, patch nor delete a person holding
/// it, nor give them a password of its choosing; so it cannot log in as them.
fn repro_a_admin_cannot_take_over_a_user_holding_a_role_it_lacks(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    create(&s, &owner, "/api/v1/roles", json!({"name": BILLING, "kind": "custom"}));
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let payer = new_user(&s, &owner, "payer@example.test", &HIGH);
    let path = format!("/api/v1/users/{payer}");
    let before = state(&s);
    expect(&s.post(&format!("{path}/password-reset"), &admin, json!({})), 403, "reset code for the payer");
    expect(&s.patch(&path, &admin, json!({"name": "mine now"})), 403, "rename the payer");
    expect(&s.patch(&path, &admin, json!({"roles": ["org:member"]})), 403, "strip billing:write");
    expect(&s.patch(&path, &admin, json!({"disabled": true})), 403, "disable the payer");
    expect(&s.patch(&path, &admin, json!({"password": "admin-chosen-123"})), 422, "set the payer's password");
    expect(&s.get(&path, &admin), 403, "read the payer");
    expect(&s.delete(&format!("{path}?credentials=transfer"), &admin), 403, "delete the payer");
    assert_unchanged(&s, &before, "the admin's attempts");
    let r = s.call(
        "POST",
        "/api/v1/login",
        None,
        Some(&json!({"email": "payer@example.test", "password": "admin-chosen-123"})),
    );
    expect(&r, 401, "log in as the payer with a password the admin chose");
    // The owner holds billing:write: the same reset works for it.
    expect(&s.post(&format!("{path}/password-reset"), &owner, json!({})), 200, "the owner resets the payer");
}

/// (b) A token minted for a resource server (the default audience) is refused at /api/v1.
fn repro_b_resource_audience_token_is_refused_at_the_management_api(b: &Backend) {
    let s = b.start();
    let resource = s.exchange_ok(&s.owner_pat);
    let claims = s.verify_resource(&resource);
    assert_ne!(claims["aud"], json!(s.api_audience()), "the default audience is a resource server's");
    assert_eq!(claims["roles"], json!(["org:owner"]));
    let before = state(&s);
    expect(&s.get("/api/v1/users", &resource), 401, "GET /api/v1/users with a resource-audience token");
    let r = s.post("/api/v1/users", &resource, json!({"email": "x@example.test", "roles": ["org:owner"]}));
    expect(&r, 401, "POST /api/v1/users with a resource-audience token");
    expect(&s.get("/api/v1/me", &resource), 401, "GET /api/v1/me with a resource-audience token");
    assert_unchanged(&s, &before, "a replayed resource-audience token");
    // The same for an app's client_credentials token without an audience.
    let owner = s.owner_login();
    let (_, cid, secret) = s.app(&owner, json!({"name": "rs", "roles": ["org:admin"]}));
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid, &secret)));
    assert_eq!(r.status, 200, "{}", r.text);
    let app_resource = str_of(&r.body, "access_token");
    let before_app = state(&s);
    expect(&s.get("/api/v1/users", &app_resource), 401, "an app's resource-audience token");
    expect(&s.delete(&format!("/api/v1/users/{}", s.owner_id), &app_resource), 401, "an app deleting the owner");
    assert_unchanged(&s, &before_app, "replayed resource-audience tokens");
}

/// (c) A PAT-derived (non-interactive) token cannot raise a low app to org:admin, even
/// though it carries org:owner; the app's roles stay as they were.
fn repro_c_pat_derived_token_cannot_raise_an_app(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (app, cid, secret) = s.app(&owner, json!({"name": "low", "roles": ["org:member"]}));
    let derived = s.exchange_api(&s.owner_pat);
    let before = state(&s);
    let r = s.patch(&format!("/api/v1/apps/{app}"), &derived, json!({"roles": ["org:admin"]}));
    expect(&r, 403, "PAT-derived token raises the app to org:admin");
    assert_unchanged(&s, &before, "the refused raise");
    let g = s.get(&format!("/api/v1/apps/{app}"), &owner);
    assert_eq!(g.body["roles"], json!(["org:member"]), "the app's roles are unchanged: {}", g.text);
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid, &secret)));
    assert_eq!(s.verify_resource(&str_of(&r.body, "access_token"))["roles"], json!(["org:member"]));
    // Lowering is not minting: the same token may take roles away.
    let r = s.patch(&format!("/api/v1/apps/{app}"), &derived, json!({"roles": []}));
    expect(&r, 200, "PAT-derived token lowers the app");
}

/// (d) An admin creates an org:admin app and is deleted: without `?credentials=` the delete
/// is refused (409, nothing changed); with `disable` the app is disabled and its access
/// token stops at once; with `transfer` (by the owner) the owner becomes the creator and
/// the secret the leaver knew stops working (issue #18: a transfer hands over no secret).
fn repro_d_deleting_the_creator_of_an_admin_app(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (admin_id, admin) = s.user(&owner, "leaver@example.test", &["org:admin"]);
    let (app, cid, secret) = s.app(&admin, json!({"name": "ci", "roles": ["org:admin"]}));
    let sa = new_sa(&s, &admin, "leaver-bot", &["org:member"]);
    let app_at = s.app_api_token(&cid, &secret);
    expect(&s.get("/api/v1/users", &app_at), 200, "the app's management token works");

    let before = state(&s);
    let r = s.delete(&format!("/api/v1/users/{admin_id}"), &owner);
    expect(&r, 409, "delete the creator of live credentials without ?credentials=");
    let r = s.delete(&format!("/api/v1/users/{admin_id}?credentials=keep"), &owner);
    expect(&r, 422, "an unknown ?credentials= value");
    assert_unchanged(&s, &before, "the refused deletes");
    expect(&s.get("/api/v1/users", &app_at), 200, "the app still works after the refusals");

    let r = s.delete(&format!("/api/v1/users/{admin_id}?credentials=disable"), &owner);
    expect(&r, 204, "delete with ?credentials=disable");
    expect(&s.get("/api/v1/users", &app_at), 401, "the disabled app's access token at /api/v1");
    let g = s.get(&format!("/api/v1/apps/{app}"), &owner);
    assert_eq!(g.body["disabled"], json!(true), "the app is disabled: {}", g.text);
    let g = s.get(&format!("/api/v1/service-accounts/{sa}"), &owner);
    assert_eq!(g.body["disabled"], json!(true), "the service account is disabled: {}", g.text);
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid, &secret)));
    assert_eq!(r.status, 401, "a disabled app gets no token: {}", r.text);
    assert_eq!(r.body["error"], "invalid_client");
    expect(&s.get("/api/v1/me", &admin), 401, "the deleted admin's login");

    // Transfer, by the owner.
    let (admin2_id, admin2) = s.user(&owner, "leaver2@example.test", &["org:admin"]);
    let (app2, cid2, secret2) = s.app(&admin2, json!({"name": "ci-2", "roles": ["org:admin"]}));
    let sa2 = new_sa(&s, &admin2, "leaver2-bot", &["org:admin"]);
    let app2_at = s.app_api_token(&cid2, &secret2);
    let r = s.delete(&format!("/api/v1/users/{admin2_id}?credentials=transfer"), &owner);
    expect(&r, 204, "delete with ?credentials=transfer");
    let g = s.get(&format!("/api/v1/apps/{app2}"), &owner);
    assert_eq!(g.body["created_by"], json!(s.owner_id), "the owner is the app's creator now: {}", g.text);
    assert_eq!(g.body["disabled"], json!(false), "{}", g.text);
    let g = s.get(&format!("/api/v1/service-accounts/{sa2}"), &owner);
    assert_eq!(g.body["created_by"], json!(s.owner_id), "the owner is the account's creator now: {}", g.text);
    expect(&s.get("/api/v1/users", &app2_at), 401, "the leaver's access token of a transferred app");
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid2, &secret2)));
    assert_eq!(r.status, 401, "the leaver's secret of a transferred app: {}", r.text);
}

/// (e) After a secret regeneration, an access token minted with the old secret is refused
/// at /api/v1 and introspects inactive (for an app the owner allowed to introspect).
fn repro_e_regenerated_secret_ends_old_access_tokens(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (app, cid, old_secret) = s.app(&owner, json!({"name": "x", "roles": ["org:admin"]}));
    let (_, icid, isecret) = s.app(&owner, json!({"name": "introspector", "introspect": true}));
    let introspect = |token: &str| {
        let r = s.form("/oauth/introspect", &[("token", token)], Some((&icid, &isecret)));
        assert_eq!(r.status, 200, "introspection: {}", r.text);
        r.body
    };
    let old_api = s.app_api_token(&cid, &old_secret);
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid, &old_secret)));
    let old_resource = str_of(&r.body, "access_token");
    expect(&s.get("/api/v1/users", &old_api), 200, "before the regeneration");
    assert_eq!(introspect(&old_api)["active"], json!(true));
    assert_eq!(introspect(&old_resource)["active"], json!(true));

    let r = s.post(&format!("/api/v1/apps/{app}/secret"), &owner, json!({}));
    expect(&r, 201, "regenerate the secret");
    let new_secret = str_of(&r.body, "client_secret");
    assert_ne!(new_secret, old_secret);

    expect(&s.get("/api/v1/users", &old_api), 401, "an access token minted with the old secret");
    assert_eq!(introspect(&old_api), json!({"active": false}), "old management token");
    assert_eq!(introspect(&old_resource), json!({"active": false}), "old resource token");
    let r = s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((&cid, &old_secret)));
    assert_eq!(r.status, 401, "the old secret: {}", r.text);
    let new_api = s.app_api_token(&cid, &new_secret);
    expect(&s.get("/api/v1/users", &new_api), 200, "a token from the new secret");
    assert_eq!(introspect(&new_api)["active"], json!(true));
}

/// (f) A role-less app without the introspect flag is refused at /oauth/introspect (403);
/// once the owner sets the flag it may introspect.
fn repro_f_app_without_introspect_flag_cannot_introspect(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (app, cid, secret) = s.app(&owner, json!({"name": "plain"}));
    let subject = s.exchange_ok(&s.owner_pat);
    let r = s.form("/oauth/introspect", &[("token", &subject)], Some((&cid, &secret)));
    assert_eq!(r.status, 403, "introspection by an app without the flag: {}", r.text);
    assert_eq!(r.body["error"], "access_denied", "{}", r.text);
    assert!(r.body.get("active").is_none(), "no introspection result: {}", r.text);
    let r = s.form("/oauth/introspect", &[("token", &s.owner_pat)], Some((&cid, &secret)));
    assert_eq!(r.status, 403, "nor for an API token: {}", r.text);
    expect(&s.patch(&format!("/api/v1/apps/{app}"), &owner, json!({"introspect": true})), 200, "allow it");
    let r = s.form("/oauth/introspect", &[("token", &subject)], Some((&cid, &secret)));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], json!(true), "{}", r.text);
}

/// (g) A personal token names its roles: POST /api/v1/me/tokens without roles (or with
/// none) is 422 naming the field, and nothing is created.
fn repro_g_personal_token_requires_roles(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let before = state(&s);
    for body in [json!({"name": "x", "ttl_days": 1}), json!({"name": "x", "ttl_days": 1, "roles": []})] {
        let r = s.post("/api/v1/me/tokens", &owner, body.clone());
        expect(&r, 422, &format!("POST /api/v1/me/tokens {body}"));
        assert_eq!(r.body["errors"][0]["field"], "roles", "{}", r.text);
    }
    assert_unchanged(&s, &before, "refused personal tokens");
    let (_, pat) = s.pat(&owner, json!({"name": "x", "ttl_days": 1, "roles": ["org:member"]}));
    assert_eq!(s.verify_resource(&s.exchange_ok(&pat))["roles"], json!(["org:member"]), "exactly the named roles");
}

/// client_credentials with an API token as the client secret (`client_id` = the token's id):
/// for every credential kind, scope and audience, never more than the same token through
/// refresh_token — the same status and error, the same roles.
fn repro_h_api_token_as_client_secret_never_exceeds_refresh_token(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    create(&s, &owner, "/api/v1/roles", json!({"name": BILLING, "kind": "custom", "description": "charges"}));
    let (_, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (m_id, m_pat) = s.pat(&member, json!({"name": "m", "ttl_days": 1}));
    let (a_id, a_pat) = s.pat(&admin, json!({"name": "a", "ttl_days": 1}));
    let sa = new_sa(&s, &owner, "bot", &["org:member", BILLING]);
    let (sa_id, sa_secret) = new_sa_token(&s, &owner, &sa);
    let api = s.api_audience();
    let roles_of = |r: &Resp| -> Value {
        r.body["access_token"].as_str().map(|t| common_claims(t)["roles"].clone()).unwrap_or(Value::Null)
    };
    for (id, secret) in [(&m_id, &m_pat), (&a_id, &a_pat), (&sa_id, &sa_secret)] {
        for scope in ["", "org:owner", "org:admin", BILLING, "org:member"] {
            for aud in ["", api.as_str()] {
                let mut extra = vec![];
                if !scope.is_empty() {
                    extra.push(("scope", scope));
                }
                if !aud.is_empty() {
                    extra.push(("audience", aud));
                }
                let mut rt = vec![("grant_type", "refresh_token"), ("refresh_token", secret.as_str())];
                rt.extend_from_slice(&extra);
                let via_refresh = s.form("/oauth/token", &rt, None);
                let mut cc = vec![("grant_type", "client_credentials")];
                cc.extend_from_slice(&extra);
                let via_cc = s.form("/oauth/token", &cc, Some((id.as_str(), secret.as_str())));
                let what = format!("token {id}, scope {scope:?}, audience {aud:?}");
                assert_eq!(via_cc.status, via_refresh.status, "{what}: {} vs {}", via_cc.text, via_refresh.text);
                assert_eq!(via_cc.body["error"], via_refresh.body["error"], "{what}");
                assert_eq!(roles_of(&via_cc), roles_of(&via_refresh), "{what}: the same roles");
            }
        }
    }
}

/// The roles and other claims of an access token, read without verification (the
/// comparison above is between two tokens this server signed; `verify` checks signatures
/// elsewhere).
fn common_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// An API token as client secret: a disabled owner's token and another organization's
/// token id are refused (invalid_client), and nothing changes.
fn repro_i_api_token_client_disabled_owner_and_other_org_refused(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let other = other_org(&s);
    let (uid, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let (id, pat) = s.pat(&member, json!({"name": "m", "ttl_days": 1}));
    let cc =
        |id: &str, secret: &str| s.form("/oauth/token", &[("grant_type", "client_credentials")], Some((id, secret)));
    assert_eq!(cc(&id, &pat).status, 200);
    let before = state(&s);
    for r in [cc(&other.sa_token, &pat), cc(&other.sa, &pat), cc(&other.app, &pat)] {
        assert_eq!((r.status, &r.body["error"]), (401, &json!("invalid_client")), "another org's id: {}", r.text);
    }
    assert_unchanged(&s, &before, "another org's ids");
    let r = s.patch(&format!("/api/v1/users/{uid}"), &owner, json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.text);
    for cid in [id.as_str(), "api-token"] {
        let r = cc(cid, &pat);
        assert_eq!((r.status, &r.body["error"]), (401, &json!("invalid_client")), "disabled owner: {}", r.text);
    }
}

/// Reach of personal tokens, per person: their own token narrows from a bearer derived from
/// one of their API tokens and widens only from their interactive login; someone else's
/// token is not theirs to touch (404), whatever their roles.
fn repro_j_personal_token_reach_by_principal(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let aud = s.resource_audience();
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (_, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let mut ids = Vec::new();
    for (who, login) in [("owner", &owner), ("admin", &admin), ("member", &member)] {
        let (_, script) =
            s.pat(login, json!({"name": "script", "ttl_days": 1, "roles": ["org:member"], "management": true}));
        let bearer = s.exchange_api(&script);
        let target =
            create(&s, login, "/api/v1/me/tokens", json!({"name": "t", "ttl_days": 1, "roles": ["org:member"]}));
        let path = format!("/api/v1/me/tokens/{}", str_of(&target, "id"));
        let before = state(&s);
        let wider = json!({"management": true});
        expect(
            &s.patch(&path, &bearer, wider.clone()),
            403,
            &format!("{who}: widening {wider} with an API-token bearer"),
        );
        assert_unchanged(&s, &before, &format!("{who}: refused widening"));
        expect(&s.patch(&path, &bearer, json!({"audiences": [aud]})), 200, &format!("{who}: narrowing"));
        expect(&s.patch(&path, &bearer, json!({"audiences": ["*"]})), 403, &format!("{who}: widening back"));
        expect(
            &s.patch(&path, login, json!({"audiences": ["*"], "management": true})),
            200,
            &format!("{who}: interactive widening"),
        );
        ids.push(path);
    }
    // Nobody reaches another person's token through /me/tokens, not even the owner.
    for (who, login, other) in [("owner", &owner, &ids[2]), ("admin", &admin, &ids[0]), ("member", &member, &ids[1])] {
        let before = state(&s);
        expect(&s.patch(other, login, json!({"audiences": [aud]})), 404, &format!("{who} on someone else's token"));
        assert_unchanged(&s, &before, &format!("{who}: someone else's token"));
    }
}

/// POST /api/v1/me/tokens/{id}/regenerate, per person: minting, like rotate — their own
/// token from their interactive login (201), never from a bearer derived from an API token
/// (403), never someone else's token (404), whatever their roles; refusals change nothing.
fn repro_k_regenerate_by_principal(b: &Backend) {
    let s = b.start();
    let owner = s.owner_login();
    let (_, admin) = s.user(&owner, "admin@example.test", &["org:admin"]);
    let (_, member) = s.user(&owner, "member@example.test", &["org:member"]);
    let mut ids = Vec::new();
    for (who, login) in [("owner", &owner), ("admin", &admin), ("member", &member)] {
        let (_, script) =
            s.pat(login, json!({"name": "script", "ttl_days": 1, "roles": ["org:member"], "management": true}));
        let bearer = s.exchange_api(&script);
        let target =
            create(&s, login, "/api/v1/me/tokens", json!({"name": "t", "ttl_days": 1, "roles": ["org:member"]}));
        let path = format!("/api/v1/me/tokens/{}/regenerate", str_of(&target, "id"));
        let before = state(&s);
        expect(&s.post(&path, &bearer, json!({"ttl_days": 2})), 403, &format!("{who}: API-token bearer"));
        assert_unchanged(&s, &before, &format!("{who}: refused regenerate"));
        let r = s.post(&path, login, json!({"ttl_days": 2}));
        expect(&r, 201, &format!("{who}: interactive"));
        ids.push(format!("/api/v1/me/tokens/{}/regenerate", str_of(&r.body, "id")));
    }
    for (who, login, other) in [("owner", &owner, &ids[2]), ("admin", &admin, &ids[0]), ("member", &member, &ids[1])] {
        let before = state(&s);
        expect(&s.post(other, login, json!({})), 404, &format!("{who} on someone else's token"));
        assert_unchanged(&s, &before, &format!("{who}: someone else's token"));
    }
}

// ---------------------------------------------------------------------------------------
// the console
// ---------------------------------------------------------------------------------------

/// Who acts in the console matrix, in column order: no session, then console sign-ins.
const CONSOLE_WHO: [&str; 5] = ["nobody", "owner", "admin", "developer", "member"];

/// Console actions (`/console/...`): pages (GET) and forms (POST, with the session's CSRF
/// token unless the name says otherwise). "Low" targets hold LOW; "Other" targets belong to
/// a second organization.
#[derive(Clone, Copy, Debug)]
enum Console {
    MeTokens,
    MeTokenCreate,
    MeRevokeAllNoCsrf,
    /// "Sign out everywhere" without the token (with it, the session would end: tested in
    /// `console::http`).
    SignOutEverywhereNoCsrf,
    /// The admin pages' place (`/console/tokens`).
    AdminPage,
    SaList,
    SaGetLow,
    SaCreateLow,
    SaCreateNoCsrf,
    /// Roles org:member → org:developer.
    SaRaiseLow,
    SaTokenCreateLow,
    SaTokenRotateLow,
    SaTokenRevokeLow,
    OtherSaGet,
    OtherSaTokenCreate,
    OtherSaTokenRevoke,
    AppList,
    AppGetLow,
    AppCreateLow,
    AppCreateNoCsrf,
    /// Roles org:member → org:developer.
    AppRaiseLow,
    AppSecretLow,
    AppDeleteLow,
    OtherAppGet,
    OtherAppSecret,
    OtherAppDelete,
    /// A secret page whose slot this session does not hold.
    SecretGone,
    /// The name and description form of a LOW service account.
    SaRenameLow,
    /// Deleting a LOW service account (its tokens revoked).
    SaDeleteLow,
    /// The page of a LOW service account's token, and its rename form.
    SaTokenPageLow,
    SaTokenRenameLow,
    OtherSaTokenPage,
    OtherSaDelete,
    /// Someone else's personal token (a person of the same org): its page, rename and
    /// regenerate are nobody else's (404), whatever their roles.
    PersonTokenPage,
    PersonTokenRename,
    PersonTokenRegenerate,
    /// The webhook pages (org:admin; creating one is a sudo action, open after signing in).
    WebhookList,
    WebhookCreate,
    OtherWebhookPage,
    OtherWebhookTest,
    OtherWebhookDelete,
}

/// Statuses: 303 for no session (to the sign-in page) and for a form that succeeded (back
/// to its page, or to the page showing its secret once); 200 for a page; 410 for a secret
/// page whose slot is empty (shown already, or another session's).
#[rustfmt::skip]
const CONSOLE_MATRIX: &[(Console, [u16; 5])] = &[
    //                          nobody owner admin  dev  member
    (Console::MeTokens,          [303,  200,  200,  200,  200]),
    (Console::MeTokenCreate,     [303,  303,  303,  303,  303]),
    (Console::MeRevokeAllNoCsrf, [303,  403,  403,  403,  403]),
    (Console::SignOutEverywhereNoCsrf, [303, 403, 403, 403, 403]),
    (Console::AdminPage,         [303,  200,  200,  403,  403]),
    (Console::SaList,            [303,  200,  200,  403,  403]),
    (Console::SaGetLow,          [303,  200,  200,  403,  403]),
    (Console::SaCreateLow,       [303,  303,  303,  403,  403]),
    (Console::SaCreateNoCsrf,    [303,  403,  403,  403,  403]),
    (Console::SaRaiseLow,        [303,  303,  303,  403,  403]),
    (Console::SaTokenCreateLow,  [303,  303,  303,  403,  403]),
    (Console::SaTokenRotateLow,  [303,  303,  303,  403,  403]),
    (Console::SaTokenRevokeLow,  [303,  303,  303,  403,  403]),
    (Console::OtherSaGet,        [303,  404,  404,  403,  403]),
    (Console::OtherSaTokenCreate,[303,  404,  404,  403,  403]),
    (Console::OtherSaTokenRevoke,[303,  404,  404,  403,  403]),
    (Console::AppList,           [303,  200,  200,  200,  403]),
    (Console::AppGetLow,         [303,  200,  200,  200,  403]),
    (Console::AppCreateLow,      [303,  303,  303,  303,  403]),
    (Console::AppCreateNoCsrf,   [303,  403,  403,  403,  403]),
    (Console::AppRaiseLow,       [303,  303,  303,  303,  403]),
    (Console::AppSecretLow,      [303,  303,  303,  303,  403]),
    (Console::AppDeleteLow,      [303,  303,  303,  303,  403]),
    (Console::OtherAppGet,       [303,  404,  404,  404,  403]),
    (Console::OtherAppSecret,    [303,  404,  404,  404,  403]),
    (Console::OtherAppDelete,    [303,  404,  404,  404,  403]),
    (Console::SecretGone,        [303,  410,  410,  410,  410]),
    (Console::SaRenameLow,       [303,  303,  303,  403,  403]),
    (Console::SaDeleteLow,       [303,  303,  303,  403,  403]),
    (Console::SaTokenPageLow,    [303,  200,  200,  403,  403]),
    (Console::SaTokenRenameLow,  [303,  303,  303,  403,  403]),
    (Console::OtherSaTokenPage,  [303,  404,  404,  403,  403]),
    (Console::OtherSaDelete,     [303,  404,  404,  403,  403]),
    (Console::PersonTokenPage,   [303,  404,  404,  404,  404]),
    (Console::PersonTokenRename, [303,  404,  404,  404,  404]),
    (Console::PersonTokenRegenerate, [303, 404, 404, 404, 404]),
    (Console::WebhookList,       [303,  200,  200,  403,  403]),
    (Console::WebhookCreate,     [303,  303,  303,  403,  403]),
    (Console::OtherWebhookPage,  [303,  404,  404,  403,  403]),
    (Console::OtherWebhookTest,  [303,  404,  404,  403,  403]),
    (Console::OtherWebhookDelete,[303,  404,  404,  403,  403]),
];

/// Every console cell answers exactly its status; a refusal, a redirect to sign in and a
/// page view change nothing; a successful form changes something.
fn console_matrix(b: &Backend) {
    use common::browser::ConsoleHttp;
    let w = World::new(b);
    let s = &w.s;
    let sessions = [
        ConsoleHttp::anonymous(s),
        ConsoleHttp::sign_in(s, &s.owner_email, &s.owner_password),
        ConsoleHttp::sign_in(s, "admin@example.test", "user-password-123"),
        ConsoleHttp::sign_in(s, "developer@example.test", "user-password-123"),
        ConsoleHttp::sign_in(s, "member@example.test", "user-password-123"),
    ];
    let o = &w.other;
    // A personal token of a person none of the sessions is.
    let (_, ghost) = s.user(&w.owner, "ghost@example.test", &["org:member"]);
    let (ghost_pat, _) = s.pat(&ghost, json!({"name": "ghost", "ttl_days": 3, "roles": ["org:member"]}));
    let mut wrong = Vec::new();
    let mut cells = 0;
    for (act, row) in CONSOLE_MATRIX {
        for (i, who) in CONSOLE_WHO.iter().enumerate() {
            cells += 1;
            let c = &sessions[i];
            let n = w.next();
            let sa = || w.sa(&LOW);
            let app = || w.app(&LOW);
            let sa_token = || w.sa_token(&LOW).replace("/api/v1/", "/console/");
            let named = format!("console {n}");
            type Req = (&'static str, String, Vec<(&'static str, String)>, bool);
            let (method, path, form, csrf): Req = match act {
                Console::MeTokens => ("GET", "/console/me/tokens".into(), vec![], true),
                Console::MeTokenCreate => (
                    "POST",
                    "/console/me/tokens".into(),
                    vec![("name", named), ("roles", "org:member".into()), ("ttl_days", "3".into())],
                    true,
                ),
                Console::MeRevokeAllNoCsrf => ("POST", "/console/me/tokens/revoke-all".into(), vec![], false),
                Console::SignOutEverywhereNoCsrf => ("POST", "/console/me/sessions/revoke".into(), vec![], false),
                Console::AdminPage => ("GET", "/console/tokens".into(), vec![], true),
                Console::SaList => ("GET", "/console/service-accounts".into(), vec![], true),
                Console::SaGetLow => ("GET", format!("/console/service-accounts/{}", sa()), vec![], true),
                Console::SaCreateLow => (
                    "POST",
                    "/console/service-accounts".into(),
                    vec![("name", named), ("roles", "org:member".into())],
                    true,
                ),
                Console::SaCreateNoCsrf => (
                    "POST",
                    "/console/service-accounts".into(),
                    vec![("name", named), ("roles", "org:member".into())],
                    false,
                ),
                Console::SaRaiseLow => (
                    "POST",
                    format!("/console/service-accounts/{}", sa()),
                    vec![("roles", "org:developer".into())],
                    true,
                ),
                Console::SaTokenCreateLow => (
                    "POST",
                    format!("/console/service-accounts/{}/tokens", sa()),
                    vec![("name", named), ("roles", "org:member".into()), ("ttl_days", "2".into())],
                    true,
                ),
                Console::SaTokenRotateLow => ("POST", format!("{}/rotate", sa_token()), vec![], true),
                Console::SaTokenRevokeLow => ("POST", format!("{}/revoke", sa_token()), vec![], true),
                Console::OtherSaGet => ("GET", format!("/console/service-accounts/{}", o.sa), vec![], true),
                Console::OtherSaTokenCreate => (
                    "POST",
                    format!("/console/service-accounts/{}/tokens", o.sa),
                    vec![("name", named), ("roles", "org:member".into()), ("ttl_days", "2".into())],
                    true,
                ),
                Console::OtherSaTokenRevoke => {
                    ("POST", format!("/console/service-accounts/{}/tokens/{}/revoke", o.sa, o.sa_token), vec![], true)
                }
                Console::AppList => ("GET", "/console/apps".into(), vec![], true),
                Console::AppGetLow => ("GET", format!("/console/apps/{}", app()), vec![], true),
                Console::AppCreateLow => {
                    ("POST", "/console/apps".into(), vec![("name", named), ("roles", "org:member".into())], true)
                }
                Console::AppCreateNoCsrf => {
                    ("POST", "/console/apps".into(), vec![("name", named), ("roles", "org:member".into())], false)
                }
                Console::AppRaiseLow => (
                    "POST",
                    format!("/console/apps/{}", app()),
                    vec![("name", named), ("roles", "org:developer".into())],
                    true,
                ),
                Console::AppSecretLow => ("POST", format!("/console/apps/{}/secret", app()), vec![], true),
                Console::AppDeleteLow => ("POST", format!("/console/apps/{}/delete", app()), vec![], true),
                Console::OtherAppGet => ("GET", format!("/console/apps/{}", o.app), vec![], true),
                Console::OtherAppSecret => ("POST", format!("/console/apps/{}/secret", o.app), vec![], true),
                Console::OtherAppDelete => ("POST", format!("/console/apps/{}/delete", o.app), vec![], true),
                Console::SecretGone => ("GET", "/console/secret/nothing-here".into(), vec![], true),
                Console::SaRenameLow => (
                    "POST",
                    format!("/console/service-accounts/{}/details", sa()),
                    vec![("name", named), ("description", "renamed".into())],
                    true,
                ),
                Console::SaDeleteLow => ("POST", format!("/console/service-accounts/{}/delete", sa()), vec![], true),
                Console::SaTokenPageLow => ("GET", sa_token(), vec![], true),
                Console::SaTokenRenameLow => ("POST", format!("{}/edit", sa_token()), vec![("name", named)], true),
                Console::OtherSaTokenPage => {
                    ("GET", format!("/console/service-accounts/{}/tokens/{}", o.sa, o.sa_token), vec![], true)
                }
                Console::OtherSaDelete => ("POST", format!("/console/service-accounts/{}/delete", o.sa), vec![], true),
                Console::PersonTokenPage => ("GET", format!("/console/me/tokens/{ghost_pat}"), vec![], true),
                Console::PersonTokenRename => {
                    ("POST", format!("/console/me/tokens/{ghost_pat}/edit"), vec![("name", named)], true)
                }
                Console::WebhookList => ("GET", "/console/webhooks".into(), vec![], true),
                Console::WebhookCreate => (
                    "POST",
                    "/console/webhooks".into(),
                    vec![("url", format!("https://hooks.example.com/{n}")), ("events", "token.revoked".into())],
                    true,
                ),
                Console::OtherWebhookPage => ("GET", format!("/console/webhooks/{}", o.webhook), vec![], true),
                Console::OtherWebhookTest => ("POST", format!("/console/webhooks/{}/test", o.webhook), vec![], true),
                Console::OtherWebhookDelete => {
                    ("POST", format!("/console/webhooks/{}/delete", o.webhook), vec![], true)
                }
                Console::PersonTokenRegenerate => {
                    ("POST", format!("/console/me/tokens/{ghost_pat}/regenerate"), vec![("ttl_days", "2".into())], true)
                }
            };
            let before = state(s);
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = match (method, csrf) {
                ("GET", _) => c.get(&path),
                (_, true) => c.post(&path, &pairs),
                (_, false) => c.post_raw(&path, &pairs, &[("Origin", &s.base)]),
            };
            let cell = format!("{act:?} by {who} ({method} {path})");
            if r.status != row[i] {
                wrong.push(format!("{cell}: expected {}, got {} {}", row[i], r.status, r.text));
                continue;
            }
            if r.status == 303 && i == 0 {
                assert_eq!(r.header("location"), Some("/console/sign-in"), "{cell}");
            }
            let success_form = method == "POST" && (r.status == 200 || (r.status == 303 && i > 0));
            if success_form {
                assert_ne!(state(s).1, before.1, "{cell} answered {} but changed nothing", r.status);
            } else {
                assert_unchanged(s, &before, &cell);
            }
            if r.status >= 400 {
                assert!(r.header("content-type").unwrap_or("").starts_with("text/html"), "{cell}: an error page");
            }
        }
    }
    assert_eq!(cells, CONSOLE_MATRIX.len() * CONSOLE_WHO.len());
    assert!(wrong.is_empty(), "{} of {cells} cells disagree with the matrix:\n{}", wrong.len(), wrong.join("\n"));
}

backend_tests!(
    escalation_matrix,
    console_matrix,
    repro_a_admin_cannot_take_over_a_user_holding_a_role_it_lacks,
    repro_b_resource_audience_token_is_refused_at_the_management_api,
    repro_c_pat_derived_token_cannot_raise_an_app,
    repro_d_deleting_the_creator_of_an_admin_app,
    repro_e_regenerated_secret_ends_old_access_tokens,
    repro_f_app_without_introspect_flag_cannot_introspect,
    repro_g_personal_token_requires_roles,
    repro_h_api_token_as_client_secret_never_exceeds_refresh_token,
    repro_k_regenerate_by_principal,
    repro_i_api_token_client_disabled_owner_and_other_org_refused,
    repro_j_personal_token_reach_by_principal,
);

// ---------------------------------------------------------------------------------------
// the console's admin pages
// ---------------------------------------------------------------------------------------

/// The web console's admin routes × the principals that can hold a console session (people
/// with a password). Same rules as the API: the console calls the same services. A refused
/// cell answers its error page and changes nothing; a POST without the session's CSRF
/// token is refused (403) for everyone, even the owner, and changes nothing.
mod console_admin {
    use super::*;
    use crate::common::browser::ConsoleHttp;

    backend_tests!(console_admin_matrix);

    #[derive(Clone, Copy, Debug)]
    enum C {
        TablePage,
        PeoplePage,
        PersonLow,
        PersonHigh,
        PersonOther,
        RolesPage,
        PolicyPage,
        AuditPage,
        RevokeToken,
        RevokeOtherToken,
        /// "Revoke selected" of the org table (two tokens).
        RevokeSelected,
        /// The org table's query as CSV.
        ExportCsv,
        SaveSearch,
        /// Deleting a saved search the owner created: its creator or an owner only.
        DeleteOwnersSearch,
        DeleteOtherSearch,
        InviteLow,
        InviteHigh,
        RenameLow,
        RenameHigh,
        RenameOther,
        DisableLow,
        DisableHigh,
        EnableLow,
        ResetLow,
        ResetHigh,
        ResetOther,
        RoleCreate,
        RoleDelete,
        /// A custom role's description changed (issue #20).
        RoleDescribe,
        /// The description form of a role the org does not catalogue (404).
        RoleDescribeMissing,
        /// A reset code with "email the link" ticked (no SMTP here: not emailed, same rule).
        ResetMailed,
        PolicySave,
    }

    /// owner, admin (lacks billing:write), developer, member.
    #[rustfmt::skip]
    const CONSOLE: &[(C, [u16; 4])] = &[
        (C::TablePage,          [200, 200, 403, 403]),
        (C::PeoplePage,         [200, 200, 403, 403]),
        (C::PersonLow,          [200, 200, 403, 403]),
        (C::PersonHigh,         [200, 403, 403, 403]),
        (C::PersonOther,        [404, 404, 403, 403]),
        (C::RolesPage,          [200, 200, 403, 403]),
        (C::PolicyPage,         [200, 200, 403, 403]),
        (C::AuditPage,          [200, 200, 403, 403]),
        (C::RevokeToken,        [303, 303, 403, 403]),
        (C::RevokeOtherToken,   [404, 404, 403, 403]),
        (C::RevokeSelected,     [303, 303, 403, 403]),
        (C::ExportCsv,          [200, 200, 403, 403]),
        (C::SaveSearch,         [303, 303, 403, 403]),
        (C::DeleteOwnersSearch, [303, 403, 403, 403]),
        (C::DeleteOtherSearch,  [404, 404, 403, 403]),
        (C::InviteLow,          [303, 303, 403, 403]),
        (C::InviteHigh,         [303, 422, 403, 403]),
        (C::RenameLow,          [303, 303, 403, 403]),
        (C::RenameHigh,         [303, 403, 403, 403]),
        (C::RenameOther,        [404, 404, 403, 403]),
        (C::DisableLow,         [303, 303, 403, 403]),
        (C::DisableHigh,        [303, 403, 403, 403]),
        (C::EnableLow,          [303, 303, 403, 403]),
        (C::ResetLow,           [303, 303, 403, 403]),
        (C::ResetHigh,          [303, 403, 403, 403]),
        (C::ResetOther,         [404, 404, 403, 403]),
        (C::RoleCreate,         [303, 303, 403, 403]),
        (C::RoleDelete,         [303, 303, 403, 403]),
        (C::RoleDescribe,       [303, 303, 403, 403]),
        (C::RoleDescribeMissing,[404, 404, 403, 403]),
        (C::ResetMailed,        [303, 403, 403, 403]),
        (C::PolicySave,         [303, 403, 403, 403]),
    ];

    fn console_admin_matrix(b: &Backend) {
        let s = b.start();
        let owner = s.owner_login();
        create(&s, &owner, "/api/v1/roles", json!({"name": BILLING, "kind": "custom", "description": "charges"}));
        s.user(&owner, "admin@example.test", &["org:admin"]);
        s.user(&owner, "developer@example.test", &["org:developer"]);
        s.user(&owner, "member@example.test", &["org:member"]);
        let sessions = [
            ConsoleHttp::sign_in(&s, &s.owner_email, &s.owner_password),
            ConsoleHttp::sign_in(&s, "admin@example.test", "user-password-123"),
            ConsoleHttp::sign_in(&s, "developer@example.test", "user-password-123"),
            ConsoleHttp::sign_in(&s, "member@example.test", "user-password-123"),
        ];
        let other = other_org(&s);
        let other_owner = s.login("owner@other.test", "other-password-123");
        let other_search = str_of(
            &create(&s, &other_owner, "/api/v1/saved-searches", json!({"name": "x", "query": "status=idle"})),
            "id",
        );
        let n = Cell::new(0u32);
        let next = || {
            n.set(n.get() + 1);
            n.get()
        };
        let user = |roles: &[&str]| new_user(&s, &owner, &format!("target{}@example.test", next()), roles);
        // (method, path, form fields) of a cell, its targets made fresh by the owner.
        let prepare = |c: C| -> (&'static str, String, Vec<(String, String)>) {
            let k = next();
            let f = |pairs: &[(&str, String)]| pairs.iter().map(|(a, b)| (a.to_string(), b.clone())).collect();
            let get = |p: String| ("GET", p, vec![]);
            let post = |p: String, form: Vec<(String, String)>| ("POST", p, form);
            match c {
                C::TablePage => get("/console/tokens?usage=never_used".into()),
                C::PeoplePage => get("/console/people".into()),
                C::PersonLow => get(format!("/console/people/{}", user(&LOW))),
                C::PersonHigh => get(format!("/console/people/{}", user(&HIGH))),
                C::PersonOther => get(format!("/console/people/{}", other.user)),
                C::RolesPage => get("/console/roles".into()),
                C::PolicyPage => get("/console/policy".into()),
                C::AuditPage => get("/console/audit?action=user.create".into()),
                C::RevokeToken => {
                    let (tid, _) = new_sa_token(&s, &owner, &new_sa(&s, &owner, &format!("bot-{k}"), &LOW));
                    post(format!("/console/tokens/{tid}/revoke"), f(&[("back", "status=active".into())]))
                }
                C::RevokeOtherToken => post(format!("/console/tokens/{}/revoke", other.sa_token), vec![]),
                C::RevokeSelected => {
                    let sa = new_sa(&s, &owner, &format!("bots-{k}"), &LOW);
                    let (a, _) = new_sa_token(&s, &owner, &sa);
                    let (b, _) = new_sa_token(&s, &owner, &sa);
                    post("/console/tokens/revoke-selected".into(), f(&[("ids", a), ("ids", b)]))
                }
                C::ExportCsv => get("/console/tokens/export.csv?status=active".into()),
                C::SaveSearch => post(
                    "/console/tokens/saved".into(),
                    f(&[("name", format!("search {k}")), ("query", "usage=never_used".into())]),
                ),
                C::DeleteOwnersSearch => {
                    let body = json!({"name": format!("owner's {k}"), "query": "status=revoked"});
                    let id = str_of(&create(&s, &owner, "/api/v1/saved-searches", body), "id");
                    post(format!("/console/tokens/saved/{id}/delete"), vec![])
                }
                C::DeleteOtherSearch => post(format!("/console/tokens/saved/{other_search}/delete"), vec![]),
                C::InviteLow | C::InviteHigh => {
                    let mut form = f(&[("email", format!("invited{k}@example.test"))]);
                    let roles: &[&str] = if matches!(c, C::InviteLow) { &LOW } else { &HIGH };
                    form.extend(roles.iter().map(|r| ("roles".to_string(), r.to_string())));
                    post("/console/people".into(), form)
                }
                C::RenameLow | C::RenameHigh | C::RenameOther => {
                    let (id, roles): (String, &[&str]) = match c {
                        C::RenameLow => (user(&LOW), &LOW),
                        C::RenameHigh => (user(&HIGH), &HIGH),
                        _ => (other.user.clone(), &LOW),
                    };
                    let mut form = f(&[("name", format!("renamed {k}"))]);
                    form.extend(roles.iter().map(|r| ("roles".to_string(), r.to_string())));
                    post(format!("/console/people/{id}"), form)
                }
                C::DisableLow => post(format!("/console/people/{}/disable", user(&LOW)), vec![]),
                C::DisableHigh => post(format!("/console/people/{}/disable", user(&HIGH)), vec![]),
                C::EnableLow => {
                    let body = json!({"email": format!("off{k}@example.test"), "roles": LOW, "disabled": true});
                    let id = str_of(&create(&s, &owner, "/api/v1/users", body), "id");
                    post(format!("/console/people/{id}/enable"), vec![])
                }
                C::ResetLow => post(format!("/console/people/{}/reset", user(&LOW)), vec![]),
                C::ResetHigh => post(format!("/console/people/{}/reset", user(&HIGH)), vec![]),
                C::ResetOther => post(format!("/console/people/{}/reset", other.user), vec![]),
                C::RoleCreate => post(
                    "/console/roles".into(),
                    f(&[("name", format!("made{k}:read")), ("kind", "custom".into()), ("description", "x".into())]),
                ),
                C::RoleDelete => {
                    let name = format!("spare{k}:read");
                    create(&s, &owner, "/api/v1/roles", json!({"name": name, "kind": "service"}));
                    post(format!("/console/roles/{name}/delete"), vec![])
                }
                C::RoleDescribe => {
                    let name = format!("noted{k}:read");
                    create(&s, &owner, "/api/v1/roles", json!({"name": name, "kind": "custom"}));
                    post(format!("/console/roles/{name}/description"), f(&[("description", format!("reads {k}"))]))
                }
                C::RoleDescribeMissing => {
                    post(format!("/console/roles/nothere{k}:read/description"), f(&[("description", "x".into())]))
                }
                C::ResetMailed => post(format!("/console/people/{}/reset", user(&HIGH)), f(&[("email", "1".into())])),
                C::PolicySave => post(
                    "/console/policy".into(),
                    f(&[
                        ("personal_token_max_ttl_days", (k % 1000 + 1).to_string()),
                        ("service_token_max_ttl_days", "365".into()),
                        ("idle_ttl_days", "".into()),
                        ("max_tokens_per_service_account", "20".into()),
                    ]),
                ),
            }
        };
        let who = ["owner", "admin", "developer", "member"];
        let mut wrong = Vec::new();
        for (c, row) in CONSOLE {
            for (i, http) in sessions.iter().enumerate() {
                let (method, path, form) = prepare(*c);
                let pairs: Vec<(&str, &str)> = form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                let cell = format!("{c:?} by {} ({method} {path})", who[i]);
                let before = state(&s);
                if method == "POST" {
                    // Without the CSRF token: refused for everyone, nothing changed.
                    let r = http.post_raw(&path, &pairs, &[("Origin", &s.base)]);
                    if r.status != 403 || !r.text.contains("Form refused") {
                        wrong.push(format!("{cell} without CSRF: expected 403, got {}", r.status));
                    }
                    assert_unchanged(&s, &before, &format!("{cell} without CSRF"));
                }
                let r = if method == "GET" { http.get(&path) } else { http.post(&path, &pairs) };
                if r.status != row[i] {
                    wrong.push(format!("{cell}: expected {}, got {}", row[i], r.status));
                    continue;
                }
                if r.status >= 400 || method == "GET" {
                    let kind = if path.contains(".csv") && r.status == 200 { "text/csv" } else { "text/html" };
                    assert!(r.header("content-type").unwrap_or("").starts_with(kind), "{cell}: {kind}");
                    assert_unchanged(&s, &before, &format!("{cell} ({})", r.status));
                } else {
                    assert_ne!(state(&s), before, "{cell} answered {} but changed nothing", r.status);
                }
                if r.status == 403 {
                    assert!(r.text.contains("You need another role"), "{cell}: the 403 page");
                }
                if r.status == 404 {
                    assert!(r.text.contains("belongs to another organization"), "{cell}: the 404 page");
                }
            }
        }
        assert!(wrong.is_empty(), "{} cells disagree:\n{}", wrong.len(), wrong.join("\n"));
    }
}
