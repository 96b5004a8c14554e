-- Keyless clients (issue #22): a trust policy lets tokens of an external OIDC issuer (a CI
-- system, a Kubernetes cluster) be exchanged for access tokens of one service account.
-- conditions: a JSON object {claim: pattern}; roles: a sorted JSON array (a subset of the
-- service account's); max_age_seconds: how old (by iat) an external token may be.
CREATE TABLE trust_policies (
  id TEXT PRIMARY KEY,
  org_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  issuer TEXT NOT NULL,
  audience TEXT NOT NULL,
  conditions TEXT NOT NULL,
  service_account_id TEXT NOT NULL,
  roles TEXT NOT NULL,
  max_age_seconds BIGINT NOT NULL,
  disabled BOOLEAN NOT NULL DEFAULT FALSE,
  created_by TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX trust_policies_issuer ON trust_policies (issuer);
CREATE INDEX trust_policies_org ON trust_policies (org_id, created_at);
-- Delegation (RFC 8693 actor_token): the resource audiences an app may obtain tokens for
-- on behalf of a user whose access token it holds. One row per (app, audience).
CREATE TABLE app_delegations (
  app_id TEXT NOT NULL,
  audience TEXT NOT NULL,
  org_id TEXT NOT NULL,
  created_by TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (app_id, audience)
);
