-- Ids and topics are compared byte-wise: the "C" collation. Under the database's default
-- collation (C.UTF-8 or en_US.UTF-8) every B-tree comparison of the keys went through
-- strcoll, which the ingest profile showed among PostgreSQL's top costs (_bt_compare,
-- varstr_cmp, strcoll). Ids have no linguistic order to keep.

-- The views over orders depend on its columns: drop them, change the types, recreate them
-- unchanged (as in 0003_views.sql).
DROP VIEW late_orders;
DROP VIEW orders_awaiting_confirmation;
DROP VIEW order_verdicts;

ALTER TABLE events
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN order_id TYPE text COLLATE "C",
    ALTER COLUMN topic TYPE text COLLATE "C";
ALTER TABLE rejected_events ALTER COLUMN topic TYPE text COLLATE "C";
ALTER TABLE consumer_offsets ALTER COLUMN topic TYPE text COLLATE "C";
ALTER TABLE orders ALTER COLUMN order_id TYPE text COLLATE "C";
ALTER TABLE claims
    ALTER COLUMN claim_id TYPE text COLLATE "C",
    ALTER COLUMN order_id TYPE text COLLATE "C";

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
