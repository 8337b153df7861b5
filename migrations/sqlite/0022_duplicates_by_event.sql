-- The copies of one event, counted for an order's explanation (PostgreSQL's 0026).
CREATE INDEX duplicate_events_event ON duplicate_events (source, id);
