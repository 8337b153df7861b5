-- The friendly-driver contest, maintained (issue 14): the smileys per month, courier and
-- the team the courier was in at each smiley's time, kept by the batch transaction as signed
-- deltas (src/domain/contest.rs), so courier_smileys_monthly and team_ranking_monthly sum a
-- month's tallies instead of looking up every smiley's team in the rosters (about 10,000
-- smileys a month at a shop of two orders a minute: 47 ms per month read, 0.6 s for a
-- year). A late rostering moves the courier's smileys from its time on, read through the
-- two indexes below. See docs/architecture.md, "Maintained figures".

CREATE TABLE smiley_tallies (
    month      date    NOT NULL,
    courier_id text COLLATE "C" NOT NULL,
    team_id    text COLLATE "C" NOT NULL,
    shard      integer NOT NULL,
    yellow     bigint  NOT NULL DEFAULT 0,
    red        bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (month, courier_id, team_id, shard)
);
COMMENT ON TABLE smiley_tallies IS 'Smileys per shop-zone month, courier and the team the courier was in at each smiley''s time, as signed deltas per writer shard (the views sum the shards).';
COMMENT ON COLUMN smiley_tallies.month IS 'First day of the shop-zone month of the smiley.';
COMMENT ON COLUMN smiley_tallies.courier_id IS 'Courier the smiley names.';
COMMENT ON COLUMN smiley_tallies.team_id IS 'Team of the courier''s latest rostering at or before the smiley; empty: none.';
COMMENT ON COLUMN smiley_tallies.shard IS 'Writer shard: concurrent batches add to rows of their own; sum over it.';
COMMENT ON COLUMN smiley_tallies.yellow IS 'Yellow smileys (reviews rated at least rules.smiley_min_rating).';
COMMENT ON COLUMN smiley_tallies.red IS 'Red smileys (violations).';

CREATE INDEX reviews_courier ON reviews (courier_id, posted_at);
CREATE INDEX courier_violations_courier ON courier_violations (courier_id, time);

-- Filled from the stored smileys (an empty database fills nothing).
INSERT INTO smiley_tallies (month, courier_id, team_id, shard, yellow, red)
SELECT month, courier_id, COALESCE(team_id, ''), 0,
       count(*) FILTER (WHERE colour = 'yellow'), count(*) FILTER (WHERE colour = 'red')
FROM courier_smileys GROUP BY 1, 2, 3;

-- The views keep their columns and answers; they read the tallies.
CREATE OR REPLACE VIEW courier_smileys_monthly AS
SELECT m.month, m.courier_id,
       (SELECT r.team_id FROM courier_rosters r
        WHERE r.courier_id = m.courier_id AND r.month <= m.month
        ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id,
       m.yellow, m.red,
       CASE WHEN m.yellow + m.red > 0 THEN m.yellow::double precision / (m.yellow + m.red) END
           AS friendliness_index
FROM (
    SELECT month, courier_id, sum(yellow)::bigint AS yellow, sum(red)::bigint AS red
    FROM smiley_tallies GROUP BY month, courier_id HAVING sum(yellow) + sum(red) > 0
) m;
COMMENT ON VIEW courier_smileys_monthly IS 'Smileys per courier per shop-zone month, its team at month end, and the friendliness index yellow / (yellow + red) (from smiley_tallies).';

CREATE OR REPLACE VIEW team_ranking_monthly AS
SELECT m.month, r.team_id, r.yellow, r.red,
       CASE WHEN r.yellow + r.red > 0 THEN r.yellow::double precision / (r.yellow + r.red) END
           AS friendliness_index,
       r.team_size, r.team_size <> s.team_size AS size_flagged, r.rank, r.rank = 1 AS winner
FROM (SELECT month FROM smiley_tallies GROUP BY month HAVING sum(yellow) + sum(red) > 0) m
CROSS JOIN service_settings s
CROSS JOIN LATERAL (
    WITH tally AS (
        SELECT t.team_id, sum(t.yellow)::bigint AS yellow, sum(t.red)::bigint AS red
        FROM smiley_tallies t WHERE t.month = m.month AND t.team_id <> ''
        GROUP BY t.team_id HAVING sum(t.yellow) + sum(t.red) > 0
    ),
    sizes AS (
        SELECT x.team_id, count(*)::bigint AS team_size
        FROM (
            SELECT (SELECT r.team_id FROM courier_rosters r
                    WHERE r.courier_id = c.courier_id AND r.month <= m.month
                    ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id
            FROM (SELECT DISTINCT courier_id FROM courier_rosters) c
        ) x
        WHERE x.team_id IS NOT NULL GROUP BY x.team_id
    ),
    teams AS (SELECT team_id FROM tally UNION SELECT team_id FROM sizes)
    SELECT t.team_id, COALESCE(y.yellow, 0) AS yellow, COALESCE(y.red, 0) AS red,
           COALESCE(z.team_size, 0) AS team_size,
           row_number() OVER (ORDER BY COALESCE(y.yellow, 0) DESC, t.team_id) AS rank
    FROM teams t
    LEFT JOIN tally y USING (team_id)
    LEFT JOIN sizes z USING (team_id)
) r;
COMMENT ON VIEW team_ranking_monthly IS 'Friendly-driver contest per shop-zone month: smileys per team (by the team at each smiley''s time, from smiley_tallies), index, size at month end (flagged when not rules.team_size), rank by yellow smileys (ties: lowest team_id) and the winner.';
