-- How many captured leads name each customer (see the PostgreSQL migration 0023).

ALTER TABLE customers ADD COLUMN leads INTEGER NOT NULL DEFAULT 0;

INSERT INTO customers (customer_id, leads)
SELECT customer_id, count(*) FROM leads
WHERE captured_at IS NOT NULL AND customer_id IS NOT NULL
GROUP BY customer_id
ON CONFLICT (customer_id) DO UPDATE SET leads = excluded.leads;
