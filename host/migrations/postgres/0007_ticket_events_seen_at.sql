-- jitgate store, version 7: event ids seen per ticket source are pruned
-- once older than a day (store::tickets::SEEN_EVENT_RETENTION_MS) as new
-- events arrive; this index keeps that delete a range scan.
CREATE INDEX ticket_events_seen_at ON ticket_events_seen (seen_at);
