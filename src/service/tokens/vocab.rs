//! The words of the token lists: who owns a token, the status a list shows, and the
//! values of the lists' `status` and `usage` filters. On the wire and in the database
//! plain strings (`as_str`); the OpenAPI enums are built from the same lists.
use crate::service::words;

words!(
    /// Who owns an API token.
    pub OwnerKind { User = "user", ServiceAccount = "service_account" }
);

words!(
    /// The status of a token as a list shows it.
    pub TokenStatus {
        Active = "active",
        Expired = "expired",
        Revoked = "revoked",
        /// Unused beyond its idle TTL.
        Idle = "idle",
        /// Active itself, but its owner (the person or service account) is disabled, so
        /// the exchange refuses it.
        OwnerDisabled = "owner_disabled",
    }
);

words!(
    /// The `status` filter of every token list: a status, or `expiring_soon`.
    pub StatusFilter {
        Active = "active",
        /// Active by itself, but its owner is disabled (the exchange refuses it).
        OwnerDisabled = "owner_disabled",
        Expired = "expired",
        Revoked = "revoked",
        Idle = "idle",
        ExpiringSoon = "expiring_soon",
    }
);

words!(
    /// The `usage` filter of the org table.
    pub UsageFilter { NeverUsed = "never_used", Used = "used" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_serialize_as_their_text() {
        for s in TokenStatus::ALL {
            assert_eq!(TokenStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert_eq!(StatusFilter::parse("expiring_soon"), Some(StatusFilter::ExpiringSoon));
        assert_eq!(OwnerKind::parse("app"), None);
    }
}
