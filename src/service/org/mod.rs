//! Organizations and their policy (maximum TTLs, idle TTL, reach defaults, retention), and
//! the audit log as read back.
pub mod audit_log;
pub mod orgs;
pub mod policy;
