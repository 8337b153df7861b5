-- The lead base, maintained (see the PostgreSQL migration 0022): lead_base_shards keeps the
-- changes per month, written by the batch transaction; the view runs them up to each month
-- end instead of looking up every lead at every month end.

CREATE TABLE lead_base_shards (
    month     TEXT    NOT NULL,
    shard     INTEGER NOT NULL,
    new_leads INTEGER NOT NULL DEFAULT 0,
    cold      INTEGER NOT NULL DEFAULT 0,
    warm      INTEGER NOT NULL DEFAULT 0,
    hot       INTEGER NOT NULL DEFAULT 0,
    converted INTEGER NOT NULL DEFAULT 0,
    events    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, shard)
) WITHOUT ROWID;

INSERT INTO lead_base_shards (month, shard, new_leads, cold, warm, hot, converted, events)
SELECT month, 0, sum(new_leads), sum(cold), sum(warm), sum(hot), sum(converted), sum(events)
FROM (
    SELECT month, 0 AS new_leads, 0 AS cold, 0 AS warm, 0 AS hot, 0 AS converted,
           count(*) AS events
    FROM lead_events GROUP BY month
    UNION ALL
    SELECT captured_month, count(*), 0, 0, 0, 0, 0
    FROM leads WHERE captured_month IS NOT NULL GROUP BY captured_month
    UNION ALL
    SELECT month, 0,
           count(*) FILTER (WHERE temperature = 'cold') - count(*) FILTER (WHERE before = 'cold'),
           count(*) FILTER (WHERE temperature = 'warm') - count(*) FILTER (WHERE before = 'warm'),
           count(*) FILTER (WHERE temperature = 'hot') - count(*) FILTER (WHERE before = 'hot'),
           0, 0
    FROM (SELECT month, temperature,
                 lag(temperature) OVER (PARTITION BY lead_id ORDER BY month) AS before
          FROM (SELECT e.lead_id, max(e.month, l.captured_month) AS month, e.temperature,
                       row_number() OVER (PARTITION BY e.lead_id, max(e.month, l.captured_month)
                                          ORDER BY e.time DESC, e.source DESC, e.id DESC) AS r
                FROM lead_events e JOIN leads l ON l.lead_id = e.lead_id
                WHERE l.captured_month IS NOT NULL)
          WHERE r = 1)
    GROUP BY month
    UNION ALL
    SELECT f.first_month, 0, 0, 0, 0, count(*), 0
    FROM leads l JOIN customers f ON f.customer_id = l.customer_id
    WHERE l.captured_month IS NOT NULL AND f.first_at >= l.captured_at
    GROUP BY f.first_month
)
GROUP BY month;

DROP VIEW lead_base_monthly;
CREATE VIEW lead_base_monthly AS
WITH RECURSIVE s AS (
    SELECT month, sum(new_leads) AS new_leads, sum(cold) AS cold, sum(warm) AS warm,
           sum(hot) AS hot, sum(converted) AS converted, sum(events) AS events
    FROM lead_base_shards GROUP BY month
),
months(month) AS (
    SELECT min(month) FROM s WHERE new_leads <> 0
    UNION ALL
    SELECT date(month, '+1 month') FROM months
    WHERE date(month, '+1 month') <= (SELECT max(month) FROM s WHERE events <> 0)
),
totals AS (
    SELECT m.month,
           sum(COALESCE(s.new_leads, 0)) OVER w AS leads,
           COALESCE(s.new_leads, 0) AS new_leads,
           sum(COALESCE(s.cold, 0)) OVER w AS cold,
           sum(COALESCE(s.warm, 0)) OVER w AS warm,
           sum(COALESCE(s.hot, 0)) OVER w AS hot,
           sum(COALESCE(s.converted, 0)) OVER w AS converted,
           COALESCE(s.converted, 0) AS new_conversions
    FROM months m LEFT JOIN s ON s.month = m.month
    WHERE m.month IS NOT NULL
    WINDOW w AS (ORDER BY m.month)
)
SELECT month, leads, new_leads, cold, warm, hot,
       CAST(warm + hot AS REAL) / leads AS warm_hot_share,
       CASE WHEN lag(leads) OVER (ORDER BY month) > 0
            THEN CAST(leads - lag(leads) OVER (ORDER BY month) AS REAL) / lag(leads) OVER (ORDER BY month)
       END AS growth,
       converted, new_conversions
FROM totals;
