-- Jobs that render the latest state (the kickoff message) coalesce: at most one pending job
-- per key, and a job is not claimed while another with its key is running, so updates of one
-- message are applied one at a time and the last one shows the true state.
ALTER TABLE jobs ADD COLUMN coalesce_key TEXT;
CREATE UNIQUE INDEX jobs_coalesce_pending ON jobs (coalesce_key) WHERE state = 'pending';
CREATE INDEX jobs_coalesce_running ON jobs (coalesce_key, state);
