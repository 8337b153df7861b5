//! `rebuild`: projections and KPIs recomputed from the event store equal what ingest built,
//! and follow a rule change.

mod support;

use std::time::Duration;

use chrono::TimeDelta;
use perfect_order::store::PgStore;
use rdkafka::mocking::MockCluster;
use support::events::*;
use support::*;

type Snapshot = (
    Vec<(chrono::NaiveDate, i64, i64, i64, i64, i64)>,
    Vec<(String, String)>,
    Vec<(String, bool)>,
);

async fn snapshot(pool: &sqlx::PgPool) -> Snapshot {
    let kpi = sqlx::query_as(
        "SELECT day, fulfilled, perfect, deviation_delivery, deviation_quality, cancelled FROM daily_kpi
         WHERE fulfilled <> 0 OR perfect <> 0 OR cancelled <> 0 ORDER BY day",
    )
    .fetch_all(pool)
    .await
    .expect("daily_kpi");
    let orders = sqlx::query_as("SELECT order_id, verdict FROM orders ORDER BY order_id")
        .fetch_all(pool)
        .await
        .expect("orders");
    let claims =
        sqlx::query_as("SELECT claim_id, counts_for_verdict FROM claims ORDER BY claim_id")
            .fetch_all(pool)
            .await
            .expect("claims");
    (kpi, orders, claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_reproduces_ingest_and_follows_a_new_delivery_tolerance() {
    // Arrange: orders delivered on time, 15 min late, with a late claim; a cancellation.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let mut records: Vec<_> = perfect_lifecycle("A-1", t0())
        .into_iter()
        .map(|e| keyed("A-1", e))
        .collect();
    let mut late = perfect_lifecycle("A-2", t0());
    late[3] = delivered("A-2", t0() + minutes(4 * 60 + 15));
    records.extend(late.into_iter().map(|e| keyed("A-2", e)));
    records.extend(
        perfect_lifecycle("A-3", t0())
            .into_iter()
            .map(|e| keyed("A-3", e)),
    );
    records.push(keyed(
        "A-3",
        claim("A-3", "K-1", "quality", t0() + TimeDelta::days(10)),
    ));
    records.push(keyed("A-4", created("A-4", t0())));
    records.push(keyed("A-4", cancelled("A-4", t0() + minutes(3))));
    produce(&producer(&brokers), "orders", &records);
    let settings = settings(&brokers, &["orders"], &db.url, &[]);
    let rules = settings.rules.clone();
    let service = perfect_order::Service::start(settings)
        .await
        .expect("service starts");
    let pool = db.pool().await;
    eventually("all records committed", Duration::from_secs(60), || async {
        (committed_records(&pool).await == records.len() as i64).then_some(())
    })
    .await;
    service.stop().await;
    let ingested = snapshot(&pool).await;
    let store = PgStore::connect(&db.url, 2).await.expect("store");

    // Act + Assert: the same rules, in chunks of 3 events (orders span chunks), give the same tables.
    let report = store
        .rebuild(
            &rules,
            &perfect_order::config::Settings::load_from(None, Vec::<(String, String)>::new())
                .expect("default settings")
                .decode
                .limits(chrono::Utc::now()),
            3,
            |_, _| {},
        )
        .await
        .expect("rebuild");
    assert_eq!(
        (report.events, report.orders, report.undecodable),
        (15, 4, 0)
    );
    assert_eq!(snapshot(&pool).await, ingested);

    // Act + Assert: a 20-minute delivery tolerance forgives A-2, through the CLI.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_perfect-order"))
        .arg("rebuild")
        .env("PERFECT_ORDER__DATABASE__URL", &db.url)
        .env("PERFECT_ORDER__RULES__DELIVERY_TOLERANCE", "20m")
        .output()
        .expect("run rebuild");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rebuilt 4 orders from 15 events"));
    let (kpi, orders, _) = snapshot(&pool).await;
    assert_eq!(
        (kpi[0].1, kpi[0].2, kpi[0].3),
        (3, 2, 0),
        "1 Oct: 3 fulfilled, 2 perfect, no delivery deviation"
    );
    assert!(orders.contains(&("A-2".to_owned(), "perfect".to_owned())));
}
