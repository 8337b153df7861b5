-- The lead base read once per lead event (issue 14): lead_base_monthly looked up every
-- captured lead's temperature at every month end (leads times months: 0.18 s at a year's
-- history of a shop of two orders a minute, and growing each month). Now each lead's latest
-- event per month gives its temperature where it may change (events before the capture
-- count at the capture month), the changes are counted per month and the view runs them up
-- to each month end, as the claims journal does (0015). Same answer.

CREATE OR REPLACE VIEW lead_base_monthly AS
WITH months AS (
    SELECT generate_series(min(l.captured_month), (SELECT max(month) FROM lead_events),
                           interval '1 month')::date AS month
    FROM leads l WHERE l.captured_month IS NOT NULL
),
captured AS (
    SELECT lead_id, captured_month FROM leads WHERE captured_month IS NOT NULL
),
latest AS (  -- each captured lead's latest event per month (before its capture: its capture month)
    SELECT DISTINCT ON (e.lead_id, greatest(e.month, c.captured_month))
           e.lead_id, greatest(e.month, c.captured_month) AS month, e.temperature
    FROM lead_events e JOIN captured c USING (lead_id)
    ORDER BY e.lead_id, greatest(e.month, c.captured_month), e.time DESC, e.source DESC, e.id DESC
),
changes AS (
    SELECT month,
           count(*) FILTER (WHERE temperature = 'cold') - count(*) FILTER (WHERE before = 'cold') AS cold,
           count(*) FILTER (WHERE temperature = 'warm') - count(*) FILTER (WHERE before = 'warm') AS warm,
           count(*) FILTER (WHERE temperature = 'hot') - count(*) FILTER (WHERE before = 'hot') AS hot
    FROM (SELECT month, temperature,
                 lag(temperature) OVER (PARTITION BY lead_id ORDER BY month) AS before
          FROM latest) x
    GROUP BY month
),
new_leads AS (
    SELECT captured_month AS month, count(*) AS n FROM captured GROUP BY 1
),
conversions AS (  -- one customer probe per lead (OFFSET 0: never a scan of customers)
    SELECT f.first_month AS month, count(*) AS n
    FROM leads l
    CROSS JOIN LATERAL (SELECT c.first_month, c.first_at FROM customers c
                        WHERE c.customer_id = l.customer_id OFFSET 0) f
    WHERE l.captured_month IS NOT NULL AND f.first_at >= l.captured_at
    GROUP BY 1
),
totals AS (
    SELECT m.month,
           sum(COALESCE(n.n, 0)) OVER w AS leads,
           COALESCE(n.n, 0) AS new_leads,
           sum(COALESCE(c.cold, 0)) OVER w AS cold,
           sum(COALESCE(c.warm, 0)) OVER w AS warm,
           sum(COALESCE(c.hot, 0)) OVER w AS hot,
           sum(COALESCE(v.n, 0)) OVER w AS converted,
           COALESCE(v.n, 0) AS new_conversions
    FROM months m
    LEFT JOIN new_leads n USING (month)
    LEFT JOIN changes c USING (month)
    LEFT JOIN conversions v USING (month)
    WINDOW w AS (ORDER BY m.month)
)
SELECT month, leads::bigint AS leads, new_leads::bigint AS new_leads, cold::bigint AS cold,
       warm::bigint AS warm, hot::bigint AS hot,
       (warm + hot)::double precision / leads AS warm_hot_share,
       CASE WHEN lag(leads) OVER (ORDER BY month) > 0
            THEN (leads - lag(leads) OVER (ORDER BY month))::double precision / lag(leads) OVER (ORDER BY month)
       END AS growth,
       converted::bigint AS converted, new_conversions::bigint AS new_conversions
FROM totals;
COMMENT ON VIEW lead_base_monthly IS 'Lead base at each shop-zone month end: leads captured before it by their latest temperature, new leads, warm+hot share, growth over the previous month, and leads converted (their customer''s first order at or after the capture, from customers).';
