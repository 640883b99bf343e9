-- Every page delivery (one contact, one channel, one escalation step of one plan) and where it
-- stands: `queued` (the step enqueued it), `sending` (in flight: checked against the incident
-- and being sent now), `sent`, `failed` (the last attempt failed; retries may follow) or
-- `stopped` (the incident was acknowledged or resolved before it was sent). An acknowledgement
-- reads the `sending` rows to say which pages it raced; a PagerDuty resolve waits for them.
CREATE TABLE page_deliveries (
    page_key   TEXT PRIMARY KEY,
    incident   BIGINT NOT NULL REFERENCES incidents (number),
    plan       BIGINT NOT NULL,
    step       BIGINT NOT NULL,
    contact    TEXT NOT NULL,
    channel    TEXT NOT NULL,
    state      TEXT NOT NULL,
    detail     TEXT,
    -- Failed attempts so far (a permanent failure counts as many).
    failures   BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);
CREATE INDEX page_deliveries_incident ON page_deliveries (incident, state);

-- Emails sent one per recipient (the customer email): a retry skips those already sent.
CREATE TABLE mail_deliveries (
    mail_key  TEXT NOT NULL,
    recipient TEXT NOT NULL,
    incident  BIGINT NOT NULL REFERENCES incidents (number),
    sent_at   BIGINT NOT NULL,
    PRIMARY KEY (mail_key, recipient)
);
