-- jitgate store, version 2, PostgreSQL dialect of
-- host/migrations/0002_outbox_sequence.sql: per-grant order of provisioning
-- events. A dispatcher (on any replica) claims an event only once every
-- earlier event of its grant was delivered.
ALTER TABLE outbox ADD COLUMN sequence BIGINT NOT NULL DEFAULT 0;
UPDATE outbox SET sequence = n.seq
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY grant_id ORDER BY created_at, id) AS seq FROM outbox) n
WHERE outbox.id = n.id;
CREATE UNIQUE INDEX outbox_grant_sequence ON outbox (grant_id, sequence);
