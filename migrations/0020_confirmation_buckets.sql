-- The console's confirmation-latency histogram, maintained (issue 14): per shop-zone day of
-- creation, the orders in each of its buckets (how many of the bounds 5, 10, 15, 20, 25, 30,
-- 45 and 60 minutes are at or below the latency; src/store/mod.rs, CONFIRMATION_MINUTES),
-- kept by the batch transaction with confirmation_ms. The dashboard's 30 days read ten rows
-- a day (and writer shard) instead of a row per order (70-100 ms at 5 million events).

CREATE TABLE confirmation_minute_buckets (
    day    date    NOT NULL,
    bucket integer NOT NULL,
    shard  integer NOT NULL,
    orders bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (day, bucket, shard)
);
COMMENT ON TABLE confirmation_minute_buckets IS 'Confirmation latency in the console''s histogram buckets: per shop-zone day of order.created and bucket, how many orders (summed over the writer shards).';
COMMENT ON COLUMN confirmation_minute_buckets.day IS 'Shop-zone day of order.created.';
COMMENT ON COLUMN confirmation_minute_buckets.bucket IS 'How many of the bounds 5, 10, 15, 20, 25, 30, 45 and 60 minutes are at or below the latency (0: under 5 minutes, 8: an hour or more).';
COMMENT ON COLUMN confirmation_minute_buckets.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN confirmation_minute_buckets.orders IS 'Orders with that day and bucket (this shard''s share).';

INSERT INTO confirmation_minute_buckets (day, bucket, shard, orders)
SELECT day, width_bucket((ms / 60000.0)::float8, '{5,10,15,20,25,30,45,60}'::float8[]), 0,
       sum(orders)
FROM confirmation_ms GROUP BY 1, 2 HAVING sum(orders) <> 0;
