-- A version per order row, so that a cached projection can be checked without reading state.

ALTER TABLE orders ADD COLUMN version bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN orders.version IS 'Incremented on every write of the row; a service instance uses its cached projection only while the version it wrote is still there.';
