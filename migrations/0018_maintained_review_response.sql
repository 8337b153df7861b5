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

CREATE TABLE review_answer_buckets (
    month   date    NOT NULL,
    bucket  bigint  NOT NULL,
    shard   integer NOT NULL,
    reviews bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, bucket, shard)
);
COMMENT ON TABLE review_answer_buckets IS 'The answer time distribution in buckets of 600 whole seconds (bucket b: b * 600 to b * 600 + 599), per shop-zone month of posting and writer shard: a percentile finds the bucket that holds its rank here, then reads that bucket''s seconds only.';
COMMENT ON COLUMN review_answer_buckets.month IS 'First day of the shop-zone month of review.posted.';
COMMENT ON COLUMN review_answer_buckets.bucket IS 'Whole seconds of the answer time divided by 600, rounded down.';
COMMENT ON COLUMN review_answer_buckets.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN review_answer_buckets.reviews IS 'Reviews answered within the bucket (this shard''s share).';

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

INSERT INTO review_answer_buckets (month, bucket, shard, reviews)
SELECT month, floor(seconds / 600.0)::bigint, 0, sum(reviews)
FROM review_answer_seconds GROUP BY 1, 2;

-- The answer time of a month's review at nearest rank `r` (the smallest value whose running
-- count reaches r): the bucket that holds the rank, from the month's buckets, then the value
-- within that bucket. Reads a few hundred rows whatever the month's number of reviews.
CREATE FUNCTION review_answer_at_rank(m date, r numeric) RETURNS bigint
LANGUAGE sql STABLE AS $$
    WITH b AS (
        SELECT bucket, sum(reviews) AS n
        FROM review_answer_buckets WHERE month = m
        GROUP BY bucket HAVING sum(reviews) <> 0
    ),
    hit AS (
        SELECT bucket, upto - n AS before
        FROM (SELECT bucket, n, sum(n) OVER (ORDER BY bucket) AS upto FROM b) c
        WHERE upto >= r ORDER BY bucket LIMIT 1
    )
    SELECT d.seconds FROM hit CROSS JOIN LATERAL (
        SELECT seconds, sum(n) OVER (ORDER BY seconds) AS upto
        FROM (SELECT seconds, sum(reviews) AS n FROM review_answer_seconds
              WHERE month = m AND seconds >= hit.bucket * 600 AND seconds < (hit.bucket + 1) * 600
              GROUP BY seconds HAVING sum(reviews) <> 0) v
    ) d
    WHERE hit.before + d.upto >= r ORDER BY d.seconds LIMIT 1
$$;
COMMENT ON FUNCTION review_answer_at_rank(date, numeric) IS 'Answer time (whole seconds) of the review at nearest rank r of month m, from review_answer_buckets and one bucket of review_answer_seconds.';

-- A month's reviews answered within an SLA of `sla` whole seconds (inclusive): the buckets
-- wholly below it, and the values of the bucket that holds it (fewer whole seconds than the
-- SLA, or exactly the SLA).
CREATE FUNCTION review_answers_within(m date, sla bigint) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT sum(reviews) FROM review_answer_buckets
                     WHERE month = m AND (bucket + 1) * 600 <= sla), 0)
         + COALESCE((SELECT sum(reviews) FROM review_answer_seconds
                     WHERE month = m AND seconds >= floor(sla / 600.0)::bigint * 600
                       AND (seconds < sla OR (seconds = sla AND whole))), 0)
$$;
COMMENT ON FUNCTION review_answers_within(date, bigint) IS 'Reviews of month m answered within sla whole seconds (inclusive), from review_answer_buckets and one bucket of review_answer_seconds.';

-- Same columns, same answer; each month reads its own rows only (a month filter reads only
-- those months). Nearest rank: the p-th percentile is the smallest value whose running count
-- reaches p * n.
DROP VIEW review_response_monthly;
CREATE VIEW review_response_monthly AS
WITH m AS (
    SELECT month, sum(reviews) AS reviews, sum(negative) AS negative,
           sum(unanswered_negative) AS unanswered_negative
    FROM review_response_shards GROUP BY month HAVING sum(reviews) > 0
)
SELECT m.month,
       m.reviews::bigint AS reviews,
       COALESCE(a.n, 0)::bigint AS answered,
       w.n::bigint AS answered_within_sla,
       w.n::double precision / m.reviews AS within_sla_share,
       CASE WHEN a.n > 0 THEN review_answer_at_rank(m.month, a.n * 0.5) END AS answer_p50_seconds,
       CASE WHEN a.n > 0 THEN review_answer_at_rank(m.month, a.n * 0.95) END AS answer_p95_seconds,
       m.negative::bigint AS negative,
       m.unanswered_negative::bigint AS unanswered_negative
FROM m
CROSS JOIN service_settings s
LEFT JOIN LATERAL (SELECT sum(b.reviews) AS n FROM review_answer_buckets b
                   WHERE b.month = m.month) a ON true
CROSS JOIN LATERAL (SELECT review_answers_within(
                        m.month, extract(epoch FROM s.review_answer_sla)::bigint) AS n) w;
COMMENT ON VIEW review_response_monthly IS 'Reviews per shop-zone month of posting: answered (ever), within rules.review_answer_sla (inclusive) and its share, answer time p50/p95 (whole seconds), negative (rating <= 2) and still unanswered negative (from review_response_shards, review_answer_buckets and review_answer_seconds).';
