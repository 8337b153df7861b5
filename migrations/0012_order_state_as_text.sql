-- The order's state is written whole by every batch that changes the order and read back
-- only by the fold, which parses it itself: as jsonb, PostgreSQL parsed each written state
-- into its binary form and printed each read one back to text, work no reader used (issue
-- 14, ingest). It is kept as the JSON text the service wrote.
ALTER TABLE orders ALTER COLUMN state TYPE text USING state::text;
COMMENT ON COLUMN orders.state IS 'All facts of the order as JSON text; the fold resumes from it (internal, may change between versions).';
