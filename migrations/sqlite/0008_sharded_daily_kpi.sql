-- The daily counts per writer shard; `daily_kpi` becomes the view that sums the shards. See
-- the PostgreSQL migration 0009.
CREATE TABLE daily_kpi_shards (
    day                    TEXT    NOT NULL,
    shard                  INTEGER NOT NULL,
    fulfilled              INTEGER NOT NULL DEFAULT 0,
    perfect                INTEGER NOT NULL DEFAULT 0,
    deviation_quality      INTEGER NOT NULL DEFAULT 0,
    deviation_completeness INTEGER NOT NULL DEFAULT 0,
    deviation_delivery     INTEGER NOT NULL DEFAULT 0,
    deviation_service      INTEGER NOT NULL DEFAULT 0,
    cancelled              INTEGER NOT NULL DEFAULT 0,
    updated_at             TEXT    NOT NULL,
    PRIMARY KEY (day, shard)
);
INSERT INTO daily_kpi_shards (day, shard, fulfilled, perfect, deviation_quality,
                              deviation_completeness, deviation_delivery, deviation_service,
                              cancelled, updated_at)
SELECT day, 0, fulfilled, perfect, deviation_quality, deviation_completeness,
       deviation_delivery, deviation_service, cancelled, updated_at
FROM daily_kpi;
DROP VIEW po_daily;
DROP VIEW po_monthly;
DROP TABLE daily_kpi;

CREATE VIEW daily_kpi AS
SELECT day,
       sum(fulfilled) AS fulfilled,
       sum(perfect) AS perfect,
       sum(deviation_quality) AS deviation_quality,
       sum(deviation_completeness) AS deviation_completeness,
       sum(deviation_delivery) AS deviation_delivery,
       sum(deviation_service) AS deviation_service,
       sum(cancelled) AS cancelled,
       max(updated_at) AS updated_at
FROM daily_kpi_shards
GROUP BY day;

-- Perfect-order rate per shop-zone day of delivery (null when nothing was fulfilled).
CREATE VIEW po_daily AS
SELECT day, fulfilled, perfect, fulfilled - perfect AS imperfect,
       CASE WHEN fulfilled > 0 THEN CAST(perfect AS REAL) / fulfilled END AS po_rate,
       deviation_quality, deviation_completeness, deviation_delivery, deviation_service, cancelled
FROM daily_kpi;

-- Perfect-order rate per calendar month of delivery in the shop time zone.
CREATE VIEW po_monthly AS
SELECT strftime('%Y-%m-01', day) AS month,
       sum(fulfilled) AS fulfilled,
       sum(perfect) AS perfect,
       sum(fulfilled) - sum(perfect) AS imperfect,
       CASE WHEN sum(fulfilled) > 0 THEN CAST(sum(perfect) AS REAL) / sum(fulfilled) END AS po_rate,
       sum(deviation_quality) AS deviation_quality,
       sum(deviation_completeness) AS deviation_completeness,
       sum(deviation_delivery) AS deviation_delivery,
       sum(deviation_service) AS deviation_service,
       sum(cancelled) AS cancelled
FROM daily_kpi
GROUP BY 1;

