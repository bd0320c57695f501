-- jitgate store, version 5 (PostgreSQL). See the SQLite migration for why.
CREATE TABLE policy_sets (
    digest      TEXT PRIMARY KEY,
    sequence    BIGINT NOT NULL,
    version     TEXT NOT NULL,
    signers     TEXT NOT NULL,
    accepted_at BIGINT NOT NULL
);
CREATE INDEX policy_sets_sequence ON policy_sets (sequence);
