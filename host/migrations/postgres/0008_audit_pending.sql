-- jitgate store, version 8: audit records are staged, then chained.
--
-- A transaction that records something inserts its records here, without
-- any lock, and is answered after its own COMMIT (PostgreSQL flushes
-- concurrent commits together). A chainer (each replica's, or any reader
-- that must see everything) moves pending rows, in `id` order, into the
-- hash-chained `audit` table in one transaction under
-- pg_advisory_xact_lock: one lock hold and one WAL flush for many records
-- from every replica (see host/src/store/postgres.rs and ARCHITECTURE.md).
-- The existing chain is untouched.
CREATE TABLE audit_pending (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    grant_id   TEXT,
    request_id TEXT,
    -- The evidence as it will be stored in audit.data (canonical JSON).
    data       TEXT NOT NULL
);
-- As for `audit`, triggers stop honest mistakes: a pending record is never
-- edited, and only the chainer (which sets jitgate.chaining for its own
-- transaction) deletes, in the transaction that inserts it into `audit`.
CREATE FUNCTION audit_pending_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('jitgate.chaining', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'pending audit records are only moved into the chain';
END $$;
CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION audit_pending_guard();
CREATE TRIGGER audit_pending_no_delete BEFORE DELETE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION audit_pending_guard();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION audit_pending_guard();
