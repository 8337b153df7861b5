-- Restatements (issue 15, item 3): the orders whose part in a day's or a month's perfect-order
-- figure changed after the period was over, kept by the batch transaction with the order
-- (one row per order and period kind, none for an order counted as it was first). A period's
-- figure "as first complete" counts the facts with event time in the period or before it;
-- today's counts every fact. The cause is the later fact from which on the order counts as it
-- does today.
CREATE TABLE restated_orders (
    order_id      text COLLATE "C" NOT NULL,
    period_kind   text NOT NULL CHECK (period_kind IN ('day', 'month')),
    period        date NOT NULL,
    first_verdict text NOT NULL,
    now_verdict   text NOT NULL,
    cause_type    text NOT NULL,
    cause_time    timestamptz NOT NULL,
    cause_day     date NOT NULL,
    cause_source  text COLLATE "C" NOT NULL,
    cause_id      text COLLATE "C" NOT NULL,
    PRIMARY KEY (order_id, period_kind)
);
COMMENT ON TABLE restated_orders IS 'Orders counted differently today than when their delivery day or month was first complete (facts with event time up to the period end), with the fact that changed it.';
COMMENT ON COLUMN restated_orders.order_id IS 'The restated order.';
COMMENT ON COLUMN restated_orders.period_kind IS 'day or month: which figure of the delivery period moved.';
COMMENT ON COLUMN restated_orders.cause_time IS 'The event time of the cause.';
COMMENT ON COLUMN restated_orders.cause_source IS 'The CloudEvents source of the cause (with cause_id, the key of its row in events).';
COMMENT ON COLUMN restated_orders.cause_id IS 'The CloudEvents id of the cause.';
COMMENT ON COLUMN restated_orders.period IS 'The delivery day (period_kind day) or the first day of the delivery month (month), shop zone.';
COMMENT ON COLUMN restated_orders.first_verdict IS 'The verdict from the facts with event time in the period or before it.';
COMMENT ON COLUMN restated_orders.now_verdict IS 'The verdict from every stored fact.';
COMMENT ON COLUMN restated_orders.cause_type IS 'The event type of the later fact from which on the order counts as it does today.';
COMMENT ON COLUMN restated_orders.cause_day IS 'The shop-zone day of cause_time.';
-- A period's restated orders, in order-id order: what the views and the lists read.
CREATE INDEX restated_orders_by_period ON restated_orders (period_kind, period, order_id);

-- Per period: the figure as first complete next to today's. Today's counts come from the
-- period's days of daily_kpi_shards (an index range); the restated orders say what differed.
CREATE VIEW restatements AS
SELECT r.period_kind, r.period, r.restated_orders,
       n.perfect - r.now_perfect + r.first_perfect AS perfect_first,
       n.fulfilled - r.now_fulfilled + r.first_fulfilled AS fulfilled_first,
       CASE WHEN n.fulfilled - r.now_fulfilled + r.first_fulfilled > 0
            THEN (n.perfect - r.now_perfect + r.first_perfect)::double precision
                 / (n.fulfilled - r.now_fulfilled + r.first_fulfilled) END AS po_rate_first,
       n.perfect AS perfect_now, n.fulfilled AS fulfilled_now,
       CASE WHEN n.fulfilled > 0 THEN n.perfect::double precision / n.fulfilled END AS po_rate_now,
       r.by_claims, r.by_cancellations, r.by_confirmations, r.by_other
FROM (
    SELECT period_kind, period, count(*) AS restated_orders,
           count(*) FILTER (WHERE now_verdict = 'perfect') AS now_perfect,
           count(*) FILTER (WHERE now_verdict IN ('perfect', 'imperfect')) AS now_fulfilled,
           count(*) FILTER (WHERE first_verdict = 'perfect') AS first_perfect,
           count(*) FILTER (WHERE first_verdict IN ('perfect', 'imperfect')) AS first_fulfilled,
           count(*) FILTER (WHERE cause_type = 'claim.filed') AS by_claims,
           count(*) FILTER (WHERE cause_type = 'order.cancelled') AS by_cancellations,
           count(*) FILTER (WHERE cause_type = 'order.confirmed') AS by_confirmations,
           count(*) FILTER (WHERE cause_type NOT IN ('claim.filed', 'order.cancelled', 'order.confirmed')) AS by_other
    FROM restated_orders
    GROUP BY period_kind, period
) r
CROSS JOIN LATERAL (
    SELECT COALESCE(sum(d.perfect), 0)::bigint AS perfect,
           COALESCE(sum(d.fulfilled), 0)::bigint AS fulfilled
    FROM daily_kpi_shards d
    WHERE d.day >= r.period
      AND d.day < CASE r.period_kind WHEN 'day' THEN r.period + 1
                                     ELSE (r.period + interval '1 month')::date END
) n;
COMMENT ON VIEW restatements IS 'Per delivery day and month with restated orders: the perfect-order figure as first complete (facts up to the period end) next to today''s, and the restated orders by cause.';

CREATE VIEW restatements_monthly AS
SELECT period AS month, restated_orders, perfect_first, fulfilled_first, po_rate_first,
       perfect_now, fulfilled_now, po_rate_now, by_claims, by_cancellations, by_confirmations,
       by_other
FROM restatements WHERE period_kind = 'month';
COMMENT ON VIEW restatements_monthly IS 'Months whose perfect-order rate moved after the month end: the rate at month end, today''s, and the restated orders by cause.';

CREATE VIEW restatements_daily AS
SELECT period AS day, restated_orders, perfect_first, fulfilled_first, po_rate_first,
       perfect_now, fulfilled_now, po_rate_now, by_claims, by_cancellations, by_confirmations,
       by_other
FROM restatements WHERE period_kind = 'day';
COMMENT ON VIEW restatements_daily IS 'Delivery days whose perfect-order rate moved after the day ended: the rate at day end, today''s, and the restated orders by cause.';

-- The stored orders' restatements are computed by the service from orders.state (the rules
-- live in one place, the domain): the first start after this migration fills them.
CREATE TABLE pending_backfills (
    name text PRIMARY KEY
);
COMMENT ON COLUMN pending_backfills.name IS 'The table to fill (today only restated_orders).';
COMMENT ON TABLE pending_backfills IS 'Tables a migration added that the service fills from the stored orders at its next start.';
INSERT INTO pending_backfills (name) VALUES ('restated_orders');
