-- The open-claims list (GET /api/open-claims, the console's and Grafana's list) reads the
-- oldest open claims first, a page at a time. The partial index of 0013 is on the category
-- (for the count per category), so each page sorted every open claim (8,557 at 1 million
-- orders of the simulated shop: 6.9 ms, growing with the open set). In list order, a page
-- reads its own rows only.
CREATE INDEX claims_open_oldest ON claims (filed_at, claim_id)
    WHERE filed_at IS NOT NULL AND resolved_at IS NULL;
