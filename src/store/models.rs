//! Row types, one per table, used for both reads and inserts.
use diesel::prelude::*;

use super::schema::*;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = orgs)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub roles: String,
    pub disabled: bool,
    pub deleted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped to end every access token minted before (see migrations: security).
    pub epoch: i64,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = roles)]
pub struct Role {
    pub org_id: String,
    pub name: String,
    pub kind: String,
    pub description: String,
    pub created_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = service_accounts)]
pub struct ServiceAccount {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub roles: String,
    pub disabled: bool,
    pub deleted_at: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub epoch: i64,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: String,
    pub org_id: String,
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub description: String,
    pub hint: String,
    pub secret_hash: String,
    pub roles: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub idle_ttl_days: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub created_by: Option<String>,
    /// The owner's email (user) or name (service account), for sorting and search.
    pub owner_label: String,
    /// Lowercased name, description, hint and owner label: what `q` searches.
    pub search: String,
    /// The resource audiences it may be exchanged for (JSON array, "*" = all).
    pub audiences: String,
    /// Whether it may be exchanged for the management API's audience.
    pub management: bool,
    /// Who has seen a working secret of it (JSON array of user ids): settled like the
    /// creator when they leave or are demoted (`service::principals::credentials`).
    pub secret_seen_by: String,
}

impl ApiToken {
    pub fn search_text(name: &str, description: &str, hint: &str, owner_label: &str) -> String {
        format!("{name}\n{description}\n{hint}\n{owner_label}").to_lowercase()
    }
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = apps)]
pub struct App {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub client_id: String,
    pub secret_hash: String,
    pub secret_hint: String,
    pub roles: String,
    pub access_token_ttl_seconds: i64,
    pub disabled: bool,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub epoch: i64,
    /// May call /oauth/introspect.
    pub introspect: bool,
    /// The secret replaced by a regeneration with a grace period, until
    /// `previous_secret_expires_at` (then cleared by maintenance).
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    /// The resource audiences it may get tokens for (JSON array, "*" = all).
    pub audiences: String,
    /// Whether it may get tokens for the management API.
    pub management: bool,
    /// Who has seen a working secret of it (JSON array of user ids): settled like the
    /// creator when they leave or are demoted (`service::principals::credentials`).
    pub secret_seen_by: String,
}

/// What client authentication and issuing read of an app (`principals::app_for_client_auth`):
/// the secrets, state and grant fields, not its name, description, hint, creator, times
/// or seen-by list (five strings fewer to allocate on every client_credentials call).
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = apps)]
pub struct AppAuth {
    pub id: String,
    pub org_id: String,
    pub client_id: String,
    pub secret_hash: String,
    pub roles: String,
    pub access_token_ttl_seconds: i64,
    pub disabled: bool,
    pub epoch: i64,
    pub introspect: bool,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub audiences: String,
    pub management: bool,
}

impl From<App> for AppAuth {
    fn from(a: App) -> AppAuth {
        AppAuth {
            id: a.id,
            org_id: a.org_id,
            client_id: a.client_id,
            secret_hash: a.secret_hash,
            roles: a.roles,
            access_token_ttl_seconds: a.access_token_ttl_seconds,
            disabled: a.disabled,
            epoch: a.epoch,
            introspect: a.introspect,
            previous_secret_hash: a.previous_secret_hash,
            previous_secret_expires_at: a.previous_secret_expires_at,
            audiences: a.audiences,
            management: a.management,
        }
    }
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub epoch: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// SHA-256 (hex) of a console session's cookie secret; None for API logins.
    pub secret_hash: Option<String>,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = reset_codes)]
pub struct ResetCode {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub code_hash: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The person's roles when the code was issued (JSON); the code is void once they
    /// differ (None: issued before this was recorded, void).
    pub user_roles: Option<String>,
}

#[derive(Queryable, Selectable, Insertable, AsChangeset, Clone, Debug, PartialEq)]
#[diesel(table_name = policies, treat_none_as_null = true)]
pub struct Policy {
    pub org_id: String,
    pub personal_token_max_ttl_days: i64,
    pub service_token_max_ttl_days: i64,
    pub idle_ttl_days: Option<i64>,
    pub max_tokens_per_service_account: i64,
    pub updated_at: i64,
    /// Days revoked and expired tokens stay listed before they are purged.
    pub retention_days: i64,
    /// Whether an API token may rotate itself (`POST /api/v1/tokens/self/rotate`).
    pub allow_self_rotation: bool,
    /// The audiences new credentials get when their request names none (JSON array).
    pub default_audiences: String,
    /// Roles (JSON array) a credential must carry one of to reach the management API;
    /// None: no such restriction.
    pub allow_management_audience_for: Option<String>,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = saved_searches)]
pub struct SavedSearch {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub query: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub org_id: Option<String>,
    pub at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub ip: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = webhooks)]
pub struct Webhook {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub description: String,
    /// JSON array of event types.
    pub events: String,
    pub enabled: bool,
    /// The signing secret, sealed (`crate::whsec::Sealer`).
    pub secret_sealed: String,
    pub secret_hint: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Who has seen a working secret of it (JSON array of user ids): settled like the
    /// creator when they leave or are demoted (`service::principals::credentials`).
    pub secret_seen_by: String,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub org_id: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// The event's id: the `webhook-id` header, the same on every attempt.
    pub event_id: String,
    pub event_type: String,
    /// The event as sent (JSON text).
    pub payload: String,
    pub webhook_id: Option<String>,
    pub recipient: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub locked_until: Option<i64>,
    pub locked_by: Option<String>,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub org_id: String,
    pub outbox_id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    /// `success` or `failure`.
    pub outcome: String,
    pub error: Option<String>,
}

/// One row of the revocation feed (see migrations: revocation_feed).
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = revocation_feed)]
pub struct RevocationRow {
    pub seq: i64,
    pub org_id: String,
    pub kind: String,
    pub subject: String,
    pub acct: Option<String>,
    pub epoch: Option<i64>,
    pub at: i64,
    pub keep_until: i64,
}
