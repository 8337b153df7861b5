-- Order to dispatch and the confirmation latencies in buckets, kept by the batch
-- transaction with their distributions, and claims per category from the claims journal
-- (see the PostgreSQL migration 0021; SQLite's percentile views rank the values as before).

CREATE TABLE dispatch_buckets (
    month  TEXT    NOT NULL,
    bucket INTEGER NOT NULL,  -- whole seconds from order.created to order.shipped / 600, rounded down
    shard  INTEGER NOT NULL,
    orders INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, bucket, shard)
) WITHOUT ROWID;

CREATE TABLE confirmation_ms_buckets (
    day    TEXT    NOT NULL,
    bucket INTEGER NOT NULL,  -- confirmation latency in milliseconds / 60000, rounded down
    shard  INTEGER NOT NULL,
    orders INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, bucket, shard)
) WITHOUT ROWID;

INSERT INTO dispatch_buckets (month, bucket, shard, orders)
SELECT month, (seconds - ((seconds % 600 + 600) % 600)) / 600, 0, sum(orders)
FROM dispatch_seconds GROUP BY 1, 2 HAVING sum(orders) <> 0;
INSERT INTO confirmation_ms_buckets (day, bucket, shard, orders)
SELECT day, (ms - ((ms % 60000 + 60000) % 60000)) / 60000, 0, sum(orders)
FROM confirmation_ms GROUP BY 1, 2 HAVING sum(orders) <> 0;

DROP VIEW claims_monthly;
CREATE VIEW claims_monthly AS
WITH months AS (
    SELECT month, category, sum(filed) AS claims
    FROM claims_journal_shards GROUP BY month, category HAVING sum(filed) > 0
)
SELECT month, category, claims,
       lag(claims) OVER w AS previous_month_claims,
       CASE WHEN lag(month) OVER w = date(month, '-1 month') AND lag(claims) OVER w > 0
            THEN CAST(claims AS REAL) / lag(claims) OVER w - 1 END AS change
FROM months
WINDOW w AS (PARTITION BY category ORDER BY month);
