-- The drill-down lists page through a day's or a month's orders in (delivery day, order id)
-- order (PostgreSQL's 0027).
CREATE INDEX orders_delivered_day_order ON orders (delivered_day, order_id);
DROP INDEX orders_delivered_day;
