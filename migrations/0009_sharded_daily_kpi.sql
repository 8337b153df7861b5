-- Lanes that wrote the same day's KPI row waited on each other's row lock until commit
-- (issue 14, item 6). The daily counts are now kept per writer shard, like the other
-- maintained figures: a batch adds its deltas to its own shard's row, and `daily_kpi` becomes
-- the view that sums the shards (same name and columns as the table it replaces).

DROP VIEW po_daily;
DROP VIEW po_monthly;
ALTER TABLE daily_kpi RENAME TO daily_kpi_shards;
ALTER TABLE daily_kpi_shards ADD COLUMN shard integer NOT NULL DEFAULT 0;
ALTER TABLE daily_kpi_shards DROP CONSTRAINT daily_kpi_pkey;
ALTER TABLE daily_kpi_shards ADD PRIMARY KEY (day, shard);
COMMENT ON TABLE daily_kpi_shards IS 'Perfect-order counts per calendar day of delivery in the shop time zone, as signed deltas per writer shard; the view daily_kpi sums the shards.';
COMMENT ON COLUMN daily_kpi_shards.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';

CREATE VIEW daily_kpi AS
SELECT day,
       sum(fulfilled)::bigint AS fulfilled,
       sum(perfect)::bigint AS perfect,
       sum(deviation_quality)::bigint AS deviation_quality,
       sum(deviation_completeness)::bigint AS deviation_completeness,
       sum(deviation_delivery)::bigint AS deviation_delivery,
       sum(deviation_service)::bigint AS deviation_service,
       sum(cancelled)::bigint AS cancelled,
       max(updated_at) AS updated_at
FROM daily_kpi_shards
GROUP BY day;
COMMENT ON VIEW daily_kpi IS 'Perfect-order counts per calendar day of delivery in the shop time zone (daily_kpi_shards summed over the shards).';

CREATE VIEW po_daily AS
SELECT day, fulfilled, perfect, fulfilled - perfect AS imperfect,
       CASE WHEN fulfilled > 0 THEN perfect::double precision / fulfilled END AS po_rate,
       deviation_quality, deviation_completeness, deviation_delivery, deviation_service, cancelled
FROM daily_kpi;
COMMENT ON VIEW po_daily IS 'Perfect-order rate per shop-zone day of delivery (null when nothing was fulfilled).';

CREATE VIEW po_monthly AS
SELECT date_trunc('month', day)::date AS month,
       sum(fulfilled)::bigint AS fulfilled,
       sum(perfect)::bigint AS perfect,
       (sum(fulfilled) - sum(perfect))::bigint AS imperfect,
       CASE WHEN sum(fulfilled) > 0 THEN sum(perfect)::double precision / sum(fulfilled) END AS po_rate,
       sum(deviation_quality)::bigint AS deviation_quality,
       sum(deviation_completeness)::bigint AS deviation_completeness,
       sum(deviation_delivery)::bigint AS deviation_delivery,
       sum(deviation_service)::bigint AS deviation_service,
       sum(cancelled)::bigint AS cancelled
FROM daily_kpi
GROUP BY 1;
COMMENT ON VIEW po_monthly IS 'Perfect-order rate per calendar month of delivery in the shop time zone.';
