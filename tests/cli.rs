//! The command line as a user meets it.

mod support;

use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_perfect-order"))
}

#[test]
fn help_explains_the_commands_and_the_configuration() {
    let out = binary().arg("--help").output().expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "run",
        "migrate",
        "--config",
        "PERFECT_ORDER__KAFKA__BROKERS",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn a_bad_setting_fails_at_start_naming_its_key() {
    let out = migrate_with(&[("PERFECT_ORDER__RULES__TIMEZONE", "Mars/Olympus")]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("rules.timezone"), "{text}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = binary()
        .args(["--config", "/nonexistent/perfect-order.yaml", "migrate"])
        .output()
        .expect("run migrate");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("/nonexistent/perfect-order.yaml"), "{text}");
}

#[tokio::test]
async fn migrate_creates_the_documented_tables_and_views() {
    let db = support::TestDb::create().await;
    migrated(&db.url);
    let pool = db.pool().await;
    let undocumented: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name || '.' || c.column_name FROM information_schema.columns c
         JOIN pg_class t ON t.relname = c.table_name AND t.relkind = 'r'
         JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
         WHERE c.table_schema = 'public' AND c.table_name <> '_sqlx_migrations'
           AND col_description(t.oid, c.ordinal_position) IS NULL",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    assert!(
        undocumented.is_empty(),
        "columns without COMMENT: {undocumented:?}"
    );
    for view in [
        "po_daily",
        "po_monthly",
        "claims_monthly",
        "confirmation_latency_daily",
        "late_orders",
        "order_verdicts",
        "claims_journal_monthly",
        "open_claims",
        "courier_smileys",
        "courier_smileys_monthly",
        "team_ranking_monthly",
        "review_response_monthly",
        "unanswered_negative_reviews",
        "repeat_customers_monthly",
        "order_dispatch_monthly",
        "acquisition_monthly",
        "lead_base_monthly",
        "restatements",
        "restatements_monthly",
        "restatements_daily",
    ] {
        let documented: Option<String> =
            sqlx::query_scalar("SELECT obj_description(($1)::regclass, 'pg_class')")
                .bind(view)
                .fetch_one(&pool)
                .await
                .expect("view exists");
        assert!(documented.is_some(), "view {view} has no COMMENT");
    }
}

/// The text of the PostgreSQL migration file `name`.
fn migration(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    std::fs::read_to_string(dir.join(name)).expect("migration file")
}

/// Runs the PostgreSQL migrations up to `last`, stores `before_sql` as that version would,
/// runs each of `reads` (it must give its number of rows), applies `migration` and checks
/// that every read answers the same: a migration that changes how a figure is kept, not
/// what it is.
async fn pg_migration_keeps(
    last: &str,
    before_sql: &str,
    migration_name: &str,
    reads: &[(&str, usize)],
) {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, last).await;
    sqlx::raw_sql(before_sql)
        .execute(&pool)
        .await
        .expect("rows of the version before");
    let mut before = Vec::new();
    for (read, rows) in reads {
        let answer: Vec<String> = sqlx::query_scalar(read).fetch_all(&pool).await.expect(read);
        assert_eq!(answer.len(), *rows, "{read}: {answer:?}");
        before.push(answer);
    }
    sqlx::raw_sql(&migration(migration_name))
        .execute(&pool)
        .await
        .expect(migration_name);
    for ((read, _), before) in reads.iter().zip(before) {
        let after: Vec<String> = sqlx::query_scalar(read).fetch_all(&pool).await.expect(read);
        assert_eq!(after, before, "{read}");
    }
}

/// The same on a SQLite file, with the SQLite migration files.
async fn sqlite_migration_keeps(
    last: &str,
    before_sql: &str,
    migration_name: &str,
    read: &str,
    rows: usize,
) {
    use sqlx::sqlite::SqliteConnectOptions;
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("before.db"))
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("sqlite");
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut names: Vec<String> = std::fs::read_dir(&migrations)
        .expect("sqlite migrations")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    let text = |name: &str| std::fs::read_to_string(migrations.join(name)).expect(name);
    for name in names.iter().filter(|n| n.as_str() <= last) {
        sqlx::raw_sql(&text(name)).execute(&pool).await.expect(name);
    }
    sqlx::raw_sql(before_sql)
        .execute(&pool)
        .await
        .expect("rows of the version before");
    let before: Vec<String> = sqlx::query_scalar(read).fetch_all(&pool).await.expect(read);
    assert_eq!(before.len(), rows, "{before:?}");
    sqlx::raw_sql(&text(migration_name))
        .execute(&pool)
        .await
        .expect(migration_name);
    let after: Vec<String> = sqlx::query_scalar(read).fetch_all(&pool).await.expect(read);
    assert_eq!(after, before);
}

/// Runs the PostgreSQL migration files in order up to and including `last`: the schema of
/// the version that stopped there.
async fn migrate_through(pool: &sqlx::PgPool, last: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("migrations directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    for name in names.iter().filter(|n| n.as_str() <= last) {
        sqlx::raw_sql(&migration(name))
            .execute(pool)
            .await
            .expect(name);
    }
}

/// A database that ran a version before contract v2 gets the new order and claim columns
/// filled from what it already stored, in the shop's zone.
#[tokio::test]
async fn the_contract_v2_migration_backfills_orders_and_claims_from_stored_state() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0005_c_collation.sql").await;
    sqlx::raw_sql(
        r#"INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
             VALUES ('Europe/Moscow', '30m', '24h', '14d');
           INSERT INTO orders (order_id, verdict, shipped_at, state) VALUES ('A', 'open',
             '2026-10-31T22:30:00Z', '{"order_id":"A","created":{"at":"2026-10-31T20:00:00Z",
             "key":{"source":"s","id":"1"},"data":{"order_id":"A","customer_id":"C","items":[],
             "total":"12.50","sales_channel":"web"}}}');
           INSERT INTO claims (claim_id, order_id, resolved_at) VALUES ('K', 'A', '2026-10-31T21:30:00Z');"#,
    )
    .execute(&pool)
    .await
    .expect("rows of the version before v2");
    sqlx::raw_sql(&migration("0006_contract_v2.sql"))
        .execute(&pool)
        .await
        .expect("0006");
    let order: (Option<String>, Option<String>, Option<chrono::NaiveDate>) =
        sqlx::query_as("SELECT sales_channel, total::text, shipped_day FROM orders")
            .fetch_one(&pool)
            .await
            .expect("orders");
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    // 22:30 UTC on 31 Oct is 01:30 on 1 Nov in Moscow.
    assert_eq!(
        order,
        (Some("web".into()), Some("12.50".into()), day("2026-11-01"))
    );
    let resolved: Option<chrono::NaiveDate> = sqlx::query_scalar("SELECT resolved_day FROM claims")
        .fetch_one(&pool)
        .await
        .expect("claims");
    assert_eq!(resolved, day("2026-11-01"));
}

/// A database that ran a version before the maintained distributions gets them filled from
/// the orders it already stored, so the percentile views answer as before the upgrade.
#[tokio::test]
async fn the_distributions_migration_fills_them_from_the_stored_orders() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0007_duplicate_events.sql").await;
    sqlx::raw_sql(
        r#"INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
             VALUES ('Europe/Moscow', '30m', '24h', '14d');
           INSERT INTO orders (order_id, verdict, state, created_at, created_day, shipped_at,
                               shipped_day, confirmation_seconds) VALUES
             ('A', 'open', '{}', '2026-10-31T20:00:00Z', '2026-10-31', '2026-10-31T20:30:00Z',
              '2026-10-31', 2400.5),
             ('B', 'open', '{}', '2026-10-31T20:00:00Z', '2026-10-31', '2026-10-31T21:00:00Z',
              '2026-10-31', 60),
             ('C', 'open', '{}', '2026-10-31T20:00:00Z', '2026-10-31', NULL, NULL, 120.25);"#,
    )
    .execute(&pool)
    .await
    .expect("orders of the version before");
    sqlx::raw_sql(&migration("0008_maintained_distributions.sql"))
        .execute(&pool)
        .await
        .expect("0008");
    let dispatch: Vec<(chrono::NaiveDate, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT month, shipped, dispatch_p50_seconds, dispatch_p95_seconds
         FROM order_dispatch_monthly",
    )
    .fetch_all(&pool)
    .await
    .expect("order_dispatch_monthly");
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("literal");
    assert_eq!(
        dispatch,
        vec![(day("2026-10-01"), 2, Some(1800), Some(3600))]
    );
    type LatencyDay = (chrono::NaiveDate, i64, Option<f64>, Option<f64>, i64);
    let latency: Vec<LatencyDay> = sqlx::query_as(
        "SELECT day, confirmed, p50_seconds, max_seconds, over_sla FROM confirmation_latency_daily",
    )
    .fetch_all(&pool)
    .await
    .expect("confirmation_latency_daily");
    assert_eq!(
        latency,
        vec![(day("2026-10-31"), 3, Some(120.25), Some(2400.5), 1)]
    );
}

/// A database that ran a version before the sharded daily counts keeps its days: the view
/// `daily_kpi` (and `po_daily` over it) answers as the table did.
#[tokio::test]
async fn the_sharded_daily_counts_migration_keeps_the_stored_days() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0008_maintained_distributions.sql").await;
    sqlx::raw_sql(
        "INSERT INTO daily_kpi (day, fulfilled, perfect, cancelled) VALUES ('2026-09-11', 3, 2, 1);",
    )
    .execute(&pool)
    .await
    .expect("a day of the version before");
    sqlx::raw_sql(&migration("0009_sharded_daily_kpi.sql"))
        .execute(&pool)
        .await
        .expect("0009");
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("literal");
    let daily: Vec<(chrono::NaiveDate, i64, i64, i64)> =
        sqlx::query_as("SELECT day, fulfilled, perfect, cancelled FROM po_daily")
            .fetch_all(&pool)
            .await
            .expect("po_daily");
    assert_eq!(daily, vec![(day("2026-09-11"), 3, 2, 1)]);
    let shards: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_kpi_shards")
        .fetch_one(&pool)
        .await
        .expect("daily_kpi_shards");
    assert_eq!(shards, 1);
}

/// A database that ran a version before the maintained customer figures gets them filled
/// from the orders it already stored: the repeat-customer, acquisition and lead-base views
/// answer after the upgrade exactly what their versions over all orders answered before.
#[tokio::test]
async fn the_customer_figures_migration_keeps_every_customer_view_answer() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0010_jit_off.sql").await;
    sqlx::raw_sql(
        r#"INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
             VALUES ('Europe/Moscow', '30m', '24h', '14d');
           INSERT INTO orders (order_id, customer_id, verdict, state, created_at, created_day,
                               sales_channel, total, delivered_day) VALUES
             ('A', 'C1', 'perfect', '{}', '2026-09-30T21:30:00Z', '2026-10-01', 'web', 10, '2026-10-02'),
             ('B', 'C1', 'open', '{}', '2026-11-02T10:00:00Z', '2026-11-02', 'app', 20, NULL),
             ('C', 'C2', 'open', '{}', '2026-11-02T10:00:00Z', '2026-11-02', NULL, 30, NULL),
             ('D', 'C2', 'cancelled', '{}', '2026-11-02T10:00:00Z', '2026-11-02', 'web', 40, NULL),
             ('E', 'C3', 'open', '{}', '2026-10-20T10:00:00Z', '2026-10-20', 'app', 50, NULL),
             ('F', 'C3', 'open', '{}', '2026-10-21T10:00:00Z', '2026-10-21', 'app', 60, NULL);
           INSERT INTO spends (spend_id, amount, currency, from_day, to_day, channel, time,
                               event_source, event_id)
             VALUES ('S', 300, 'RUB', '2026-10-01', '2026-11-30', 'web', '2026-10-01T00:00:00Z',
                     's', 'S');
           INSERT INTO leads (lead_id, customer_id, captured_at, captured_month, temperature,
                              temperature_at, temperature_source, temperature_id)
             VALUES ('L', 'C2', '2026-10-15T00:00:00Z', '2026-10-01', 'hot',
                     '2026-11-15T00:00:00Z', 's', 'L2');
           INSERT INTO lead_events (source, id, lead_id, kind, temperature, time, month)
             VALUES ('s', 'L', 'L', 'captured', 'warm', '2026-10-15T00:00:00Z', '2026-10-01'),
                    ('s', 'L2', 'L', 'changed', 'hot', '2026-11-15T00:00:00Z', '2026-11-01');"#,
    )
    .execute(&pool)
    .await
    .expect("orders, a spend and a lead of the version before");
    let views = [
        "SELECT to_jsonb(v)::text FROM repeat_customers_monthly v ORDER BY month",
        "SELECT to_jsonb(v)::text FROM acquisition_monthly v ORDER BY month, channel",
        "SELECT to_jsonb(v)::text FROM lead_base_monthly v ORDER BY month",
    ];
    let mut before = Vec::new();
    for sql in views {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.expect(sql);
        assert!(!rows.is_empty(), "{sql} answers something");
        before.push(rows);
    }
    sqlx::raw_sql(&migration("0011_maintained_customers.sql"))
        .execute(&pool)
        .await
        .expect("0011");
    for (sql, before) in views.iter().zip(before) {
        let after: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.expect(sql);
        assert_eq!(after, before, "{sql}");
    }
}

/// The rolling-customer and sales migrations fill their tables from the orders already
/// stored: the 30-day repeat-customer figures summed over `customer_order_gaps` equal the
/// count over the orders of the window, whatever day the window ends on, and
/// `acquisition_monthly` answers what its version over all orders answered.
#[tokio::test]
async fn the_rolling_customer_and_sales_migrations_keep_every_answer() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0012_order_state_as_text.sql").await;
    sqlx::raw_sql(
        r#"INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
             VALUES ('Europe/Moscow', '30m', '24h', '14d');
           INSERT INTO orders (order_id, customer_id, verdict, state, created_at, created_day,
                               sales_channel, total, delivered_day) VALUES
             ('A', 'C1', 'perfect', '{}', '2026-09-30T21:30:00Z', '2026-10-01', 'web', 10.50, '2026-10-02'),
             ('B', 'C1', 'imperfect', '{}', '2026-11-02T10:00:00Z', '2026-11-02', 'app', 20, '2026-11-04'),
             ('C', 'C2', 'perfect', '{}', '2026-11-02T10:00:00Z', '2026-11-02', NULL, 30.25, '2026-11-05'),
             ('D', 'C2', 'cancelled', '{}', '2026-11-02T11:00:00Z', '2026-11-02', 'web', 40, NULL),
             ('E', 'C3', 'open', '{}', '2026-10-20T10:00:00Z', '2026-10-20', 'app', 50, NULL),
             ('F', 'C3', 'perfect', '{}', '2026-10-21T10:00:00Z', '2026-10-21', 'app', 60, '2026-11-01'),
             ('G', 'C3', 'perfect', '{}', '2026-11-21T10:00:00Z', '2026-11-21', 'web', NULL, '2026-11-22');
           INSERT INTO spends (spend_id, amount, currency, from_day, to_day, channel, time,
                               event_source, event_id)
             VALUES ('S', 300, 'RUB', '2026-10-01', '2026-11-30', 'web', '2026-10-01T00:00:00Z',
                     's', 'S'),
                    ('T', 100, 'RUB', '2026-11-01', '2026-11-30', 'app', '2026-10-01T00:00:00Z',
                     's', 'T');"#,
    )
    .execute(&pool)
    .await
    .expect("orders and spends of the version before");
    let acquisition = "SELECT to_jsonb(v)::text FROM acquisition_monthly v ORDER BY month, channel";
    let before: Vec<String> = sqlx::query_scalar(acquisition)
        .fetch_all(&pool)
        .await
        .expect(acquisition);
    assert!(before.len() >= 4, "{before:?}");
    let over_orders = "WITH w AS (
             SELECT DISTINCT customer_id FROM orders
             WHERE customer_id IS NOT NULL AND created_day > $1::date - 30 AND created_day <= $1)
         SELECT count(*), count(*) FILTER (WHERE EXISTS (
             SELECT 1 FROM orders o WHERE o.customer_id = w.customer_id AND o.created_day <= $1::date - 30))
         FROM w";
    let days: Vec<chrono::NaiveDate> = [
        "2026-10-01",
        "2026-10-25",
        "2026-11-02",
        "2026-11-25",
        "2026-12-20",
    ]
    .iter()
    .map(|d| d.parse().expect("day"))
    .collect();
    let mut windows = Vec::new();
    for day in &days {
        let counts: (i64, i64) = sqlx::query_as(over_orders)
            .bind(day)
            .fetch_one(&pool)
            .await
            .expect("the window over orders");
        windows.push(counts);
    }
    assert!(
        windows.iter().any(|(_, returning)| *returning > 0),
        "{windows:?}"
    );
    for file in ["0013_rolling_customers.sql", "0014_maintained_sales.sql"] {
        sqlx::raw_sql(&migration(file))
            .execute(&pool)
            .await
            .expect(file);
    }
    let after: Vec<String> = sqlx::query_scalar(acquisition)
        .fetch_all(&pool)
        .await
        .expect(acquisition);
    assert_eq!(after, before);
    let over_gaps = "SELECT CAST(COALESCE(sum(customers), 0) AS bigint),
                CAST(COALESCE(sum(CASE WHEN previous_day < day THEN customers ELSE 0 END), 0) AS bigint)
         FROM customer_order_gaps
         WHERE day > $1::date - 30 AND day <= $1 AND (previous_day = day OR previous_day <= $1::date - 30)";
    for (day, expected) in days.iter().zip(windows) {
        let counts: (i64, i64) = sqlx::query_as(over_gaps)
            .bind(day)
            .fetch_one(&pool)
            .await
            .expect("the window over the gaps");
        assert_eq!(counts, expected, "window ending {day}");
    }
}

/// Migration 0015 fills the maintained claims journal from the stored claims and stages:
/// every month of `claims_journal_monthly` reads as it did over the claims themselves (open
/// claims carried over months no claim event reached, stages before the filing month, a
/// claim resolved in its filing month, one resolved before it was filed, one never filed),
/// and so it does after 0019 reads the times to resolve by bucket.
#[tokio::test]
async fn the_claims_journal_migration_keeps_every_month_of_the_journal() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0014_maintained_sales.sql").await;
    sqlx::raw_sql(
        r#"INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
             VALUES ('Europe/Moscow', '30m', '24h', '14d');
           INSERT INTO claims (claim_id, order_id, category, filed_at, filed_day, resolved_at,
                               resolved_day, counts_for_verdict) VALUES
             ('K1', 'A', 'delivery', '2026-01-20T10:00:00Z', '2026-01-20', '2026-05-02T10:00:00Z', '2026-05-02', true),
             ('K2', 'B', 'delivery', '2026-02-03T10:00:00Z', '2026-02-03', NULL, NULL, true),
             ('K3', 'C', 'quality', '2026-02-10T10:00:00Z', '2026-02-10', '2026-02-11T10:00:30Z', '2026-02-11', false),
             ('K4', 'D', 'quality', '2026-03-31T20:59:59Z', '2026-03-31', '2026-03-30T10:00:00Z', '2026-03-30', false),
             ('K5', 'E', NULL, NULL, NULL, '2026-03-01T10:00:00Z', '2026-03-01', false),
             ('K6', 'F', 'service', '2026-01-31T21:30:00Z', '2026-02-01', '2026-04-01T00:00:00Z', '2026-04-01', true),
             ('K7', 'G', 'quality', '2026-02-01T10:00:00Z', '2026-02-01', '2026-02-01T10:59:59Z', '2026-02-01', false),
             ('K8', 'H', 'quality', '2026-02-01T10:00:00Z', '2026-02-01', '2026-02-02T10:00:00Z', '2026-02-02', false);
           INSERT INTO claim_stages (source, id, claim_id, order_id, stage, time, month) VALUES
             ('s', '1', 'K1', 'A', 'investigating', '2026-02-10T00:00:00Z', '2026-02-01'),
             ('s', '2', 'K1', 'A', 'registered', '2026-02-01T00:00:00Z', '2026-02-01'),
             ('s', '3', 'K1', 'A', 'action_taken', '2026-04-05T00:00:00Z', '2026-04-01'),
             ('s', '4', 'K2', 'B', 'investigating', '2026-01-05T00:00:00Z', '2026-01-01'),
             ('s', '5', 'K2', 'B', 'action_taken', '2026-03-01T00:00:00Z', '2026-03-01'),
             ('t', '5', 'K2', 'B', 'investigating', '2026-03-01T00:00:00Z', '2026-03-01'),
             ('s', '6', 'K6', 'F', 'action_taken', '2026-03-10T00:00:00Z', '2026-03-01'),
             ('s', '7', 'K6', 'F', 'action_taken', '2026-03-20T00:00:00Z', '2026-03-01');"#,
    )
    .execute(&pool)
    .await
    .expect("claims and stages of the version before");
    let journal = "SELECT to_jsonb(v)::text FROM claims_journal_monthly v ORDER BY month, category";
    let before: Vec<String> = sqlx::query_scalar(journal)
        .fetch_all(&pool)
        .await
        .expect(journal);
    assert!(before.len() >= 10, "{before:?}");
    sqlx::raw_sql(&migration("0015_maintained_claims_journal.sql"))
        .execute(&pool)
        .await
        .expect("0015");
    let after: Vec<String> = sqlx::query_scalar(journal)
        .fetch_all(&pool)
        .await
        .expect(journal);
    assert_eq!(after, before);
    // 0019 reads the times to resolve by bucket (K3, K7 and K8 resolved in February: two of
    // them in one bucket, p50 and p95 within it).
    for name in [
        "0016_lead_base_by_changes.sql",
        "0017_maintained_contest.sql",
        "0018_maintained_review_response.sql",
        "0019_bucketed_resolve_times.sql",
    ] {
        sqlx::raw_sql(&migration(name))
            .execute(&pool)
            .await
            .expect(name);
    }
    let bucketed: Vec<String> = sqlx::query_scalar(journal)
        .fetch_all(&pool)
        .await
        .expect(journal);
    assert_eq!(bucketed, before);
}

/// Migration 0016 reads the lead base once per lead instead of once per lead and month:
/// every month reads as before (temperatures changed back and forth, an event before the
/// capture, a month no lead event reached, conversions before and after the capture, a
/// lead not captured yet).
#[tokio::test]
async fn the_lead_base_migration_keeps_every_month_of_the_lead_base() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0015_maintained_claims_journal.sql").await;
    let lead = |id: &str, customer: &str, at: &str, month: &str, t: &str| {
        format!("('{id}', {customer}, '{at}', '{month}', 's', '{id}', '{t}', '{at}', 's', '{id}')")
    };
    let leads = [
        lead("L1", "'C1'", "2026-01-10T10:00:00Z", "2026-01-01", "cold"),
        lead("L2", "'C2'", "2026-01-20T10:00:00Z", "2026-01-01", "warm"),
        lead("L3", "NULL", "2026-03-05T10:00:00Z", "2026-03-01", "hot"),
        lead("L4", "'C4'", "2026-02-01T10:00:00Z", "2026-02-01", "cold"),
    ]
    .join(", ");
    let events = [
        (
            "s",
            "L1",
            "L1",
            "captured",
            "cold",
            "2026-01-10T10:00:00Z",
            "2026-01-01",
        ),
        (
            "s",
            "e1",
            "L1",
            "changed",
            "hot",
            "2026-02-10T10:00:00Z",
            "2026-02-01",
        ),
        (
            "s",
            "e2",
            "L1",
            "changed",
            "cold",
            "2026-02-20T10:00:00Z",
            "2026-02-01",
        ),
        (
            "s",
            "e3",
            "L1",
            "changed",
            "warm",
            "2026-04-02T10:00:00Z",
            "2026-04-01",
        ),
        (
            "s",
            "L2",
            "L2",
            "captured",
            "warm",
            "2026-01-20T10:00:00Z",
            "2026-01-01",
        ),
        (
            "t",
            "e4",
            "L2",
            "changed",
            "hot",
            "2026-01-20T10:00:00Z",
            "2026-01-01",
        ),
        (
            "s",
            "e5",
            "L3",
            "changed",
            "warm",
            "2026-02-05T10:00:00Z",
            "2026-02-01",
        ),
        (
            "s",
            "L3",
            "L3",
            "captured",
            "hot",
            "2026-03-05T10:00:00Z",
            "2026-03-01",
        ),
        (
            "s",
            "L4",
            "L4",
            "captured",
            "cold",
            "2026-02-01T10:00:00Z",
            "2026-02-01",
        ),
        (
            "s",
            "e6",
            "L5",
            "changed",
            "hot",
            "2026-02-01T10:00:00Z",
            "2026-02-01",
        ),
    ]
    .iter()
    .map(|(source, id, lead, kind, t, at, month)| {
        format!("('{source}', '{id}', '{lead}', '{kind}', '{t}', '{at}', '{month}')")
    })
    .collect::<Vec<_>>()
    .join(", ");
    sqlx::raw_sql(&format!(
        r#"INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
             VALUES ('Europe/Moscow', '30m', '24h', '14d');
           INSERT INTO leads (lead_id, customer_id, captured_at, captured_month, captured_source,
                              captured_id, temperature, temperature_at, temperature_source,
                              temperature_id) VALUES {leads};
           INSERT INTO leads (lead_id, temperature, temperature_at, temperature_source,
                              temperature_id)
             VALUES ('L5', 'hot', '2026-02-01T10:00:00Z', 's', 'e6');
           INSERT INTO lead_events (source, id, lead_id, kind, temperature, time, month)
             VALUES {events};
           INSERT INTO customers (customer_id, first_at, first_order_id, first_month) VALUES
             ('C1', '2026-03-02T10:00:00Z', 'A1', '2026-03-01'),
             ('C2', '2026-01-01T10:00:00Z', 'A2', '2026-01-01'),
             ('C4', '2026-02-01T10:00:00Z', 'A4', '2026-02-01');"#
    ))
    .execute(&pool)
    .await
    .expect("leads of the version before");
    let base = "SELECT to_jsonb(v)::text FROM lead_base_monthly v ORDER BY month";
    let before: Vec<String> = sqlx::query_scalar(base).fetch_all(&pool).await.expect(base);
    assert_eq!(before.len(), 4, "{before:?}");
    sqlx::raw_sql(&migration("0016_lead_base_by_changes.sql"))
        .execute(&pool)
        .await
        .expect("0016");
    let after: Vec<String> = sqlx::query_scalar(base).fetch_all(&pool).await.expect(base);
    assert_eq!(after, before);
}

/// Migration 0017 fills the contest's tallies from the stored smileys: the couriers' and
/// the teams' months read as before (a re-rostering mid-month, ties in rostering time, a
/// courier never rostered, a review below the smiley rating, a team with no smileys).
#[tokio::test]
async fn the_contest_migration_keeps_every_month_of_the_contest() {
    pg_migration_keeps(
        "0016_lead_base_by_changes.sql",
        r#"INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
             VALUES ('Europe/Moscow', '30m', '24h', '14d');
           INSERT INTO courier_rosters (source, id, courier_id, team_id, captain, time, month) VALUES
             ('s', 'r1', 'D1', 'T1', false, '2026-09-20T00:00:00Z', '2026-09-01'),
             ('s', 'r2', 'D1', 'T2', false, '2026-10-10T00:00:00Z', '2026-10-01'),
             ('t', 'r2', 'D1', 'T3', false, '2026-10-10T00:00:00Z', '2026-10-01'),
             ('s', 'r3', 'D2', 'T2', false, '2026-09-20T00:00:00Z', '2026-09-01'),
             ('s', 'r4', 'D4', 'T4', false, '2026-09-20T00:00:00Z', '2026-09-01');
           INSERT INTO reviews (review_id, rating, courier_id, posted_at, posted_month,
                                posted_source, posted_id) VALUES
             ('R1', 5, 'D1', '2026-10-03T12:00:00Z', '2026-10-01', 's', 'R1'),
             ('R2', 4, 'D1', '2026-10-12T12:00:00Z', '2026-10-01', 's', 'R2'),
             ('R3', 3, 'D1', '2026-10-13T12:00:00Z', '2026-10-01', 's', 'R3'),
             ('R4', 5, 'D2', '2026-11-02T12:00:00Z', '2026-11-01', 's', 'R4'),
             ('R5', 5, 'D3', '2026-11-03T12:00:00Z', '2026-11-01', 's', 'R5'),
             ('R6', 5, NULL, '2026-11-03T12:00:00Z', '2026-11-01', 's', 'R6');
           INSERT INTO courier_violations (source, id, courier_id, kind, time, month) VALUES
             ('s', 'v1', 'D1', 'rude', '2026-10-14T12:00:00Z', '2026-10-01'),
             ('s', 'v2', 'D3', 'rude', '2026-11-14T12:00:00Z', '2026-11-01');"#,
        "0017_maintained_contest.sql",
        &[
            (
                "SELECT to_jsonb(v)::text FROM team_ranking_monthly v ORDER BY month, team_id",
                7,
            ),
            (
                "SELECT to_jsonb(v)::text FROM courier_smileys_monthly v ORDER BY month, courier_id",
                3,
            ),
        ],
    )
    .await;
}

/// Reviews of the version before 0018 (SQLite 0014): answered at exactly the SLA, a
/// millisecond past it, before their posting, never; negative and not; in two months; and
/// one never posted (answered only).
const REVIEWS_BEFORE_0018: &str = r#"INSERT INTO reviews (review_id, rating, posted_at, posted_month,
                            posted_source, posted_id, answered_at, updated_at) VALUES
  ('R1', 5, '2026-10-03T12:00:00.000000Z', '2026-10-01', 's', 'R1', '2026-10-04T12:00:00.000000Z', '2026-12-01T00:00:00Z'),
  ('R2', 1, '2026-10-03T12:00:00.000000Z', '2026-10-01', 's', 'R2', '2026-10-04T12:00:00.001000Z', '2026-12-01T00:00:00Z'),
  ('R3', 2, '2026-10-05T12:00:00.250000Z', '2026-10-01', 's', 'R3', NULL, '2026-12-01T00:00:00Z'),
  ('R4', 4, '2026-10-05T12:00:00.750000Z', '2026-10-01', 's', 'R4', '2026-10-05T12:00:00.250000Z', '2026-12-01T00:00:00Z'),
  ('R5', 2, '2026-11-02T12:00:00.000000Z', '2026-11-01', 's', 'R5', '2026-11-02T12:01:30.000000Z', '2026-12-01T00:00:00Z'),
  ('R6', 3, '2026-11-02T12:00:00.000000Z', '2026-11-01', 's', 'R6', '2026-11-03T12:00:00.000000Z', '2026-12-01T00:00:00Z'),
  ('R7', 2, NULL, NULL, NULL, NULL, '2026-11-02T12:00:00.000000Z', '2026-12-01T00:00:00Z');"#;

/// Migration 0018 fills the review response figures from the stored reviews: every month
/// reads as before.
#[tokio::test]
async fn the_review_response_migration_keeps_every_month_of_review_response() {
    pg_migration_keeps(
        "0017_maintained_contest.sql",
        &format!(
            "INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
               VALUES ('Europe/Moscow', '30m', '24h', '14d');
             {REVIEWS_BEFORE_0018}"
        ),
        "0018_maintained_review_response.sql",
        &[(
            "SELECT to_jsonb(v)::text FROM review_response_monthly v ORDER BY month",
            2,
        )],
    )
    .await;
}

/// The same on SQLite (its migration 0014 reads the fixed-width text times).
#[tokio::test]
async fn the_sqlite_review_response_migration_keeps_every_month_of_review_response() {
    sqlite_migration_keeps(
        "0013_maintained_contest.sql",
        &format!(
            "INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window,
                                           updated_at)
               VALUES ('Europe/Moscow', 1800, 86400, 1209600, '2026-12-01T00:00:00.000000Z');
             {REVIEWS_BEFORE_0018}"
        ),
        "0014_maintained_review_response.sql",
        "SELECT json_array(month, reviews, answered, answered_within_sla, within_sla_share,
                           answer_p50_seconds, answer_p95_seconds, negative, unanswered_negative)
         FROM review_response_monthly ORDER BY month",
        2,
    )
    .await;
}

/// Migration 0020 fills the console's confirmation histogram from the stored latencies: per
/// day, the buckets read as the latencies did (at a bound, just below it, negative, an hour
/// or more, one retracted in another shard).
#[tokio::test]
async fn the_confirmation_bucket_migration_keeps_the_histogram() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0019_bucketed_resolve_times.sql").await;
    sqlx::raw_sql(
        "INSERT INTO confirmation_ms (day, ms, shard, orders) VALUES
           ('2026-11-01', 299999, 0, 1), ('2026-11-01', 300000, 0, 2), ('2026-11-01', -40, 0, 1),
           ('2026-11-01', 3600000, 1, 1), ('2026-11-01', 2700000, 0, 1),
           ('2026-11-01', 2700000, 3, -1), ('2026-11-02', 1200000, 2, 4);",
    )
    .execute(&pool)
    .await
    .expect("latencies of the version before");
    let before: Vec<(chrono::NaiveDate, i32, i64)> = sqlx::query_as(
        "SELECT day, width_bucket((ms / 60000.0)::float8,
                                  array[5, 10, 15, 20, 25, 30, 45, 60]::float8[]),
                sum(orders)::bigint
         FROM confirmation_ms GROUP BY 1, 2 HAVING sum(orders) <> 0 ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("buckets from the latencies");
    assert_eq!(before.len(), 4, "{before:?}");
    sqlx::raw_sql(&migration("0020_confirmation_buckets.sql"))
        .execute(&pool)
        .await
        .expect("0020");
    let after: Vec<(chrono::NaiveDate, i32, i64)> = sqlx::query_as(
        "SELECT day, bucket, sum(orders)::bigint FROM confirmation_minute_buckets
         GROUP BY 1, 2 HAVING sum(orders) <> 0 ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .expect("confirmation_minute_buckets");
    assert_eq!(after, before);
}

/// Migration 0021 fills the buckets of order to dispatch and of the confirmation latencies
/// from the stored distributions, and claims_monthly reads the claims journal: each of the
/// three views reads as before (values at bucket edges, several in one bucket, negative, a
/// value retracted in another shard, latencies at, just under and just over the SLA).
#[tokio::test]
async fn the_bucketed_latency_migration_keeps_dispatch_latencies_and_claims_per_category() {
    let mut latencies = String::new();
    for (i, ms) in [
        59_999, 60_000, 60_001, 1_799_999, 1_800_000, 1_800_001, 1_800_001, 10_800_500, -40,
    ]
    .iter()
    .enumerate()
    {
        latencies.push_str(&format!("('2026-11-01', {ms}, {}, 1), ", i % 3));
    }
    for i in 0..30 {
        latencies.push_str(&format!("('2026-11-02', {}, 0, 1), ", 180_000 + i * 7_001));
    }
    let before_sql = format!(
        "INSERT INTO service_settings (timezone, confirmation_sla, pending_horizon, claim_window)
           VALUES ('Europe/Moscow', '30m', '24h', '14d');
         INSERT INTO confirmation_ms (day, ms, shard, orders) VALUES {latencies}
           ('2026-11-01', 2700000, 0, 1), ('2026-11-01', 2700000, 3, -1);
         INSERT INTO dispatch_seconds (month, seconds, shard, orders) VALUES
           ('2026-10-01', 599, 0, 1), ('2026-10-01', 600, 1, 2), ('2026-10-01', 601, 0, 1),
           ('2026-10-01', 7200, 0, 3), ('2026-10-01', 86400, 2, 1), ('2026-10-01', 86400, 0, -1),
           ('2026-11-01', 3600, 0, 1);
         INSERT INTO claims (claim_id, order_id, category, filed_at, filed_day) VALUES
           ('K-1', 'A-1', 'delivery', '2026-09-30T20:00:00Z', '2026-09-30'),
           ('K-2', 'A-2', 'delivery', '2026-10-01T09:00:00Z', '2026-10-01'),
           ('K-3', 'A-3', 'delivery', '2026-10-02T09:00:00Z', '2026-10-02'),
           ('K-4', 'A-4', 'quality', '2026-10-02T09:00:00Z', '2026-10-02'),
           ('K-5', 'A-5', 'quality', '2026-12-02T09:00:00Z', '2026-12-02');
         INSERT INTO claims_journal_shards (month, category, shard, filed) VALUES
           ('2026-09-01', 'delivery', 0, 1), ('2026-10-01', 'delivery', 0, 1),
           ('2026-10-01', 'delivery', 1, 1), ('2026-10-01', 'quality', 0, 2),
           ('2026-10-01', 'quality', 1, -1), ('2026-12-01', 'quality', 2, 1),
           ('2026-11-01', 'quality', 0, 0);"
    );
    pg_migration_keeps(
        "0020_confirmation_buckets.sql",
        &before_sql,
        "0021_bucketed_latencies.sql",
        &[
            (
                "SELECT to_jsonb(v)::text FROM confirmation_latency_daily v ORDER BY day",
                2,
            ),
            (
                "SELECT to_jsonb(v)::text FROM order_dispatch_monthly v ORDER BY month",
                2,
            ),
            (
                "SELECT to_jsonb(v)::text FROM claims_monthly v ORDER BY month, category",
                4,
            ),
        ],
    )
    .await;
}

/// Leads, their events and their customers' first orders as a version before 0022 (PostgreSQL)
/// and 0018 (SQLite) stored them: a change before the capture, a change at a month's first
/// instant, a lead with no customer, a customer who ordered before the capture, a lead never
/// captured whose event extends the months.
const LEADS_BEFORE_0022: &str = r#"
INSERT INTO leads (lead_id, source, customer_id, captured_at, captured_month, captured_source,
                   captured_id, temperature, temperature_at, temperature_source, temperature_id,
                   updated_at) VALUES
  ('L1', 'web', 'C1', '2026-10-02T07:00:00.000000Z', '2026-10-01', 's', 'L1c', 'warm', '2026-10-31T21:00:00.000000Z', 's', 'L1w', '2026-12-01T00:00:00.000000Z'),
  ('L2', 'web', NULL, '2026-10-05T07:00:00.000000Z', '2026-10-01', 's', 'L2c', 'warm', '2026-10-05T07:00:00.000000Z', 's', 'L2c', '2026-12-01T00:00:00.000000Z'),
  ('L3', 'web', 'C3', '2026-11-10T07:00:00.000000Z', '2026-11-01', 's', 'L3c', 'cold', '2026-11-10T07:00:00.000000Z', 's', 'L3c', '2026-12-01T00:00:00.000000Z'),
  ('L4', NULL, NULL, NULL, NULL, NULL, NULL, 'hot', '2026-12-03T07:00:00.000000Z', 's', 'L4x', '2026-12-01T00:00:00.000000Z');
INSERT INTO lead_events (source, id, lead_id, kind, temperature, time, month) VALUES
  ('s', 'L1x', 'L1', 'changed', 'hot', '2026-09-15T07:00:00.000000Z', '2026-09-01'),
  ('s', 'L1c', 'L1', 'captured', 'cold', '2026-10-02T07:00:00.000000Z', '2026-10-01'),
  ('s', 'L1h', 'L1', 'changed', 'hot', '2026-10-20T07:00:00.000000Z', '2026-10-01'),
  ('s', 'L1w', 'L1', 'changed', 'warm', '2026-10-31T21:00:00.000000Z', '2026-11-01'),
  ('s', 'L2c', 'L2', 'captured', 'warm', '2026-10-05T07:00:00.000000Z', '2026-10-01'),
  ('s', 'L3c', 'L3', 'captured', 'cold', '2026-11-10T07:00:00.000000Z', '2026-11-01'),
  ('s', 'L4x', 'L4', 'changed', 'hot', '2026-12-03T07:00:00.000000Z', '2026-12-01');
INSERT INTO customers (customer_id, first_at, first_order_id, first_month, first_channel) VALUES
  ('C1', '2026-11-02T07:00:00.000000Z', 'A-1', '2026-11-01', 'web'),
  ('C3', '2026-10-01T07:00:00.000000Z', 'A-3', '2026-10-01', 'web');"#;

/// Migration 0022 fills the lead base's changes from the stored leads: every month reads as
/// before.
#[tokio::test]
async fn the_maintained_lead_base_migration_keeps_every_month_of_the_lead_base() {
    pg_migration_keeps(
        "0021_bucketed_latencies.sql",
        LEADS_BEFORE_0022,
        "0022_maintained_lead_base.sql",
        &[(
            "SELECT to_jsonb(v)::text FROM lead_base_monthly v ORDER BY month",
            3,
        )],
    )
    .await;
}

/// The same on SQLite (its migration 0018).
#[tokio::test]
async fn the_sqlite_maintained_lead_base_migration_keeps_every_month_of_the_lead_base() {
    sqlite_migration_keeps(
        "0017_bucketed_latencies.sql",
        LEADS_BEFORE_0022,
        "0018_maintained_lead_base.sql",
        "SELECT json_array(month, leads, new_leads, cold, warm, hot, warm_hot_share, growth,
                           converted, new_conversions)
         FROM lead_base_monthly ORDER BY month",
        3,
    )
    .await;
}

/// Migration 0023 counts on each customer's row the captured leads that name it (a customer
/// named before their first order gets a row), so an order batch reads leads only for them.
#[tokio::test]
async fn the_customer_leads_migration_counts_the_captured_leads_naming_each_customer() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0022_maintained_lead_base.sql").await;
    sqlx::raw_sql(&format!(
        "{LEADS_BEFORE_0022}
         INSERT INTO leads (lead_id, customer_id, captured_at, captured_month, captured_source,
                            captured_id, temperature, temperature_at, temperature_source,
                            temperature_id)
           VALUES ('L5', 'C1', '2026-10-03T07:00:00Z', '2026-10-01', 's', 'L5c', 'cold',
                   '2026-10-03T07:00:00Z', 's', 'L5c'),
                  ('L6', 'C9', '2026-10-04T07:00:00Z', '2026-10-01', 's', 'L6c', 'cold',
                   '2026-10-04T07:00:00Z', 's', 'L6c'),
                  ('L7', 'C8', NULL, NULL, NULL, NULL, 'hot', '2026-10-04T07:00:00Z', 's', 'L7x');"
    ))
    .execute(&pool)
    .await
    .expect("leads of the version before");
    sqlx::raw_sql(&migration("0023_customer_leads.sql"))
        .execute(&pool)
        .await
        .expect("0023");
    let counts: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT customer_id, leads, first_order_id FROM customers ORDER BY customer_id",
    )
    .fetch_all(&pool)
    .await
    .expect("customers");
    assert_eq!(
        counts,
        vec![
            ("C1".into(), 2, Some("A-1".into())),
            ("C3".into(), 1, Some("A-3".into())),
            ("C9".into(), 1, None),
        ],
        "a lead never captured names nobody"
    );
}

/// The order's state moves from jsonb to the JSON text the service writes: a stored state
/// reads back as the same JSON document, and the column no longer parses what it is given.
#[tokio::test]
async fn the_state_migration_keeps_each_stored_state_as_the_same_json() {
    let db = support::TestDb::create().await;
    let pool = db.pool().await;
    migrate_through(&pool, "0011_maintained_customers.sql").await;
    let state = r#"{"order_id":"A","created":{"at":"2026-10-31T20:00:00Z","key":{"source":"s","id":"1"},"data":{"order_id":"A","customer_id":"C","items":[{"sku":"X","quantity":2}],"total":"12.50"}}}"#;
    sqlx::query("INSERT INTO orders (order_id, verdict, state) VALUES ('A', 'open', $1::jsonb)")
        .bind(state)
        .execute(&pool)
        .await
        .expect("an order of the version before");
    sqlx::raw_sql(&migration("0012_order_state_as_text.sql"))
        .execute(&pool)
        .await
        .expect("0012");
    let (kind, stored): (String, String) =
        sqlx::query_as("SELECT pg_typeof(state)::text, state FROM orders WHERE order_id = 'A'")
            .fetch_one(&pool)
            .await
            .expect("orders");
    assert_eq!(kind, "text");
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("JSON");
    assert_eq!(parse(&stored), parse(state));
}

/// Grafana's panels and psql open plain sessions: after `migrate`, such a session of the
/// database runs without JIT compilation, which cost each monthly view up to a second.
#[tokio::test]
async fn after_migrate_a_plain_session_of_the_database_runs_without_jit() {
    let db = support::TestDb::create().await;
    let out = migrate_with(&[("PERFECT_ORDER__DATABASE__URL", &db.url)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = db.pool().await;
    let jit: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(&pool)
        .await
        .expect("SHOW jit");
    assert_eq!(jit, "off");
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_line() {
    let db = support::TestDb::create().await;
    let out = migrate_with(&[
        ("PERFECT_ORDER__DATABASE__URL", &db.url),
        ("PERFECT_ORDER__LOG__FORMAT", "json"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "migrate logs something");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn a_database_password_never_reaches_the_output() {
    let out = binary()
        .arg("migrate")
        .env(
            "PERFECT_ORDER__DATABASE__URL",
            "postgres://app:supersecret@127.0.0.1:1/po",
        )
        .env("PERFECT_ORDER__LOG__LEVEL", "trace")
        .output()
        .expect("run migrate");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "nothing listens on port 1");
    assert!(
        all.contains("postgres://app:***@127.0.0.1:1/po"),
        "the error names the (redacted) URL: {all}"
    );
    assert!(!all.contains("supersecret"), "{all}");
}

/// Database URLs in every form the driver accepts a password in, and the secret each hides.
fn secret_url_forms(host: &str, db: &str) -> Vec<(String, &'static str)> {
    vec![
        (
            format!("postgres://postgres:s3cret%2Fone@{host}/{db}"),
            "s3cret",
        ),
        (
            format!("postgres://postgres@{host}/{db}?password=qsecret2&sslmode=disable"),
            "qsecret2",
        ),
        (
            format!("postgresql://postgres:un/enc3rd@{host}/{db}"),
            "enc3rd",
        ),
        (format!("postgres://postgres:at@sign4@{host}/{db}"), "sign4"),
        (
            format!("postgres://postgres@{host}/{db}?sslpassword=keypass5"),
            "keypass5",
        ),
    ]
}

#[test]
fn a_database_password_in_any_url_form_never_reaches_text_or_json_logs_on_failure() {
    // Each run waits for the pool's connect timeout: they run side by side.
    let mut runs = Vec::new();
    for format in ["text", "json"] {
        for (url, secret) in secret_url_forms("127.0.0.1:1", "po") {
            let child = binary()
                .arg("migrate")
                .env("PERFECT_ORDER__DATABASE__URL", &url)
                .env("PERFECT_ORDER__LOG__LEVEL", "trace")
                .env("PERFECT_ORDER__LOG__FORMAT", format)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run migrate");
            runs.push((format, url, secret, child));
        }
    }
    for (format, url, secret, child) in runs {
        let out = child.wait_with_output().expect("migrate ran");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "nothing listens on port 1: {url}");
        assert!(!all.contains(secret), "{format} {url}: {all}");
        assert!(
            all.contains("***") || all.contains("invalid"),
            "{format} {url}: {all}"
        );
    }
}

#[tokio::test]
async fn a_database_password_in_any_url_form_never_reaches_the_start_and_migrate_lines() {
    // Trust authentication ignores the password, so the forms the driver parses connect for
    // real and log the start, "created the database" and "migrations applied" lines; the
    // others end in a start-up error, which must not show the secret either.
    let server = support::pg_server();
    let host = server.trim_start_matches("postgres://postgres@").to_owned();
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let mut connected = 0;
    for (i, format) in ["text", "json"].into_iter().enumerate() {
        for (url, secret) in secret_url_forms(&host, "") {
            let name = format!("po_test_{}", uuid::Uuid::new_v4().simple());
            let url = url.replacen(&format!("{host}/"), &format!("{host}/{name}"), 1);
            let _cleanup = support::TestDb {
                name: name.clone(),
                url: format!("{server}/{name}"),
            };
            let log = tempfile::NamedTempFile::new().expect("log file");
            // One open file for both streams (a duplicate shares the write position).
            let out = log.reopen().expect("log file");
            let mut child = binary()
                .arg("run")
                .env("PERFECT_ORDER__DATABASE__URL", &url)
                .env("PERFECT_ORDER__KAFKA__BROKERS", cluster.bootstrap_servers())
                .env("PERFECT_ORDER__KAFKA__TOPICS", "orders")
                .env(
                    "PERFECT_ORDER__KAFKA__GROUP_ID",
                    format!("secrets-{i}-{name}"),
                )
                .env("PERFECT_ORDER__HTTP__LISTEN", "127.0.0.1:0")
                .env("PERFECT_ORDER__LOG__LEVEL", "debug")
                .env("PERFECT_ORDER__LOG__FORMAT", format)
                .stdout(out.try_clone().expect("log file"))
                .stderr(out)
                .spawn()
                .expect("run starts");
            let started = std::time::Instant::now();
            let listening = loop {
                let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                if text.contains("HTTP server listening") {
                    break true;
                }
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break false;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "{format} {url}: neither listening nor stopped: {text}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            };
            let _ = child.kill();
            let _ = child.wait();
            let all = std::fs::read_to_string(log.path()).unwrap_or_default();
            assert!(
                all.contains("starting perfect-order"),
                "{format} {url}: {all}"
            );
            if listening {
                connected += 1;
                assert!(
                    all.contains("created the database"),
                    "{format} {url}: {all}"
                );
                assert!(all.contains("migrations applied"), "{format} {url}: {all}");
            }
            assert!(!all.contains(secret), "{format} {url}: {all}");
        }
    }
    assert!(
        connected >= 4,
        "the start and migrate lines were seen {connected} times"
    );
}

#[tokio::test]
async fn migrate_creates_a_missing_database() {
    let name = format!("po_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", support::pg_server());
    let out = migrate_with(&[("PERFECT_ORDER__DATABASE__URL", &url)]);
    // Dropped at the end of the test, like every test database.
    let _cleanup = support::TestDb {
        name: name.clone(),
        url: url.clone(),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created the database"));
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("the database exists now");
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'daily_kpi_shards'")
            .fetch_one(&pool)
            .await
            .expect("query");
    assert_eq!(tables, 1);
    pool.close().await;
}

#[tokio::test]
async fn report_takes_month_over_month_changes_from_the_claims_view() {
    // Arrange: quality claims in Sep (100), Oct (79), none in Nov, Dec (50).
    let db = support::TestDb::create().await;
    migrated(&db.url);
    let pool = db.pool().await;
    // As the claims journal keeps them: filed per month and category, in writer shards.
    for (month, shard, n) in [
        ("2026-09-01", 0, 60),
        ("2026-09-01", 1, 40),
        ("2026-10-01", 0, 79),
        ("2026-12-01", 2, 50),
    ] {
        sqlx::query(
            "INSERT INTO claims_journal_shards (month, category, shard, filed)
             VALUES ($1::date, 'quality', $2, $3)",
        )
        .bind(month)
        .bind(shard)
        .bind(n)
        .execute(&pool)
        .await
        .expect("insert claims");
    }

    // Act and assert
    report_compares_october_with_september_only(&db.url);
}

/// `report` on claims of 100 in September, 79 in October and 50 in December: October is
/// compared with September; December has no previous month to compare with.
fn report_compares_october_with_september_only(url: &str) {
    let out = binary()
        .arg("report")
        .env("PERFECT_ORDER__DATABASE__URL", url)
        .output()
        .expect("report");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("79 (-21%)"), "{text}");
    assert!(text.contains("50 (—)"), "{text}");
}

#[tokio::test]
async fn migrate_report_and_rebuild_work_on_a_sqlite_file() {
    // Arrange: a SQLite URL in a directory that does not exist yet.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("new").join("po.db");
    let url = format!("sqlite://{}", file.display());
    migrated(&url);
    assert!(file.is_file(), "migrate creates {}", file.display());
    let rebuilt = binary()
        .arg("rebuild")
        .env("PERFECT_ORDER__DATABASE__URL", &url)
        .output()
        .expect("rebuild");
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert!(String::from_utf8_lossy(&rebuilt.stdout).contains("rebuilt 0 orders from 0 events"));
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    // As the claims journal keeps them: filed per month and category, in writer shards.
    for (month, shard, n) in [
        ("2026-09-01", 0, 60),
        ("2026-09-01", 1, 40),
        ("2026-10-01", 0, 79),
        ("2026-12-01", 2, 50),
    ] {
        sqlx::query(
            "INSERT INTO claims_journal_shards (month, category, shard, filed)
             VALUES (?1, 'quality', ?2, ?3)",
        )
        .bind(month)
        .bind(shard)
        .bind(n)
        .execute(&pool)
        .await
        .expect("insert claims");
    }
    pool.close().await;

    // Act and assert: the same month-over-month rule as on PostgreSQL.
    report_compares_october_with_september_only(&url);
}

/// Runs `perfect-order migrate` on `url`; it must succeed.
fn migrated(url: &str) -> std::process::Output {
    let out = migrate_with(&[("PERFECT_ORDER__DATABASE__URL", url)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `perfect-order migrate` with these environment variables.
fn migrate_with(env: &[(&str, &str)]) -> std::process::Output {
    let mut command = binary();
    command.arg("migrate");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run migrate")
}

#[test]
fn a_binary_mode_share_outside_zero_to_one_is_refused_naming_the_flag() {
    let out = binary()
        .args([
            "simulate",
            "--brokers",
            "127.0.0.1:9",
            "--binary-mode",
            "1.5",
        ])
        .output()
        .expect("run simulate");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("--binary-mode") && text.contains("between 0 and 1"),
        "{text}"
    );
}
