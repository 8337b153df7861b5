//! `perfect-order demo`: one command shows the product working, stops cleanly on Ctrl-C, and a
//! second run continues the same shop.

mod support;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

struct Demo {
    child: Killed,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Demo {
    /// Starts `demo` with its default store: a SQLite file under `data_dir`.
    fn start(data_dir: &std::path::Path) -> Demo {
        Demo::start_with(data_dir, &[])
    }

    /// Starts `demo` with `extra` arguments.
    fn start_with(data_dir: &std::path::Path, extra: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_perfect-order"))
            .args([
                "demo",
                "--days",
                "1",
                "--orders-per-minute",
                "3",
                "--speedup",
                "60",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env_remove("PERFECT_ORDER__DATABASE__URL")
            .env("PERFECT_ORDER__HTTP__LISTEN", "127.0.0.1:0")
            .env("PERFECT_ORDER__LOG__LEVEL", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        Demo {
            child: Killed(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// The first printed line containing `needle`, within 60 s.
    fn line_with(&mut self, needle: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
        panic!(
            "the demo never printed `{needle}`; it printed {:?}",
            self.seen
        );
    }

    fn console(&mut self) -> std::net::SocketAddr {
        let line = self.line_with("console:");
        let url = line.split_whitespace().last().expect("a URL");
        url.trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("host:port")
    }

    /// Ctrl-C; the demo must exit successfully within 30 s. Returns every line it printed.
    fn interrupt(mut self) -> Vec<String> {
        let pid = self.child.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill -INT");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.0.try_wait().expect("wait") {
                assert!(status.success(), "the demo exited with {status}");
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                return self.seen;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not stop within 30 s of Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

async fn fulfilled_30d(addr: std::net::SocketAddr) -> Option<i64> {
    let (status, body) = http_get(addr, "/api/dashboard").await;
    if status != 200 {
        return None;
    }
    let d: serde_json::Value = serde_json::from_str(&body).ok()?;
    d["po_rate"]["30d"].as_f64()?;
    Some(
        d["po_daily"]
            .as_array()?
            .iter()
            .filter_map(|p| p["fulfilled"].as_i64())
            .sum(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_kpis_within_seconds_stops_on_ctrl_c_and_a_second_run_continues() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("demo-data");

    // First run: KPIs appear on the console's API within a minute, stored in SQLite under the
    // data directory (no PostgreSQL needed).
    let mut first = Demo::start(&data_dir);
    assert!(first.line_with("database:").contains("sqlite://"));
    let addr = first.console();
    eventually("non-empty KPIs", Duration::from_secs(60), || async move {
        fulfilled_30d(addr).await.filter(|n| *n > 100)
    })
    .await;
    let (status, page) = http_get(addr, "/").await;
    assert!(status == 200 && page.contains("perfect-order"));
    // The seeds' other KPIs (contract v2) are simulated and shown too.
    let service = eventually(
        "the contract-v2 KPIs",
        Duration::from_secs(60),
        || async move {
            let (status, body) = http_get(addr, "/api/service").await;
            let s: serde_json::Value = serde_json::from_str(&body).ok()?;
            let filled = |key: &str| s["months"][key].as_array().is_some_and(|a| !a.is_empty());
            let ready = status == 200
                && s["figures"]["teams"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty())
                && [
                    "reviews",
                    "repeat_customers",
                    "acquisition",
                    "leads",
                    "dispatch",
                ]
                .iter()
                .all(|k| filled(k));
            ready.then_some(s)
        },
    )
    .await;
    let teams = service["figures"]["teams"].as_array().expect("teams");
    assert_eq!(
        teams.iter().filter(|t| t["winner"] == true).count(),
        1,
        "one winner this month: {teams:?}"
    );
    assert!(
        page.contains("Friendly-driver contest"),
        "the console shows the contest"
    );
    first.interrupt();
    let file = data_dir.join("perfect-order.db");
    assert!(
        file.is_file(),
        "the demo keeps its data in {}",
        file.display()
    );
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("open the demo database");
    let before: i64 = sqlx::query_scalar("SELECT COALESCE(sum(fulfilled), 0) FROM daily_kpi")
        .fetch_one(&pool)
        .await
        .expect("daily_kpi");
    pool.close().await;

    // Second run: continues from the stored events instead of replaying the history.
    let mut second = Demo::start(&data_dir);
    second.line_with("continuing the shop from its last event");
    let addr = second.console();
    let after = eventually(
        "the KPIs of the first run",
        Duration::from_secs(60),
        || async move { fulfilled_30d(addr).await },
    )
    .await;
    assert!(
        after >= before,
        "the shop continues ({before} -> {after} fulfilled)"
    );
    assert!(
        after < before * 3 / 2 + 200,
        "the history is not simulated twice ({before} -> {after})"
    );
    second.interrupt();
}

/// The terminal reads as a product, not a log: the banner says where the logs are, the history
/// shows its progress, then status lines name the figures; the logs go to the file under the
/// data directory, and Ctrl-C is answered at once and says when it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_progress_and_status_lines_and_keeps_its_logs_in_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("demo-data");
    let mut demo = Demo::start(&data_dir);
    let log = data_dir.join("perfect-order.log");
    assert!(
        demo.line_with("logs:").contains(&log.display().to_string()),
        "the banner names the log file"
    );
    let history = demo.line_with("history:");
    assert!(history.contains("events consumed"), "{history}");
    let status = demo.line_with("status:");
    for figure in [
        "events",
        "lag",
        "perfect orders today",
        "this month",
        "awaiting confirmation",
        "over SLA",
    ] {
        assert!(
            status.contains(figure),
            "the status line names {figure}: {status}"
        );
    }
    let printed = demo.interrupt();
    let stopping = printed
        .iter()
        .position(|l| l.starts_with("stopping: committing the batch in flight"))
        .unwrap_or_else(|| panic!("Ctrl-C is answered: {printed:?}"));
    assert!(
        printed[stopping..]
            .iter()
            .any(|l| l.starts_with("stopped:")),
        "the demo says when it has stopped: {printed:?}"
    );
    let logged: Vec<&String> = printed
        .iter()
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN ") || l.contains("batch committed"))
        .collect();
    assert!(
        logged.is_empty(),
        "no log lines on the terminal: {logged:?}"
    );
    let file = std::fs::read_to_string(&log).expect("the demo's log file");
    for line in ["starting perfect-order", "batch committed", "stopped"] {
        assert!(file.contains(line), "the log file holds `{line}`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_verbose_the_demo_shows_its_logs_on_the_terminal_as_well_as_in_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("demo-data");
    let mut demo = Demo::start_with(&data_dir, &["--verbose"]);
    demo.line_with("batch committed");
    demo.line_with("status:");
    demo.interrupt();
    let file = std::fs::read_to_string(data_dir.join("perfect-order.log")).expect("log file");
    assert!(file.contains("batch committed"));
}
