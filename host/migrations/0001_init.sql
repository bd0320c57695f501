-- jitgate store, version 1.
-- Grants are kept as one JSON document each (the evidence), with the fields
-- the service queries by pulled out into indexed columns.
CREATE TABLE grants (
    id                     TEXT PRIMARY KEY,
    request_id             TEXT NOT NULL UNIQUE,
    subject                TEXT NOT NULL,
    ticket_id              TEXT,
    state                  TEXT NOT NULL,
    expires_at             INTEGER,
    lapses_at              INTEGER,
    revoke_on_ticket_close INTEGER NOT NULL,
    created_at             INTEGER NOT NULL,
    doc                    TEXT NOT NULL
);
CREATE INDEX grants_active_expiry ON grants (expires_at) WHERE state = 'active';
CREATE INDEX grants_pending_lapse ON grants (lapses_at) WHERE state = 'pending';
CREATE INDEX grants_ticket ON grants (ticket_id);
CREATE INDEX grants_state ON grants (state, created_at);

-- Append-only, hash-chained (see host/src/audit). The triggers stop honest
-- mistakes; the chain catches dishonest ones.
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    grant_id   TEXT,
    request_id TEXT,
    data       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_grant ON audit (grant_id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

-- Provisioning events, written in the same transaction as the transition
-- they announce; delivered at least once by the dispatcher.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    grant_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    delivered_at INTEGER
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE delivered_at IS NULL;

-- Break-glass grants get a review item that an auditor closes.
CREATE TABLE reviews (
    id         TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    opened_at  INTEGER NOT NULL,
    closed_at  INTEGER,
    closed_by  TEXT,
    note       TEXT
);
