DROP INDEX api_tokens_org_revoked;
ALTER TABLE apps DROP COLUMN previous_secret_expires_at;
ALTER TABLE apps DROP COLUMN previous_secret_hash;
ALTER TABLE policies DROP COLUMN allow_self_rotation;
ALTER TABLE policies DROP COLUMN retention_days;
