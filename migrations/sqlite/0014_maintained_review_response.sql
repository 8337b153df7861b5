-- Review response speed, maintained: per month of posting the reviews, the negative ones
-- and those unanswered, and the answer times in whole seconds (with whether exact), kept by
-- the batch transaction. See the PostgreSQL migration 0018.

CREATE TABLE review_response_shards (
    month               TEXT    NOT NULL,
    shard               INTEGER NOT NULL,
    reviews             INTEGER NOT NULL DEFAULT 0,
    negative            INTEGER NOT NULL DEFAULT 0,
    unanswered_negative INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, shard)
) WITHOUT ROWID;

CREATE TABLE review_answer_seconds (
    month   TEXT    NOT NULL,
    seconds INTEGER NOT NULL,
    whole   INTEGER NOT NULL,  -- 1: the answer took exactly that many seconds
    shard   INTEGER NOT NULL,
    reviews INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, seconds, whole, shard)
) WITHOUT ROWID;

CREATE TABLE review_answer_buckets (
    month   TEXT    NOT NULL,
    bucket  INTEGER NOT NULL,  -- whole seconds of the answer time / 600, rounded down
    shard   INTEGER NOT NULL,
    reviews INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, bucket, shard)
) WITHOUT ROWID;

-- Filled from the stored reviews. Times are text in one fixed-width form
-- (YYYY-MM-DDTHH:MM:SS.ffffffZ): whole seconds apart plus the microseconds' difference.
INSERT INTO review_response_shards (month, shard, reviews, negative, unanswered_negative)
SELECT posted_month, 0, count(*),
       count(*) FILTER (WHERE rating <= 2),
       count(*) FILTER (WHERE rating <= 2 AND answered_at IS NULL)
FROM reviews WHERE posted_at IS NOT NULL
GROUP BY posted_month;
INSERT INTO review_answer_seconds (month, seconds, whole, shard, reviews)
SELECT posted_month, (us - ((us % 1000000 + 1000000) % 1000000)) / 1000000, us % 1000000 = 0,
       0, count(*)
FROM (SELECT posted_month,
             (unixepoch(substr(answered_at, 1, 19)) - unixepoch(substr(posted_at, 1, 19)))
                 * 1000000
             + CAST(substr(answered_at, 21, 6) AS INTEGER)
             - CAST(substr(posted_at, 21, 6) AS INTEGER) AS us
      FROM reviews WHERE posted_at IS NOT NULL AND answered_at IS NOT NULL) r
GROUP BY 1, 2, 3;

INSERT INTO review_answer_buckets (month, bucket, shard, reviews)
SELECT month, (seconds - ((seconds % 600 + 600) % 600)) / 600, 0, sum(reviews)
FROM review_answer_seconds GROUP BY 1, 2;

DROP VIEW review_response_monthly;
CREATE VIEW review_response_monthly AS
WITH a AS (
    SELECT a.month, a.seconds, sum(a.reviews) AS n,
           sum(a.reviews) FILTER (
               WHERE a.seconds < s.review_answer_sla
                  OR (a.seconds = s.review_answer_sla AND a.whole)
           ) AS within
    FROM review_answer_seconds a CROSS JOIN service_settings s
    GROUP BY a.month, a.seconds HAVING sum(a.reviews) > 0
),
c AS (
    SELECT month, seconds, within,
           sum(n) OVER (PARTITION BY month ORDER BY seconds) AS upto,
           sum(n) OVER (PARTITION BY month) AS total
    FROM a
),
answers AS (
    SELECT month, max(total) AS answered, COALESCE(sum(within), 0) AS within_sla,
           min(seconds) FILTER (WHERE 2 * upto >= total) AS p50,
           min(seconds) FILTER (WHERE 100 * upto >= 95 * total) AS p95
    FROM c GROUP BY month
),
m AS (
    SELECT month, sum(reviews) AS reviews, sum(negative) AS negative,
           sum(unanswered_negative) AS unanswered_negative
    FROM review_response_shards GROUP BY month HAVING sum(reviews) > 0
)
SELECT m.month,
       m.reviews AS reviews,
       COALESCE(a.answered, 0) AS answered,
       COALESCE(a.within_sla, 0) AS answered_within_sla,
       CAST(COALESCE(a.within_sla, 0) AS REAL) / m.reviews AS within_sla_share,
       a.p50 AS answer_p50_seconds,
       a.p95 AS answer_p95_seconds,
       m.negative AS negative,
       m.unanswered_negative AS unanswered_negative
FROM m CROSS JOIN service_settings s LEFT JOIN answers a ON a.month = m.month;
