//! The operations kit against a real Prometheus (Debian's `prometheus`): it scrapes the
//! service, loads the shipped alert rules, pages on an order stuck past the SLA and resolves
//! after its confirmation; and every PromQL query of every shipped dashboard is valid and
//! returns series, every SQL query runs.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rdkafka::mocking::MockCluster;
use serde_json::Value;
use support::events::*;
use support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start_prometheus(
    dir: &std::path::Path,
    target: std::net::SocketAddr,
) -> (Killed, std::net::SocketAddr) {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\nscrape_configs:\n  - job_name: perfect-order\n    static_configs:\n      - targets: ['{target}']\n",
        rules = root().join("deploy/prometheus/alerts.yml").display()
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).expect("write prometheus.yml");
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is on PATH (Debian package prometheus; scripts/test installs it)");
    (Killed(child), ([127, 0, 0, 1], port).into())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn api(prom: std::net::SocketAddr, path: &str) -> Value {
    let (status, body) = http_get(prom, path).await;
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert!(
        status == 200 || status == 400 || status == 422,
        "Prometheus answered {status}: {body}"
    );
    value
}

async fn alert_state(prom: std::net::SocketAddr, name: &str) -> Option<String> {
    let alerts = api(prom, "/api/v1/alerts").await;
    alerts["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"].as_str() == Some(name))
        .and_then(|a| a["state"].as_str().map(str::to_owned))
}

/// Every PromQL expression and SQL query of the shipped dashboards, with Grafana's variables
/// replaced by what Grafana would send.
/// `(panel title, query)` pairs.
type Queries = Vec<(String, String)>;

fn dashboard_queries() -> (Queries, Queries) {
    let mut promql = Vec::new();
    let mut sql = Vec::new();
    for entry in std::fs::read_dir(root().join("deploy/grafana/dashboards")).expect("dashboards") {
        let path = entry.expect("entry").path();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        for panel in dashboard["panels"].as_array().expect("panels") {
            let title = format!(
                "{} / {}",
                dashboard["title"].as_str().unwrap_or("?"),
                panel["title"].as_str().unwrap_or("?")
            );
            for target in panel["targets"].as_array().expect("targets") {
                if let Some(expr) = target["expr"].as_str() {
                    let expr = expr
                        .replace("$__rate_interval", "1m")
                        .replace("$instance", ".+");
                    promql.push((title.clone(), expr));
                }
                if let Some(q) = target["rawSql"].as_str() {
                    sql.push((title.clone(), q.to_owned()));
                }
            }
        }
    }
    (promql, sql)
}

/// A delivery instant on the shop day of `now` that is not in the future by more than a
/// minute: two hours before `now`, or a minute after the shop day began if that is later.
fn delivered_today(now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    same_shop_day(now, now - TimeDelta::hours(2))
}

#[test]
fn test_deliveries_fall_on_the_shop_day_even_just_after_midnight() {
    let rules = perfect_order::domain::Rules::default();
    for local in [
        "2026-12-02T00:00:30",
        "2026-12-02T00:30:00",
        "2026-12-02T02:59:00",
        "2026-12-02T15:00:00",
    ] {
        let now = msk(local);
        let delivered = delivered_today(now);
        assert_eq!(rules.day_of(delivered), rules.day_of(now), "{local}");
        assert!(delivered <= now + minutes(1), "{local}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_alert_fires_for_a_stuck_order_resolves_on_confirmation_and_every_dashboard_query_answers(
) {
    // Arrange: broker, database, the service with a 5 s SLA, and Prometheus scraping it.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let now = Utc::now();
    // The deliveries fall on today's shop day whatever the hour the test runs at (just after
    // midnight too): two hours ago, or a minute into the shop day if that is later.
    let base = delivered_today(now) - TimeDelta::hours(3);
    let mut records: Vec<_> = Vec::new();
    for i in 0..6 {
        let id = format!("D-{i}");
        let mut lifecycle = perfect_lifecycle(&id, base);
        if i % 3 == 0 {
            lifecycle[1] = confirmed(&id, base + minutes(45));
        }
        records.extend(lifecycle.into_iter().map(|e| keyed(&id, e)));
    }
    records.push(keyed(
        "D-0",
        claim("D-0", "K-0", "quality", now - TimeDelta::hours(1)),
    ));
    records.push(("junk".into(), b"not json".to_vec()));
    // Contract v2: a courier in a team and a good review naming it (the friendliness gauge).
    records.push((
        "K-1".into(),
        rostered("K-1", "T-1", now - TimeDelta::days(1)).into_bytes(),
    ));
    records.push((
        "R-1".into(),
        // This month's smiley, also just after midnight on the 1st.
        review_posted("R-1", 5, Some("K-1"), same_shop_day(now, now - minutes(30))).into_bytes(),
    ));
    records.push(keyed(
        "STUCK",
        created("STUCK", now - TimeDelta::seconds(20)),
    ));
    let p = producer(&brokers);
    produce(&p, "orders", &records);
    let fast = [
        ("PERFECT_ORDER__RULES__CONFIRMATION_SLA", "5s"),
        ("PERFECT_ORDER__WATCH__INTERVAL", "500ms"),
    ];
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &fast))
        .await
        .expect("service starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let (_prometheus, prom) = start_prometheus(dir.path(), service.http_addr);
    eventually("Prometheus ready", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(prom).await.ok()?;
        (http_get(prom, "/-/ready").await.0 == 200).then_some(())
    })
    .await;

    // Act + Assert: the page fires within 2 minutes of the breach...
    eventually("the SLA alert firing", Duration::from_secs(120), || async {
        (alert_state(prom, "PerfectOrderConfirmationSlaBreached")
            .await
            .as_deref()
            == Some("firing"))
        .then_some(())
    })
    .await;
    // ...and resolves once the order is confirmed.
    produce(
        &p,
        "orders",
        &[keyed("STUCK", confirmed("STUCK", Utc::now()))],
    );
    eventually(
        "the SLA alert resolved",
        Duration::from_secs(60),
        || async {
            alert_state(prom, "PerfectOrderConfirmationSlaBreached")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;

    // Every dashboard PromQL query is valid and returns at least one series.
    let (promql, sql) = dashboard_queries();
    assert!(promql.len() >= 20, "found {} PromQL queries", promql.len());
    for (title, expr) in &promql {
        let answer = api(prom, &format!("/api/v1/query?query={}", encode(expr))).await;
        assert_eq!(
            answer["status"].as_str(),
            Some("success"),
            "{title}: `{expr}` is invalid: {answer}"
        );
        let series = answer["data"]["result"].as_array().map_or(0, Vec::len);
        assert!(series > 0, "{title}: `{expr}` returns no series");
    }
    // Every dashboard SQL query runs against the tables.
    let pool = db.pool().await;
    for (title, query) in &sql {
        if let Err(e) = sqlx::query(query).fetch_all(&pool).await {
            panic!("{title}: SQL fails: {e}\n{query}");
        }
    }
    service.stop().await;
}
