-- Maintained sales: the revenue and fulfilled orders of acquisition_monthly and the sales
-- channels orders name, kept by the batch transaction. See the PostgreSQL migration 0014.

CREATE TABLE sales_shards (
    month   TEXT    NOT NULL,  -- shop-zone month of delivery (first day)
    shard   INTEGER NOT NULL,
    orders  INTEGER NOT NULL DEFAULT 0,
    revenue REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (month, shard)
) WITHOUT ROWID;

CREATE TABLE channel_sales_shards (
    month   TEXT    NOT NULL,
    channel TEXT    NOT NULL,
    shard   INTEGER NOT NULL,
    orders  INTEGER NOT NULL DEFAULT 0,
    revenue REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (month, channel, shard)
) WITHOUT ROWID;

CREATE TABLE sales_channel_orders (
    channel TEXT    NOT NULL,
    shard   INTEGER NOT NULL,
    orders  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, shard)
) WITHOUT ROWID;

INSERT INTO sales_shards (month, shard, orders, revenue)
SELECT strftime('%Y-%m-01', delivered_day), 0, count(*), sum(total)
FROM orders WHERE verdict IN ('perfect', 'imperfect') AND total IS NOT NULL
GROUP BY 1;
INSERT INTO channel_sales_shards (month, channel, shard, orders, revenue)
SELECT strftime('%Y-%m-01', delivered_day), sales_channel, 0, count(*), sum(total)
FROM orders
WHERE verdict IN ('perfect', 'imperfect') AND total IS NOT NULL AND sales_channel IS NOT NULL
GROUP BY 1, 2;
INSERT INTO sales_channel_orders (channel, shard, orders)
SELECT sales_channel, 0, count(*) FROM orders WHERE sales_channel IS NOT NULL GROUP BY 1;

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
sold AS (
    SELECT month, sum(orders) AS orders, sum(revenue) AS revenue
    FROM sales_shards GROUP BY month HAVING sum(orders) <> 0
),
channel_sold AS (
    SELECT month, channel, sum(orders) AS orders, sum(revenue) AS revenue
    FROM channel_sales_shards GROUP BY month, channel HAVING sum(orders) <> 0
),
channels AS (
    SELECT DISTINCT channel FROM spends WHERE channel IS NOT NULL
    INTERSECT SELECT channel FROM sales_channel_orders GROUP BY channel HAVING sum(orders) > 0
),
facts AS (
    SELECT month, 'all' AS channel, spend, 0 AS new_customers, 0 AS orders, 0 AS revenue FROM spend_months
    UNION ALL SELECT month, channel, spend, 0, 0, 0 FROM spend_months WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, n, 0, 0 FROM new_all
    UNION ALL SELECT month, channel, 0, n, 0, 0 FROM new_channel WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, 0, orders, revenue FROM sold
    UNION ALL SELECT month, channel, 0, 0, orders, revenue FROM channel_sold WHERE channel IN (SELECT channel FROM channels)
),
sums AS (
    SELECT month, channel, CAST(sum(spend) AS REAL) AS spend, sum(new_customers) AS new_customers,
           sum(orders) AS fulfilled_orders, CAST(sum(revenue) AS REAL) AS revenue
    FROM facts GROUP BY 1, 2
)
SELECT month, channel, spend, new_customers,
       CASE WHEN new_customers > 0 THEN spend / new_customers END AS cac,
       fulfilled_orders, revenue,
       CASE WHEN fulfilled_orders > 0 THEN revenue / fulfilled_orders END AS aov,
       CASE WHEN new_customers > 0 AND fulfilled_orders > 0 AND revenue > 0
            THEN (spend / new_customers) / (revenue / fulfilled_orders) END AS cac_to_aov
FROM sums;
