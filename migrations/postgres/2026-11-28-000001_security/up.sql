-- A per-principal epoch: access tokens carry the epoch they were minted under (claim
-- "ep"); bumping it (secret regeneration, password change or reset, disable, sign out
-- everywhere) ends every access token minted before, at the management API and at
-- introspection.
ALTER TABLE users ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE service_accounts ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
-- Whether an app may call /oauth/introspect (an admin's decision; off by default).
ALTER TABLE apps ADD COLUMN introspect BOOLEAN NOT NULL DEFAULT FALSE;

-- Interactive logins. A login access token names its session (claim "sid"); logout,
-- password changes and resets end sessions. A session lives while it is not revoked and
-- its epoch is not below the user's.
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  user_id TEXT NOT NULL REFERENCES users(id),
  epoch BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Access tokens revoked by jti at /oauth/revoke, kept until they expire.
CREATE TABLE revoked_jtis (
  jti TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_jtis_expires ON revoked_jtis (expires_at);

-- One-time password reset codes (only their SHA-256 is stored), valid one hour.
CREATE TABLE reset_codes (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  user_id TEXT NOT NULL REFERENCES users(id),
  code_hash TEXT NOT NULL UNIQUE,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX reset_codes_user ON reset_codes (user_id);
