-- Per-credential reach (issue #26): the resource audiences an API token or app may be
-- exchanged for (a JSON array; "*" = every configured resource audience, also ones added
-- later) and, separately, whether it may reach the management API. Credentials that
-- existed before keep the reach they had: everything, the management API included. New
-- ones get their values from the creating request and the org's policy.
ALTER TABLE api_tokens ADD COLUMN audiences TEXT NOT NULL DEFAULT '["*"]';
ALTER TABLE api_tokens ADD COLUMN management BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE apps ADD COLUMN audiences TEXT NOT NULL DEFAULT '["*"]';
ALTER TABLE apps ADD COLUMN management BOOLEAN NOT NULL DEFAULT TRUE;
-- Policy: the audiences new credentials get when the request names none, and the roles a
-- credential must carry one of to reach the management API (NULL: no such restriction).
ALTER TABLE policies ADD COLUMN default_audiences TEXT NOT NULL DEFAULT '["*"]';
ALTER TABLE policies ADD COLUMN allow_management_audience_for TEXT;
