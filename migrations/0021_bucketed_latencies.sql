-- Order to dispatch and the daily confirmation latencies read by bucket, claims per category
-- from the claims journal (issue 14). At 5 million events the console's six months of order
-- to dispatch read 29-33 ms (dispatch times are nearly all distinct: a row per shipment), and
-- confirmation_latency_daily over every day 2.9 s (a row per order and millisecond);
-- claims_monthly counted every claim of history (30 ms). The distributions get a coarse level
-- kept by the batch transaction with them, as the claims journal's time to resolve has
-- (0019): a percentile finds the bucket that holds its rank, then reads that bucket's values
-- only. claims_monthly reads the claims filed per month and category that the claims journal
-- already keeps. Same columns, same answers.

CREATE TABLE dispatch_buckets (
    month  date    NOT NULL,
    bucket bigint  NOT NULL,
    shard  integer NOT NULL,
    orders bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, bucket, shard)
);
COMMENT ON TABLE dispatch_buckets IS 'Order to dispatch in buckets of 600 whole seconds (bucket b: b * 600 to b * 600 + 599), per shop-zone month of order.shipped and writer shard: a percentile finds the bucket of its rank here, then reads that bucket''s seconds of dispatch_seconds only.';
COMMENT ON COLUMN dispatch_buckets.month IS 'First day of the shop-zone month of order.shipped.';
COMMENT ON COLUMN dispatch_buckets.bucket IS 'Whole seconds from order.created to order.shipped divided by 600, rounded down.';
COMMENT ON COLUMN dispatch_buckets.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN dispatch_buckets.orders IS 'Orders shipped within the bucket (this shard''s share).';

CREATE TABLE confirmation_ms_buckets (
    day    date    NOT NULL,
    bucket bigint  NOT NULL,
    shard  integer NOT NULL,
    orders bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (day, bucket, shard)
);
COMMENT ON TABLE confirmation_ms_buckets IS 'Confirmation latency in buckets of 60000 milliseconds (bucket b: b * 60000 to b * 60000 + 59999 ms), per shop-zone day of order.created and writer shard: a percentile or the count over the SLA reads a day''s buckets here, then one bucket''s milliseconds of confirmation_ms.';
COMMENT ON COLUMN confirmation_ms_buckets.day IS 'Shop-zone day of order.created.';
COMMENT ON COLUMN confirmation_ms_buckets.bucket IS 'order.confirmed minus order.created in milliseconds, divided by 60000, rounded down.';
COMMENT ON COLUMN confirmation_ms_buckets.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN confirmation_ms_buckets.orders IS 'Orders confirmed within the bucket (this shard''s share).';

-- Filled from the distributions already kept (an upgrade keeps its history).
INSERT INTO dispatch_buckets (month, bucket, shard, orders)
SELECT month, floor(seconds / 600.0)::bigint, 0, sum(orders)
FROM dispatch_seconds GROUP BY 1, 2 HAVING sum(orders) <> 0;
INSERT INTO confirmation_ms_buckets (day, bucket, shard, orders)
SELECT day, floor(ms / 60000.0)::bigint, 0, sum(orders)
FROM confirmation_ms GROUP BY 1, 2 HAVING sum(orders) <> 0;
ANALYZE dispatch_buckets;
ANALYZE confirmation_ms_buckets;

-- The order to dispatch of a month's shipment at nearest rank `r` (the smallest value whose
-- running count reaches r).
CREATE FUNCTION dispatch_at_rank(m date, r numeric) RETURNS bigint
LANGUAGE sql STABLE AS $$
    WITH b AS (
        SELECT bucket, sum(orders) AS n
        FROM dispatch_buckets WHERE month = m
        GROUP BY bucket HAVING sum(orders) <> 0
    ),
    hit AS (
        SELECT bucket, upto - n AS before
        FROM (SELECT bucket, n, sum(n) OVER (ORDER BY bucket) AS upto FROM b) x
        WHERE upto >= r ORDER BY bucket LIMIT 1
    )
    SELECT d.seconds FROM hit CROSS JOIN LATERAL (
        SELECT seconds, sum(n) OVER (ORDER BY seconds) AS upto
        FROM (SELECT seconds, sum(orders) AS n FROM dispatch_seconds
              WHERE month = m AND seconds >= hit.bucket * 600 AND seconds < (hit.bucket + 1) * 600
              GROUP BY seconds HAVING sum(orders) <> 0) v
    ) d
    WHERE hit.before + d.upto >= r ORDER BY d.seconds LIMIT 1
$$;
COMMENT ON FUNCTION dispatch_at_rank(date, numeric) IS 'Order to dispatch (whole seconds) of the shipment at nearest rank r of month m, from dispatch_buckets and one bucket of dispatch_seconds.';

CREATE OR REPLACE VIEW order_dispatch_monthly AS
SELECT d.month, d.n::bigint AS shipped,
       dispatch_at_rank(d.month, d.n * 0.5) AS dispatch_p50_seconds,
       dispatch_at_rank(d.month, d.n * 0.95) AS dispatch_p95_seconds
FROM (SELECT month, sum(orders) AS n FROM dispatch_buckets
      GROUP BY month HAVING sum(orders) > 0) d;
COMMENT ON VIEW order_dispatch_monthly IS 'Order to dispatch: order.shipped minus order.created, p50/p95 in whole seconds (nearest rank), per shop-zone month of the shipment (from dispatch_buckets and dispatch_seconds).';

-- Every day's buckets are read once (a few dozen rows per day): they give each percentile's
-- bucket and the rank before it, and the orders wholly over the SLA; then each day reads the
-- values of the one bucket each figure needs. Integer sums (a day's orders fit in one).
CREATE OR REPLACE VIEW confirmation_latency_daily AS
WITH b AS (
    SELECT day, bucket, sum(orders)::integer AS n FROM confirmation_ms_buckets
    GROUP BY day, bucket HAVING sum(orders) <> 0
),
r AS (
    SELECT day, bucket, n, sum(n) OVER (PARTITION BY day ORDER BY bucket) AS upto,
           sum(n) OVER (PARTITION BY day) AS total
    FROM b
),
d AS (
    SELECT day, max(total) AS total,
           min(bucket) FILTER (WHERE 2 * upto >= total) AS b50,
           min(upto - n) FILTER (WHERE 2 * upto >= total) AS before50,
           min(bucket) FILTER (WHERE 100 * upto >= 95 * total) AS b95,
           min(upto - n) FILTER (WHERE 100 * upto >= 95 * total) AS before95,
           max(bucket) AS top,
           sum(n) FILTER (WHERE bucket > (SELECT floor(extract(epoch FROM confirmation_sla) * 1000 / 60000)
                                          FROM service_settings)) AS above
    FROM r GROUP BY day
)
SELECT d.day, d.total AS confirmed,
       (p50.ms / 1000.0)::double precision AS p50_seconds,
       (p95.ms / 1000.0)::double precision AS p95_seconds,
       (top.ms / 1000.0)::double precision AS max_seconds,
       (COALESCE(d.above, 0) + COALESCE(edge.n, 0))::bigint AS over_sla
FROM d
CROSS JOIN (SELECT extract(epoch FROM confirmation_sla) * 1000 AS limit_ms FROM service_settings) s
LEFT JOIN LATERAL (
    SELECT ms FROM (SELECT ms, sum(n) OVER (ORDER BY ms) AS upto
                    FROM (SELECT ms, sum(orders)::integer AS n FROM confirmation_ms
                          WHERE day = d.day AND ms >= d.b50 * 60000 AND ms < (d.b50 + 1) * 60000
                          GROUP BY ms HAVING sum(orders) <> 0) v) w
    WHERE 2 * (d.before50 + w.upto) >= d.total ORDER BY ms LIMIT 1
) p50 ON true
LEFT JOIN LATERAL (
    SELECT ms FROM (SELECT ms, sum(n) OVER (ORDER BY ms) AS upto
                    FROM (SELECT ms, sum(orders)::integer AS n FROM confirmation_ms
                          WHERE day = d.day AND ms >= d.b95 * 60000 AND ms < (d.b95 + 1) * 60000
                          GROUP BY ms HAVING sum(orders) <> 0) v) w
    WHERE 100 * (d.before95 + w.upto) >= 95 * d.total ORDER BY ms LIMIT 1
) p95 ON true
LEFT JOIN LATERAL (
    SELECT ms FROM confirmation_ms
    WHERE day = d.day AND ms >= d.top * 60000
    GROUP BY ms HAVING sum(orders) <> 0 ORDER BY ms DESC LIMIT 1
) top ON true
LEFT JOIN LATERAL (
    SELECT sum(orders) AS n FROM confirmation_ms
    WHERE day = d.day AND ms >= floor(s.limit_ms)::bigint + 1
      AND ms < (floor(s.limit_ms / 60000)::bigint + 1) * 60000
) edge ON true;
COMMENT ON VIEW confirmation_latency_daily IS 'Confirmation latency percentiles (nearest rank) per shop-zone day of creation, and the orders confirmed after the SLA in force (from confirmation_ms_buckets and one bucket of confirmation_ms per figure).';

CREATE OR REPLACE VIEW claims_monthly AS
WITH months AS (
    SELECT month, category, sum(filed)::bigint AS claims
    FROM claims_journal_shards GROUP BY month, category HAVING sum(filed) > 0
)
SELECT month, category, claims,
       lag(claims) OVER w AS previous_month_claims,
       CASE WHEN lag(month) OVER w = (month - interval '1 month')::date AND lag(claims) OVER w > 0
            THEN claims::double precision / lag(claims) OVER w - 1 END AS change
FROM months
WINDOW w AS (PARTITION BY category ORDER BY month);
COMMENT ON VIEW claims_monthly IS 'Claims per category per shop-zone month of filing, with the previous month and the relative change (-0.21 = 21 % fewer), from the claims journal''s filed counts (claims_journal_shards).';
