//! Leak reports: a secret found in public (by a code host's secret scanning, or pasted by an
//! operator into `tokend leaks check`) is revoked at once if it is a live tokend credential.
//!
//! Live means: a personal or service-account token that is neither revoked nor expired, or
//! the current client secret of an enabled app (or its previous secret, while its grace
//! runs). Everything else — unknown, revoked, expired, malformed, wrong checksum — is the
//! same answer, `false`, with nothing written: a reporter learns nothing about secrets that
//! do not work.
//!
//! A token is revoked with audit action `token.revoke`, detail `{"reason":"leak_report",
//! "leak":{url, source, type, reporter}}`; the audit hook turns it into a `token.revoked`
//! event with reason `leak_report` and an email to the owner (the org's admins for a service
//! account's token). An app's leaked secret is replaced by one nobody was shown (an admin
//! regenerates it to get a working one) and its access tokens end; its event and email
//! (the app's creator and the org's admins) are queued by
//! `events::Notice::AppSecretLeaked`.
use diesel::Connection;
use serde::Serialize;

use crate::secrets::{self, SecretKind};
use crate::service::events::audit::truncate;
use crate::service::events::{self, Action, Entry, Notice};
use crate::service::Result;
use crate::store::{self, AnyConnection};

/// Longest URL, source and type kept from a report (characters).
pub const MAX_FIELD: usize = 2048;

/// Where a secret was found, and who said so.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sighting {
    pub url: String,
    pub source: String,
    /// The reporter's type name for the secret (e.g. `tokend_personal_token`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `key:<id>` for a signed report, `operator` for `tokend leaks check`.
    pub reporter: String,
}

impl Sighting {
    fn detail(&self) -> serde_json::Value {
        let cut = |s: &str| s.chars().take(MAX_FIELD).collect::<String>();
        serde_json::json!({
            "reason": "leak_report",
            "leak": {"url": cut(&self.url), "source": cut(&self.source), "type": cut(&self.kind), "reporter": truncate(&self.reporter)},
        })
    }
}

/// Revokes `secret` if it is a live credential; answers whether it was (the
/// `true_positive` / `false_positive` of the report).
pub fn report(conn: &mut AnyConnection, secret: &str, seen: &Sighting, ip: Option<&str>, now: i64) -> Result<bool> {
    // Malformed or a wrong checksum: nothing to look up.
    let Ok(kind) = secrets::parse(secret) else { return Ok(false) };
    let hash = secrets::hash(secret);
    match kind {
        SecretKind::Personal | SecretKind::Service => conn.transaction(|conn| {
            let Some(t) = store::tokens::find_by_hash(conn, &hash)? else { return Ok(false) };
            if t.revoked_at.is_some() || t.expires_at <= now {
                return Ok(false);
            }
            if store::tokens::revoke(conn, &t.id, "leak_report", now)? == 0 {
                // Revoked by a concurrent call: it is not live any more.
                return Ok(false);
            }
            let detail = seen.detail();
            let leak = detail["leak"].clone();
            let entry =
                Entry::system(&t.org_id, Action::TokenRevoke).on("api_token", Some(&t.id)).from_ip(ip).detail(detail);
            events::emit(conn, events::Event::from(entry).notice(Notice::TokenLeaked { token: &t, leak }), now)?;
            Ok(true)
        }),
        SecretKind::ClientSecret => conn.transaction(|conn| {
            let Some((mut a, previous)) = store::principals::app_by_secret_hash(conn, &hash, now)? else {
                return Ok(false);
            };
            if a.disabled {
                return Ok(false);
            }
            if previous {
                // The old secret of a rotation in its grace: it (and its access tokens,
                // of the previous epoch) ends now; the current secret keeps working.
                a.previous_secret_hash = None;
                a.previous_secret_expires_at = None;
            } else {
                // A secret nobody was shown: the app has no working secret until an admin
                // regenerates one. Its access tokens end with the epoch.
                let replacement = secrets::generate(SecretKind::ClientSecret);
                a.secret_hash = replacement.hash;
                a.previous_secret_hash = None;
                a.previous_secret_expires_at = None;
                a.secret_seen_by = "[]".to_string();
                a.epoch += 1;
            }
            store::principals::update_app_secret(conn, &a, now)?;
            let detail = seen.detail();
            let leak = detail["leak"].clone();
            let entry = Entry::system(&a.org_id, Action::AppSecretRevoke)
                .on("app", Some(&a.id))
                .from_ip(ip)
                .detail(serde_json::json!({"reason": "leak_report", "leak": leak, "previous_secret": previous}));
            events::emit(conn, events::Event::from(entry).notice(Notice::AppSecretLeaked { app: &a, leak }), now)?;
            Ok(true)
        }),
    }
}
