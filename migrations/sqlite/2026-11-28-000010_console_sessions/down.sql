DROP INDEX sessions_secret;
ALTER TABLE sessions DROP COLUMN secret_hash;
