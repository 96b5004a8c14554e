DROP TABLE audit_events; DROP TABLE saved_searches; DROP TABLE policies; DROP TABLE apps;
DROP TABLE api_tokens; DROP TABLE service_accounts; DROP TABLE roles; DROP TABLE users; DROP TABLE orgs;
