//! Service behaviours on the mock cluster and real PostgreSQL: the SLA watch, probes, lag,
//! draining at shutdown, topic checks, the metrics exposition and several instances.

mod support;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rdkafka::mocking::MockCluster;
use support::events::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_waiting_past_the_sla_is_counted_listed_and_cleared_by_its_confirmation() {
    // Arrange: one order 40 min old, one 5 min old, one 30 h old (beyond the pending horizon).
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let now = Utc::now();
    let p = producer(&brokers);
    produce(
        &p,
        "orders",
        &[
            keyed("LATE", created("LATE", now - minutes(40))),
            keyed("FRESH", created("FRESH", now - minutes(5))),
            keyed("ANCIENT", created("ANCIENT", now - TimeDelta::hours(30))),
        ],
    );
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &[]))
        .await
        .expect("service starts");

    // Act + Assert: the gauges and the on-call list see the late order.
    let text = eventually("the SLA gauges", Duration::from_secs(30), || async {
        let (_, text) = http_get(service.http_addr, "/metrics").await;
        (metric(&text, "perfect_order_orders_awaiting_confirmation") == Some(2.0)).then_some(text)
    })
    .await;
    assert_eq!(
        metric(&text, "perfect_order_orders_over_confirmation_sla"),
        Some(1.0)
    );
    let oldest =
        metric(&text, "perfect_order_oldest_awaiting_confirmation_seconds").expect("oldest");
    assert!(
        (2390.0..2500.0).contains(&oldest),
        "oldest wait is about 40 min, got {oldest}"
    );
    let (status, body) = http_get(service.http_addr, "/api/late-orders").await;
    assert_eq!(status, 200);
    let late: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let ids: Vec<&str> = late["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["order_id"].as_str())
        .collect();
    assert_eq!(ids, vec!["LATE"]);
    let pool = db.pool().await;
    let view: Vec<String> = sqlx::query_scalar("SELECT order_id FROM late_orders")
        .fetch_all(&pool)
        .await
        .expect("view");
    assert_eq!(view, vec!["LATE".to_owned()]);

    // Act: the late order is confirmed. Assert: the timer clears it without further events.
    produce(&p, "orders", &[keyed("LATE", confirmed("LATE", now))]);
    eventually(
        "the late order to clear",
        Duration::from_secs(30),
        || async {
            let (_, text) = http_get(service.http_addr, "/metrics").await;
            (metric(&text, "perfect_order_orders_over_confirmation_sla") == Some(0.0)).then_some(())
        },
    )
    .await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_report_alive_at_once_and_ready_after_assignment() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 2, 1).expect("topic");
    let db = TestDb::create().await;
    let service = perfect_order::Service::start(settings(
        &cluster.bootstrap_servers(),
        &["orders"],
        &db.url,
        &[],
    ))
    .await
    .expect("service starts");
    assert_eq!(http_get(service.http_addr, "/healthz").await.0, 200);
    eventually("readiness", Duration::from_secs(30), || async {
        (http_get(service.http_addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    eventually("the ready gauge", Duration::from_secs(30), || async {
        let (_, text) = http_get(service.http_addr, "/metrics").await;
        (metric(&text, "perfect_order_ready") == Some(1.0)).then_some(())
    })
    .await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_reported_per_partition_and_the_batch_in_flight_is_drained_at_shutdown() {
    // Arrange: 40 records and a batch that would wait an hour before committing.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let records: Vec<_> = (0..10)
        .flat_map(|i| {
            let id = format!("A-{i}");
            perfect_lifecycle(&id, t0())
                .into_iter()
                .map(move |e| keyed(&id, e))
                .collect::<Vec<_>>()
        })
        .collect();
    produce(&producer(&brokers), "orders", &records);
    let slow = [
        ("PERFECT_ORDER__BATCH__MAX_EVENTS", "100000"),
        ("PERFECT_ORDER__BATCH__MAX_WAIT", "1h"),
    ];
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &slow))
        .await
        .expect("service starts");

    // Assert: nothing is committed yet, so the lag of the partitions sums to all 40 records.
    let lag = eventually(
        "lag of both partitions",
        Duration::from_secs(30),
        || async {
            let snapshot = service.metrics.lag_snapshot();
            (snapshot.len() == 2).then_some(snapshot)
        },
    )
    .await;
    assert_eq!(lag.values().sum::<i64>(), 40);
    let (_, text) = http_get(service.http_addr, "/metrics").await;
    let exported: f64 = ["0", "1"]
        .iter()
        .filter_map(|p| {
            metric(
                &text,
                &format!(
                    "perfect_order_consumer_lag_records{{partition=\"{p}\",topic=\"orders\"}}"
                ),
            )
        })
        .sum();
    assert_eq!(exported, 40.0);

    // Act: stop. Assert: the batch in flight was committed on the way out.
    service.stop().await;
    let pool = db.pool().await;
    assert_eq!(committed_records(&pool).await, 40);
}

/// The error with which the service refuses to start on a cluster with these topics.
async fn start_error(topics: &[(&str, i32)], subscribe: &[&str]) -> String {
    let cluster = MockCluster::new(1).expect("mock cluster");
    for (name, partitions) in topics {
        cluster.create_topic(name, *partitions, 1).expect("topic");
    }
    let db = TestDb::create().await;
    let settings = settings(&cluster.bootstrap_servers(), subscribe, &db.url, &[]);
    match perfect_order::Service::start(settings).await {
        Ok(_) => panic!("start must fail"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_that_are_not_co_partitioned_are_refused_at_start() {
    let message = start_error(&[("orders", 3), ("claims", 2)], &["orders", "claims"]).await;
    assert!(message.contains("not co-partitioned"), "{message}");
    assert!(
        message.contains("orders has 3") && message.contains("claims has 2"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_refused_at_start_by_name() {
    let message = start_error(&[("orders", 1)], &["orders", "nope"]).await;
    assert!(message.contains("nope"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_exposition_passes_promtool_check() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let now = Utc::now();
    let mut records: Vec<_> = perfect_lifecycle("A-1", now - TimeDelta::hours(5))
        .into_iter()
        .map(|e| keyed("A-1", e))
        .collect();
    records.push(keyed("A-1", claim("A-1", "K-1", "quality", now)));
    records.push(("A-9".into(), b"junk".to_vec()));
    produce(&producer(&brokers), "orders", &records);
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &[]))
        .await
        .expect("service starts");
    let text = eventually(
        "the order in the metrics",
        Duration::from_secs(30),
        || async {
            let (_, text) = http_get(service.http_addr, "/metrics").await;
            (metric(&text, "perfect_order_fulfilled_orders{window=\"7d\"}") == Some(1.0))
                .then_some(text)
        },
    )
    .await;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is on PATH (Debian package prometheus; scripts/test installs it)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write metrics");
    }
    let out = child.wait_with_output().expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
    assert_eq!(
        metric(&text, "perfect_order_perfect_order_ratio{window=\"7d\"}"),
        Some(0.0)
    );
    // The one order missed one component, the claim: each component's gauge, and the index.
    for (component, ratio) in [
        ("confirmed_in_sla", 1.0),
        ("on_time", 1.0),
        ("in_full", 1.0),
        ("claim_free", 0.0),
    ] {
        let series =
            format!("perfect_order_component_ratio{{component=\"{component}\",window=\"7d\"}}");
        assert_eq!(metric(&text, &series), Some(ratio), "{series}");
    }
    assert_eq!(
        metric(&text, "perfect_order_index{window=\"7d\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "perfect_order_confirmation_latency_seconds_count"),
        Some(1.0)
    );
    // The tick refreshes the restatement gauges too (their values: the store suite).
    for month in ["current", "previous"] {
        let series = format!("perfect_order_restated_orders{{month=\"{month}\"}}");
        assert!(metric(&text, &series).is_some(), "{series}");
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_work_and_agree_on_shop_wide_figures() {
    // Arrange: 4 partitions, 30 orders delivered an hour ago, two instances in one group.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 4, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let start = Utc::now() - TimeDelta::hours(4);
    let records: Vec<_> = (0..30)
        .flat_map(|i| {
            let id = format!("B-{i}");
            perfect_lifecycle(&id, start)
                .into_iter()
                .map(move |e| keyed(&id, e))
                .collect::<Vec<_>>()
        })
        .collect();
    let group = [("PERFECT_ORDER__KAFKA__GROUP_ID", "shared-group")];
    let a = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &group))
        .await
        .expect("a starts");
    let b = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &group))
        .await
        .expect("b starts");
    eventually(
        "both instances assigned",
        Duration::from_secs(120),
        || async {
            let (_, ta) = http_get(a.http_addr, "/metrics").await;
            let (_, tb) = http_get(b.http_addr, "/metrics").await;
            let (pa, pb) = (
                metric(&ta, "perfect_order_assigned_partitions"),
                metric(&tb, "perfect_order_assigned_partitions"),
            );
            (pa == Some(2.0) && pb == Some(2.0)).then_some(())
        },
    )
    .await;

    // Act
    produce(&producer(&brokers), "orders", &records);
    let pool = db.pool().await;
    eventually(
        "all records committed",
        Duration::from_secs(120),
        || async { (committed_records(&pool).await == 120).then_some(()) },
    )
    .await;

    // Assert: pipeline counters sum to the whole; shop-wide gauges are equal on both.
    let (ta, tb) = eventually(
        "both gauges refreshed",
        Duration::from_secs(120),
        || async {
            let (_, ta) = http_get(a.http_addr, "/metrics").await;
            let (_, tb) = http_get(b.http_addr, "/metrics").await;
            let series = "perfect_order_fulfilled_orders{window=\"7d\"}";
            (metric(&ta, series) == Some(30.0) && metric(&tb, series) == Some(30.0))
                .then_some((ta, tb))
        },
    )
    .await;
    let created = "perfect_order_events_consumed_total{type=\"order.created\"}";
    let (ca, cb) = (
        metric(&ta, created).unwrap_or(0.0),
        metric(&tb, created).unwrap_or(0.0),
    );
    assert_eq!(ca + cb, 30.0);
    assert!(
        ca > 0.0 && cb > 0.0,
        "both instances consumed ({ca} + {cb})"
    );
    let ratio = "perfect_order_perfect_order_ratio{window=\"7d\"}";
    assert_eq!(metric(&ta, ratio), metric(&tb, ratio));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_even_while_the_database_is_down() {
    // Arrange: a running service whose database disappears with a batch in flight.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let quick = [("PERFECT_ORDER__KAFKA__DRAIN_TIMEOUT", "1s")];
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &quick))
        .await
        .expect("service starts");
    eventually("readiness", Duration::from_secs(30), || async {
        (http_get(service.http_addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{}/postgres", pg_server()))
            .await
            .expect("admin connection");
    sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", db.name))
        .execute(&mut admin)
        .await
        .expect("drop the service's database");
    // More records than the channel between the poll thread and the committer holds, so the
    // poll thread blocks on a full channel while the committer retries.
    let records: Vec<_> = (0..50_000)
        .map(|i| (format!("K-{i}"), b"x".to_vec()))
        .collect();
    produce(&producer(&brokers), "orders", &records);
    eventually("a failing batch", Duration::from_secs(30), || async {
        let (_, text) = http_get(service.http_addr, "/metrics").await;
        metric(&text, "perfect_order_batch_failures_total").filter(|n| *n > 0.0)
    })
    .await;

    // Act + Assert: stopping gives up on the uncommittable batch instead of hanging.
    tokio::time::timeout(Duration::from_secs(30), service.stop())
        .await
        .expect("stop returns within 30 s while the database is down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_is_self_contained_and_its_api_returns_the_kpis() {
    // Arrange: two orders delivered two hours ago, one of them late; one order stuck.
    let fixture = console_fixture("STUCK").await;
    let service = &fixture.service;

    // Act
    let (status, page) = http_get(service.http_addr, "/").await;
    let (_, body) = http_get(service.http_addr, "/api/dashboard").await;
    let d: serde_json::Value = serde_json::from_str(&body).expect("dashboard JSON");

    // Assert: the page loads nothing from elsewhere; the API has the figures the tiles show.
    assert_eq!(status, 200);
    for id in [
        "tile-po-1d",
        "tile-po-7d",
        "tile-po-30d",
        "tile-po-month",
        "tile-awaiting",
        "tile-over-sla",
        "chart-po-daily",
        "late-orders",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "console lacks {id}");
    }
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("src="),
        "no external assets"
    );
    // (7 and 30 days: "today" could split the two deliveries at midnight in the shop's zone)
    assert_eq!(d["po_rate"]["7d"].as_f64(), Some(0.5));
    assert_eq!(d["po_rate"]["30d"].as_f64(), Some(0.5));
    assert_eq!(d["over_sla"].as_i64(), Some(1));
    assert_eq!(d["deviations_30d"]["delivery"].as_i64(), Some(1));
    assert_eq!(d["po_daily"].as_array().map(Vec::len), Some(60));
    let confirmed: i64 = d["confirmation_minutes"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(|b| b[1].as_i64())
        .sum();
    assert_eq!(confirmed, 2);
    fixture.service.stop().await;
}
