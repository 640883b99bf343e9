-- warroom schema, PostgreSQL. Times are Unix milliseconds (UTC).

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('incident', 0);

CREATE TABLE incidents (
    number          BIGINT PRIMARY KEY,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    severity        TEXT NOT NULL,
    status          TEXT NOT NULL,
    platform        TEXT NOT NULL,
    declared_by     TEXT NOT NULL,
    declared_in     TEXT NOT NULL,
    declared_at     BIGINT NOT NULL,
    target_at       BIGINT NOT NULL,
    channel_name    TEXT NOT NULL,
    war_room_id     TEXT UNIQUE,
    war_room_name   TEXT,
    kickoff_ref     TEXT,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    resolved_at     BIGINT,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status);

CREATE TABLE checklist_items (
    incident BIGINT NOT NULL REFERENCES incidents (number),
    position BIGINT NOT NULL,
    text     TEXT NOT NULL,
    done_by  TEXT,
    done_at  BIGINT,
    PRIMARY KEY (incident, position)
);

CREATE TABLE roles (
    incident    BIGINT NOT NULL REFERENCES incidents (number),
    role        TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (incident, role)
);

CREATE TABLE timeline_events (
    id         BIGSERIAL PRIMARY KEY,
    incident   BIGINT NOT NULL REFERENCES incidents (number),
    at         BIGINT NOT NULL,
    actor      TEXT,
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    -- Identifies an event that must exist at most once (a pinned message, a page).
    source_key TEXT UNIQUE
);
CREATE INDEX timeline_events_incident ON timeline_events (incident, at, id);

CREATE TABLE jobs (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT NOT NULL,
    incident    BIGINT,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    run_at      BIGINT NOT NULL,
    -- The job waits until this one has succeeded (chaining: the kickoff needs the channel).
    blocked_by  BIGINT REFERENCES jobs (id),
    attempts    BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    last_error  TEXT,
    dedup_key   TEXT UNIQUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_blocked_by ON jobs (blocked_by);
CREATE INDEX jobs_incident ON jobs (incident, kind);

CREATE TABLE inbound_ids (
    key         TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
