-- jitgate store, version 3 (PostgreSQL). See the SQLite migration for why.
CREATE FUNCTION pg_temp.jitgate_requested_by(d TEXT) RETURNS TEXT AS $$
BEGIN
    RETURN COALESCE(d::jsonb ->> 'requested-by', '');
EXCEPTION WHEN others THEN
    RETURN '';
END $$ LANGUAGE plpgsql;
ALTER TABLE grants ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';
UPDATE grants SET requested_by = pg_temp.jitgate_requested_by(doc);
ALTER TABLE grants DROP CONSTRAINT grants_request_id_key;
ALTER TABLE grants ADD CONSTRAINT grants_request_scope UNIQUE (requested_by, request_id);

CREATE TABLE quarantine (
    grant_id TEXT PRIMARY KEY,
    found_at BIGINT NOT NULL,
    reason   TEXT NOT NULL,
    doc      TEXT NOT NULL
);
CREATE INDEX grants_subject ON grants (subject, created_at);
