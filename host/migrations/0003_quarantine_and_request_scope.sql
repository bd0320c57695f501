-- jitgate store, version 3.
-- 1. Request ids are scoped to the principal that sent them: one principal
--    can no longer take an id another will use (nor learn the other's grant
--    id from the conflict). SQLite cannot drop a column's UNIQUE, so the
--    table is rebuilt; `requested_by` is filled from each document.
CREATE TABLE grants_v2 (
    id                     TEXT PRIMARY KEY,
    requested_by           TEXT NOT NULL,
    request_id             TEXT NOT NULL,
    subject                TEXT NOT NULL,
    ticket_id              TEXT,
    state                  TEXT NOT NULL,
    expires_at             INTEGER,
    lapses_at              INTEGER,
    revoke_on_ticket_close INTEGER NOT NULL,
    created_at             INTEGER NOT NULL,
    doc                    TEXT NOT NULL,
    UNIQUE (requested_by, request_id)
);
INSERT INTO grants_v2 (id, requested_by, request_id, subject, ticket_id, state, expires_at, lapses_at,
                       revoke_on_ticket_close, created_at, doc)
SELECT id,
       CASE WHEN json_valid(doc) THEN COALESCE(json_extract(doc, '$."requested-by"'), '') ELSE '' END,
       request_id, subject, ticket_id, state, expires_at, lapses_at, revoke_on_ticket_close, created_at, doc
FROM grants;
DROP TABLE grants;
ALTER TABLE grants_v2 RENAME TO grants;
CREATE INDEX grants_active_expiry ON grants (expires_at) WHERE state = 'active';
CREATE INDEX grants_pending_lapse ON grants (lapses_at) WHERE state = 'pending';
CREATE INDEX grants_ticket ON grants (ticket_id);
CREATE INDEX grants_state ON grants (state, created_at);
CREATE INDEX grants_subject ON grants (subject, created_at);

-- 2. Grant rows whose document no longer parses: the original text, kept
--    when the service goes on with a grant salvaged from the columns.
CREATE TABLE quarantine (
    grant_id TEXT PRIMARY KEY,
    found_at INTEGER NOT NULL,
    reason   TEXT NOT NULL,
    doc      TEXT NOT NULL
);
