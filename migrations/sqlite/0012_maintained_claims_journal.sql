-- The claims journal, maintained: claims_journal_monthly reads per-month counts and a
-- per-month distribution of the time to resolve kept by the batch transaction. See the
-- PostgreSQL migration 0015.

CREATE TABLE claim_journal (
    claim_id       TEXT PRIMARY KEY,
    category       TEXT,
    filed_at       TEXT,
    filed_month    TEXT,
    resolved_at    TEXT,
    resolved_month TEXT,
    version        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE claims_journal_shards (
    month              TEXT    NOT NULL,
    category           TEXT    NOT NULL,
    shard              INTEGER NOT NULL,
    filed              INTEGER NOT NULL DEFAULT 0,
    resolved           INTEGER NOT NULL DEFAULT 0,
    open_registered    INTEGER NOT NULL DEFAULT 0,
    open_investigating INTEGER NOT NULL DEFAULT 0,
    open_action_taken  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, category, shard)
) WITHOUT ROWID;

CREATE TABLE claim_resolve_seconds (
    month    TEXT    NOT NULL,
    category TEXT    NOT NULL,
    seconds  INTEGER NOT NULL,
    shard    INTEGER NOT NULL,
    claims   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, category, seconds, shard)
) WITHOUT ROWID;

INSERT INTO claim_journal (claim_id, category, filed_at, filed_month, resolved_at, resolved_month)
SELECT claim_id, category, filed_at, strftime('%Y-%m-01', filed_day),
       resolved_at, strftime('%Y-%m-01', resolved_day)
FROM claims;

INSERT INTO claim_resolve_seconds (month, category, seconds, shard, claims)
SELECT resolved_month, category,
       CAST(unixepoch(resolved_at, 'subsec') - unixepoch(filed_at, 'subsec') AS INTEGER)
       - ((unixepoch(resolved_at, 'subsec') - unixepoch(filed_at, 'subsec'))
          < CAST(unixepoch(resolved_at, 'subsec') - unixepoch(filed_at, 'subsec') AS INTEGER)),
       0, count(*)
FROM claim_journal
WHERE category IS NOT NULL AND filed_at IS NOT NULL AND resolved_at IS NOT NULL
GROUP BY 1, 2, 3;

INSERT INTO claims_journal_shards
    (month, category, shard, filed, resolved, open_registered, open_investigating,
     open_action_taken)
WITH c AS (
    SELECT claim_id, category, filed_month AS fm, resolved_month AS rm
    FROM claim_journal WHERE category IS NOT NULL AND filed_at IS NOT NULL
),
ranked AS (
    SELECT claim_id, month, stage,
           row_number() OVER (PARTITION BY claim_id, month
                              ORDER BY time DESC, source DESC, id DESC) AS rn
    FROM claim_stages
),
latest AS (SELECT claim_id, month, stage FROM ranked WHERE rn = 1),
points AS (
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
    SELECT fm, category, NULL, 0 FROM c
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
SELECT k.month, k.category, 0, COALESCE(f.n, 0), COALESCE(r.n, 0), COALESCE(o.r, 0),
       COALESCE(o.i, 0), COALESCE(o.a, 0)
FROM keys k
LEFT JOIN filed f ON f.month = k.month AND f.category = k.category
LEFT JOIN resolved r ON r.month = k.month AND r.category = k.category
LEFT JOIN counts o ON o.month = k.month AND o.category = k.category;

DROP VIEW claims_journal_monthly;
CREATE VIEW claims_journal_monthly AS
WITH RECURSIVE j AS (
    SELECT month, category, sum(filed) AS filed, sum(resolved) AS resolved,
           sum(open_registered) AS r, sum(open_investigating) AS i, sum(open_action_taken) AS a
    FROM claims_journal_shards GROUP BY month, category
),
months(month) AS (
    SELECT min(month) FROM j WHERE filed <> 0
    UNION ALL
    SELECT date(month, '+1 month') FROM months
    WHERE date(month, '+1 month') <= (SELECT max(month) FROM j WHERE filed <> 0 OR resolved <> 0)
),
running AS (
    SELECT m.month, k.category, COALESCE(j.filed, 0) AS filed, COALESCE(j.resolved, 0) AS resolved,
           sum(COALESCE(j.r, 0)) OVER w AS r,
           sum(COALESCE(j.i, 0)) OVER w AS i,
           sum(COALESCE(j.a, 0)) OVER w AS a
    FROM months m
    CROSS JOIN (SELECT DISTINCT category FROM j) k
    LEFT JOIN j ON j.month = m.month AND j.category = k.category
    WHERE m.month IS NOT NULL
    WINDOW w AS (PARTITION BY k.category ORDER BY m.month)
),
d AS (
    SELECT month, category, seconds, sum(claims) AS n FROM claim_resolve_seconds
    GROUP BY month, category, seconds HAVING sum(claims) > 0
),
c AS (
    SELECT month, category, seconds,
           sum(n) OVER (PARTITION BY month, category ORDER BY seconds) AS upto,
           sum(n) OVER (PARTITION BY month, category) AS total
    FROM d
),
p AS (
    SELECT month, category,
           min(seconds) FILTER (WHERE 2 * upto >= total) AS p50,
           min(seconds) FILTER (WHERE 100 * upto >= 95 * total) AS p95
    FROM c GROUP BY month, category
)
SELECT r.month, r.category, r.filed AS filed, r.resolved AS resolved,
       r.r + r.i + r.a AS open_at_month_end,
       r.r AS open_registered, r.i AS open_investigating, r.a AS open_action_taken,
       p.p50 AS resolve_p50_seconds, p.p95 AS resolve_p95_seconds
FROM running r
LEFT JOIN p ON p.month = r.month AND p.category = r.category
WHERE r.filed <> 0 OR r.resolved <> 0 OR r.r + r.i + r.a <> 0;
