-- The console's confirmation-latency histogram, maintained: see the PostgreSQL migration
-- 0020. Bucket: how many of the bounds 5, 10, 15, 20, 25, 30, 45 and 60 minutes are at or
-- below the latency.

CREATE TABLE confirmation_minute_buckets (
    day    TEXT    NOT NULL,
    bucket INTEGER NOT NULL,
    shard  INTEGER NOT NULL,
    orders INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, bucket, shard)
) WITHOUT ROWID;

INSERT INTO confirmation_minute_buckets (day, bucket, shard, orders)
SELECT day, (ms >= 300000) + (ms >= 600000) + (ms >= 900000) + (ms >= 1200000)
            + (ms >= 1500000) + (ms >= 1800000) + (ms >= 2700000) + (ms >= 3600000),
       0, sum(orders)
FROM confirmation_ms GROUP BY 1, 2 HAVING sum(orders) <> 0;
