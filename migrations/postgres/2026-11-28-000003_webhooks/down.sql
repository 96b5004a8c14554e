DROP INDEX api_tokens_expiry_scan;
ALTER TABLE api_tokens DROP COLUMN expiry_notice;
DROP TABLE webhook_deliveries;
DROP TABLE outbox;
DROP TABLE webhooks;
