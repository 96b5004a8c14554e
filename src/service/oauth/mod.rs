//! The OAuth endpoints' rules: `POST /oauth/token` (every grant), forward-auth and
//! introspection for gateways, and the revocation feed.
pub mod exchange;
pub mod gateway;
pub mod introspection;
pub mod revocations;
pub mod revoke;
