DROP TABLE reset_codes;
DROP TABLE revoked_jtis;
DROP TABLE sessions;
ALTER TABLE apps DROP COLUMN introspect;
ALTER TABLE apps DROP COLUMN epoch;
ALTER TABLE service_accounts DROP COLUMN epoch;
ALTER TABLE users DROP COLUMN epoch;
