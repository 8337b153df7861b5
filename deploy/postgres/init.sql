-- Runs once when the compose PostgreSQL starts empty: the service's database and a read-only
-- role for Grafana's PostgreSQL data source.
CREATE DATABASE perfect_order;
CREATE ROLE grafana LOGIN PASSWORD 'grafana';
\connect perfect_order
GRANT USAGE ON SCHEMA public TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
