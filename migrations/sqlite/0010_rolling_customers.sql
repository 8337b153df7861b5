-- The watch timer's live reads bounded: the 30-day repeat-customer ratio summed from
-- maintained per-day gaps. See the PostgreSQL migration 0013.

CREATE TABLE customer_order_gaps (
    day          TEXT    NOT NULL,  -- shop-zone day of order.created
    previous_day TEXT    NOT NULL,  -- the customer's latest earlier order day; day for a first order
    shard        INTEGER NOT NULL,
    customers    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, previous_day, shard)
) WITHOUT ROWID;

-- Each order's shop-zone day of order.created, space-separated (order irrelevant to the reader).
ALTER TABLE customers ADD COLUMN order_days TEXT NOT NULL DEFAULT '';
UPDATE customers SET order_days = COALESCE((
    SELECT group_concat(created_day, ' ') FROM orders o
    WHERE o.customer_id = customers.customer_id AND o.created_at IS NOT NULL
), '');

INSERT INTO customer_order_gaps (day, previous_day, shard, customers)
SELECT day, COALESCE(previous_day, day), 0, count(*)
FROM (
    SELECT day, lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS previous_day
    FROM (
        SELECT DISTINCT customer_id, created_day AS day FROM orders
        WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
    )
)
GROUP BY 1, 2;

CREATE INDEX claims_open ON claims (category)
    WHERE filed_at IS NOT NULL AND resolved_at IS NULL;
CREATE INDEX reviews_unanswered_negative ON reviews (posted_at, review_id)
    WHERE rating <= 2 AND answered_at IS NULL AND posted_at IS NOT NULL;
