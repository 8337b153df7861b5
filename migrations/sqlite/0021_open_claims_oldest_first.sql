-- The open-claims list reads the oldest open claims first, a page at a time: an index in
-- list order (PostgreSQL's 0025).
CREATE INDEX claims_open_oldest ON claims (filed_at, claim_id)
    WHERE filed_at IS NOT NULL AND resolved_at IS NULL;
