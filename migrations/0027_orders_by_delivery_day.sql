-- The drill-down lists (GET /api/days/{day}/orders, GET /api/months/{month}/orders) page
-- through the orders a day or a month counts, in (delivery day, order id) order: an index in
-- that order reads a page's rows, not the month's. It takes over from orders_delivered_day
-- (the same leading column).
CREATE INDEX orders_delivered_day_order ON orders (delivered_day, order_id);
DROP INDEX orders_delivered_day;
