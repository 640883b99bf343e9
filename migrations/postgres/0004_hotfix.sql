-- Hotfix tracking: linked fixes, what each health-checked service last reported, and per
-- incident the versions running at declaration and the version the fix replaced.
CREATE TABLE hotfix_links (
    id        BIGSERIAL PRIMARY KEY,
    incident  BIGINT NOT NULL REFERENCES incidents (number),
    url       TEXT NOT NULL,
    version   TEXT,
    linked_by TEXT NOT NULL,
    linked_at BIGINT NOT NULL
);
CREATE INDEX hotfix_links_incident ON hotfix_links (incident);

CREATE TABLE service_states (
    service    TEXT PRIMARY KEY,
    version    TEXT,
    failing    TEXT,
    updated_at BIGINT NOT NULL
);

ALTER TABLE incidents ADD COLUMN fix_from_version TEXT;
ALTER TABLE incidents ADD COLUMN versions_at_open TEXT;
