-- jitgate store, version 1, PostgreSQL dialect of host/migrations/0001_init.sql
-- (same tables, columns and meaning; times are Unix milliseconds in BIGINT).
CREATE TABLE grants (
    id                     TEXT PRIMARY KEY,
    request_id             TEXT NOT NULL UNIQUE,
    subject                TEXT NOT NULL,
    ticket_id              TEXT,
    state                  TEXT NOT NULL,
    expires_at             BIGINT,
    lapses_at              BIGINT,
    revoke_on_ticket_close BOOLEAN NOT NULL,
    created_at             BIGINT NOT NULL,
    doc                    TEXT NOT NULL
);
CREATE INDEX grants_active_expiry ON grants (expires_at) WHERE state = 'active';
CREATE INDEX grants_pending_lapse ON grants (lapses_at) WHERE state = 'pending';
CREATE INDEX grants_ticket ON grants (ticket_id);
CREATE INDEX grants_state ON grants (state, created_at);

-- Append-only, hash-chained (see host/src/audit). Appends are serialized by
-- pg_advisory_xact_lock (see host/src/store/postgres.rs); the triggers stop
-- honest mistakes, the chain catches dishonest ones.
CREATE TABLE audit (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    grant_id   TEXT,
    request_id TEXT,
    data       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_grant ON audit (grant_id);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Provisioning events, written in the same transaction as the transition
-- they announce; claimed with a lease (next_at pushed forward) by whichever
-- replica's dispatcher gets there first.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    grant_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    delivered_at BIGINT
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE delivered_at IS NULL;

-- Break-glass grants get a review item that an auditor closes.
CREATE TABLE reviews (
    id         TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    opened_at  BIGINT NOT NULL,
    closed_at  BIGINT,
    closed_by  TEXT,
    note       TEXT
);
