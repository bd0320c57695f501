-- jitgate store, version 5. (Version 4 is another change; the runner
-- applies every known migration not yet recorded, in order, so 4 and 5 may
-- land in either order. Each migration therefore touches only its own
-- tables.)
-- The policy sets this store's hosts accepted: the highest sequence is the
-- floor below which a signed set is refused as a rollback, across restarts
-- and replicas.
CREATE TABLE policy_sets (
    digest      TEXT PRIMARY KEY,
    sequence    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    signers     TEXT NOT NULL,
    accepted_at INTEGER NOT NULL
);
CREATE INDEX policy_sets_sequence ON policy_sets (sequence);
