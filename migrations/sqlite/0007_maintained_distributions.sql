-- Maintained distributions: the percentile views read one month's or one day's distribution
-- instead of every order of history. See the PostgreSQL migration 0008.

CREATE TABLE dispatch_seconds (
    month   TEXT    NOT NULL,  -- shop-zone month of order.shipped (first day)
    seconds INTEGER NOT NULL,  -- whole seconds from order.created to order.shipped
    shard   INTEGER NOT NULL,
    orders  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, seconds, shard)
) WITHOUT ROWID;

CREATE TABLE confirmation_ms (
    day    TEXT    NOT NULL,  -- shop-zone day of order.created
    ms     INTEGER NOT NULL,  -- confirmation latency in milliseconds
    shard  INTEGER NOT NULL,
    orders INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, ms, shard)
) WITHOUT ROWID;

INSERT INTO dispatch_seconds (month, seconds, shard, orders)
SELECT strftime('%Y-%m-01', shipped_day),
       CAST(unixepoch(shipped_at, 'subsec') - unixepoch(created_at, 'subsec') AS INTEGER)
       - ((unixepoch(shipped_at, 'subsec') - unixepoch(created_at, 'subsec'))
          < CAST(unixepoch(shipped_at, 'subsec') - unixepoch(created_at, 'subsec') AS INTEGER)),
       0, count(*)
FROM orders WHERE shipped_at IS NOT NULL AND created_at IS NOT NULL
GROUP BY 1, 2;
INSERT INTO confirmation_ms (day, ms, shard, orders)
SELECT created_day, CAST(round(confirmation_seconds * 1000) AS INTEGER), 0, count(*)
FROM orders WHERE confirmation_seconds IS NOT NULL
GROUP BY 1, 2;

DROP VIEW order_dispatch_monthly;
CREATE VIEW order_dispatch_monthly AS
WITH d AS (
    SELECT month, seconds, sum(orders) AS n FROM dispatch_seconds
    GROUP BY month, seconds HAVING sum(orders) > 0
),
c AS (
    SELECT month, seconds, n,
           sum(n) OVER (PARTITION BY month ORDER BY seconds) AS upto,
           sum(n) OVER (PARTITION BY month) AS total
    FROM d
)
SELECT month,
       max(total) AS shipped,
       min(seconds) FILTER (WHERE 2 * upto >= total) AS dispatch_p50_seconds,
       min(seconds) FILTER (WHERE 100 * upto >= 95 * total) AS dispatch_p95_seconds
FROM c GROUP BY month;

DROP VIEW confirmation_latency_daily;
CREATE VIEW confirmation_latency_daily AS
WITH d AS (
    SELECT day, ms, sum(orders) AS n FROM confirmation_ms
    GROUP BY day, ms HAVING sum(orders) > 0
),
c AS (
    SELECT day, ms, n,
           sum(n) OVER (PARTITION BY day ORDER BY ms) AS upto,
           sum(n) OVER (PARTITION BY day) AS total
    FROM d
)
SELECT day,
       max(total) AS confirmed,
       min(ms) FILTER (WHERE 2 * upto >= total) / 1000.0 AS p50_seconds,
       min(ms) FILTER (WHERE 100 * upto >= 95 * total) / 1000.0 AS p95_seconds,
       max(ms) / 1000.0 AS max_seconds,
       COALESCE(sum(n) FILTER (WHERE ms > (SELECT confirmation_sla FROM service_settings) * 1000), 0)
           AS over_sla
FROM c
GROUP BY day;
