-- Review response speed, maintained (issue 14): per shop-zone month of posting, the reviews,
-- the negative ones and those still unanswered, and the distribution of answer times in
-- whole seconds, kept by the batch transaction as signed deltas (src/domain/response.rs),
-- so review_response_monthly sums a month's rows instead of ranking every review of
-- history (88 ms over all months at 1,000,000 orders, growing with history). The SLA share
-- is read from the distribution under the SLA of the moment: each value records whether
-- the answer took exactly that many seconds, so "within an SLA of whole seconds,
-- inclusive" is exact. See docs/architecture.md, "Maintained figures".

CREATE TABLE review_response_shards (
    month               date    NOT NULL,
    shard               integer NOT NULL,
    reviews             bigint  NOT NULL DEFAULT 0,
    negative            bigint  NOT NULL DEFAULT 0,
    unanswered_negative bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, shard)
);
COMMENT ON TABLE review_response_shards IS 'Reviews per shop-zone month of posting, as signed deltas per writer shard (the view sums the shards).';
COMMENT ON COLUMN review_response_shards.month IS 'First day of the shop-zone month of review.posted.';
COMMENT ON COLUMN review_response_shards.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN review_response_shards.reviews IS 'Reviews posted in the month.';
COMMENT ON COLUMN review_response_shards.negative IS 'Of them, rated 2 or lower.';
COMMENT ON COLUMN review_response_shards.unanswered_negative IS 'Of the negative ones, those with no answer yet.';

CREATE TABLE review_answer_seconds (
    month   date    NOT NULL,
    seconds bigint  NOT NULL,
    whole   boolean NOT NULL,
    shard   integer NOT NULL,
    reviews bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, seconds, whole, shard)
);
COMMENT ON TABLE review_answer_seconds IS 'Answer times as a distribution: per shop-zone month of posting and whole second, how many reviews were answered that long after posting (summed over the writer shards).';
COMMENT ON COLUMN review_answer_seconds.month IS 'First day of the shop-zone month of review.posted.';
COMMENT ON COLUMN review_answer_seconds.seconds IS 'Whole seconds from review.posted to the first review.answered (rounded down).';
COMMENT ON COLUMN review_answer_seconds.whole IS 'Whether the answer time was exactly that many seconds (no fraction): decides an answer at the SLA itself.';
COMMENT ON COLUMN review_answer_seconds.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN review_answer_seconds.reviews IS 'Reviews with that month and value (this shard''s share; may be negative, the sum is not).';

-- Filled from the stored reviews (an upgrade keeps its history).
INSERT INTO review_response_shards (month, shard, reviews, negative, unanswered_negative)
SELECT posted_month, 0, count(*),
       count(*) FILTER (WHERE rating <= 2),
       count(*) FILTER (WHERE rating <= 2 AND answered_at IS NULL)
FROM reviews WHERE posted_at IS NOT NULL
GROUP BY posted_month;
INSERT INTO review_answer_seconds (month, seconds, whole, shard, reviews)
SELECT posted_month, floor(e)::bigint, e = floor(e), 0, count(*)
FROM (SELECT posted_month, extract(epoch FROM answered_at - posted_at) AS e
      FROM reviews WHERE posted_at IS NOT NULL AND answered_at IS NOT NULL) r
GROUP BY 1, 2, 3;

-- Same columns, same answer. Within the SLA (inclusive, whole seconds): fewer whole seconds
-- than the SLA, or exactly the SLA. Nearest rank: the p-th percentile is the smallest value
-- whose running count reaches ceil(p * n).
DROP VIEW review_response_monthly;
CREATE VIEW review_response_monthly AS
WITH a AS (
    SELECT a.month, a.seconds, sum(a.reviews) AS n,
           sum(a.reviews) FILTER (
               WHERE a.seconds < extract(epoch FROM s.review_answer_sla)
                  OR (a.seconds = extract(epoch FROM s.review_answer_sla) AND a.whole)
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
       m.reviews::bigint AS reviews,
       COALESCE(a.answered, 0)::bigint AS answered,
       COALESCE(a.within_sla, 0)::bigint AS answered_within_sla,
       COALESCE(a.within_sla, 0)::double precision / m.reviews AS within_sla_share,
       a.p50 AS answer_p50_seconds,
       a.p95 AS answer_p95_seconds,
       m.negative::bigint AS negative,
       m.unanswered_negative::bigint AS unanswered_negative
FROM m CROSS JOIN service_settings s LEFT JOIN answers a ON a.month = m.month;
COMMENT ON VIEW review_response_monthly IS 'Reviews per shop-zone month of posting: answered (ever), within rules.review_answer_sla (inclusive) and its share, answer time p50/p95 (whole seconds), negative (rating <= 2) and still unanswered negative (from review_response_shards and review_answer_seconds).';
