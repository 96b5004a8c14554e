-- Console sign-ins are login sessions too (so epoch bumps, disabling, logout and
-- sign-out-everywhere end them). The browser holds a random secret in an HttpOnly cookie;
-- only its SHA-256 (hex) is stored here. API logins leave it NULL.
ALTER TABLE sessions ADD COLUMN secret_hash TEXT;
CREATE UNIQUE INDEX sessions_secret ON sessions (secret_hash);
