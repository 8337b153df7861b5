-- Contract v2: the seeds' other KPIs. One table per entity (claim stages, reviews, couriers
-- with their rosterings and violations, spends, leads with their temperature history), the
-- order columns the customer KPIs need, and the monthly views.
--
-- Months are calendar months in the shop's zone. The service computes each fact's month (the
-- first day of it) when it writes the row, so "before the end of month M" is "month <= M".
-- Histories keep every event (keyed by its CloudEvents source and id); "latest" means the
-- greatest (time, source, id), exactly as the fold in src/domain/entities.rs orders them.

COMMENT ON COLUMN events.order_id IS 'The order whose projection the event folds into (the contract-v1 types); null for the contract-v2 entity types and for unknown types.';

-- Orders: what repeat customers, acquisition and order-to-dispatch read.
ALTER TABLE orders
    ADD COLUMN sales_channel text,
    ADD COLUMN total numeric,
    ADD COLUMN shipped_day date;
UPDATE orders SET
    sales_channel = state->'created'->'data'->>'sales_channel',
    total = (state->'created'->'data'->>'total')::numeric,
    shipped_day = (shipped_at AT TIME ZONE (SELECT timezone FROM service_settings))::date;
CREATE INDEX orders_customer_created_day ON orders (customer_id, created_day);
CREATE INDEX orders_shipped_day ON orders (shipped_day);
COMMENT ON COLUMN orders.sales_channel IS 'sales_channel of order.created (acquisition per channel).';
COMMENT ON COLUMN orders.total IS 'total of order.created (average order value).';
COMMENT ON COLUMN orders.shipped_day IS 'Calendar day of order.shipped in the shop time zone (order-to-dispatch month).';

-- Claims: the resolution's day and the process change it led to.
ALTER TABLE claims
    ADD COLUMN resolved_day date,
    ADD COLUMN improvement text;
UPDATE claims SET resolved_day = (resolved_at AT TIME ZONE (SELECT timezone FROM service_settings))::date;
COMMENT ON COLUMN claims.resolved_day IS 'Calendar day of claim.resolved in the shop time zone.';
COMMENT ON COLUMN claims.improvement IS 'claim.resolved improvement: the process change the claim led to.';

ALTER TABLE service_settings
    ADD COLUMN smiley_min_rating integer NOT NULL DEFAULT 4,
    ADD COLUMN review_answer_sla interval NOT NULL DEFAULT interval '24 hours',
    ADD COLUMN team_size integer NOT NULL DEFAULT 10;
COMMENT ON COLUMN service_settings.smiley_min_rating IS 'rules.smiley_min_rating: a review rated at least this, naming a courier, is a yellow smiley.';
COMMENT ON COLUMN service_settings.review_answer_sla IS 'rules.review_answer_sla: answered within it (inclusive) meets the SLA.';
COMMENT ON COLUMN service_settings.team_size IS 'rules.team_size: teams of another size are flagged in team_ranking_monthly.';

CREATE TABLE claim_stages (
    source   text COLLATE "C" NOT NULL,
    id       text COLLATE "C" NOT NULL,
    claim_id text COLLATE "C" NOT NULL,
    order_id text COLLATE "C" NOT NULL,
    stage    text        NOT NULL,  -- registered, investigating, action_taken
    note     text,
    time     timestamptz NOT NULL,
    month    date        NOT NULL,
    PRIMARY KEY (source, id)
);
-- "The latest stage before an instant": the index gives the (time, source, id) order.
CREATE INDEX claim_stages_claim ON claim_stages (claim_id, time, source, id);
COMMENT ON TABLE claim_stages IS 'Claims journal: every claim.updated (the stages a claim went through).';
COMMENT ON COLUMN claim_stages.stage IS 'registered, investigating or action_taken.';
COMMENT ON COLUMN claim_stages.month IS 'First day of the shop-zone month of the event time.';

CREATE TABLE reviews (
    review_id       text COLLATE "C" PRIMARY KEY,
    rating          integer,                -- 1..5; null until review.posted is seen
    order_id        text COLLATE "C",
    customer_id     text COLLATE "C",
    courier_id      text COLLATE "C",
    text            text,
    posted_at       timestamptz,
    posted_month    date,
    posted_source   text COLLATE "C",
    posted_id       text COLLATE "C",
    answered_at     timestamptz,            -- the first answer
    responder_id    text,
    answered_source text COLLATE "C",
    answered_id     text COLLATE "C",
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_posted_month ON reviews (posted_month);
CREATE INDEX reviews_unanswered ON reviews (posted_at) WHERE answered_at IS NULL;
COMMENT ON TABLE reviews IS 'One row per review: the earliest review.posted and the earliest review.answered.';
COMMENT ON COLUMN reviews.posted_month IS 'First day of the shop-zone month of posting: the month the review and its answer count for.';
COMMENT ON COLUMN reviews.answered_at IS 'Event time of the first review.answered.';

CREATE TABLE couriers (
    courier_id      text COLLATE "C" PRIMARY KEY,
    team_id         text COLLATE "C" NOT NULL,  -- team of the latest rostering
    captain         boolean     NOT NULL,
    rostered_at     timestamptz NOT NULL,
    rostered_source text COLLATE "C" NOT NULL,
    rostered_id     text COLLATE "C" NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE couriers IS 'One row per courier: its latest courier.rostered (the current team).';

CREATE TABLE courier_rosters (
    source     text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    courier_id text COLLATE "C" NOT NULL,
    team_id    text COLLATE "C" NOT NULL,
    captain    boolean     NOT NULL,
    time       timestamptz NOT NULL,
    month      date        NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX courier_rosters_courier ON courier_rosters (courier_id, time, source, id);
COMMENT ON TABLE courier_rosters IS 'Every courier.rostered: a courier is in the team of its latest rostering at or before an instant.';

CREATE TABLE courier_violations (
    source     text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    courier_id text COLLATE "C" NOT NULL,
    kind       text        NOT NULL,
    order_id   text COLLATE "C",
    time       timestamptz NOT NULL,
    month      date        NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX courier_violations_month ON courier_violations (month);
COMMENT ON TABLE courier_violations IS 'Every courier.violation: a red smiley.';

CREATE TABLE spends (
    spend_id     text COLLATE "C" PRIMARY KEY,
    amount       numeric     NOT NULL,
    currency     text        NOT NULL,
    from_day     date        NOT NULL,
    to_day       date        NOT NULL,  -- both days included
    channel      text,
    time         timestamptz NOT NULL,
    event_source text COLLATE "C" NOT NULL,
    event_id     text COLLATE "C" NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE spends IS 'One row per marketing spend (the latest marketing.spend of a spend_id), spread evenly over from_day..to_day.';

CREATE TABLE leads (
    lead_id            text COLLATE "C" PRIMARY KEY,
    source             text,             -- where the lead came from (lead.captured source)
    customer_id        text COLLATE "C",
    captured_at        timestamptz,      -- null until lead.captured is seen
    captured_month     date,
    captured_source    text COLLATE "C",
    captured_id        text COLLATE "C",
    temperature        text        NOT NULL,  -- of the latest event: cold, warm, hot
    temperature_at     timestamptz NOT NULL,
    temperature_source text COLLATE "C" NOT NULL,
    temperature_id     text COLLATE "C" NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leads_customer ON leads (customer_id);
COMMENT ON TABLE leads IS 'One row per lead: its capture and its temperature now (latest lead.captured or lead.changed).';

CREATE TABLE lead_events (
    source      text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    lead_id     text COLLATE "C" NOT NULL,
    kind        text        NOT NULL,  -- captured or changed
    temperature text        NOT NULL,
    time        timestamptz NOT NULL,
    month       date        NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX lead_events_lead ON lead_events (lead_id, time, source, id);
COMMENT ON TABLE lead_events IS 'Every lead.captured and lead.changed: a lead''s temperature at a month end is its latest event before it.';

-- Column documentation (every column of every table is commented).
COMMENT ON COLUMN claim_stages.source IS 'CloudEvents source of the claim.updated; with id, the row key.';
COMMENT ON COLUMN claim_stages.id IS 'CloudEvents id of the claim.updated.';
COMMENT ON COLUMN claim_stages.claim_id IS 'Claim the update is about.';
COMMENT ON COLUMN claim_stages.order_id IS 'Order of the claim.';
COMMENT ON COLUMN claim_stages.note IS 'Free text from claim.updated.';
COMMENT ON COLUMN claim_stages.time IS 'Event time of claim.updated.';
COMMENT ON COLUMN reviews.review_id IS 'Review id from the events.';
COMMENT ON COLUMN reviews.rating IS '1..5 from review.posted; null until it is seen.';
COMMENT ON COLUMN reviews.order_id IS 'Order the review is about (optional).';
COMMENT ON COLUMN reviews.customer_id IS 'Customer who posted it (optional).';
COMMENT ON COLUMN reviews.courier_id IS 'Courier the review names (optional): rated at least rules.smiley_min_rating it is a yellow smiley.';
COMMENT ON COLUMN reviews.text IS 'Free text of the review.';
COMMENT ON COLUMN reviews.posted_at IS 'Event time of the earliest review.posted.';
COMMENT ON COLUMN reviews.posted_source IS 'CloudEvents source of that review.posted (tie-break of equal times).';
COMMENT ON COLUMN reviews.posted_id IS 'CloudEvents id of that review.posted.';
COMMENT ON COLUMN reviews.responder_id IS 'Who gave the first answer.';
COMMENT ON COLUMN reviews.answered_source IS 'CloudEvents source of the first review.answered.';
COMMENT ON COLUMN reviews.answered_id IS 'CloudEvents id of the first review.answered.';
COMMENT ON COLUMN reviews.updated_at IS 'When a batch last changed the row.';
COMMENT ON COLUMN couriers.courier_id IS 'Courier id from the events.';
COMMENT ON COLUMN couriers.team_id IS 'Team of the latest courier.rostered.';
COMMENT ON COLUMN couriers.captain IS 'Captain flag of the latest courier.rostered.';
COMMENT ON COLUMN couriers.rostered_at IS 'Event time of the latest courier.rostered.';
COMMENT ON COLUMN couriers.rostered_source IS 'CloudEvents source of it.';
COMMENT ON COLUMN couriers.rostered_id IS 'CloudEvents id of it.';
COMMENT ON COLUMN couriers.updated_at IS 'When a batch last changed the row.';
COMMENT ON COLUMN courier_rosters.source IS 'CloudEvents source; with id, the row key.';
COMMENT ON COLUMN courier_rosters.id IS 'CloudEvents id.';
COMMENT ON COLUMN courier_rosters.courier_id IS 'Courier rostered.';
COMMENT ON COLUMN courier_rosters.team_id IS 'Team joined.';
COMMENT ON COLUMN courier_rosters.captain IS 'Whether the courier is the team captain.';
COMMENT ON COLUMN courier_rosters.time IS 'Event time: the courier is in the team from then on (until a later rostering).';
COMMENT ON COLUMN courier_rosters.month IS 'First day of the shop-zone month of the event time.';
COMMENT ON COLUMN courier_violations.source IS 'CloudEvents source; with id, the row key.';
COMMENT ON COLUMN courier_violations.id IS 'CloudEvents id.';
COMMENT ON COLUMN courier_violations.courier_id IS 'Courier who committed the violation.';
COMMENT ON COLUMN courier_violations.kind IS 'What the violation was.';
COMMENT ON COLUMN courier_violations.order_id IS 'Order it happened on (optional).';
COMMENT ON COLUMN courier_violations.time IS 'Event time of the violation.';
COMMENT ON COLUMN courier_violations.month IS 'First day of the shop-zone month of the event time.';
COMMENT ON COLUMN spends.spend_id IS 'Spend id from the events.';
COMMENT ON COLUMN spends.amount IS 'Amount spent (decimal).';
COMMENT ON COLUMN spends.currency IS 'Currency of the amount.';
COMMENT ON COLUMN spends.from_day IS 'First shop-zone date of the spend.';
COMMENT ON COLUMN spends.to_day IS 'Last shop-zone date of the spend (included).';
COMMENT ON COLUMN spends.channel IS 'Acquisition channel; matched against orders.sales_channel.';
COMMENT ON COLUMN spends.time IS 'Event time of the marketing.spend in force (the latest).';
COMMENT ON COLUMN spends.event_source IS 'CloudEvents source of it.';
COMMENT ON COLUMN spends.event_id IS 'CloudEvents id of it.';
COMMENT ON COLUMN spends.updated_at IS 'When a batch last changed the row.';
COMMENT ON COLUMN leads.lead_id IS 'Lead id from the events.';
COMMENT ON COLUMN leads.source IS 'Where the lead came from (lead.captured source).';
COMMENT ON COLUMN leads.customer_id IS 'Customer of the lead: converted when it places a first order at or after the capture.';
COMMENT ON COLUMN leads.captured_at IS 'Event time of the earliest lead.captured; the lead exists from then on.';
COMMENT ON COLUMN leads.captured_month IS 'First day of the shop-zone month of the capture.';
COMMENT ON COLUMN leads.captured_source IS 'CloudEvents source of that lead.captured.';
COMMENT ON COLUMN leads.captured_id IS 'CloudEvents id of that lead.captured.';
COMMENT ON COLUMN leads.temperature IS 'cold, warm or hot: of the latest lead.captured or lead.changed.';
COMMENT ON COLUMN leads.temperature_at IS 'Event time of that latest event.';
COMMENT ON COLUMN leads.temperature_source IS 'CloudEvents source of it.';
COMMENT ON COLUMN leads.temperature_id IS 'CloudEvents id of it.';
COMMENT ON COLUMN leads.updated_at IS 'When a batch last changed the row.';
COMMENT ON COLUMN lead_events.source IS 'CloudEvents source; with id, the row key.';
COMMENT ON COLUMN lead_events.id IS 'CloudEvents id.';
COMMENT ON COLUMN lead_events.lead_id IS 'Lead the event is about.';
COMMENT ON COLUMN lead_events.kind IS 'captured or changed.';
COMMENT ON COLUMN lead_events.temperature IS 'cold, warm or hot.';
COMMENT ON COLUMN lead_events.time IS 'Event time.';
COMMENT ON COLUMN lead_events.month IS 'First day of the shop-zone month of the event time.';

-- ---------------------------------------------------------------------------------------
-- Views. Percentiles are nearest-rank (percentile_disc) over whole seconds.

CREATE VIEW claims_journal_monthly AS
WITH c AS (
    SELECT claim_id, category, filed_at, resolved_at,
           date_trunc('month', filed_day)::date AS filed_month,
           date_trunc('month', resolved_day)::date AS resolved_month,
           floor(extract(epoch FROM resolved_at - filed_at))::bigint AS resolve_seconds
    FROM claims WHERE category IS NOT NULL AND filed_at IS NOT NULL
),
months AS (
    SELECT generate_series(min(filed_month), max(greatest(filed_month, resolved_month)),
                           interval '1 month')::date AS month
    FROM c
),
filed AS (
    SELECT filed_month AS month, category, count(*)::bigint AS filed FROM c GROUP BY 1, 2
),
resolved AS (
    SELECT resolved_month AS month, category, count(*)::bigint AS resolved,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY resolve_seconds) AS resolve_p50_seconds,
           percentile_disc(0.95) WITHIN GROUP (ORDER BY resolve_seconds) AS resolve_p95_seconds
    FROM c WHERE resolved_month IS NOT NULL GROUP BY 1, 2
),
open_claims AS (
    SELECT m.month, c.category,
           COALESCE((SELECT s.stage FROM claim_stages s
                     WHERE s.claim_id = c.claim_id AND s.month <= m.month
                     ORDER BY s.time DESC, s.source DESC, s.id DESC LIMIT 1), 'registered') AS stage
    FROM months m JOIN c ON c.filed_month <= m.month
                        AND (c.resolved_month IS NULL OR c.resolved_month > m.month)
),
open_at_end AS (
    SELECT month, category, count(*)::bigint AS open,
           count(*) FILTER (WHERE stage = 'registered')::bigint AS open_registered,
           count(*) FILTER (WHERE stage = 'investigating')::bigint AS open_investigating,
           count(*) FILTER (WHERE stage = 'action_taken')::bigint AS open_action_taken
    FROM open_claims GROUP BY 1, 2
),
grid AS (
    SELECT month, category FROM filed UNION SELECT month, category FROM resolved
    UNION SELECT month, category FROM open_at_end
)
SELECT g.month, g.category,
       COALESCE(f.filed, 0) AS filed,
       COALESCE(r.resolved, 0) AS resolved,
       COALESCE(o.open, 0) AS open_at_month_end,
       COALESCE(o.open_registered, 0) AS open_registered,
       COALESCE(o.open_investigating, 0) AS open_investigating,
       COALESCE(o.open_action_taken, 0) AS open_action_taken,
       r.resolve_p50_seconds, r.resolve_p95_seconds
FROM grid g
LEFT JOIN filed f USING (month, category)
LEFT JOIN resolved r USING (month, category)
LEFT JOIN open_at_end o USING (month, category);
COMMENT ON VIEW claims_journal_monthly IS 'Claims journal per shop-zone month and category: filed and resolved in the month, open at month end by stage, time to resolve p50/p95 (whole seconds) of the claims resolved in the month.';

CREATE VIEW open_claims AS
SELECT c.claim_id, c.order_id, c.category,
       COALESCE((SELECT s.stage FROM claim_stages s WHERE s.claim_id = c.claim_id
                 ORDER BY s.time DESC, s.source DESC, s.id DESC LIMIT 1), 'registered') AS stage,
       c.filed_at,
       extract(epoch FROM now() - c.filed_at)::double precision AS age_seconds
FROM claims c
WHERE c.filed_at IS NOT NULL AND c.resolved_at IS NULL
ORDER BY c.filed_at, c.claim_id;
COMMENT ON VIEW open_claims IS 'Claims filed and not resolved, with their latest stage and age now, oldest first.';

CREATE VIEW courier_smileys AS
SELECT x.colour, x.courier_id, x.time, x.month, x.ref,
       (SELECT r.team_id FROM courier_rosters r
        WHERE r.courier_id = x.courier_id AND r.time <= x.time
        ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id
FROM (
    SELECT 'yellow'::text AS colour, v.courier_id, v.posted_at AS time, v.posted_month AS month,
           v.review_id AS ref
    FROM reviews v CROSS JOIN service_settings s
    WHERE v.rating >= s.smiley_min_rating AND v.courier_id IS NOT NULL AND v.posted_at IS NOT NULL
    UNION ALL
    SELECT 'red', courier_id, time, month, id FROM courier_violations
) x;
COMMENT ON VIEW courier_smileys IS 'Every smiley: yellow (a review rated at least rules.smiley_min_rating naming the courier), red (a violation), with the team the courier was in at that instant.';

CREATE VIEW courier_smileys_monthly AS
SELECT m.month, m.courier_id,
       (SELECT r.team_id FROM courier_rosters r
        WHERE r.courier_id = m.courier_id AND r.month <= m.month
        ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id,
       m.yellow, m.red,
       CASE WHEN m.yellow + m.red > 0 THEN m.yellow::double precision / (m.yellow + m.red) END
           AS friendliness_index
FROM (
    SELECT month, courier_id,
           count(*) FILTER (WHERE colour = 'yellow')::bigint AS yellow,
           count(*) FILTER (WHERE colour = 'red')::bigint AS red
    FROM courier_smileys GROUP BY 1, 2
) m;
COMMENT ON VIEW courier_smileys_monthly IS 'Smileys per courier per shop-zone month, its team at month end, and the friendliness index yellow / (yellow + red).';

CREATE VIEW team_ranking_monthly AS
WITH months AS (SELECT DISTINCT month FROM courier_smileys),
tally AS (
    SELECT month, team_id,
           count(*) FILTER (WHERE colour = 'yellow')::bigint AS yellow,
           count(*) FILTER (WHERE colour = 'red')::bigint AS red
    FROM courier_smileys WHERE team_id IS NOT NULL GROUP BY 1, 2
),
members AS (
    SELECT m.month,
           (SELECT r.team_id FROM courier_rosters r
            WHERE r.courier_id = c.courier_id AND r.month <= m.month
            ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id
    FROM months m CROSS JOIN (SELECT DISTINCT courier_id FROM courier_rosters) c
),
sizes AS (
    SELECT month, team_id, count(*)::bigint AS team_size
    FROM members WHERE team_id IS NOT NULL GROUP BY 1, 2
),
teams AS (SELECT month, team_id FROM tally UNION SELECT month, team_id FROM sizes),
ranked AS (
    SELECT t.month, t.team_id, COALESCE(y.yellow, 0) AS yellow, COALESCE(y.red, 0) AS red,
           COALESCE(z.team_size, 0) AS team_size,
           row_number() OVER (PARTITION BY t.month ORDER BY COALESCE(y.yellow, 0) DESC, t.team_id)
               AS rank
    FROM teams t
    LEFT JOIN tally y USING (month, team_id)
    LEFT JOIN sizes z USING (month, team_id)
)
SELECT r.month, r.team_id, r.yellow, r.red,
       CASE WHEN r.yellow + r.red > 0 THEN r.yellow::double precision / (r.yellow + r.red) END
           AS friendliness_index,
       r.team_size, r.team_size <> s.team_size AS size_flagged, r.rank, r.rank = 1 AS winner
FROM ranked r CROSS JOIN service_settings s;
COMMENT ON VIEW team_ranking_monthly IS 'Friendly-driver contest per shop-zone month: smileys per team (by the team at each smiley''s time), index, size at month end (flagged when not rules.team_size), rank by yellow smileys (ties: lowest team_id) and the winner.';

CREATE VIEW review_response_monthly AS
WITH r AS (
    SELECT v.posted_month AS month, v.rating, v.answered_at,
           floor(extract(epoch FROM v.answered_at - v.posted_at))::bigint AS answer_seconds,
           v.answered_at - v.posted_at <= s.review_answer_sla AS within_sla
    FROM reviews v CROSS JOIN service_settings s
    WHERE v.posted_at IS NOT NULL
)
SELECT month,
       count(*)::bigint AS reviews,
       count(answered_at)::bigint AS answered,
       count(*) FILTER (WHERE within_sla)::bigint AS answered_within_sla,
       (count(*) FILTER (WHERE within_sla))::double precision / count(*) AS within_sla_share,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY answer_seconds) AS answer_p50_seconds,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY answer_seconds) AS answer_p95_seconds,
       count(*) FILTER (WHERE rating <= 2)::bigint AS negative,
       count(*) FILTER (WHERE rating <= 2 AND answered_at IS NULL)::bigint AS unanswered_negative
FROM r GROUP BY month;
COMMENT ON VIEW review_response_monthly IS 'Reviews per shop-zone month of posting: answered (ever), within rules.review_answer_sla (inclusive) and its share, answer time p50/p95 (whole seconds), negative (rating <= 2) and still unanswered negative.';

CREATE VIEW unanswered_negative_reviews AS
SELECT review_id, rating, order_id, customer_id, courier_id, posted_at,
       extract(epoch FROM now() - posted_at)::double precision AS age_seconds
FROM reviews
WHERE rating <= 2 AND answered_at IS NULL AND posted_at IS NOT NULL
ORDER BY posted_at, review_id;
COMMENT ON VIEW unanswered_negative_reviews IS 'Reviews rated 2 or lower with no answer yet, with their age now, oldest first.';

CREATE VIEW repeat_customers_monthly AS
WITH o AS (
    SELECT customer_id, date_trunc('month', created_day)::date AS month
    FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
),
firsts AS (SELECT customer_id, min(month) AS first_month FROM o GROUP BY 1),
per AS (
    SELECT o.month, o.customer_id, count(*)::bigint AS orders,
           bool_or(f.first_month < o.month) AS is_returning
    FROM o JOIN firsts f USING (customer_id) GROUP BY 1, 2
)
SELECT month,
       count(*)::bigint AS customers,
       count(*) FILTER (WHERE is_returning)::bigint AS returning_customers,
       (count(*) FILTER (WHERE is_returning))::double precision / count(*) AS returning_customer_share,
       sum(orders)::bigint AS orders,
       COALESCE(sum(orders) FILTER (WHERE is_returning), 0)::bigint AS returning_orders,
       COALESCE(sum(orders) FILTER (WHERE is_returning), 0)::double precision / sum(orders)
           AS returning_order_share
FROM per GROUP BY month;
COMMENT ON VIEW repeat_customers_monthly IS 'Per shop-zone month of order.created: customers with an order, those who had ordered before the month (cancelled orders count), their share, and the share of the month''s orders they placed.';

CREATE VIEW order_dispatch_monthly AS
SELECT date_trunc('month', shipped_day)::date AS month,
       count(*)::bigint AS shipped,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY floor(extract(epoch FROM shipped_at - created_at))::bigint)
           AS dispatch_p50_seconds,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY floor(extract(epoch FROM shipped_at - created_at))::bigint)
           AS dispatch_p95_seconds
FROM orders
WHERE shipped_at IS NOT NULL AND created_at IS NOT NULL
GROUP BY 1;
COMMENT ON VIEW order_dispatch_monthly IS 'Order to dispatch: order.shipped minus order.created, p50/p95 in whole seconds, per shop-zone month of the shipment.';

CREATE VIEW acquisition_monthly AS
WITH spend_months AS (
    SELECT m::date AS month, s.channel,
           s.amount * ((LEAST(s.to_day, (m + interval '1 month' - interval '1 day')::date)
                        - GREATEST(s.from_day, m::date) + 1))::numeric
                    / ((s.to_day - s.from_day) + 1) AS spend
    FROM spends s,
         generate_series(date_trunc('month', s.from_day), s.to_day, interval '1 month') AS m
),
firsts AS (
    SELECT customer_id, date_trunc('month', created_day)::date AS month, sales_channel,
           row_number() OVER (PARTITION BY customer_id ORDER BY created_at, order_id) AS n
    FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
),
fulfilled AS (
    SELECT date_trunc('month', delivered_day)::date AS month, sales_channel, total
    FROM orders WHERE verdict IN ('perfect', 'imperfect') AND total IS NOT NULL
),
channels AS (
    SELECT DISTINCT channel FROM spends WHERE channel IS NOT NULL
    INTERSECT SELECT DISTINCT sales_channel FROM orders WHERE sales_channel IS NOT NULL
),
facts AS (
    SELECT month, 'all'::text AS channel, spend, 0 AS new_customers, NULL::numeric AS total FROM spend_months
    UNION ALL SELECT month, channel, spend, 0, NULL FROM spend_months WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, 1, NULL FROM firsts WHERE n = 1
    UNION ALL SELECT month, sales_channel, 0, 1, NULL FROM firsts WHERE n = 1 AND sales_channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, 0, total FROM fulfilled
    UNION ALL SELECT month, sales_channel, 0, 0, total FROM fulfilled WHERE sales_channel IN (SELECT channel FROM channels)
),
sums AS (
    SELECT month, channel, sum(spend) AS spend, sum(new_customers)::bigint AS new_customers,
           count(total)::bigint AS fulfilled_orders, COALESCE(sum(total), 0) AS revenue
    FROM facts GROUP BY 1, 2
)
SELECT month, channel, spend, new_customers,
       CASE WHEN new_customers > 0 THEN spend / new_customers END AS cac,
       fulfilled_orders, revenue,
       CASE WHEN fulfilled_orders > 0 THEN revenue / fulfilled_orders END AS aov,
       CASE WHEN new_customers > 0 AND fulfilled_orders > 0 AND revenue > 0
            THEN (spend / new_customers) / (revenue / fulfilled_orders) END AS cac_to_aov
FROM sums;
COMMENT ON VIEW acquisition_monthly IS 'Per shop-zone month, for channel ''all'' and per channel present on spends and as a sales_channel: spend attributed pro rata by days, new customers (first order.created ever), CAC = spend / new customers, AOV = revenue of orders delivered in the month / their count, and CAC / AOV.';

CREATE VIEW lead_base_monthly AS
WITH months AS (
    SELECT generate_series(min(l.captured_month), (SELECT max(month) FROM lead_events),
                           interval '1 month')::date AS month
    FROM leads l WHERE l.captured_month IS NOT NULL
),
firsts AS (
    SELECT customer_id, min(created_at) AS first_order_at,
           min(created_day) AS first_order_day
    FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL GROUP BY 1
),
base AS (
    SELECT m.month, l.lead_id, l.captured_month,
           (SELECT e.temperature FROM lead_events e
            WHERE e.lead_id = l.lead_id AND e.month <= m.month
            ORDER BY e.time DESC, e.source DESC, e.id DESC LIMIT 1) AS temperature,
           CASE WHEN f.first_order_at >= l.captured_at
                THEN date_trunc('month', f.first_order_day)::date END AS converted_month
    FROM months m
    JOIN leads l ON l.captured_month <= m.month
    LEFT JOIN firsts f ON f.customer_id = l.customer_id
),
totals AS (
    SELECT month,
           count(*)::bigint AS leads,
           count(*) FILTER (WHERE captured_month = month)::bigint AS new_leads,
           count(*) FILTER (WHERE temperature = 'cold')::bigint AS cold,
           count(*) FILTER (WHERE temperature = 'warm')::bigint AS warm,
           count(*) FILTER (WHERE temperature = 'hot')::bigint AS hot,
           count(*) FILTER (WHERE converted_month <= month)::bigint AS converted,
           count(*) FILTER (WHERE converted_month = month)::bigint AS new_conversions
    FROM base GROUP BY month
)
SELECT month, leads, new_leads, cold, warm, hot,
       (warm + hot)::double precision / leads AS warm_hot_share,
       CASE WHEN lag(leads) OVER (ORDER BY month) > 0
            THEN (leads - lag(leads) OVER (ORDER BY month))::double precision / lag(leads) OVER (ORDER BY month)
       END AS growth,
       converted, new_conversions
FROM totals;
COMMENT ON VIEW lead_base_monthly IS 'Lead base at each shop-zone month end: leads captured before it by their latest temperature, new leads, warm+hot share, growth over the previous month, and leads converted (their customer''s first order at or after the capture).';
