//! The pipeline end to end on librdkafka's mock cluster and a real PostgreSQL database.

mod support;

use std::time::Duration;

use chrono::TimeDelta;
use rdkafka::mocking::MockCluster;
use support::events::*;
use support::*;

/// Three orders delivered on 1 Oct (one perfect, one late, one with a quality claim), one
/// cancelled, a duplicate, an unknown type and two junk records.
fn scenario() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in perfect_lifecycle("A-1", t0()) {
        out.push(keyed("A-1", e));
    }
    let mut late = perfect_lifecycle("A-2", t0());
    late[3] = delivered("A-2", t0() + minutes(4 * 60 + 15));
    out.extend(late.into_iter().map(|e| keyed("A-2", e)));
    out.extend(
        perfect_lifecycle("A-3", t0())
            .into_iter()
            .map(|e| keyed("A-3", e)),
    );
    out.push(keyed(
        "A-3",
        claim("A-3", "K-1", "quality", t0() + TimeDelta::days(10)),
    ));
    out.push(keyed("A-4", created("A-4", t0())));
    out.push(keyed("A-4", cancelled("A-4", t0() + minutes(3))));
    out.push(keyed("A-1", confirmed("A-1", t0() + minutes(10)))); // a producer retry
    out.push(keyed(
        "A-1",
        cloudevent(
            "u-1",
            "order.teleported",
            t0(),
            serde_json::json!({"order_id": "A-1"}),
        ),
    ));
    out.push(("A-5".into(), b"{definitely not json".to_vec()));
    out.push((
        "A-6".into(),
        cloudevent(
            "j-1",
            "claim.filed",
            t0(),
            serde_json::json!({"order_id": "A-6"}),
        )
        .into_bytes(),
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_with_duplicates_and_junk_yields_exact_daily_kpis() {
    // Arrange
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 3, 1).expect("create topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let records = scenario();
    produce(&producer(&brokers), "orders", &records);

    // Act
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &[]))
        .await
        .expect("service starts");
    let pool = db.pool().await;
    let total = records.len() as i64;
    eventually("all records committed", Duration::from_secs(60), || async {
        (committed_records(&pool).await == total).then_some(())
    })
    .await;

    // Assert: 1 Oct has 3 fulfilled, 1 perfect, 1 delivery and 1 quality deviation, 1 cancelled.
    let row: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT fulfilled, perfect, deviation_delivery, deviation_quality, cancelled FROM daily_kpi WHERE day = '2026-10-01'",
    )
    .fetch_one(&pool)
    .await
    .expect("daily row");
    assert_eq!(row, (3, 1, 1, 1, 1));
    let claim_day: i64 =
        sqlx::query_scalar("SELECT count(*) FROM daily_kpi WHERE day = '2026-10-11'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(
        claim_day, 0,
        "the late claim corrects the delivery day, not its own"
    );
    let rejected: Vec<(String,)> =
        sqlx::query_as("SELECT reason FROM rejected_events ORDER BY reason")
            .fetch_all(&pool)
            .await
            .expect("rejected");
    assert_eq!(
        rejected,
        vec![("missing_field".to_owned(),), ("not_json".to_owned(),)]
    );
    let (_, metrics) = http_get(service.http_addr, "/metrics").await;
    assert_eq!(
        metric(&metrics, "perfect_order_duplicate_events_total"),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, "perfect_order_unknown_type_events_total"),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "perfect_order_rejected_events_total{reason=\"not_json\"}"
        ),
        Some(1.0)
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_database_offsets_without_double_counting() {
    // Arrange: a first run consumes everything, then stops.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 2, 1).expect("create topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let first: Vec<_> = perfect_lifecycle("A-1", t0())
        .into_iter()
        .map(|e| keyed("A-1", e))
        .collect();
    produce(&producer(&brokers), "orders", &first);
    let group = [("PERFECT_ORDER__KAFKA__GROUP_ID", "restart-group")];
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &group))
        .await
        .expect("service starts");
    let pool = db.pool().await;
    eventually("first run committed", Duration::from_secs(60), || async {
        (committed_records(&pool).await == 4).then_some(())
    })
    .await;
    service.stop().await;

    // Act: Kafka's committed offsets are wiped by using a new group; the database's are kept.
    let second: Vec<_> = perfect_lifecycle("A-2", t0())
        .into_iter()
        .map(|e| keyed("A-2", e))
        .collect();
    produce(&producer(&brokers), "orders", &second);
    let new_group = [("PERFECT_ORDER__KAFKA__GROUP_ID", "another-group")];
    let service =
        perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &new_group))
            .await
            .expect("service restarts");
    eventually("second run committed", Duration::from_secs(60), || async {
        (committed_records(&pool).await == 8).then_some(())
    })
    .await;

    // Assert: two fulfilled orders, not three; the first run's events were not re-read.
    let fulfilled: i64 = sqlx::query_scalar("SELECT sum(fulfilled)::bigint FROM daily_kpi")
        .fetch_one(&pool)
        .await
        .expect("sum");
    assert_eq!(fulfilled, 2);
    let (_, metrics) = http_get(service.http_addr, "/metrics").await;
    assert_eq!(
        metric(&metrics, "perfect_order_duplicate_events_total"),
        Some(0.0)
    );
    service.stop().await;
}
