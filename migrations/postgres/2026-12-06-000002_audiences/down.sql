ALTER TABLE policies DROP COLUMN allow_management_audience_for;
ALTER TABLE policies DROP COLUMN default_audiences;
ALTER TABLE apps DROP COLUMN management;
ALTER TABLE apps DROP COLUMN audiences;
ALTER TABLE api_tokens DROP COLUMN management;
ALTER TABLE api_tokens DROP COLUMN audiences;
