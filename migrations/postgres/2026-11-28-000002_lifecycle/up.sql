-- Token lifecycle (issue #10).
-- Retention: revoked and expired API tokens leave the default lists after this many days
-- and are then purged (their audit rows stay). Self-rotation: a script may rotate the API
-- token it holds with that token alone (off by default).
ALTER TABLE policies ADD COLUMN retention_days BIGINT NOT NULL DEFAULT 90;
ALTER TABLE policies ADD COLUMN allow_self_rotation BOOLEAN NOT NULL DEFAULT FALSE;
-- App secret rotation with a grace period: the previous secret's hash and the end of its
-- grace, read in the same query as the current hash. Cleared by maintenance after the
-- grace (and refused by the check regardless once the time has passed).
ALTER TABLE apps ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE apps ADD COLUMN previous_secret_expires_at BIGINT;
-- The purge's scan: ended tokens by revocation time.
CREATE INDEX api_tokens_org_revoked ON api_tokens (org_id, revoked_at);
