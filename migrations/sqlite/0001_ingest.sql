-- SQLite edition of ../0001_ingest.sql: the same tables with the same meaning (see the
-- PostgreSQL migrations for the column documentation). Timestamps are TEXT in one fixed-width
-- UTC form, 2026-10-01T07:00:00.000000Z, so that text order is time order; days are TEXT
-- YYYY-MM-DD; booleans are 0/1; JSON is TEXT.

-- Event store: every valid CloudEvent consumed, deduplicated by (source, id).
CREATE TABLE events (
    source      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    time        TEXT    NOT NULL,
    order_id    TEXT,
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    "offset"    INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    stored_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (source, id)
);
-- Also the rebuild's reading order.
CREATE INDEX events_order_id ON events (order_id, source, id);

-- Records that could not be decoded, with their Kafka coordinates, the reason and the raw bytes.
CREATE TABLE rejected_events (
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    "offset"    INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    key         BLOB,
    raw         BLOB,
    rejected_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX rejected_events_reason ON rejected_events (reason);

-- Next Kafka offset to read per partition; committed with each batch, the source of truth on
-- assignment.
CREATE TABLE consumer_offsets (
    topic       TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (topic, partition)
);
