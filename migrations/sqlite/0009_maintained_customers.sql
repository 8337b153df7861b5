-- Maintained customer figures: repeat customers per month, new customers per month and
-- sales channel, and the first order the lead base converts on, kept by the batch
-- transaction. See the PostgreSQL migration 0011.

CREATE TABLE customers (
    customer_id    TEXT PRIMARY KEY,
    first_at       TEXT,  -- order.created of the first order (least time, then order id)
    first_order_id TEXT,
    first_month    TEXT,  -- its shop-zone month (first day)
    first_channel  TEXT
) WITHOUT ROWID;

CREATE TABLE customer_months (
    customer_id TEXT    NOT NULL,
    month       TEXT    NOT NULL,
    orders      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, month)
) WITHOUT ROWID;

CREATE TABLE customer_kpi_shards (
    month               TEXT    NOT NULL,
    shard               INTEGER NOT NULL,
    customers           INTEGER NOT NULL DEFAULT 0,
    returning_customers INTEGER NOT NULL DEFAULT 0,
    orders              INTEGER NOT NULL DEFAULT 0,
    returning_orders    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, shard)
) WITHOUT ROWID;

CREATE TABLE new_customer_channels (
    month         TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    shard         INTEGER NOT NULL,
    new_customers INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, channel, shard)
) WITHOUT ROWID;

INSERT INTO customers (customer_id, first_at, first_order_id, first_month, first_channel)
SELECT customer_id, created_at, order_id, strftime('%Y-%m-01', created_day), sales_channel
FROM (
    SELECT customer_id, created_at, order_id, created_day, sales_channel,
           row_number() OVER (PARTITION BY customer_id ORDER BY created_at, order_id) AS n
    FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
) WHERE n = 1;
INSERT INTO customer_months (customer_id, month, orders)
SELECT customer_id, strftime('%Y-%m-01', created_day), count(*)
FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
GROUP BY 1, 2;
INSERT INTO customer_kpi_shards (month, shard, customers, returning_customers, orders, returning_orders)
SELECT m.month, 0, count(*), count(*) FILTER (WHERE c.first_month < m.month), sum(m.orders),
       COALESCE(sum(m.orders) FILTER (WHERE c.first_month < m.month), 0)
FROM customer_months m JOIN customers c ON c.customer_id = m.customer_id
GROUP BY m.month;
INSERT INTO new_customer_channels (month, channel, shard, new_customers)
SELECT first_month, first_channel, 0, count(*)
FROM customers WHERE first_month IS NOT NULL AND first_channel IS NOT NULL
GROUP BY 1, 2;

DROP VIEW repeat_customers_monthly;
CREATE VIEW repeat_customers_monthly AS
WITH m AS (
    SELECT month, sum(customers) AS customers, sum(returning_customers) AS returning_customers,
           sum(orders) AS orders, sum(returning_orders) AS returning_orders
    FROM customer_kpi_shards GROUP BY month HAVING sum(customers) > 0
)
SELECT month, customers, returning_customers,
       CAST(returning_customers AS REAL) / customers AS returning_customer_share,
       orders, returning_orders,
       CAST(returning_orders AS REAL) / orders AS returning_order_share
FROM m;

DROP VIEW acquisition_monthly;
CREATE VIEW acquisition_monthly AS
WITH RECURSIVE sm(spend_id, month) AS (
    SELECT spend_id, strftime('%Y-%m-01', from_day) FROM spends
    UNION ALL
    SELECT sm.spend_id, date(sm.month, '+1 month') FROM sm JOIN spends s ON s.spend_id = sm.spend_id
    WHERE date(sm.month, '+1 month') <= s.to_day
),
spend_months AS (
    SELECT sm.month, s.channel,
           s.amount * (julianday(min(s.to_day, date(sm.month, '+1 month', '-1 day')))
                       - julianday(max(s.from_day, sm.month)) + 1)
                    / (julianday(s.to_day) - julianday(s.from_day) + 1) AS spend
    FROM sm JOIN spends s ON s.spend_id = sm.spend_id
),
new_all AS (
    SELECT month, sum(customers - returning_customers) AS n
    FROM customer_kpi_shards GROUP BY month HAVING sum(customers - returning_customers) <> 0
),
new_channel AS (
    SELECT month, channel, sum(new_customers) AS n
    FROM new_customer_channels GROUP BY month, channel HAVING sum(new_customers) <> 0
),
fulfilled AS (
    SELECT strftime('%Y-%m-01', delivered_day) AS month, sales_channel, total
    FROM orders WHERE verdict IN ('perfect', 'imperfect') AND total IS NOT NULL
),
channels AS (
    SELECT DISTINCT channel FROM spends WHERE channel IS NOT NULL
    INTERSECT SELECT DISTINCT sales_channel FROM orders WHERE sales_channel IS NOT NULL
),
facts AS (
    SELECT month, 'all' AS channel, spend, 0 AS new_customers, NULL AS total FROM spend_months
    UNION ALL SELECT month, channel, spend, 0, NULL FROM spend_months WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, n, NULL FROM new_all
    UNION ALL SELECT month, channel, 0, n, NULL FROM new_channel WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, 0, total FROM fulfilled
    UNION ALL SELECT month, sales_channel, 0, 0, total FROM fulfilled WHERE sales_channel IN (SELECT channel FROM channels)
),
sums AS (
    SELECT month, channel, CAST(sum(spend) AS REAL) AS spend, sum(new_customers) AS new_customers,
           count(total) AS fulfilled_orders, CAST(COALESCE(sum(total), 0) AS REAL) AS revenue
    FROM facts GROUP BY 1, 2
)
SELECT month, channel, spend, new_customers,
       CASE WHEN new_customers > 0 THEN spend / new_customers END AS cac,
       fulfilled_orders, revenue,
       CASE WHEN fulfilled_orders > 0 THEN revenue / fulfilled_orders END AS aov,
       CASE WHEN new_customers > 0 AND fulfilled_orders > 0 AND revenue > 0
            THEN (spend / new_customers) / (revenue / fulfilled_orders) END AS cac_to_aov
FROM sums;

DROP VIEW lead_base_monthly;
CREATE VIEW lead_base_monthly AS
WITH RECURSIVE months(month) AS (
    SELECT min(captured_month) FROM leads WHERE captured_month IS NOT NULL
    UNION ALL
    SELECT date(month, '+1 month') FROM months
    WHERE date(month, '+1 month') <= (SELECT max(month) FROM lead_events)
),
base AS (
    SELECT m.month, l.lead_id, l.captured_month,
           (SELECT e.temperature FROM lead_events e
            WHERE e.lead_id = l.lead_id AND e.month <= m.month
            ORDER BY e.time DESC, e.source DESC, e.id DESC LIMIT 1) AS temperature,
           CASE WHEN f.first_at >= l.captured_at THEN f.first_month END AS converted_month
    FROM months m
    JOIN leads l ON l.captured_month <= m.month
    LEFT JOIN customers f ON f.customer_id = l.customer_id
),
totals AS (
    SELECT month,
           count(*) AS leads,
           count(*) FILTER (WHERE captured_month = month) AS new_leads,
           count(*) FILTER (WHERE temperature = 'cold') AS cold,
           count(*) FILTER (WHERE temperature = 'warm') AS warm,
           count(*) FILTER (WHERE temperature = 'hot') AS hot,
           count(*) FILTER (WHERE converted_month <= month) AS converted,
           count(*) FILTER (WHERE converted_month = month) AS new_conversions
    FROM base GROUP BY month
)
SELECT month, leads, new_leads, cold, warm, hot,
       CAST(warm + hot AS REAL) / leads AS warm_hot_share,
       CASE WHEN lag(leads) OVER (ORDER BY month) > 0
            THEN CAST(leads - lag(leads) OVER (ORDER BY month) AS REAL) / lag(leads) OVER (ORDER BY month)
       END AS growth,
       converted, new_conversions
FROM totals;
