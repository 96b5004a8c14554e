//! Who the caller is and what they may do: the authenticated principal, the role catalogue
//! and grants, per-credential reach (audiences, management) and the failure throttle.
pub mod bearer;
pub mod principal;
pub mod reach;
pub mod role;
pub mod roles;
pub mod throttle;
