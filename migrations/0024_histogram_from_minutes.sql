-- The console's confirmation histogram reads the latencies' minute buckets (issue 14): the
-- histogram's bounds (5, 10, 15, 20, 25, 30, 45 and 60 minutes) are whole minutes, so
-- confirmation_ms_buckets (0021) answers it as well, and confirmation_minute_buckets (0020)
-- was a second table every batch wrote for the same counts. The bounds are applied when the
-- dashboard is read (src/store/read.rs), so a change to them needs no migration.

DROP TABLE confirmation_minute_buckets;
