DROP TABLE revocation_feed;
