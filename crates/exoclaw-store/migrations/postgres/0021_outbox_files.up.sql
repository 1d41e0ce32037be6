-- exoclaw schema 21 (postgres): an outbox message may carry a file (an
-- agent's channel_send_file): its name, type and bytes, kept with the
-- message so a restart, or another gateway on the same database, delivers
-- exactly what was queued; the bytes are dropped once the message is sent
-- or dead-lettered. Keep in step with ../sqlite/0021_outbox_files.up.sql.

ALTER TABLE channel_outbox ADD COLUMN file_name TEXT;
ALTER TABLE channel_outbox ADD COLUMN file_mime TEXT;
ALTER TABLE channel_outbox ADD COLUMN file_bytes BYTEA;
