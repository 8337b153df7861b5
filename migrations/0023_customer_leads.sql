-- How many captured leads name each customer (issue 14): a batch that moves a customer's
-- first order moves the conversions of the leads naming the customer, and read them once per
-- batch (one statement of every order batch, about 3 % of ingest). The count is kept on the
-- customer's row, changed by the lead batches in the statement that locks the customer and
-- returned by the order batches' lock, so the leads are read only for a customer some lead
-- names. A customer a lead names before their first order gets a row with no first order.

ALTER TABLE customers ADD COLUMN leads bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN customers.leads IS 'Captured leads whose earliest lead.captured names the customer: an order batch that moves the customer''s first order reads their leads only when there are some.';

INSERT INTO customers (customer_id, leads)
SELECT customer_id, count(*) FROM leads
WHERE captured_at IS NOT NULL AND customer_id IS NOT NULL
GROUP BY customer_id
ON CONFLICT (customer_id) DO UPDATE SET leads = excluded.leads;
