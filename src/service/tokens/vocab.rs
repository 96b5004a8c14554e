//! The words of the token lists: who owns a token, the status a list shows, and the
//! values of the lists' `status` and `usage` filters. On the wire and in the database
//! plain strings (`as_str`); the OpenAPI enums are built from the same lists.
use serde::Serialize;

fn one_of(values: impl IntoIterator<Item = &'static str>) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).enum_values(Some(values)).build()
}

macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|w| w.as_str() == s)
            }

            /// The OpenAPI schema: a string, one of [`Self::ALL`].
            pub fn schema() -> utoipa::openapi::Object {
                one_of($name::ALL.iter().map(|w| w.as_str()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(
    /// Who owns an API token.
    OwnerKind { User = "user", ServiceAccount = "service_account" }
);

words!(
    /// The status of a token as a list shows it.
    TokenStatus {
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
    StatusFilter {
        Active = "active",
        Expired = "expired",
        Revoked = "revoked",
        Idle = "idle",
        ExpiringSoon = "expiring_soon",
    }
);

words!(
    /// The `usage` filter of the org table.
    UsageFilter { NeverUsed = "never_used", Used = "used" }
);

impl From<OwnerKind> for crate::service::Acct {
    fn from(k: OwnerKind) -> crate::service::Acct {
        match k {
            OwnerKind::User => crate::service::Acct::User,
            OwnerKind::ServiceAccount => crate::service::Acct::ServiceAccount,
        }
    }
}

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
