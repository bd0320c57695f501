-- jitgate store, version 4 (PostgreSQL): the ticket registry. See the SQLite migration.
-- One row per ticket, whichever source reports it: a ticket id is owned by
-- the first source that reported it (another source reporting the same id
-- is refused). `updated_at` is the ticket system's own time of the change
-- applied last (later wins); `recorded_at` is jitgate's.
CREATE TABLE tickets (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    state         TEXT NOT NULL,
    priority      BIGINT,
    assignee      TEXT,
    opened_at     BIGINT,
    updated_at    BIGINT NOT NULL,
    last_event_id TEXT,
    recorded_at   BIGINT NOT NULL
);
-- Event ids seen per source: a replayed delivery changes nothing.
CREATE TABLE ticket_events_seen (
    source    TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (source, event_id)
);
