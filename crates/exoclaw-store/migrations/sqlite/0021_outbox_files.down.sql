ALTER TABLE channel_outbox DROP COLUMN file_bytes;
ALTER TABLE channel_outbox DROP COLUMN file_mime;
ALTER TABLE channel_outbox DROP COLUMN file_name;
