-- The perfect-order components per day and po_index, their rates' product (PostgreSQL's 0028).
ALTER TABLE daily_kpi_shards ADD COLUMN confirmed_late  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daily_kpi_shards ADD COLUMN delivered_late  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daily_kpi_shards ADD COLUMN delivered_short INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daily_kpi_shards ADD COLUMN claimed         INTEGER NOT NULL DEFAULT 0;

-- The stored history, from the stored orders (shard 0), as PostgreSQL's 0028 fills it.
INSERT INTO daily_kpi_shards (day, shard, confirmed_late, delivered_late, delivered_short, claimed,
                              updated_at)
SELECT o.delivered_day, 0,
       sum(o.deviation_service AND (NOT cs.service OR o.confirmation_seconds > s.confirmation_sla)),
       sum(o.deviation_delivery AND (NOT cs.delivery OR o.delivery_lateness_seconds > 0)),
       sum(o.deviation_completeness AND (NOT cs.completeness OR o.items_delivered < o.items_ordered)),
       sum(cs.claims > 0),
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM orders o
CROSS JOIN service_settings s
JOIN (
    SELECT o2.order_id,
           count(c.claim_id) AS claims,
           COALESCE(max(c.category = 'service'), 0) AS service,
           COALESCE(max(c.category = 'delivery'), 0) AS delivery,
           COALESCE(max(c.category = 'completeness'), 0) AS completeness
    FROM orders o2 LEFT JOIN claims c ON c.order_id = o2.order_id AND c.counts_for_verdict
    WHERE o2.verdict IN ('perfect', 'imperfect') AND o2.delivered_day IS NOT NULL
    GROUP BY o2.order_id
) cs ON cs.order_id = o.order_id
WHERE o.verdict IN ('perfect', 'imperfect') AND o.delivered_day IS NOT NULL
GROUP BY o.delivered_day
ON CONFLICT (day, shard) DO UPDATE SET
    confirmed_late = excluded.confirmed_late,
    delivered_late = excluded.delivered_late,
    delivered_short = excluded.delivered_short,
    claimed = excluded.claimed;

DROP VIEW po_daily;
DROP VIEW po_monthly;
DROP VIEW daily_kpi;

CREATE VIEW daily_kpi AS
SELECT day,
       sum(fulfilled) AS fulfilled,
       sum(perfect) AS perfect,
       sum(deviation_quality) AS deviation_quality,
       sum(deviation_completeness) AS deviation_completeness,
       sum(deviation_delivery) AS deviation_delivery,
       sum(deviation_service) AS deviation_service,
       sum(cancelled) AS cancelled,
       max(updated_at) AS updated_at,
       sum(confirmed_late) AS confirmed_late,
       sum(delivered_late) AS delivered_late,
       sum(delivered_short) AS delivered_short,
       sum(claimed) AS claimed
FROM daily_kpi_shards
GROUP BY day;

-- Perfect-order rate per shop-zone day of delivery, each component's rate and po_index.
CREATE VIEW po_daily AS
SELECT day, fulfilled, perfect, imperfect, po_rate, deviation_quality, deviation_completeness,
       deviation_delivery, deviation_service, cancelled,
       confirmed_in_sla_rate, on_time_rate, in_full_rate, claim_free_rate,
       confirmed_in_sla_rate * on_time_rate * in_full_rate * claim_free_rate AS po_index
FROM (
    SELECT day, fulfilled, perfect, fulfilled - perfect AS imperfect,
           CASE WHEN fulfilled > 0 THEN CAST(perfect AS REAL) / fulfilled END AS po_rate,
           deviation_quality, deviation_completeness, deviation_delivery, deviation_service, cancelled,
           CASE WHEN fulfilled > 0 THEN 1 - CAST(confirmed_late AS REAL) / fulfilled END AS confirmed_in_sla_rate,
           CASE WHEN fulfilled > 0 THEN 1 - CAST(delivered_late AS REAL) / fulfilled END AS on_time_rate,
           CASE WHEN fulfilled > 0 THEN 1 - CAST(delivered_short AS REAL) / fulfilled END AS in_full_rate,
           CASE WHEN fulfilled > 0 THEN 1 - CAST(claimed AS REAL) / fulfilled END AS claim_free_rate
    FROM daily_kpi
);

-- The same per calendar month of delivery in the shop time zone.
CREATE VIEW po_monthly AS
SELECT month, fulfilled, perfect, imperfect, po_rate, deviation_quality, deviation_completeness,
       deviation_delivery, deviation_service, cancelled,
       confirmed_in_sla_rate, on_time_rate, in_full_rate, claim_free_rate,
       confirmed_in_sla_rate * on_time_rate * in_full_rate * claim_free_rate AS po_index
FROM (
    SELECT strftime('%Y-%m-01', day) AS month,
           sum(fulfilled) AS fulfilled,
           sum(perfect) AS perfect,
           sum(fulfilled) - sum(perfect) AS imperfect,
           CASE WHEN sum(fulfilled) > 0 THEN CAST(sum(perfect) AS REAL) / sum(fulfilled) END AS po_rate,
           sum(deviation_quality) AS deviation_quality,
           sum(deviation_completeness) AS deviation_completeness,
           sum(deviation_delivery) AS deviation_delivery,
           sum(deviation_service) AS deviation_service,
           sum(cancelled) AS cancelled,
           CASE WHEN sum(fulfilled) > 0 THEN 1 - CAST(sum(confirmed_late) AS REAL) / sum(fulfilled) END AS confirmed_in_sla_rate,
           CASE WHEN sum(fulfilled) > 0 THEN 1 - CAST(sum(delivered_late) AS REAL) / sum(fulfilled) END AS on_time_rate,
           CASE WHEN sum(fulfilled) > 0 THEN 1 - CAST(sum(delivered_short) AS REAL) / sum(fulfilled) END AS in_full_rate,
           CASE WHEN sum(fulfilled) > 0 THEN 1 - CAST(sum(claimed) AS REAL) / sum(fulfilled) END AS claim_free_rate
    FROM daily_kpi
    GROUP BY 1
);
