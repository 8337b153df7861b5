-- SQLite edition of ../0006_contract_v2.sql: the same tables, views, columns and meanings.
-- Times are fixed-width UTC text (text order is time order), days and months 'YYYY-MM-DD',
-- money REAL, durations in seconds. Percentiles are nearest rank like PostgreSQL's
-- percentile_disc: the value at rank ceil(p * n), i.e. (n + 1) / 2 and (95 * n + 99) / 100.
-- orders.shipped_day of rows written before this migration stays empty until `rebuild`.

ALTER TABLE orders ADD COLUMN sales_channel TEXT;
ALTER TABLE orders ADD COLUMN total REAL;
ALTER TABLE orders ADD COLUMN shipped_day TEXT;
UPDATE orders SET
    sales_channel = json_extract(state, '$.created.data.sales_channel'),
    total = CAST(json_extract(state, '$.created.data.total') AS REAL);
CREATE INDEX orders_customer_created_day ON orders (customer_id, created_day);
CREATE INDEX orders_shipped_day ON orders (shipped_day);

ALTER TABLE claims ADD COLUMN resolved_day TEXT;
ALTER TABLE claims ADD COLUMN improvement TEXT;

ALTER TABLE service_settings ADD COLUMN smiley_min_rating INTEGER NOT NULL DEFAULT 4;
ALTER TABLE service_settings ADD COLUMN review_answer_sla REAL NOT NULL DEFAULT 86400;
ALTER TABLE service_settings ADD COLUMN team_size INTEGER NOT NULL DEFAULT 10;

CREATE TABLE claim_stages (
    source   TEXT NOT NULL,
    id       TEXT NOT NULL,
    claim_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    stage    TEXT NOT NULL,
    note     TEXT,
    time     TEXT NOT NULL,
    month    TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX claim_stages_claim ON claim_stages (claim_id, time, source, id);

CREATE TABLE reviews (
    review_id       TEXT PRIMARY KEY,
    rating          INTEGER,
    order_id        TEXT,
    customer_id     TEXT,
    courier_id      TEXT,
    text            TEXT,
    posted_at       TEXT,
    posted_month    TEXT,
    posted_source   TEXT,
    posted_id       TEXT,
    answered_at     TEXT,
    responder_id    TEXT,
    answered_source TEXT,
    answered_id     TEXT,
    updated_at      TEXT NOT NULL
);
CREATE INDEX reviews_posted_month ON reviews (posted_month);

CREATE TABLE couriers (
    courier_id      TEXT PRIMARY KEY,
    team_id         TEXT NOT NULL,
    captain         INTEGER NOT NULL,
    rostered_at     TEXT NOT NULL,
    rostered_source TEXT NOT NULL,
    rostered_id     TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE courier_rosters (
    source     TEXT NOT NULL,
    id         TEXT NOT NULL,
    courier_id TEXT NOT NULL,
    team_id    TEXT NOT NULL,
    captain    INTEGER NOT NULL,
    time       TEXT NOT NULL,
    month      TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX courier_rosters_courier ON courier_rosters (courier_id, time, source, id);

CREATE TABLE courier_violations (
    source     TEXT NOT NULL,
    id         TEXT NOT NULL,
    courier_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    order_id   TEXT,
    time       TEXT NOT NULL,
    month      TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX courier_violations_month ON courier_violations (month);

CREATE TABLE spends (
    spend_id     TEXT PRIMARY KEY,
    amount       REAL NOT NULL,
    currency     TEXT NOT NULL,
    from_day     TEXT NOT NULL,
    to_day       TEXT NOT NULL,
    channel      TEXT,
    time         TEXT NOT NULL,
    event_source TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE leads (
    lead_id            TEXT PRIMARY KEY,
    source             TEXT,
    customer_id        TEXT,
    captured_at        TEXT,
    captured_month     TEXT,
    captured_source    TEXT,
    captured_id        TEXT,
    temperature        TEXT NOT NULL,
    temperature_at     TEXT NOT NULL,
    temperature_source TEXT NOT NULL,
    temperature_id     TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX leads_customer ON leads (customer_id);

CREATE TABLE lead_events (
    source      TEXT NOT NULL,
    id          TEXT NOT NULL,
    lead_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    temperature TEXT NOT NULL,
    time        TEXT NOT NULL,
    month       TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX lead_events_lead ON lead_events (lead_id, time, source, id);

-- Whole seconds from a to b, rounded down, is
-- CAST(d AS INTEGER) - (d < CAST(d AS INTEGER)) with d = unixepoch(b, 'subsec') - unixepoch(a, 'subsec').

CREATE VIEW claims_journal_monthly AS
WITH RECURSIVE c AS (
    SELECT claim_id, category, filed_at, resolved_at,
           strftime('%Y-%m-01', filed_day) AS filed_month,
           strftime('%Y-%m-01', resolved_day) AS resolved_month,
           CASE WHEN resolved_at IS NOT NULL THEN
               CAST(unixepoch(resolved_at, 'subsec') - unixepoch(filed_at, 'subsec') AS INTEGER)
               - ((unixepoch(resolved_at, 'subsec') - unixepoch(filed_at, 'subsec'))
                  < CAST(unixepoch(resolved_at, 'subsec') - unixepoch(filed_at, 'subsec') AS INTEGER))
           END AS resolve_seconds
    FROM claims WHERE category IS NOT NULL AND filed_at IS NOT NULL
),
months(month) AS (
    SELECT min(filed_month) FROM c WHERE filed_month IS NOT NULL
    UNION ALL
    SELECT date(month, '+1 month') FROM months
    WHERE date(month, '+1 month') <= (SELECT max(max(filed_month, COALESCE(resolved_month, filed_month))) FROM c)
),
filed AS (
    SELECT filed_month AS month, category, count(*) AS filed FROM c GROUP BY 1, 2
),
ranked AS (
    SELECT resolved_month AS month, category, resolve_seconds,
           row_number() OVER (PARTITION BY resolved_month, category ORDER BY resolve_seconds) AS rn,
           count(*) OVER (PARTITION BY resolved_month, category) AS n
    FROM c WHERE resolved_month IS NOT NULL
),
resolved AS (
    SELECT month, category, max(n) AS resolved,
           max(CASE WHEN rn = (n + 1) / 2 THEN resolve_seconds END) AS resolve_p50_seconds,
           max(CASE WHEN rn = (95 * n + 99) / 100 THEN resolve_seconds END) AS resolve_p95_seconds
    FROM ranked GROUP BY 1, 2
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
    SELECT month, category, count(*) AS open,
           count(*) FILTER (WHERE stage = 'registered') AS open_registered,
           count(*) FILTER (WHERE stage = 'investigating') AS open_investigating,
           count(*) FILTER (WHERE stage = 'action_taken') AS open_action_taken
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
LEFT JOIN filed f ON f.month = g.month AND f.category = g.category
LEFT JOIN resolved r ON r.month = g.month AND r.category = g.category
LEFT JOIN open_at_end o ON o.month = g.month AND o.category = g.category;

CREATE VIEW open_claims AS
SELECT c.claim_id, c.order_id, c.category,
       COALESCE((SELECT s.stage FROM claim_stages s WHERE s.claim_id = c.claim_id
                 ORDER BY s.time DESC, s.source DESC, s.id DESC LIMIT 1), 'registered') AS stage,
       c.filed_at,
       (julianday('now') - julianday(c.filed_at)) * 86400.0 AS age_seconds
FROM claims c
WHERE c.filed_at IS NOT NULL AND c.resolved_at IS NULL
ORDER BY c.filed_at, c.claim_id;

CREATE VIEW courier_smileys AS
SELECT x.colour, x.courier_id, x.time, x.month, x.ref,
       (SELECT r.team_id FROM courier_rosters r
        WHERE r.courier_id = x.courier_id AND r.time <= x.time
        ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id
FROM (
    SELECT 'yellow' AS colour, v.courier_id, v.posted_at AS time, v.posted_month AS month,
           v.review_id AS ref
    FROM reviews v CROSS JOIN service_settings s
    WHERE v.rating >= s.smiley_min_rating AND v.courier_id IS NOT NULL AND v.posted_at IS NOT NULL
    UNION ALL
    SELECT 'red', courier_id, time, month, id FROM courier_violations
) x;

CREATE VIEW courier_smileys_monthly AS
SELECT m.month, m.courier_id,
       (SELECT r.team_id FROM courier_rosters r
        WHERE r.courier_id = m.courier_id AND r.month <= m.month
        ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id,
       m.yellow, m.red,
       CASE WHEN m.yellow + m.red > 0 THEN CAST(m.yellow AS REAL) / (m.yellow + m.red) END
           AS friendliness_index
FROM (
    SELECT month, courier_id,
           count(*) FILTER (WHERE colour = 'yellow') AS yellow,
           count(*) FILTER (WHERE colour = 'red') AS red
    FROM courier_smileys GROUP BY 1, 2
) m;

CREATE VIEW team_ranking_monthly AS
WITH months AS (SELECT DISTINCT month FROM courier_smileys),
tally AS (
    SELECT month, team_id,
           count(*) FILTER (WHERE colour = 'yellow') AS yellow,
           count(*) FILTER (WHERE colour = 'red') AS red
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
    SELECT month, team_id, count(*) AS team_size
    FROM members WHERE team_id IS NOT NULL GROUP BY 1, 2
),
teams AS (SELECT month, team_id FROM tally UNION SELECT month, team_id FROM sizes),
ranked AS (
    SELECT t.month, t.team_id, COALESCE(y.yellow, 0) AS yellow, COALESCE(y.red, 0) AS red,
           COALESCE(z.team_size, 0) AS team_size,
           row_number() OVER (PARTITION BY t.month ORDER BY COALESCE(y.yellow, 0) DESC, t.team_id)
               AS rank
    FROM teams t
    LEFT JOIN tally y ON y.month = t.month AND y.team_id = t.team_id
    LEFT JOIN sizes z ON z.month = t.month AND z.team_id = t.team_id
)
SELECT r.month, r.team_id, r.yellow, r.red,
       CASE WHEN r.yellow + r.red > 0 THEN CAST(r.yellow AS REAL) / (r.yellow + r.red) END
           AS friendliness_index,
       r.team_size, r.team_size <> s.team_size AS size_flagged, r.rank, r.rank = 1 AS winner
FROM ranked r CROSS JOIN service_settings s;

CREATE VIEW review_response_monthly AS
WITH r AS (
    SELECT v.posted_month AS month, v.rating, v.answered_at,
           CASE WHEN v.answered_at IS NOT NULL THEN
               CAST(unixepoch(v.answered_at, 'subsec') - unixepoch(v.posted_at, 'subsec') AS INTEGER)
               - ((unixepoch(v.answered_at, 'subsec') - unixepoch(v.posted_at, 'subsec'))
                  < CAST(unixepoch(v.answered_at, 'subsec') - unixepoch(v.posted_at, 'subsec') AS INTEGER))
           END AS answer_seconds,
           CASE WHEN v.answered_at IS NOT NULL THEN
               unixepoch(v.answered_at, 'subsec') - unixepoch(v.posted_at, 'subsec') <= s.review_answer_sla
           END AS within_sla
    FROM reviews v CROSS JOIN service_settings s
    WHERE v.posted_at IS NOT NULL
),
ranked AS (
    SELECT month, answer_seconds,
           row_number() OVER (PARTITION BY month ORDER BY answer_seconds) AS rn,
           count(*) OVER (PARTITION BY month) AS n
    FROM r WHERE answer_seconds IS NOT NULL
),
pct AS (
    SELECT month,
           max(CASE WHEN rn = (n + 1) / 2 THEN answer_seconds END) AS p50,
           max(CASE WHEN rn = (95 * n + 99) / 100 THEN answer_seconds END) AS p95
    FROM ranked GROUP BY month
)
SELECT r.month,
       count(*) AS reviews,
       count(r.answered_at) AS answered,
       count(*) FILTER (WHERE r.within_sla) AS answered_within_sla,
       CAST(count(*) FILTER (WHERE r.within_sla) AS REAL) / count(*) AS within_sla_share,
       p.p50 AS answer_p50_seconds,
       p.p95 AS answer_p95_seconds,
       count(*) FILTER (WHERE r.rating <= 2) AS negative,
       count(*) FILTER (WHERE r.rating <= 2 AND r.answered_at IS NULL) AS unanswered_negative
FROM r LEFT JOIN pct p ON p.month = r.month
GROUP BY r.month;

CREATE VIEW unanswered_negative_reviews AS
SELECT review_id, rating, order_id, customer_id, courier_id, posted_at,
       (julianday('now') - julianday(posted_at)) * 86400.0 AS age_seconds
FROM reviews
WHERE rating <= 2 AND answered_at IS NULL AND posted_at IS NOT NULL
ORDER BY posted_at, review_id;

CREATE VIEW repeat_customers_monthly AS
WITH o AS (
    SELECT customer_id, strftime('%Y-%m-01', created_day) AS month
    FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
),
firsts AS (SELECT customer_id, min(month) AS first_month FROM o GROUP BY 1),
per AS (
    SELECT o.month, o.customer_id, count(*) AS orders,
           max(f.first_month < o.month) AS is_returning
    FROM o JOIN firsts f ON f.customer_id = o.customer_id GROUP BY 1, 2
)
SELECT month,
       count(*) AS customers,
       count(*) FILTER (WHERE is_returning) AS returning_customers,
       CAST(count(*) FILTER (WHERE is_returning) AS REAL) / count(*) AS returning_customer_share,
       sum(orders) AS orders,
       COALESCE(sum(orders) FILTER (WHERE is_returning), 0) AS returning_orders,
       CAST(COALESCE(sum(orders) FILTER (WHERE is_returning), 0) AS REAL) / sum(orders)
           AS returning_order_share
FROM per GROUP BY month;

CREATE VIEW order_dispatch_monthly AS
WITH d AS (
    SELECT strftime('%Y-%m-01', shipped_day) AS month,
           CAST(unixepoch(shipped_at, 'subsec') - unixepoch(created_at, 'subsec') AS INTEGER)
           - ((unixepoch(shipped_at, 'subsec') - unixepoch(created_at, 'subsec'))
              < CAST(unixepoch(shipped_at, 'subsec') - unixepoch(created_at, 'subsec') AS INTEGER))
               AS seconds
    FROM orders WHERE shipped_at IS NOT NULL AND created_at IS NOT NULL
),
ranked AS (
    SELECT month, seconds,
           row_number() OVER (PARTITION BY month ORDER BY seconds) AS rn,
           count(*) OVER (PARTITION BY month) AS n
    FROM d
)
SELECT month, max(n) AS shipped,
       max(CASE WHEN rn = (n + 1) / 2 THEN seconds END) AS dispatch_p50_seconds,
       max(CASE WHEN rn = (95 * n + 99) / 100 THEN seconds END) AS dispatch_p95_seconds
FROM ranked GROUP BY month;

CREATE VIEW acquisition_monthly AS
WITH RECURSIVE sm(spend_id, month) AS (
    SELECT spend_id, strftime('%Y-%m-01', from_day) FROM spends
    UNION ALL
    SELECT sm.spend_id, date(sm.month, '+1 month') FROM sm JOIN spends s ON s.spend_id = sm.spend_id
    WHERE date(sm.month, '+1 month') <= s.to_day
),
spend_months AS (
    SELECT sm.month, s.channel,
           s.amount * (julianday(min(s.to_day, date(sm.month, '+1 month', '-1 day')))
                       - julianday(max(s.from_day, sm.month)) + 1)
                    / (julianday(s.to_day) - julianday(s.from_day) + 1) AS spend
    FROM sm JOIN spends s ON s.spend_id = sm.spend_id
),
firsts AS (
    SELECT customer_id, strftime('%Y-%m-01', created_day) AS month, sales_channel,
           row_number() OVER (PARTITION BY customer_id ORDER BY created_at, order_id) AS n
    FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL
),
fulfilled AS (
    SELECT strftime('%Y-%m-01', delivered_day) AS month, sales_channel, total
    FROM orders WHERE verdict IN ('perfect', 'imperfect') AND total IS NOT NULL
),
channels AS (
    SELECT DISTINCT channel FROM spends WHERE channel IS NOT NULL
    INTERSECT SELECT DISTINCT sales_channel FROM orders WHERE sales_channel IS NOT NULL
),
facts AS (
    SELECT month, 'all' AS channel, spend, 0 AS new_customers, NULL AS total FROM spend_months
    UNION ALL SELECT month, channel, spend, 0, NULL FROM spend_months WHERE channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, 1, NULL FROM firsts WHERE n = 1
    UNION ALL SELECT month, sales_channel, 0, 1, NULL FROM firsts WHERE n = 1 AND sales_channel IN (SELECT channel FROM channels)
    UNION ALL SELECT month, 'all', 0, 0, total FROM fulfilled
    UNION ALL SELECT month, sales_channel, 0, 0, total FROM fulfilled WHERE sales_channel IN (SELECT channel FROM channels)
),
sums AS (
    SELECT month, channel, CAST(sum(spend) AS REAL) AS spend, sum(new_customers) AS new_customers,
           count(total) AS fulfilled_orders, CAST(COALESCE(sum(total), 0) AS REAL) AS revenue
    FROM facts GROUP BY 1, 2
)
SELECT month, channel, spend, new_customers,
       CASE WHEN new_customers > 0 THEN spend / new_customers END AS cac,
       fulfilled_orders, revenue,
       CASE WHEN fulfilled_orders > 0 THEN revenue / fulfilled_orders END AS aov,
       CASE WHEN new_customers > 0 AND fulfilled_orders > 0 AND revenue > 0
            THEN (spend / new_customers) / (revenue / fulfilled_orders) END AS cac_to_aov
FROM sums;

CREATE VIEW lead_base_monthly AS
WITH RECURSIVE months(month) AS (
    SELECT min(captured_month) FROM leads WHERE captured_month IS NOT NULL
    UNION ALL
    SELECT date(month, '+1 month') FROM months
    WHERE date(month, '+1 month') <= (SELECT max(month) FROM lead_events)
),
firsts AS (
    SELECT customer_id, min(created_at) AS first_order_at, min(created_day) AS first_order_day
    FROM orders WHERE created_at IS NOT NULL AND customer_id IS NOT NULL GROUP BY 1
),
base AS (
    SELECT m.month, l.lead_id, l.captured_month,
           (SELECT e.temperature FROM lead_events e
            WHERE e.lead_id = l.lead_id AND e.month <= m.month
            ORDER BY e.time DESC, e.source DESC, e.id DESC LIMIT 1) AS temperature,
           CASE WHEN f.first_order_at >= l.captured_at
                THEN strftime('%Y-%m-01', f.first_order_day) END AS converted_month
    FROM months m
    JOIN leads l ON l.captured_month <= m.month
    LEFT JOIN firsts f ON f.customer_id = l.customer_id
),
totals AS (
    SELECT month,
           count(*) AS leads,
           count(*) FILTER (WHERE captured_month = month) AS new_leads,
           count(*) FILTER (WHERE temperature = 'cold') AS cold,
           count(*) FILTER (WHERE temperature = 'warm') AS warm,
           count(*) FILTER (WHERE temperature = 'hot') AS hot,
           count(*) FILTER (WHERE converted_month <= month) AS converted,
           count(*) FILTER (WHERE converted_month = month) AS new_conversions
    FROM base GROUP BY month
)
SELECT month, leads, new_leads, cold, warm, hot,
       CAST(warm + hot AS REAL) / leads AS warm_hot_share,
       CASE WHEN lag(leads) OVER (ORDER BY month) > 0
            THEN CAST(leads - lag(leads) OVER (ORDER BY month) AS REAL) / lag(leads) OVER (ORDER BY month)
       END AS growth,
       converted, new_conversions
FROM totals;
