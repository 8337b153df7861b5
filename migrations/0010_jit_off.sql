-- JIT compilation off for every session of this database (issue 14). The planner estimates
-- the monthly views expensive (their correlated look-ups), so PostgreSQL compiles them with
-- LLVM before running them: measured at 100,000 orders, compiling took 0.5-1.2 s of views
-- that then ran in 16-150 ms. The service's own sessions already turn JIT off; this is for
-- everything else that reads the views: Grafana's panels, psql, reports. Only the database's
-- owner (or a superuser) may set it; any other role gets a notice naming the statement.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'perfect-order could not turn JIT off for database %: run ALTER DATABASE % SET jit = off as its owner (each monthly view otherwise spends up to a second compiling)',
        current_database(), current_database();
END
$$;
