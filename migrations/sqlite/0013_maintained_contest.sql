-- The friendly-driver contest, maintained: the smileys per month, courier and team at each
-- smiley's time, kept by the batch transaction. See the PostgreSQL migration 0017.

CREATE TABLE smiley_tallies (
    month      TEXT    NOT NULL,
    courier_id TEXT    NOT NULL,
    team_id    TEXT    NOT NULL,  -- empty: no team
    shard      INTEGER NOT NULL,
    yellow     INTEGER NOT NULL DEFAULT 0,
    red        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, courier_id, team_id, shard)
) WITHOUT ROWID;

CREATE INDEX reviews_courier ON reviews (courier_id, posted_at);
CREATE INDEX courier_violations_courier ON courier_violations (courier_id, time);

INSERT INTO smiley_tallies (month, courier_id, team_id, shard, yellow, red)
SELECT month, courier_id, COALESCE(team_id, ''), 0,
       count(*) FILTER (WHERE colour = 'yellow'), count(*) FILTER (WHERE colour = 'red')
FROM courier_smileys GROUP BY 1, 2, 3;

DROP VIEW team_ranking_monthly;
DROP VIEW courier_smileys_monthly;

CREATE VIEW courier_smileys_monthly AS
SELECT m.month, m.courier_id,
       (SELECT r.team_id FROM courier_rosters r
        WHERE r.courier_id = m.courier_id AND r.month <= m.month
        ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id,
       m.yellow, m.red,
       CASE WHEN m.yellow + m.red > 0 THEN CAST(m.yellow AS REAL) / (m.yellow + m.red) END
           AS friendliness_index
FROM (
    SELECT month, courier_id, sum(yellow) AS yellow, sum(red) AS red
    FROM smiley_tallies GROUP BY month, courier_id HAVING sum(yellow) + sum(red) > 0
) m;

CREATE VIEW team_ranking_monthly AS
WITH months AS (
    SELECT month FROM smiley_tallies GROUP BY month HAVING sum(yellow) + sum(red) > 0
),
tally AS (
    SELECT month, team_id, sum(yellow) AS yellow, sum(red) AS red
    FROM smiley_tallies WHERE team_id <> ''
    GROUP BY month, team_id HAVING sum(yellow) + sum(red) > 0
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
