-- Resolution details (JSON), closing, and when the hotfix was seen in production.
ALTER TABLE incidents ADD COLUMN resolution TEXT;
ALTER TABLE incidents ADD COLUMN fix_deployed_at BIGINT;
ALTER TABLE incidents ADD COLUMN closed_at BIGINT;
