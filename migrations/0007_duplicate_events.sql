-- Every record is accounted for: a record below a partition's stored next offset is in
-- `events` (its first copy), in `rejected_events`, or here (a later copy of an event already
-- stored: a producer retry or a replay from another offset). So for every partition, every
-- offset below `consumer_offsets.next_offset` can be found in exactly one of the three.
CREATE TABLE duplicate_events (
    topic       text COLLATE "C" NOT NULL,  -- coordinates of the duplicate record in Kafka
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    source      text COLLATE "C" NOT NULL,  -- the event it repeats: events (source, id)
    id          text COLLATE "C" NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);
COMMENT ON TABLE duplicate_events IS 'Records that repeated an event already stored (same source and id): their Kafka coordinates and the event they repeat, so every consumed offset is accounted for.';
COMMENT ON COLUMN duplicate_events.topic IS 'Kafka topic of the duplicate record.';
COMMENT ON COLUMN duplicate_events.partition IS 'Kafka partition of the duplicate record.';
COMMENT ON COLUMN duplicate_events."offset" IS 'Kafka offset of the duplicate record.';
COMMENT ON COLUMN duplicate_events.source IS 'CloudEvents source of the repeated event (events.source).';
COMMENT ON COLUMN duplicate_events.id IS 'CloudEvents id of the repeated event (events.id).';
COMMENT ON COLUMN duplicate_events.seen_at IS 'When the batch holding the duplicate was committed.';
COMMENT ON COLUMN rejected_events.reason IS 'Bounded reason label (also the reason label of perfect_order_rejected_events_total): not_json, not_cloudevent, missing_field, bad_value, bad_time, too_large, store_refused.';
