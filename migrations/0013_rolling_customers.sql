-- The watch timer's live reads bounded (issue 14): the 30-day repeat-customer ratio summed
-- from maintained per-day gaps instead of every order of the window and each customer's
-- history; the contest computed month by month, so reading this month (the watch timer) or
-- the last six (the console) reads those months' smileys only; the open claims and the
-- unanswered negative reviews read through indexes of just those. See
-- docs/architecture.md, "The customer figures" and "Reads bounded by the month".

CREATE TABLE customer_order_gaps (
    day          date    NOT NULL,
    previous_day date    NOT NULL,
    shard        integer NOT NULL,
    customers    bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (day, previous_day, shard)
);
COMMENT ON TABLE customer_order_gaps IS 'Customers per shop-zone day they placed an order on and the latest earlier day they did (the day itself for a first order), as signed deltas per writer shard. Over the days of a window (start, end], the rows whose previous_day is at or before start or equals day count each customer of the window once; those with previous_day < day are the returning ones.';
COMMENT ON COLUMN customer_order_gaps.day IS 'Shop-zone day of order.created.';
COMMENT ON COLUMN customer_order_gaps.previous_day IS 'The customer''s latest earlier day of order.created; equal to day for their first order.';
COMMENT ON COLUMN customer_order_gaps.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN customer_order_gaps.customers IS 'Customers with this (day, previous_day).';

ALTER TABLE customers ADD COLUMN order_days text NOT NULL DEFAULT '';
COMMENT ON COLUMN customers.order_days IS 'The shop-zone day of order.created of each of the customer''s orders (YYYY-MM-DD, space-separated, in no particular order: a batch appends the days of its added orders): what a batch changes to find the customer''s changed customer_order_gaps without reading their orders.';

-- Filled from the stored orders (an empty database fills nothing).
UPDATE customers c SET order_days = d.days
FROM (
    SELECT customer_id, string_agg(created_day::text, ' ' ORDER BY created_day) AS days
    FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
    GROUP BY customer_id
) d
WHERE d.customer_id = c.customer_id;
INSERT INTO customer_order_gaps (day, previous_day, shard, customers)
SELECT day, COALESCE(previous_day, day), 0, count(*)
FROM (
    SELECT day, lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS previous_day
    FROM (
        SELECT DISTINCT customer_id, created_day AS day FROM orders
        WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
    ) d
) g
GROUP BY 1, 2;

CREATE INDEX claims_open ON claims (category)
    WHERE filed_at IS NOT NULL AND resolved_at IS NULL;
CREATE INDEX reviews_unanswered_negative ON reviews (posted_at, review_id)
    WHERE rating <= 2 AND answered_at IS NULL AND posted_at IS NOT NULL;

-- The same answer as 0006's view, each month computed on its own (a LATERAL per month with
-- a smiley), so that a filter on month reaches the smileys' month indexes instead of
-- ranking every month first.
CREATE OR REPLACE VIEW team_ranking_monthly AS
SELECT m.month, r.team_id, r.yellow, r.red,
       CASE WHEN r.yellow + r.red > 0 THEN r.yellow::double precision / (r.yellow + r.red) END
           AS friendliness_index,
       r.team_size, r.team_size <> s.team_size AS size_flagged, r.rank, r.rank = 1 AS winner
FROM (SELECT DISTINCT month FROM courier_smileys) m
CROSS JOIN service_settings s
CROSS JOIN LATERAL (
    WITH tally AS (
        SELECT c.team_id,
               count(*) FILTER (WHERE c.colour = 'yellow')::bigint AS yellow,
               count(*) FILTER (WHERE c.colour = 'red')::bigint AS red
        FROM courier_smileys c WHERE c.month = m.month AND c.team_id IS NOT NULL
        GROUP BY c.team_id
    ),
    sizes AS (
        SELECT x.team_id, count(*)::bigint AS team_size
        FROM (
            SELECT (SELECT r.team_id FROM courier_rosters r
                    WHERE r.courier_id = c.courier_id AND r.month <= m.month
                    ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id
            FROM (SELECT DISTINCT courier_id FROM courier_rosters) c
        ) x
        WHERE x.team_id IS NOT NULL GROUP BY x.team_id
    ),
    teams AS (SELECT team_id FROM tally UNION SELECT team_id FROM sizes)
    SELECT t.team_id, COALESCE(y.yellow, 0) AS yellow, COALESCE(y.red, 0) AS red,
           COALESCE(z.team_size, 0) AS team_size,
           row_number() OVER (ORDER BY COALESCE(y.yellow, 0) DESC, t.team_id) AS rank
    FROM teams t
    LEFT JOIN tally y USING (team_id)
    LEFT JOIN sizes z USING (team_id)
) r;
COMMENT ON VIEW team_ranking_monthly IS 'Friendly-driver contest per shop-zone month: smileys per team (by the team at each smiley''s time), index, size at month end (flagged when not rules.team_size), rank by yellow smileys (ties: lowest team_id) and the winner.';
