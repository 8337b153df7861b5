-- The lead base, maintained (issue 14): lead_base_monthly probed every captured lead's
-- customer for its first order on each read (4,820 index probes, 73-94 ms at 5 million
-- events) and sorted every lead event. lead_base_shards keeps, per month and writer shard,
-- the leads captured, the change of the leads at month end per temperature, the leads
-- converted and the lead events of the month, written by the batch transaction as signed
-- deltas (src/domain/leads.rs): a lead batch retracts each touched lead's old contribution
-- and adds its new one; an order batch that moves a customer's first order moves the
-- conversions of the leads naming that customer. The view runs the changes up to each month
-- end, over a row per month. Same columns, same answer.

CREATE TABLE lead_base_shards (
    month     date    NOT NULL,
    shard     integer NOT NULL,
    new_leads bigint  NOT NULL DEFAULT 0,
    cold      bigint  NOT NULL DEFAULT 0,
    warm      bigint  NOT NULL DEFAULT 0,
    hot       bigint  NOT NULL DEFAULT 0,
    converted bigint  NOT NULL DEFAULT 0,
    events    bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, shard)
);
COMMENT ON TABLE lead_base_shards IS 'Lead base per shop-zone month, as signed deltas per writer shard: leads captured in the month, the change in the month of the leads at month end per temperature, leads converted in the month (their customer''s first order at or after the capture falls in it), and lead events with a time in the month (how far the months run).';
COMMENT ON COLUMN lead_base_shards.month IS 'First day of the shop-zone month.';
COMMENT ON COLUMN lead_base_shards.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN lead_base_shards.new_leads IS 'Leads whose earliest lead.captured falls in the month.';
COMMENT ON COLUMN lead_base_shards.cold IS 'Change in the month of the captured leads that are cold at month end.';
COMMENT ON COLUMN lead_base_shards.warm IS 'Change in the month of the captured leads that are warm at month end.';
COMMENT ON COLUMN lead_base_shards.hot IS 'Change in the month of the captured leads that are hot at month end.';
COMMENT ON COLUMN lead_base_shards.converted IS 'Leads converted in the month.';
COMMENT ON COLUMN lead_base_shards.events IS 'lead.captured and lead.changed events with a time in the month.';

-- Filled from the leads already stored (an upgrade keeps its history), as the view read them.
INSERT INTO lead_base_shards (month, shard, new_leads, cold, warm, hot, converted, events)
WITH captured AS (
    SELECT lead_id, captured_month FROM leads WHERE captured_month IS NOT NULL
),
latest AS (  -- each captured lead's latest event per month (before its capture: its capture month)
    SELECT DISTINCT ON (e.lead_id, greatest(e.month, c.captured_month))
           e.lead_id, greatest(e.month, c.captured_month) AS month, e.temperature
    FROM lead_events e JOIN captured c USING (lead_id)
    ORDER BY e.lead_id, greatest(e.month, c.captured_month), e.time DESC, e.source DESC, e.id DESC
),
parts AS (
    SELECT month, 0 AS new_leads, 0 AS cold, 0 AS warm, 0 AS hot, 0 AS converted, count(*) AS events
    FROM lead_events GROUP BY month
    UNION ALL
    SELECT captured_month, count(*), 0, 0, 0, 0, 0 FROM captured GROUP BY captured_month
    UNION ALL
    SELECT month, 0,
           count(*) FILTER (WHERE temperature = 'cold') - count(*) FILTER (WHERE before = 'cold'),
           count(*) FILTER (WHERE temperature = 'warm') - count(*) FILTER (WHERE before = 'warm'),
           count(*) FILTER (WHERE temperature = 'hot') - count(*) FILTER (WHERE before = 'hot'),
           0, 0
    FROM (SELECT month, temperature,
                 lag(temperature) OVER (PARTITION BY lead_id ORDER BY month) AS before
          FROM latest) x
    GROUP BY month
    UNION ALL
    SELECT c.first_month, 0, 0, 0, 0, count(*), 0
    FROM leads l JOIN customers c ON c.customer_id = l.customer_id
    WHERE l.captured_month IS NOT NULL AND c.first_at >= l.captured_at
    GROUP BY c.first_month
)
SELECT month, 0, sum(new_leads), sum(cold), sum(warm), sum(hot), sum(converted), sum(events)
FROM parts GROUP BY month;

CREATE OR REPLACE VIEW lead_base_monthly AS
WITH s AS (
    SELECT month, sum(new_leads) AS new_leads, sum(cold) AS cold, sum(warm) AS warm,
           sum(hot) AS hot, sum(converted) AS converted, sum(events) AS events
    FROM lead_base_shards GROUP BY month
),
months AS (
    SELECT generate_series(min(month) FILTER (WHERE new_leads <> 0),
                           max(month) FILTER (WHERE events <> 0),
                           interval '1 month')::date AS month
    FROM s
),
totals AS (
    SELECT m.month,
           sum(COALESCE(s.new_leads, 0)) OVER w AS leads,
           COALESCE(s.new_leads, 0) AS new_leads,
           sum(COALESCE(s.cold, 0)) OVER w AS cold,
           sum(COALESCE(s.warm, 0)) OVER w AS warm,
           sum(COALESCE(s.hot, 0)) OVER w AS hot,
           sum(COALESCE(s.converted, 0)) OVER w AS converted,
           COALESCE(s.converted, 0) AS new_conversions
    FROM months m
    LEFT JOIN s USING (month)
    WINDOW w AS (ORDER BY m.month)
)
SELECT month, leads::bigint AS leads, new_leads::bigint AS new_leads, cold::bigint AS cold,
       warm::bigint AS warm, hot::bigint AS hot,
       (warm + hot)::double precision / leads AS warm_hot_share,
       CASE WHEN lag(leads) OVER (ORDER BY month) > 0
            THEN (leads - lag(leads) OVER (ORDER BY month))::double precision / lag(leads) OVER (ORDER BY month)
       END AS growth,
       converted::bigint AS converted, new_conversions::bigint AS new_conversions
FROM totals;
COMMENT ON VIEW lead_base_monthly IS 'Lead base at each shop-zone month end: leads captured before it by their latest temperature, new leads, warm+hot share, growth over the previous month, and leads converted (their customer''s first order at or after the capture), run up from lead_base_shards.';
