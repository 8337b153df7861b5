-- Restatements (PostgreSQL's 0029): the orders whose part in a day's or a month's
-- perfect-order figure changed after the period was over, with the fact that changed it.
CREATE TABLE restated_orders (
    order_id      TEXT NOT NULL,
    period_kind   TEXT NOT NULL CHECK (period_kind IN ('day', 'month')),
    period        TEXT NOT NULL,
    first_verdict TEXT NOT NULL,
    now_verdict   TEXT NOT NULL,
    cause_type    TEXT NOT NULL,
    cause_time    TEXT NOT NULL,
    cause_day     TEXT NOT NULL,
    cause_source  TEXT NOT NULL,
    cause_id      TEXT NOT NULL,
    PRIMARY KEY (order_id, period_kind)
);
CREATE INDEX restated_orders_by_period ON restated_orders (period_kind, period, order_id);

-- Per period: the figure as first complete next to today's (today's from the period's days).
CREATE VIEW restatements AS
SELECT period_kind, period, restated_orders,
       perfect - now_perfect + first_perfect AS perfect_first,
       fulfilled - now_fulfilled + first_fulfilled AS fulfilled_first,
       CASE WHEN fulfilled - now_fulfilled + first_fulfilled > 0
            THEN CAST(perfect - now_perfect + first_perfect AS REAL)
                 / (fulfilled - now_fulfilled + first_fulfilled) END AS po_rate_first,
       perfect AS perfect_now, fulfilled AS fulfilled_now,
       CASE WHEN fulfilled > 0 THEN CAST(perfect AS REAL) / fulfilled END AS po_rate_now,
       by_claims, by_cancellations, by_confirmations, by_other
FROM (
    SELECT r.*,
           (SELECT COALESCE(sum(d.perfect), 0) FROM daily_kpi_shards d
            WHERE d.day >= r.period
              AND d.day < CASE r.period_kind WHEN 'day' THEN date(r.period, '+1 day')
                                             ELSE date(r.period, '+1 month') END) AS perfect,
           (SELECT COALESCE(sum(d.fulfilled), 0) FROM daily_kpi_shards d
            WHERE d.day >= r.period
              AND d.day < CASE r.period_kind WHEN 'day' THEN date(r.period, '+1 day')
                                             ELSE date(r.period, '+1 month') END) AS fulfilled
    FROM (
        SELECT period_kind, period, count(*) AS restated_orders,
               sum(now_verdict = 'perfect') AS now_perfect,
               sum(now_verdict IN ('perfect', 'imperfect')) AS now_fulfilled,
               sum(first_verdict = 'perfect') AS first_perfect,
               sum(first_verdict IN ('perfect', 'imperfect')) AS first_fulfilled,
               sum(cause_type = 'claim.filed') AS by_claims,
               sum(cause_type = 'order.cancelled') AS by_cancellations,
               sum(cause_type = 'order.confirmed') AS by_confirmations,
               sum(cause_type NOT IN ('claim.filed', 'order.cancelled', 'order.confirmed')) AS by_other
        FROM restated_orders
        GROUP BY period_kind, period
    ) r
);

CREATE VIEW restatements_monthly AS
SELECT period AS month, restated_orders, perfect_first, fulfilled_first, po_rate_first,
       perfect_now, fulfilled_now, po_rate_now, by_claims, by_cancellations, by_confirmations,
       by_other
FROM restatements WHERE period_kind = 'month';

CREATE VIEW restatements_daily AS
SELECT period AS day, restated_orders, perfect_first, fulfilled_first, po_rate_first,
       perfect_now, fulfilled_now, po_rate_now, by_claims, by_cancellations, by_confirmations,
       by_other
FROM restatements WHERE period_kind = 'day';

-- The stored orders' restatements are computed by the service from orders.state: the first
-- start after this migration fills them.
CREATE TABLE pending_backfills (
    name TEXT PRIMARY KEY
);
INSERT INTO pending_backfills (name) VALUES ('restated_orders');
