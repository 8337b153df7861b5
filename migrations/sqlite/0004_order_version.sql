-- SQLite edition of ../0004_order_version.sql: a version per order row, incremented on every
-- write.

ALTER TABLE orders ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
