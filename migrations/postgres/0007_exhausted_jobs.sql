-- The claim fails jobs that used up their attempts; this index finds those few rows without
-- scanning every due job (which grows with the backlog).
CREATE INDEX jobs_attempts ON jobs (attempts);
