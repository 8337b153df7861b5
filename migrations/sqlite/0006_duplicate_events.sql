-- Every record is accounted for: a record below a partition's stored next offset is in
-- `events` (its first copy), in `rejected_events`, or here (a later copy of an event already
-- stored). See the PostgreSQL migration 0007.
CREATE TABLE duplicate_events (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    "offset"    integer NOT NULL,
    source      text    NOT NULL,
    id          text    NOT NULL,
    seen_at     text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (topic, partition, "offset")
) WITHOUT ROWID;
