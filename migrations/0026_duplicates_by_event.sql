-- An order's explanation (GET /api/orders/{id}, `perfect-order explain`) says how many later
-- copies of each of its events were dropped: duplicate_events is keyed by where a copy was
-- read, so counting the copies of one event needs an index by the event it repeats.
CREATE INDEX duplicate_events_event ON duplicate_events (source, id);
