DROP TABLE app_delegations;
DROP TABLE trust_policies;
