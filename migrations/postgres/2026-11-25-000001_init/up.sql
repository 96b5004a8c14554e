CREATE TABLE orgs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  password_hash TEXT,
  roles TEXT NOT NULL,
  disabled BOOLEAN NOT NULL DEFAULT FALSE,
  deleted_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_org_email ON users (org_id, email) WHERE deleted_at IS NULL;
CREATE INDEX users_email ON users (email);
CREATE INDEX users_org_created ON users (org_id, created_at, id);

CREATE TABLE roles (
  org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  description TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (org_id, name)
);

CREATE TABLE service_accounts (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  roles TEXT NOT NULL,
  disabled BOOLEAN NOT NULL DEFAULT FALSE,
  deleted_at BIGINT,
  created_by TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX service_accounts_org_created ON service_accounts (org_id, created_at, id);

CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  owner_kind TEXT NOT NULL,
  owner_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  hint TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  roles TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  idle_ttl_days BIGINT,
  last_used_at BIGINT,
  last_used_ip TEXT,
  revoked_at BIGINT,
  revoked_by TEXT,
  created_by TEXT,
  -- Denormalised for the org-wide table: the owner's email (user) or name (service
  -- account), and lowercased name, description, hint and owner label for `q`, so that
  -- filters and sorts never need a join.
  owner_label TEXT NOT NULL DEFAULT '',
  search TEXT NOT NULL DEFAULT ''
);
CREATE INDEX api_tokens_org_created ON api_tokens (org_id, created_at, id);
CREATE INDEX api_tokens_org_owner_label ON api_tokens (org_id, owner_label, id);
CREATE INDEX api_tokens_org_last_used_sort ON api_tokens (org_id, (COALESCE(last_used_at, 0)), id);
CREATE INDEX api_tokens_org_owner ON api_tokens (org_id, owner_id, created_at, id);
CREATE INDEX api_tokens_org_name ON api_tokens (org_id, name, id);
CREATE INDEX api_tokens_org_expires ON api_tokens (org_id, expires_at, id);
CREATE INDEX api_tokens_org_last_used ON api_tokens (org_id, last_used_at, id);

CREATE TABLE apps (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  client_id TEXT NOT NULL UNIQUE,
  secret_hash TEXT NOT NULL,
  secret_hint TEXT NOT NULL,
  roles TEXT NOT NULL,
  access_token_ttl_seconds BIGINT NOT NULL,
  disabled BOOLEAN NOT NULL DEFAULT FALSE,
  created_by TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX apps_org_created ON apps (org_id, created_at, id);

CREATE TABLE policies (
  org_id TEXT PRIMARY KEY REFERENCES orgs(id),
  personal_token_max_ttl_days BIGINT NOT NULL,
  service_token_max_ttl_days BIGINT NOT NULL,
  idle_ttl_days BIGINT,
  max_tokens_per_service_account BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE saved_searches (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL REFERENCES orgs(id),
  name TEXT NOT NULL,
  query TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX saved_searches_org ON saved_searches (org_id, created_at, id);

CREATE TABLE audit_events (
  id TEXT PRIMARY KEY,
  org_id TEXT,
  at BIGINT NOT NULL,
  actor_kind TEXT NOT NULL,
  actor_id TEXT,
  action TEXT NOT NULL,
  object_kind TEXT,
  object_id TEXT,
  ip TEXT,
  outcome TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX audit_events_org_at ON audit_events (org_id, at, id);
