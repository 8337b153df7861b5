-- SQLite edition of ../0003_views.sql: the same views with the same columns and meaning.

-- Perfect-order rate per shop-zone day of delivery (null when nothing was fulfilled).
CREATE VIEW po_daily AS
SELECT day, fulfilled, perfect, fulfilled - perfect AS imperfect,
       CASE WHEN fulfilled > 0 THEN CAST(perfect AS REAL) / fulfilled END AS po_rate,
       deviation_quality, deviation_completeness, deviation_delivery, deviation_service, cancelled
FROM daily_kpi;

-- Perfect-order rate per calendar month of delivery in the shop time zone.
CREATE VIEW po_monthly AS
SELECT strftime('%Y-%m-01', day) AS month,
       sum(fulfilled) AS fulfilled,
       sum(perfect) AS perfect,
       sum(fulfilled) - sum(perfect) AS imperfect,
       CASE WHEN sum(fulfilled) > 0 THEN CAST(sum(perfect) AS REAL) / sum(fulfilled) END AS po_rate,
       sum(deviation_quality) AS deviation_quality,
       sum(deviation_completeness) AS deviation_completeness,
       sum(deviation_delivery) AS deviation_delivery,
       sum(deviation_service) AS deviation_service,
       sum(cancelled) AS cancelled
FROM daily_kpi
GROUP BY 1;

-- Claims per category per month of filing, with the previous month and the relative change
-- (-0.21 = 21 % fewer); no change when the previous row is not the previous calendar month.
CREATE VIEW claims_monthly AS
WITH months AS (
    SELECT strftime('%Y-%m-01', filed_day) AS month, category, count(*) AS claims
    FROM claims WHERE filed_day IS NOT NULL
    GROUP BY 1, 2
)
SELECT month, category, claims,
       lag(claims) OVER w AS previous_month_claims,
       CASE WHEN lag(month) OVER w = date(month, '-1 month') AND lag(claims) OVER w > 0
            THEN CAST(claims AS REAL) / lag(claims) OVER w - 1 END AS change
FROM months
WINDOW w AS (PARTITION BY category ORDER BY month);

-- Confirmation latency percentiles (nearest rank, as PostgreSQL's percentile_disc) per
-- shop-zone day of creation.
CREATE VIEW confirmation_latency_daily AS
WITH ranked AS (
    SELECT created_day AS day, confirmation_seconds AS s,
           row_number() OVER (PARTITION BY created_day ORDER BY confirmation_seconds) AS rn,
           count(*) OVER (PARTITION BY created_day) AS n
    FROM orders WHERE confirmation_seconds IS NOT NULL
)
SELECT day,
       max(n) AS confirmed,
       max(CASE WHEN rn = (n + 1) / 2 THEN s END) AS p50_seconds,
       max(CASE WHEN rn = (95 * n + 99) / 100 THEN s END) AS p95_seconds,
       max(s) AS max_seconds,
       sum(s > (SELECT confirmation_sla FROM service_settings)) AS over_sla
FROM ranked
GROUP BY day;

-- Orders created within the pending horizon, neither confirmed nor cancelled, with their age now.
CREATE VIEW orders_awaiting_confirmation AS
SELECT o.order_id, o.customer_id, o.created_at,
       (julianday('now') - julianday(o.created_at)) * 86400.0 AS age_seconds,
       (julianday('now') - julianday(o.created_at)) * 86400.0 > s.confirmation_sla AS over_sla
FROM orders o CROSS JOIN service_settings s
WHERE o.confirmed_at IS NULL AND o.cancelled_at IS NULL AND o.created_at IS NOT NULL
  AND julianday(o.created_at) > julianday('now') - s.pending_horizon / 86400.0;

-- On-call list: orders waiting for confirmation longer than the SLA, oldest first.
CREATE VIEW late_orders AS
SELECT order_id, customer_id, created_at, age_seconds
FROM orders_awaiting_confirmation
WHERE over_sla
ORDER BY age_seconds DESC;

-- Verdict per order with its maturity: provisional until the claim window after delivery has
-- passed, then final.
CREATE VIEW order_verdicts AS
SELECT order_id, verdict, delivered_day, final_at,
       CASE WHEN verdict IN ('perfect', 'imperfect')
            THEN CASE WHEN julianday(final_at) <= julianday('now') THEN 'final' ELSE 'provisional' END END AS maturity,
       deviation_quality, deviation_completeness, deviation_delivery, deviation_service
FROM orders;
