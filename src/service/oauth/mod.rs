//! The OAuth endpoints' rules: `POST /oauth/token` (every grant), forward-auth and
//! introspection for gateways, the revocation feed, and `federation` (external issuers'
//! tokens through trust policies, and delegation).
pub mod credential_cache;
pub mod exchange;
pub mod federation;
pub mod gateway;
pub mod introspection;
pub mod revocations;
pub mod revoke;
