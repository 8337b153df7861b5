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
