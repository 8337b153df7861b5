-- The console's confirmation histogram reads confirmation_ms_buckets (see the PostgreSQL
-- migration 0024).

DROP TABLE confirmation_minute_buckets;
