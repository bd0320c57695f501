-- jitgate store, version 2: per-grant order of provisioning events.
-- `sequence` numbers a grant's events 1, 2, … in the order they were queued.
-- A dispatcher claims an event only once every earlier event of its grant
-- was delivered, and receivers get the number (payload `sequence`, header
-- `X-Jitgate-Sequence`) to drop stale redeliveries. Existing rows are
-- numbered by (created_at, id): `grant-activated` sorts before `grant-ended`.
ALTER TABLE outbox ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET sequence = n.seq
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY grant_id ORDER BY created_at, id) AS seq FROM outbox) AS n
WHERE outbox.id = n.id;
CREATE UNIQUE INDEX outbox_grant_sequence ON outbox (grant_id, sequence);
