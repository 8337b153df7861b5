//! `perfect-order bench`: the end-to-end harness measures every mode on both brokers, in
//! processes of their own, and prints the table, the ratios and the projection cache's memory.

mod support;

use std::process::Command;

/// The events/s median of the table row of `broker` and `mode`.
fn median(table: &str, broker: &str, mode: &str) -> Option<f64> {
    table.lines().find_map(|l| {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        (cells.len() > 5 && cells[1] == broker && cells[3].starts_with(mode))
            .then(|| cells[4].parse().ok())
            .flatten()
    })
}

#[test]
fn bench_measures_every_mode_on_both_brokers_and_prints_the_ratios() {
    let out = Command::new(env!("CARGO_BIN_EXE_perfect-order"))
        .args([
            "bench",
            "--events",
            "6000",
            "--runs",
            "1",
            "--naive-events",
            "300",
        ])
        .args([
            "--broker",
            "mock",
            "--broker",
            "tansu",
            "--cache-orders",
            "2000",
        ])
        .args(["--pg-server", &support::pg_server()])
        .env("PERFECT_ORDER__LOG__LEVEL", "warn")
        .output()
        .expect("run bench");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for broker in ["mock cluster", "tansu"] {
        for mode in ["consume-only", "perfect-order end to end", "naive consumer"] {
            let rate = median(&table, broker, mode);
            assert!(rate.is_some_and(|r| r > 0.0), "{broker} / {mode}: {table}");
        }
        assert!(
            table.contains(&format!("- {broker}: perfect-order / COPY-only = **")),
            "{table}"
        );
    }
    assert!(
        median(&table, "—", "COPY-only").is_some_and(|r| r > 0.0),
        "{table}"
    );
    assert!(
        table.contains("ms (worst run)"),
        "p99 commit reported: {table}"
    );
    assert!(
        table.contains("projection cache: 2000 orders held, peak RSS"),
        "{table}"
    );
}

/// The p50 and p95 cells (ms) of a `bench-scale` row, for every size measured.
fn scale_cells(table: &str, read: &str) -> Option<Vec<(f64, f64)>> {
    let line = table
        .lines()
        .find(|l| l.split('|').nth(1).map(str::trim) == Some(read))?;
    line.split('|')
        .skip(2)
        .map(str::trim)
        .filter(|c| c.contains(" / "))
        .map(|c| {
            let (p50, p95) = c.split_once(" / ")?;
            Some((p50.parse().ok()?, p95.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_scale_times_every_endpoint_view_and_the_watch_tick_at_each_size_and_drops_its_databases(
) {
    let sizes = ["300", "600"];
    let out = Command::new(env!("CARGO_BIN_EXE_perfect-order"))
        .args(["bench-scale", "--orders", sizes[0], "--orders", sizes[1]])
        .args(["--reps", "2", "--pg-server", &support::pg_server()])
        .env("PERFECT_ORDER__LOG__LEVEL", "warn")
        .output()
        .expect("run bench-scale");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let reads = [
        "GET /api/dashboard",
        "GET /api/service",
        "GET /api/late-orders",
        "watch tick",
        "panel: Orders past the confirmation SLA",
        "view: po_monthly",
        "view: repeat_customers_monthly",
        "view: acquisition_monthly",
        "view: lead_base_monthly",
    ];
    for read in reads {
        let cells = scale_cells(&table, read);
        assert!(
            cells
                .as_ref()
                .is_some_and(|c| c.len() == sizes.len()
                    && c.iter().all(|(p50, p95)| *p50 >= 0.0 && p50 <= p95)),
            "{read}: {cells:?}\n{table}"
        );
    }
    for size in sizes {
        // The fill counts the records it wrote, duplicates and junk included: more than the
        // events the store kept.
        let number_after = |prefix: &str| -> Option<u64> {
            let rest = &table[table.find(prefix)? + prefix.len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        let records = number_after(&format!("fill {size} orders: "));
        let events = number_after(&format!("at {size} orders ("));
        assert!(
            records.zip(events).is_some_and(|(r, e)| r > e && e > 0),
            "fill of {size} orders: {records:?} records, {events:?} events\n{table}"
        );
    }
    let pool = sqlx::PgPool::connect(&format!("{}/postgres", support::pg_server()))
        .await
        .expect("connect");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_database WHERE datname IN ('po_scale_300', 'po_scale_600')",
    )
    .fetch_one(&pool)
    .await
    .expect("pg_database");
    assert_eq!(left, 0, "without --keep the databases are dropped");
}
