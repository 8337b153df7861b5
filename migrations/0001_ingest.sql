-- Ingest bookkeeping: the raw event store, rejected records and the offsets that are the truth.

-- Every valid CloudEvent ever consumed, once. (source, id) is the event's identity, so a
-- producer's retry lands on the primary key and is ignored.
CREATE TABLE events (
    source      text        NOT NULL,  -- CloudEvents `source`: with `id`, identifies the event
    id          text        NOT NULL,  -- CloudEvents `id`
    type        text        NOT NULL,  -- CloudEvents `type`; unknown types are kept too, for later versions
    time        timestamptz NOT NULL,  -- event time: when it happened in the shop
    order_id    text,                  -- the order it belongs to (null for unknown types)
    topic       text        NOT NULL,  -- where it was first read, for tracing back to Kafka
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    payload     jsonb       NOT NULL,  -- the whole envelope as received, for rebuilds and audits
    stored_at   timestamptz NOT NULL DEFAULT now(),  -- when this service committed it
    PRIMARY KEY (source, id)
);
CREATE INDEX events_order_id ON events (order_id);
COMMENT ON TABLE events IS 'Event store: every valid CloudEvent consumed, deduplicated by (source, id).';
COMMENT ON COLUMN events.source IS 'CloudEvents source; with id, the identity of the event.';
COMMENT ON COLUMN events.id IS 'CloudEvents id; a retry with the same (source, id) is one event.';
COMMENT ON COLUMN events.type IS 'CloudEvents type, e.g. order.created; unknown types are stored and skipped by the fold.';
COMMENT ON COLUMN events.time IS 'Event time (when it happened in the shop), from the CloudEvents time attribute.';
COMMENT ON COLUMN events.order_id IS 'Order the event belongs to; null for types this version does not know.';
COMMENT ON COLUMN events.topic IS 'Kafka topic the event was first read from.';
COMMENT ON COLUMN events.partition IS 'Kafka partition the event was first read from.';
COMMENT ON COLUMN events."offset" IS 'Kafka offset the event was first read at.';
COMMENT ON COLUMN events.payload IS 'The CloudEvent envelope as received.';
COMMENT ON COLUMN events.stored_at IS 'When the batch holding the event was committed.';

-- Records that could not be read. Never lost, never blocking: kept with coordinates and reason.
CREATE TABLE rejected_events (
    topic       text        NOT NULL,  -- coordinates of the record in Kafka
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    reason      text        NOT NULL,  -- bounded label: not_json, not_cloudevent, missing_field, bad_value, bad_time
    detail      text        NOT NULL,  -- what exactly was wrong, for a human
    key         bytea,                 -- the Kafka key as received
    raw         bytea,                 -- the record value as received (null when the record had none)
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX rejected_events_reason ON rejected_events (reason);
COMMENT ON TABLE rejected_events IS 'Records that could not be decoded, with their Kafka coordinates, the reason and the raw bytes.';
COMMENT ON COLUMN rejected_events.topic IS 'Kafka topic of the record.';
COMMENT ON COLUMN rejected_events.partition IS 'Kafka partition of the record.';
COMMENT ON COLUMN rejected_events."offset" IS 'Kafka offset of the record.';
COMMENT ON COLUMN rejected_events.reason IS 'Bounded reason label (also the reason label of perfect_order_rejected_events_total).';
COMMENT ON COLUMN rejected_events.detail IS 'Human-readable detail, e.g. the missing field.';
COMMENT ON COLUMN rejected_events.key IS 'Kafka record key as received.';
COMMENT ON COLUMN rejected_events.raw IS 'Kafka record value as received.';
COMMENT ON COLUMN rejected_events.rejected_at IS 'When the batch holding the record was committed.';

-- The offset table is the truth: on assignment the consumer seeks here, and a batch commits
-- its events, projections, KPIs and these offsets in one transaction.
CREATE TABLE consumer_offsets (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,  -- the first offset not yet applied
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
COMMENT ON TABLE consumer_offsets IS 'Next Kafka offset to read per partition; committed with each batch, the source of truth on assignment.';
COMMENT ON COLUMN consumer_offsets.topic IS 'Kafka topic.';
COMMENT ON COLUMN consumer_offsets.partition IS 'Kafka partition.';
COMMENT ON COLUMN consumer_offsets.next_offset IS 'First offset not yet applied to the tables.';
COMMENT ON COLUMN consumer_offsets.updated_at IS 'When the last batch of this partition committed.';
