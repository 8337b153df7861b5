-- Maintained sales (issue 14): the revenue and fulfilled orders acquisition_monthly reports
-- per month of delivery (channel 'all' and per sales channel), and the sales channels orders
-- name, kept by the batch transaction as signed deltas instead of summed from every order
-- on each read. See docs/architecture.md, "Maintained figures".

CREATE TABLE sales_shards (
    month   date    NOT NULL,
    shard   integer NOT NULL,
    orders  bigint  NOT NULL DEFAULT 0,
    revenue numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (month, shard)
);
COMMENT ON TABLE sales_shards IS 'Fulfilled orders (perfect or imperfect) with a total per shop-zone month of delivery, and the sum of their totals (exact), as signed deltas per writer shard; acquisition_monthly sums the shards.';
COMMENT ON COLUMN sales_shards.month IS 'Shop-zone month of delivery (first day).';
COMMENT ON COLUMN sales_shards.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN sales_shards.orders IS 'Fulfilled orders with a total.';
COMMENT ON COLUMN sales_shards.revenue IS 'Sum of their order.created totals.';

CREATE TABLE channel_sales_shards (
    month   date    NOT NULL,
    channel text COLLATE "C" NOT NULL,
    shard   integer NOT NULL,
    orders  bigint  NOT NULL DEFAULT 0,
    revenue numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (month, channel, shard)
);
COMMENT ON TABLE channel_sales_shards IS 'As sales_shards, per sales_channel of order.created (orders without one count only in sales_shards).';
COMMENT ON COLUMN channel_sales_shards.month IS 'Shop-zone month of delivery (first day).';
COMMENT ON COLUMN channel_sales_shards.channel IS 'sales_channel of order.created.';
COMMENT ON COLUMN channel_sales_shards.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN channel_sales_shards.orders IS 'Fulfilled orders with a total.';
COMMENT ON COLUMN channel_sales_shards.revenue IS 'Sum of their order.created totals.';

CREATE TABLE sales_channel_orders (
    channel text COLLATE "C" NOT NULL,
    shard   integer NOT NULL,
    orders  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, shard)
);
COMMENT ON TABLE sales_channel_orders IS 'Stored orders per sales_channel of order.created, as signed deltas per writer shard: acquisition_monthly reports a channel that has orders and spends.';
COMMENT ON COLUMN sales_channel_orders.channel IS 'sales_channel of order.created.';
COMMENT ON COLUMN sales_channel_orders.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN sales_channel_orders.orders IS 'Orders naming the channel.';

-- Filled from the stored orders (an empty database fills nothing).
INSERT INTO sales_shards (month, shard, orders, revenue)
SELECT date_trunc('month', delivered_day)::date, 0, count(*), sum(total)
FROM orders WHERE verdict IN ('perfect', 'imperfect') AND total IS NOT NULL
GROUP BY 1;
INSERT INTO channel_sales_shards (month, channel, shard, orders, revenue)
SELECT date_trunc('month', delivered_day)::date, sales_channel, 0, count(*), sum(total)
FROM orders
WHERE verdict IN ('perfect', 'imperfect') AND total IS NOT NULL AND sales_channel IS NOT NULL
GROUP BY 1, 2;
INSERT INTO sales_channel_orders (channel, shard, orders)
SELECT sales_channel, 0, count(*) FROM orders WHERE sales_channel IS NOT NULL GROUP BY 1;

CREATE OR REPLACE VIEW acquisition_monthly AS
WITH spend_months AS (
    SELECT m::date AS month, s.channel,
           s.amount * ((LEAST(s.to_day, (m + interval '1 month' - interval '1 day')::date)
                        - GREATEST(s.from_day, m::date) + 1))::numeric
                    / ((s.to_day - s.from_day) + 1) AS spend
    FROM spends s,
         generate_series(date_trunc('month', s.from_day), s.to_day, interval '1 month') AS m
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
    SELECT month, 'all'::text AS channel, spend, 0::numeric AS new_customers, 0::numeric AS orders, 0::numeric AS revenue FROM spend_months
    UNION ALL SELECT month, channel, spend, 0, 0, 0 FROM spend_months WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, n, 0, 0 FROM new_all
    UNION ALL SELECT month, channel, 0, n, 0, 0 FROM new_channel WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, 0, orders, revenue FROM sold
    UNION ALL SELECT month, channel, 0, 0, orders, revenue FROM channel_sold WHERE channel IN (SELECT channel FROM channels)
),
sums AS (
    SELECT month, channel, sum(spend) AS spend, sum(new_customers)::bigint AS new_customers,
           sum(orders)::bigint AS fulfilled_orders, sum(revenue) AS revenue
    FROM facts GROUP BY 1, 2
)
SELECT month, channel, spend, new_customers,
       CASE WHEN new_customers > 0 THEN spend / new_customers END AS cac,
       fulfilled_orders, revenue,
       CASE WHEN fulfilled_orders > 0 THEN revenue / fulfilled_orders END AS aov,
       CASE WHEN new_customers > 0 AND fulfilled_orders > 0 AND revenue > 0
            THEN (spend / new_customers) / (revenue / fulfilled_orders) END AS cac_to_aov
FROM sums;
COMMENT ON VIEW acquisition_monthly IS 'Per shop-zone month, for channel ''all'' and per channel present on spends and as a sales_channel: spend attributed pro rata by days, new customers (first order.created ever; from customer_kpi_shards and new_customer_channels), CAC = spend / new customers, AOV = revenue of orders delivered in the month / their count (from sales_shards and channel_sales_shards), and CAC / AOV.';
