//! Who holds credentials: people (users, login, passwords, sessions, reset codes), service
//! accounts and apps, and what happens to their credentials when trust in a person ends.
pub mod accounts;
pub mod apps;
pub mod credentials;
pub mod login;
pub mod passwords;
pub mod sessions;
pub mod users;
