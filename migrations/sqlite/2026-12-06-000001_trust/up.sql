-- Credentials follow trust (issue #18).
-- Who has seen a working secret (JSON array of user ids): the creator, then whoever
-- regenerated it (with a grace period, the holders of the previous secret too). These
-- people are settled like creators when they leave or are demoted.
ALTER TABLE apps ADD COLUMN secret_seen_by TEXT NOT NULL DEFAULT '[]';
ALTER TABLE webhooks ADD COLUMN secret_seen_by TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_tokens ADD COLUMN secret_seen_by TEXT NOT NULL DEFAULT '[]';
UPDATE apps SET secret_seen_by = '["' || created_by || '"]' WHERE created_by IS NOT NULL;
UPDATE webhooks SET secret_seen_by = '["' || created_by || '"]' WHERE created_by IS NOT NULL;
UPDATE api_tokens SET secret_seen_by = '["' || created_by || '"]' WHERE created_by IS NOT NULL;
-- The person's roles when a reset code was issued: a code is void once they differ.
-- Codes pending at the upgrade have none and are void (they live an hour).
ALTER TABLE reset_codes ADD COLUMN user_roles TEXT;
