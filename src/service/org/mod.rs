//! Organizations and their policy (maximum TTLs, idle TTL, reach defaults, retention).
pub mod orgs;
pub mod policy;
