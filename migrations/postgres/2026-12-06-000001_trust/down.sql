ALTER TABLE reset_codes DROP COLUMN user_roles;
ALTER TABLE api_tokens DROP COLUMN secret_seen_by;
ALTER TABLE webhooks DROP COLUMN secret_seen_by;
ALTER TABLE apps DROP COLUMN secret_seen_by;
