-- Views for managers (monthly KPIs) and on-call staff (orders past the confirmation SLA).

CREATE VIEW po_daily AS
SELECT day, fulfilled, perfect, fulfilled - perfect AS imperfect,
       CASE WHEN fulfilled > 0 THEN perfect::double precision / fulfilled END AS po_rate,
       deviation_quality, deviation_completeness, deviation_delivery, deviation_service, cancelled
FROM daily_kpi;
COMMENT ON VIEW po_daily IS 'Perfect-order rate per shop-zone day of delivery (null when nothing was fulfilled).';

CREATE VIEW po_monthly AS
SELECT date_trunc('month', day)::date AS month,
       sum(fulfilled)::bigint AS fulfilled,
       sum(perfect)::bigint AS perfect,
       (sum(fulfilled) - sum(perfect))::bigint AS imperfect,
       CASE WHEN sum(fulfilled) > 0 THEN sum(perfect)::double precision / sum(fulfilled) END AS po_rate,
       sum(deviation_quality)::bigint AS deviation_quality,
       sum(deviation_completeness)::bigint AS deviation_completeness,
       sum(deviation_delivery)::bigint AS deviation_delivery,
       sum(deviation_service)::bigint AS deviation_service,
       sum(cancelled)::bigint AS cancelled
FROM daily_kpi
GROUP BY 1;
COMMENT ON VIEW po_monthly IS 'Perfect-order rate per calendar month of delivery in the shop time zone.';

CREATE VIEW claims_monthly AS
WITH months AS (
    SELECT date_trunc('month', filed_day)::date AS month, category, count(*)::bigint AS claims
    FROM claims WHERE filed_day IS NOT NULL
    GROUP BY 1, 2
)
SELECT month, category, claims,
       lag(claims) OVER w AS previous_month_claims,
       CASE WHEN lag(month) OVER w = (month - interval '1 month')::date AND lag(claims) OVER w > 0
            THEN claims::double precision / lag(claims) OVER w - 1 END AS change
FROM months
WINDOW w AS (PARTITION BY category ORDER BY month);
COMMENT ON VIEW claims_monthly IS 'Claims per category per month of filing, with the previous month and the relative change (-0.21 = 21 % fewer).';

CREATE VIEW confirmation_latency_daily AS
SELECT created_day AS day,
       count(*)::bigint AS confirmed,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY confirmation_seconds) AS p50_seconds,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY confirmation_seconds) AS p95_seconds,
       max(confirmation_seconds) AS max_seconds,
       count(*) FILTER (WHERE confirmation_seconds > extract(epoch FROM s.confirmation_sla))::bigint AS over_sla
FROM orders CROSS JOIN service_settings s
WHERE confirmation_seconds IS NOT NULL
GROUP BY created_day;
COMMENT ON VIEW confirmation_latency_daily IS 'Confirmation latency percentiles (nearest rank) per shop-zone day of creation.';

CREATE VIEW orders_awaiting_confirmation AS
SELECT o.order_id, o.customer_id, o.created_at,
       extract(epoch FROM now() - o.created_at)::double precision AS age_seconds,
       now() - o.created_at > s.confirmation_sla AS over_sla
FROM orders o CROSS JOIN service_settings s
WHERE o.confirmed_at IS NULL AND o.cancelled_at IS NULL AND o.created_at IS NOT NULL
  AND o.created_at > now() - s.pending_horizon;
COMMENT ON VIEW orders_awaiting_confirmation IS 'Orders created within the pending horizon, neither confirmed nor cancelled, with their age now.';

CREATE VIEW late_orders AS
SELECT order_id, customer_id, created_at, age_seconds
FROM orders_awaiting_confirmation
WHERE over_sla
ORDER BY age_seconds DESC;
COMMENT ON VIEW late_orders IS 'On-call list: orders waiting for confirmation longer than the SLA, oldest first.';

CREATE VIEW order_verdicts AS
SELECT order_id, verdict, delivered_day, final_at,
       CASE WHEN verdict IN ('perfect', 'imperfect')
            THEN CASE WHEN final_at <= now() THEN 'final' ELSE 'provisional' END END AS maturity,
       deviation_quality, deviation_completeness, deviation_delivery, deviation_service
FROM orders;
COMMENT ON VIEW order_verdicts IS 'Verdict per order with its maturity: provisional until the claim window after delivery has passed, then final.';
