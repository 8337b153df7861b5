-- The perfect-order components (issue 15, item 4): per day, the fulfilled orders missing each
-- component of the perfect order — confirmed within the SLA, on time, in full, claim-free —
-- kept by the batch transaction with the other daily counts. po_daily and po_monthly gain each
-- component's rate and the multiplicative index that APQC/SCOR-style reports use (the product
-- of the component rates), a different figure from the perfect-order rate (the share of
-- orders with no deviation at all).
ALTER TABLE daily_kpi_shards
    ADD COLUMN confirmed_late  bigint NOT NULL DEFAULT 0,
    ADD COLUMN delivered_late  bigint NOT NULL DEFAULT 0,
    ADD COLUMN delivered_short bigint NOT NULL DEFAULT 0,
    ADD COLUMN claimed         bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN daily_kpi_shards.confirmed_late IS 'Fulfilled orders confirmed later than the confirmation SLA.';
COMMENT ON COLUMN daily_kpi_shards.delivered_late IS 'Fulfilled orders delivered after the promised window plus the tolerance.';
COMMENT ON COLUMN daily_kpi_shards.delivered_short IS 'Fulfilled orders delivered short (in total or for an ordered SKU).';
COMMENT ON COLUMN daily_kpi_shards.claimed IS 'Fulfilled orders with a claim filed in the claim window.';

-- The stored history, from the stored orders (shard 0): a deviation that no counted claim of
-- its category explains is the measured one; where a counted claim of the category also
-- exists, the measured value decides (the delivery tolerance is taken as 0 and the item
-- counts in total: `perfect-order rebuild` recomputes every component from the facts).
INSERT INTO daily_kpi_shards (day, shard, confirmed_late, delivered_late, delivered_short, claimed)
SELECT o.delivered_day, 0,
       count(*) FILTER (WHERE o.deviation_service AND (NOT cs.service
                            OR o.confirmation_seconds > extract(epoch FROM s.confirmation_sla))),
       count(*) FILTER (WHERE o.deviation_delivery AND (NOT cs.delivery
                            OR o.delivery_lateness_seconds > 0)),
       count(*) FILTER (WHERE o.deviation_completeness AND (NOT cs.completeness
                            OR o.items_delivered < o.items_ordered)),
       count(*) FILTER (WHERE cs.any)
FROM orders o
CROSS JOIN service_settings s
CROSS JOIN LATERAL (
    SELECT COALESCE(bool_or(true), false) AS any,
           COALESCE(bool_or(c.category = 'service'), false) AS service,
           COALESCE(bool_or(c.category = 'delivery'), false) AS delivery,
           COALESCE(bool_or(c.category = 'completeness'), false) AS completeness
    FROM claims c WHERE c.order_id = o.order_id AND c.counts_for_verdict
) cs
WHERE o.verdict IN ('perfect', 'imperfect') AND o.delivered_day IS NOT NULL
GROUP BY o.delivered_day
ON CONFLICT (day, shard) DO UPDATE SET
    confirmed_late = excluded.confirmed_late,
    delivered_late = excluded.delivered_late,
    delivered_short = excluded.delivered_short,
    claimed = excluded.claimed;

CREATE OR REPLACE VIEW daily_kpi AS
SELECT day,
       sum(fulfilled)::bigint AS fulfilled,
       sum(perfect)::bigint AS perfect,
       sum(deviation_quality)::bigint AS deviation_quality,
       sum(deviation_completeness)::bigint AS deviation_completeness,
       sum(deviation_delivery)::bigint AS deviation_delivery,
       sum(deviation_service)::bigint AS deviation_service,
       sum(cancelled)::bigint AS cancelled,
       max(updated_at) AS updated_at,
       sum(confirmed_late)::bigint AS confirmed_late,
       sum(delivered_late)::bigint AS delivered_late,
       sum(delivered_short)::bigint AS delivered_short,
       sum(claimed)::bigint AS claimed
FROM daily_kpi_shards
GROUP BY day;

CREATE OR REPLACE VIEW po_daily AS
SELECT day, fulfilled, perfect, fulfilled - perfect AS imperfect,
       CASE WHEN fulfilled > 0 THEN perfect::double precision / fulfilled END AS po_rate,
       deviation_quality, deviation_completeness, deviation_delivery, deviation_service, cancelled,
       c.confirmed_in_sla_rate, c.on_time_rate, c.in_full_rate, c.claim_free_rate,
       c.confirmed_in_sla_rate * c.on_time_rate * c.in_full_rate * c.claim_free_rate AS po_index
FROM daily_kpi
CROSS JOIN LATERAL (
    SELECT CASE WHEN fulfilled > 0 THEN 1 - confirmed_late::double precision / fulfilled END AS confirmed_in_sla_rate,
           CASE WHEN fulfilled > 0 THEN 1 - delivered_late::double precision / fulfilled END AS on_time_rate,
           CASE WHEN fulfilled > 0 THEN 1 - delivered_short::double precision / fulfilled END AS in_full_rate,
           CASE WHEN fulfilled > 0 THEN 1 - claimed::double precision / fulfilled END AS claim_free_rate
) c;
COMMENT ON VIEW po_daily IS 'Perfect-order rate per shop-zone day of delivery (null when nothing was fulfilled), with the rate of each component and po_index, their product (the multiplicative index; a different figure from po_rate).';

CREATE OR REPLACE VIEW po_monthly AS
SELECT month, fulfilled, perfect, imperfect, po_rate, deviation_quality, deviation_completeness,
       deviation_delivery, deviation_service, cancelled,
       c.confirmed_in_sla_rate, c.on_time_rate, c.in_full_rate, c.claim_free_rate,
       c.confirmed_in_sla_rate * c.on_time_rate * c.in_full_rate * c.claim_free_rate AS po_index
FROM (
    SELECT date_trunc('month', day)::date AS month,
           sum(fulfilled)::bigint AS fulfilled,
           sum(perfect)::bigint AS perfect,
           (sum(fulfilled) - sum(perfect))::bigint AS imperfect,
           CASE WHEN sum(fulfilled) > 0 THEN sum(perfect)::double precision / sum(fulfilled) END AS po_rate,
           sum(deviation_quality)::bigint AS deviation_quality,
           sum(deviation_completeness)::bigint AS deviation_completeness,
           sum(deviation_delivery)::bigint AS deviation_delivery,
           sum(deviation_service)::bigint AS deviation_service,
           sum(cancelled)::bigint AS cancelled,
           sum(confirmed_late) AS confirmed_late, sum(delivered_late) AS delivered_late,
           sum(delivered_short) AS delivered_short, sum(claimed) AS claimed
    FROM daily_kpi
    GROUP BY 1
) m
CROSS JOIN LATERAL (
    SELECT CASE WHEN fulfilled > 0 THEN 1 - confirmed_late::double precision / fulfilled END AS confirmed_in_sla_rate,
           CASE WHEN fulfilled > 0 THEN 1 - delivered_late::double precision / fulfilled END AS on_time_rate,
           CASE WHEN fulfilled > 0 THEN 1 - delivered_short::double precision / fulfilled END AS in_full_rate,
           CASE WHEN fulfilled > 0 THEN 1 - claimed::double precision / fulfilled END AS claim_free_rate
) c;
COMMENT ON VIEW po_monthly IS 'Perfect-order rate per calendar month of delivery in the shop time zone, with the rate of each component and po_index, their product (the multiplicative index; a different figure from po_rate).';
