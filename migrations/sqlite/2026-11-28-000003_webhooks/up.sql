-- Webhooks per org (issue #10, notifications). The signing secret is kept sealed
-- (AES-256-GCM with a key from the key directory, see README "Webhooks and email"):
-- the server must recover it to sign, so it cannot be a hash.
CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  url TEXT NOT NULL,
  description TEXT NOT NULL,
  events TEXT NOT NULL,
  enabled BOOLEAN NOT NULL,
  secret_sealed TEXT NOT NULL,
  secret_hint TEXT NOT NULL,
  created_by TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id, created_at);

-- The durable outbox: one row per (event, webhook) or (event, email recipient), written
-- in the transaction of the change; a worker delivers it at least once. A claim is a
-- lease (locked_until, locked_by) so that several instances never send a row at once.
CREATE TABLE outbox (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  webhook_id TEXT,
  recipient TEXT,
  attempts BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  locked_until BIGINT,
  locked_by TEXT,
  delivered_at BIGINT,
  failed_at BIGINT,
  last_error TEXT,
  created_at BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_claim ON outbox (locked_by);
CREATE INDEX outbox_webhook ON outbox (webhook_id);
CREATE INDEX outbox_created ON outbox (created_at);

-- One row per delivery attempt of a webhook, readable through the API; trimmed to the
-- last 100 per webhook.
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  webhook_id TEXT NOT NULL,
  org_id TEXT NOT NULL,
  outbox_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  attempt BIGINT NOT NULL,
  at BIGINT NOT NULL,
  status_code BIGINT,
  duration_ms BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  error TEXT
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, at);

-- The last expiry notice of a token, in days before expiry: 14, 7, 1, or 0 (expired).
-- Set by a conditional UPDATE in the transaction that queues the notice, so each
-- milestone is emitted once even with several instances. Tokens already expired when
-- this migration runs are not announced.
ALTER TABLE api_tokens ADD COLUMN expiry_notice BIGINT;
UPDATE api_tokens SET expiry_notice = 0 WHERE expires_at <= CAST(strftime('%s','now') AS BIGINT);
CREATE INDEX api_tokens_expiry_scan ON api_tokens (expiry_notice, expires_at) WHERE revoked_at IS NULL;
