-- When a job's current run of failures began (the application's clock), so that an essential
-- job failing for long is reported once; and an index for the retention of finished jobs.
ALTER TABLE jobs ADD COLUMN failing_since BIGINT;
CREATE INDEX jobs_finished ON jobs (state, updated_at);
CREATE INDEX inbound_ids_received ON inbound_ids (received_at);
