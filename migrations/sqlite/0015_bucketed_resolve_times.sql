-- The claims journal's time to resolve in buckets of an hour, kept by the batch
-- transaction with the distribution (see the PostgreSQL migration 0019; SQLite's view ranks
-- the month's values as before).

CREATE TABLE claim_resolve_buckets (
    month    TEXT    NOT NULL,
    category TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,  -- whole seconds to resolve / 3600, rounded down
    shard    INTEGER NOT NULL,
    claims   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, category, bucket, shard)
) WITHOUT ROWID;

INSERT INTO claim_resolve_buckets (month, category, bucket, shard, claims)
SELECT month, category, (seconds - ((seconds % 3600 + 3600) % 3600)) / 3600, 0, sum(claims)
FROM claim_resolve_seconds GROUP BY 1, 2, 3;
