-- The revocation feed (GET /oauth/revocations, issue #19): one row per revocation an
-- offline verifier must learn of, numbered in commit order (seq; on PostgreSQL writers
-- take an advisory lock so that a lower seq never commits after a higher one). Kinds:
-- 'jti' (an access token by id), 'token' (an API token: its id is the client_id claim
-- of the access tokens exchanged from it), 'principal' (access tokens of subject whose
-- ep claim is below epoch). Rows are kept until keep_until: no access token they
-- concern can still be live after it.
CREATE TABLE revocation_feed (
  seq BIGSERIAL PRIMARY KEY,
  org_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  acct TEXT,
  epoch BIGINT,
  at BIGINT NOT NULL,
  keep_until BIGINT NOT NULL
);
CREATE INDEX revocation_feed_org ON revocation_feed (org_id, seq);
CREATE INDEX revocation_feed_keep ON revocation_feed (keep_until);
