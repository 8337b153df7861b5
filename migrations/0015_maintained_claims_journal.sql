-- The claims journal, maintained (issue 14): claims_journal_monthly reads per-month counts
-- and a per-month distribution of the time to resolve, kept by the batch transaction as
-- signed deltas, instead of recomputing every month's open claims and their stages from all
-- claims on each read. The rules are in src/domain/journal.rs; see docs/architecture.md,
-- "Maintained figures".
--
-- A claim open at a month end counts in every later month until it is resolved, also months
-- no event has reached yet; so the open counts are kept as their changes per month (the
-- month a claim starts being open in a stage gains one, the month it leaves the stage loses
-- one) and the view sums the changes up to each month.

CREATE TABLE claim_journal (
    claim_id       text COLLATE "C" PRIMARY KEY,
    category       text,
    filed_at       timestamptz,
    filed_month    date,
    resolved_at    timestamptz,
    resolved_month date,
    version        bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE claim_journal IS 'What the claims journal counts of each claim (its filing and resolution, with their shop-zone months): the contribution a batch retracts when it changes the claim, and the row it locks to do so.';
COMMENT ON COLUMN claim_journal.claim_id IS 'Claim id from the events.';
COMMENT ON COLUMN claim_journal.filed_at IS 'Event time of claim.filed.';
COMMENT ON COLUMN claim_journal.resolved_at IS 'Event time of claim.resolved.';
COMMENT ON COLUMN claim_journal.category IS 'Category of claim.filed; null while it has not been seen.';
COMMENT ON COLUMN claim_journal.filed_month IS 'First day of the shop-zone month of claim.filed.';
COMMENT ON COLUMN claim_journal.resolved_month IS 'First day of the shop-zone month of claim.resolved.';
COMMENT ON COLUMN claim_journal.version IS 'How many batches have locked the row.';

CREATE TABLE claims_journal_shards (
    month              date    NOT NULL,
    category           text    NOT NULL,
    shard              integer NOT NULL,
    filed              bigint  NOT NULL DEFAULT 0,
    resolved           bigint  NOT NULL DEFAULT 0,
    open_registered    bigint  NOT NULL DEFAULT 0,
    open_investigating bigint  NOT NULL DEFAULT 0,
    open_action_taken  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, category, shard)
);
COMMENT ON TABLE claims_journal_shards IS 'Claims journal per shop-zone month and category, as signed deltas per writer shard: claims filed and resolved in the month, and the change in the month of the claims open at month end per stage (the open claims at a month end are the sum of the changes up to it).';
COMMENT ON COLUMN claims_journal_shards.month IS 'First day of the shop-zone month.';
COMMENT ON COLUMN claims_journal_shards.category IS 'Category of claim.filed.';
COMMENT ON COLUMN claims_journal_shards.filed IS 'Claims filed in the month.';
COMMENT ON COLUMN claims_journal_shards.resolved IS 'Claims resolved in the month (filed ones).';
COMMENT ON COLUMN claims_journal_shards.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN claims_journal_shards.open_registered IS 'Change in the month of the claims open at month end in stage registered.';
COMMENT ON COLUMN claims_journal_shards.open_investigating IS 'Change in the month of the claims open at month end in stage investigating.';
COMMENT ON COLUMN claims_journal_shards.open_action_taken IS 'Change in the month of the claims open at month end in stage action_taken.';

CREATE TABLE claim_resolve_seconds (
    month    date    NOT NULL,
    category text    NOT NULL,
    seconds  bigint  NOT NULL,
    shard    integer NOT NULL,
    claims   bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, category, seconds, shard)
);
COMMENT ON TABLE claim_resolve_seconds IS 'Time to resolve as a distribution: per shop-zone month of claim.resolved, category and whole second, how many claims took that long from claim.filed (summed over the writer shards).';
COMMENT ON COLUMN claim_resolve_seconds.month IS 'First day of the shop-zone month of claim.resolved.';
COMMENT ON COLUMN claim_resolve_seconds.category IS 'Category of claim.filed.';
COMMENT ON COLUMN claim_resolve_seconds.claims IS 'Claims with that month, category and value (this shard''s share; may be negative, the sum is not).';
COMMENT ON COLUMN claim_resolve_seconds.seconds IS 'Whole seconds from claim.filed to claim.resolved (rounded down).';
COMMENT ON COLUMN claim_resolve_seconds.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';

-- Filled from the stored claims and stages (an empty database fills nothing).
INSERT INTO claim_journal (claim_id, category, filed_at, filed_month, resolved_at, resolved_month)
SELECT claim_id, category, filed_at, date_trunc('month', filed_day)::date,
       resolved_at, date_trunc('month', resolved_day)::date
FROM claims;

INSERT INTO claim_resolve_seconds (month, category, seconds, shard, claims)
SELECT resolved_month, category, floor(extract(epoch FROM resolved_at - filed_at))::bigint, 0,
       count(*)
FROM claim_journal
WHERE category IS NOT NULL AND filed_at IS NOT NULL AND resolved_at IS NOT NULL
GROUP BY 1, 2, 3;

WITH c AS (
    SELECT claim_id, category, filed_month AS fm, resolved_month AS rm
    FROM claim_journal WHERE category IS NOT NULL AND filed_at IS NOT NULL
),
latest AS (  -- each claim's latest stage per month
    SELECT DISTINCT ON (claim_id, month) claim_id, month, stage
    FROM claim_stages ORDER BY claim_id, month, time DESC, source DESC, id DESC
),
points AS (  -- the months a claim's open stage may change: its filing, its later stage months
    SELECT claim_id, category, fm AS month, rm FROM c WHERE rm IS NULL OR rm > fm
    UNION
    SELECT c.claim_id, c.category, l.month, c.rm
    FROM c JOIN latest l ON l.claim_id = c.claim_id
    WHERE l.month > c.fm AND (c.rm IS NULL OR l.month < c.rm)
),
staged AS (
    SELECT p.claim_id, p.category, p.month, p.rm,
           COALESCE((SELECT l.stage FROM latest l
                     WHERE l.claim_id = p.claim_id AND l.month <= p.month
                     ORDER BY l.month DESC LIMIT 1), 'registered') AS stage
    FROM points p
),
steps AS (
    SELECT category, month, rm, stage,
           lag(stage) OVER (PARTITION BY claim_id ORDER BY month) AS before,
           lead(month) OVER (PARTITION BY claim_id ORDER BY month) AS next
    FROM staged
),
changes AS (
    SELECT month, category, stage, 1 AS n FROM steps
    WHERE before IS NULL OR before <> stage
    UNION ALL
    SELECT month, category, before, -1 FROM steps
    WHERE before IS NOT NULL AND before <> stage
    UNION ALL
    SELECT rm, category, stage, -1 FROM steps WHERE next IS NULL AND rm IS NOT NULL
    UNION ALL
    SELECT fm, category, NULL, 0 FROM c  -- filed: counted below
),
counts AS (
    SELECT month, category,
           sum(n) FILTER (WHERE stage = 'registered') AS r,
           sum(n) FILTER (WHERE stage = 'investigating') AS i,
           sum(n) FILTER (WHERE stage = 'action_taken') AS a
    FROM changes GROUP BY 1, 2
),
filed AS (SELECT fm AS month, category, count(*) AS n FROM c GROUP BY 1, 2),
resolved AS (SELECT rm AS month, category, count(*) AS n FROM c WHERE rm IS NOT NULL GROUP BY 1, 2),
keys AS (
    SELECT month, category FROM counts UNION SELECT month, category FROM resolved
)
INSERT INTO claims_journal_shards
    (month, category, shard, filed, resolved, open_registered, open_investigating,
     open_action_taken)
SELECT k.month, k.category, 0, COALESCE(f.n, 0), COALESCE(r.n, 0), COALESCE(o.r, 0),
       COALESCE(o.i, 0), COALESCE(o.a, 0)
FROM keys k
LEFT JOIN filed f USING (month, category)
LEFT JOIN resolved r USING (month, category)
LEFT JOIN counts o USING (month, category);

-- The view keeps its columns and its answer; it reads the maintained tables. The months are
-- those from the first filing to the last filing or resolution, as before; the open claims
-- at a month end are the running sum of the changes; nearest-rank percentiles as in 0008,
-- each row's from its own month's distribution (a month filter reads only its months).
CREATE OR REPLACE VIEW claims_journal_monthly AS
WITH j AS (
    SELECT month, category, sum(filed) AS filed, sum(resolved) AS resolved,
           sum(open_registered) AS r, sum(open_investigating) AS i, sum(open_action_taken) AS a
    FROM claims_journal_shards GROUP BY month, category
),
months AS (
    SELECT generate_series(min(month) FILTER (WHERE filed <> 0),
                           max(month) FILTER (WHERE filed <> 0 OR resolved <> 0),
                           interval '1 month')::date AS month
    FROM j
),
running AS (
    SELECT m.month, k.category, COALESCE(j.filed, 0) AS filed, COALESCE(j.resolved, 0) AS resolved,
           sum(COALESCE(j.r, 0)) OVER w AS r,
           sum(COALESCE(j.i, 0)) OVER w AS i,
           sum(COALESCE(j.a, 0)) OVER w AS a
    FROM months m
    CROSS JOIN (SELECT DISTINCT category FROM j) k
    LEFT JOIN j ON j.month = m.month AND j.category = k.category
    WINDOW w AS (PARTITION BY k.category ORDER BY m.month)
)
SELECT r.month, r.category, r.filed::bigint AS filed, r.resolved::bigint AS resolved,
       (r.r + r.i + r.a)::bigint AS open_at_month_end,
       r.r::bigint AS open_registered, r.i::bigint AS open_investigating,
       r.a::bigint AS open_action_taken,
       q.p50 AS resolve_p50_seconds, q.p95 AS resolve_p95_seconds
FROM running r
LEFT JOIN LATERAL (  -- this month's distribution only: a month filter reads its months
    SELECT min(c.seconds) FILTER (WHERE 2 * c.upto >= c.total) AS p50,
           min(c.seconds) FILTER (WHERE 100 * c.upto >= 95 * c.total) AS p95
    FROM (
        SELECT d.seconds, sum(d.n) OVER (ORDER BY d.seconds) AS upto, sum(d.n) OVER () AS total
        FROM (SELECT s.seconds, sum(s.claims) AS n FROM claim_resolve_seconds s
              WHERE s.month = r.month AND s.category = r.category
              GROUP BY s.seconds HAVING sum(s.claims) > 0) d
    ) c
) q ON true
WHERE r.filed <> 0 OR r.resolved <> 0 OR r.r + r.i + r.a <> 0;
COMMENT ON VIEW claims_journal_monthly IS 'Claims journal per shop-zone month and category: filed and resolved in the month, open at month end by stage, time to resolve p50/p95 (whole seconds) of the claims resolved in the month (from claims_journal_shards and claim_resolve_seconds).';
