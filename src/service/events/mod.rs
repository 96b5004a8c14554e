//! What happened: the audit log and the webhook/email outbox written from the same events.
pub mod audit;
pub mod webhooks;
