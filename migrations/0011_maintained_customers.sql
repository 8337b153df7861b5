-- Maintained customer figures (issue 14): repeat customers per month, new customers per
-- month and sales channel, and the first order the lead base converts on, kept by the batch
-- transaction for the customers it touches instead of recomputed from every order on each
-- read. See docs/architecture.md, "Maintained figures".

CREATE TABLE customers (
    customer_id    text COLLATE "C" PRIMARY KEY,
    first_at       timestamptz,
    first_order_id text COLLATE "C",
    first_month    date,
    first_channel  text
);
COMMENT ON TABLE customers IS 'Each customer''s first order (order.created with the least time, then order id): what decides whether they are new or returning in a month, their acquisition month and channel, and a lead''s conversion.';
COMMENT ON COLUMN customers.customer_id IS 'Customer from order.created.';
COMMENT ON COLUMN customers.first_at IS 'order.created time of the first order.';
COMMENT ON COLUMN customers.first_order_id IS 'The first order (ties in time: the least order id).';
COMMENT ON COLUMN customers.first_channel IS 'sales_channel of the first order (null: none given).';
COMMENT ON COLUMN customers.first_month IS 'Shop-zone month of the first order (first day); null when no stored order names the customer any more.';

CREATE TABLE customer_months (
    customer_id text COLLATE "C" NOT NULL,
    month       date NOT NULL,
    orders      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, month)
);
COMMENT ON TABLE customer_months IS 'Orders each customer placed per shop-zone month of order.created (0 after a correction moved them away).';
COMMENT ON COLUMN customer_months.customer_id IS 'Customer from order.created.';
COMMENT ON COLUMN customer_months.month IS 'Shop-zone month of order.created (first day).';
COMMENT ON COLUMN customer_months.orders IS 'Orders of the customer created in the month.';

CREATE TABLE customer_kpi_shards (
    month               date    NOT NULL,
    shard               integer NOT NULL,
    customers           bigint  NOT NULL DEFAULT 0,
    returning_customers bigint  NOT NULL DEFAULT 0,
    orders              bigint  NOT NULL DEFAULT 0,
    returning_orders    bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, shard)
);
COMMENT ON TABLE customer_kpi_shards IS 'Repeat-customer counts per shop-zone month of order.created as signed deltas per writer shard; repeat_customers_monthly sums the shards.';
COMMENT ON COLUMN customer_kpi_shards.month IS 'Shop-zone month of order.created (first day).';
COMMENT ON COLUMN customer_kpi_shards.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN customer_kpi_shards.customers IS 'Customers with an order created in the month.';
COMMENT ON COLUMN customer_kpi_shards.returning_customers IS 'Of them, those whose first order was in an earlier month (customers - returning_customers: the month''s new customers).';
COMMENT ON COLUMN customer_kpi_shards.orders IS 'Orders created in the month.';
COMMENT ON COLUMN customer_kpi_shards.returning_orders IS 'Of them, those placed by returning customers.';

CREATE TABLE new_customer_channels (
    month         date    NOT NULL,
    channel       text COLLATE "C" NOT NULL,
    shard         integer NOT NULL,
    new_customers bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, channel, shard)
);
COMMENT ON TABLE new_customer_channels IS 'New customers per shop-zone month of their first order and its sales channel, as signed deltas per writer shard (customers whose first order has no channel count only in the shop-wide figure).';
COMMENT ON COLUMN new_customer_channels.month IS 'Shop-zone month of the first order (first day).';
COMMENT ON COLUMN new_customer_channels.channel IS 'sales_channel of the first order.';
COMMENT ON COLUMN new_customer_channels.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN new_customer_channels.new_customers IS 'Customers whose first order is in the month, through the channel.';

-- Filled from the stored orders (an empty database fills nothing).
INSERT INTO customers (customer_id, first_at, first_order_id, first_month, first_channel)
SELECT DISTINCT ON (customer_id) customer_id, created_at, order_id,
       date_trunc('month', created_day)::date, sales_channel
FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
ORDER BY customer_id, created_at, order_id;
INSERT INTO customer_months (customer_id, month, orders)
SELECT customer_id, date_trunc('month', created_day)::date, count(*)
FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
GROUP BY 1, 2;
INSERT INTO customer_kpi_shards (month, shard, customers, returning_customers, orders, returning_orders)
SELECT m.month, 0, count(*), count(*) FILTER (WHERE c.first_month < m.month), sum(m.orders),
       COALESCE(sum(m.orders) FILTER (WHERE c.first_month < m.month), 0)
FROM customer_months m JOIN customers c USING (customer_id)
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
SELECT month,
       customers::bigint AS customers,
       returning_customers::bigint AS returning_customers,
       returning_customers::double precision / customers AS returning_customer_share,
       orders::bigint AS orders,
       returning_orders::bigint AS returning_orders,
       returning_orders::double precision / orders AS returning_order_share
FROM m;
COMMENT ON VIEW repeat_customers_monthly IS 'Per shop-zone month of order.created: customers with an order, those who had ordered before the month (cancelled orders count), their share, and the share of the month''s orders they placed (from customer_kpi_shards).';

DROP VIEW acquisition_monthly;
CREATE VIEW acquisition_monthly AS
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
fulfilled AS (
    SELECT date_trunc('month', delivered_day)::date AS month, sales_channel, total
    FROM orders WHERE verdict IN ('perfect', 'imperfect') AND total IS NOT NULL
),
channels AS (
    SELECT DISTINCT channel FROM spends WHERE channel IS NOT NULL
    INTERSECT SELECT DISTINCT sales_channel FROM orders WHERE sales_channel IS NOT NULL
),
facts AS (
    SELECT month, 'all'::text AS channel, spend, 0::numeric AS new_customers, NULL::numeric AS total FROM spend_months
    UNION ALL SELECT month, channel, spend, 0, NULL FROM spend_months WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, n, NULL FROM new_all
    UNION ALL SELECT month, channel, 0, n, NULL FROM new_channel WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, 0, total FROM fulfilled
    UNION ALL SELECT month, sales_channel, 0, 0, total FROM fulfilled WHERE sales_channel IN (SELECT channel FROM channels)
),
sums AS (
    SELECT month, channel, sum(spend) AS spend, sum(new_customers)::bigint AS new_customers,
           count(total)::bigint AS fulfilled_orders, COALESCE(sum(total), 0) AS revenue
    FROM facts GROUP BY 1, 2
)
SELECT month, channel, spend, new_customers,
       CASE WHEN new_customers > 0 THEN spend / new_customers END AS cac,
       fulfilled_orders, revenue,
       CASE WHEN fulfilled_orders > 0 THEN revenue / fulfilled_orders END AS aov,
       CASE WHEN new_customers > 0 AND fulfilled_orders > 0 AND revenue > 0
            THEN (spend / new_customers) / (revenue / fulfilled_orders) END AS cac_to_aov
FROM sums;
COMMENT ON VIEW acquisition_monthly IS 'Per shop-zone month, for channel ''all'' and per channel present on spends and as a sales_channel: spend attributed pro rata by days, new customers (first order.created ever; from customer_kpi_shards and new_customer_channels), CAC = spend / new customers, AOV = revenue of orders delivered in the month / their count, and CAC / AOV.';

DROP VIEW lead_base_monthly;
CREATE VIEW lead_base_monthly AS
WITH months AS (
    SELECT generate_series(min(l.captured_month), (SELECT max(month) FROM lead_events),
                           interval '1 month')::date AS month
    FROM leads l WHERE l.captured_month IS NOT NULL
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
           count(*)::bigint AS leads,
           count(*) FILTER (WHERE captured_month = month)::bigint AS new_leads,
           count(*) FILTER (WHERE temperature = 'cold')::bigint AS cold,
           count(*) FILTER (WHERE temperature = 'warm')::bigint AS warm,
           count(*) FILTER (WHERE temperature = 'hot')::bigint AS hot,
           count(*) FILTER (WHERE converted_month <= month)::bigint AS converted,
           count(*) FILTER (WHERE converted_month = month)::bigint AS new_conversions
    FROM base GROUP BY month
)
SELECT month, leads, new_leads, cold, warm, hot,
       (warm + hot)::double precision / leads AS warm_hot_share,
       CASE WHEN lag(leads) OVER (ORDER BY month) > 0
            THEN (leads - lag(leads) OVER (ORDER BY month))::double precision / lag(leads) OVER (ORDER BY month)
       END AS growth,
       converted, new_conversions
FROM totals;
COMMENT ON VIEW lead_base_monthly IS 'Lead base at each shop-zone month end: leads captured before it by their latest temperature, new leads, warm+hot share, growth over the previous month, and leads converted (their customer''s first order at or after the capture, from customers).';
