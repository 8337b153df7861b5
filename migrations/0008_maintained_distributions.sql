-- Maintained distributions (issue 14): the percentile views read one month's or one day's
-- distribution instead of every order of history.
--
-- Each batch adds its signed deltas in the same transaction that changes the orders: when an
-- order's shipment or confirmation becomes known (or changes), its old value is retracted and
-- its new one added. Rows are kept per writer shard (a batch writes under a shard of its own
-- partitions), so concurrent lanes never wait on each other; the views sum the shards. A row
-- whose orders sum to zero holds nothing.

CREATE TABLE dispatch_seconds (
    month   date    NOT NULL,  -- shop-zone month of order.shipped
    seconds bigint  NOT NULL,  -- whole seconds from order.created to order.shipped
    shard   integer NOT NULL,
    orders  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, seconds, shard)
);
COMMENT ON TABLE dispatch_seconds IS 'Order to dispatch as a distribution: per shop-zone month of the shipment and whole second, how many orders took that long (summed over the writer shards).';
COMMENT ON COLUMN dispatch_seconds.month IS 'First day of the shop-zone month of order.shipped.';
COMMENT ON COLUMN dispatch_seconds.seconds IS 'Whole seconds from order.created to order.shipped (rounded down).';
COMMENT ON COLUMN dispatch_seconds.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN dispatch_seconds.orders IS 'Orders with that month and value (this shard''s share; may be negative, the sum is not).';

CREATE TABLE confirmation_ms (
    day    date    NOT NULL,  -- shop-zone day of order.created
    ms     bigint  NOT NULL,  -- confirmation latency in milliseconds
    shard  integer NOT NULL,
    orders bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (day, ms, shard)
);
COMMENT ON TABLE confirmation_ms IS 'Confirmation latency as a distribution: per shop-zone day of creation and millisecond, how many orders were confirmed that long after creation (summed over the writer shards).';
COMMENT ON COLUMN confirmation_ms.day IS 'Shop-zone day of order.created.';
COMMENT ON COLUMN confirmation_ms.ms IS 'order.confirmed minus order.created, in milliseconds.';
COMMENT ON COLUMN confirmation_ms.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN confirmation_ms.orders IS 'Orders with that day and value (this shard''s share; may be negative, the sum is not).';

-- Filled from the orders already stored (an upgrade keeps its history).
INSERT INTO dispatch_seconds (month, seconds, shard, orders)
SELECT date_trunc('month', shipped_day)::date,
       floor(extract(epoch FROM shipped_at - created_at))::bigint, 0, count(*)
FROM orders WHERE shipped_at IS NOT NULL AND created_at IS NOT NULL
GROUP BY 1, 2;
INSERT INTO confirmation_ms (day, ms, shard, orders)
SELECT created_day, round(confirmation_seconds * 1000)::bigint, 0, count(*)
FROM orders WHERE confirmation_seconds IS NOT NULL
GROUP BY 1, 2;

-- The views keep their columns; they read the distributions. Nearest rank: the p-th
-- percentile is the smallest value whose running count reaches ceil(p * n).
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
       max(total)::bigint AS shipped,
       min(seconds) FILTER (WHERE 2 * upto >= total) AS dispatch_p50_seconds,
       min(seconds) FILTER (WHERE 100 * upto >= 95 * total) AS dispatch_p95_seconds
FROM c GROUP BY month;
COMMENT ON VIEW order_dispatch_monthly IS 'Order to dispatch: order.shipped minus order.created, p50/p95 in whole seconds, per shop-zone month of the shipment (from dispatch_seconds).';

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
SELECT c.day,
       max(c.total)::bigint AS confirmed,
       (min(c.ms) FILTER (WHERE 2 * c.upto >= c.total) / 1000.0)::double precision AS p50_seconds,
       (min(c.ms) FILTER (WHERE 100 * c.upto >= 95 * c.total) / 1000.0)::double precision AS p95_seconds,
       (max(c.ms) / 1000.0)::double precision AS max_seconds,
       COALESCE(sum(c.n) FILTER (WHERE c.ms > extract(epoch FROM s.confirmation_sla) * 1000), 0)::bigint
           AS over_sla
FROM c CROSS JOIN service_settings s
GROUP BY c.day;
COMMENT ON VIEW confirmation_latency_daily IS 'Confirmation latency percentiles (nearest rank) per shop-zone day of creation (from confirmation_ms).';
