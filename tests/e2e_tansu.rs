//! End to end on a real Kafka-compatible broker in its own process (tansu), with the real
//! binary: a generated shop stream, a SIGKILL mid-stream, a restart, and exact results.
//!
//! Needs `tansu` on PATH (`scripts/test` installs it): the test starts its own broker on a free
//! loopback port.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use support::shop::generate;
use support::*;

/// Short, so that the member killed with SIGKILL leaves the group soon.
const SESSION_TIMEOUT_MS: u64 = 6000;

fn service(broker: &str, db_url: &str, log: &std::path::Path) -> Killed {
    run_binary(
        log,
        &[
            ("PERFECT_ORDER__KAFKA__BROKERS", broker),
            ("PERFECT_ORDER__KAFKA__TOPICS", "orders,claims"),
            ("PERFECT_ORDER__KAFKA__GROUP_ID", "e2e"),
            (
                "PERFECT_ORDER__KAFKA__PROPERTIES__SESSION__TIMEOUT__MS",
                "6000",
            ),
            ("PERFECT_ORDER__DATABASE__URL", db_url),
            ("PERFECT_ORDER__HTTP__LISTEN", "127.0.0.1:0"),
            ("PERFECT_ORDER__BATCH__MAX_EVENTS", "300"),
            ("PERFECT_ORDER__BATCH__MAX_WAIT", "200ms"),
            ("PERFECT_ORDER__LOG__LEVEL", "info"),
        ],
    )
}

/// A tansu broker with the two co-partitioned topics, a fresh database and a generated shop
/// of `orders` orders from 1 September.
struct Arranged {
    _broker: Killed,
    broker: String,
    _db: TestDb,
    pool: sqlx::PgPool,
    db_url: String,
    shop: support::shop::Shop,
}

async fn arrange(seed: u64, orders: usize) -> Arranged {
    let (broker_guard, broker) = tansu();
    create_topic(&broker, "orders", 3);
    create_topic(&broker, "claims", 3);
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let start = chrono::DateTime::parse_from_rfc3339("2026-09-01T00:00:00+03:00")
        .expect("literal")
        .with_timezone(&chrono::Utc);
    Arranged {
        _broker: broker_guard,
        broker,
        db_url: db.url.clone(),
        _db: db,
        pool,
        shop: generate(seed, orders, start),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_midstream_changes_nothing_in_the_daily_kpis() {
    // Arrange: a broker, two co-partitioned topics, a fresh database, a generated shop.
    let Arranged {
        broker,
        pool,
        db_url,
        shop,
        ..
    } = &arrange(7, 3000).await;
    let (broker, pool, shop) = (broker.clone(), pool.clone(), shop);
    let total = shop.records.len() as i64;
    let logs = tempfile::tempdir().expect("temp dir");

    // Act: produce in the background while the service runs; kill it with SIGKILL a third of
    // the way in; restart it.
    let records = shop.records.clone();
    let producer_broker = broker.clone();
    let producing = std::thread::spawn(move || {
        support::shop::produce_all(&producer_broker, &records, Duration::ZERO)
    });
    let mut first = service(&broker, db_url, &logs.path().join("first.log"));
    eventually(
        "a third of the stream committed",
        Duration::from_secs(180),
        || async { (committed_records(&pool).await >= total / 3).then_some(()) },
    )
    .await;
    first.0.kill().expect("SIGKILL the service");
    let _ = first.0.wait();
    let at_kill = committed_records(&pool).await;
    assert!(
        at_kill < total,
        "the kill must land mid-stream ({at_kill} of {total})"
    );
    // tansu 0.6 expires a dead member only when a later join finds its session over: a
    // restart that joins sooner is handed no partitions and never rebalanced. Restart after
    // the session timeout, as a crashed pod comes back.
    std::thread::sleep(Duration::from_millis(SESSION_TIMEOUT_MS + 1500));
    let _second = service(&broker, db_url, &logs.path().join("second.log"));
    producing.join().expect("producer finished");
    let started = std::time::Instant::now();
    loop {
        let done = committed_records(&pool).await;
        assert!(
            done <= total,
            "committed {done} records of {total}: the broker served extra records"
        );
        if done == total {
            break;
        }
        if started.elapsed() > Duration::from_secs(240) {
            let log = std::fs::read_to_string(logs.path().join("second.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "only {done} of {total} records committed after 240 s; service log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Assert: every day equals the answer computed from the facts; all junk is kept.
    assert_eq!(support::shop::daily_as_expected(&pool).await, shop.expected);
    let monthly: Vec<(NaiveDate, i64, i64)> =
        sqlx::query_as("SELECT month, fulfilled, perfect FROM po_monthly ORDER BY month")
            .fetch_all(&pool)
            .await
            .expect("po_monthly");
    let mut expected_monthly: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    for (day, e) in &shop.expected {
        let month =
            NaiveDate::from_ymd_opt(chrono::Datelike::year(day), chrono::Datelike::month(day), 1)
                .expect("valid month");
        let m = expected_monthly.entry(month).or_default();
        m.0 += e.fulfilled;
        m.1 += e.perfect;
    }
    let monthly: BTreeMap<NaiveDate, (i64, i64)> =
        monthly.into_iter().map(|(m, f, p)| (m, (f, p))).collect();
    assert_eq!(monthly, expected_monthly);
    // The restatements: each month's and day's orders restated by claims filed after the
    // period, as the generator computed them from its facts; the rate at month end is today's
    // plus those orders.
    for (view, expected) in [
        ("restatements_monthly", &shop.restated_months),
        ("restatements_daily", &shop.restated_days),
    ] {
        let column = if view.ends_with("monthly") {
            "month"
        } else {
            "day"
        };
        let rows: Vec<(NaiveDate, i64, i64, i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT {column}, restated_orders, by_claims, perfect_first - perfect_now,
                    fulfilled_first - fulfilled_now, by_cancellations + by_confirmations + by_other
             FROM {view} ORDER BY 1"
        ))
        .fetch_all(&pool)
        .await
        .expect(view);
        let actual: BTreeMap<NaiveDate, i64> = rows
            .iter()
            .map(|(period, restated, by_claims, perfect, fulfilled, other)| {
                assert_eq!(
                    (by_claims, perfect, fulfilled, other),
                    (restated, restated, &0, &0),
                    "{view} {period}: every restated order was perfect, is imperfect, by a claim"
                );
                (*period, *restated)
            })
            .collect();
        assert_eq!(&actual, expected, "{view}");
    }
    assert!(
        !shop.restated_months.is_empty(),
        "the stream restates a month"
    );
    let mut rejected: Vec<Vec<u8>> = sqlx::query_scalar("SELECT raw FROM rejected_events")
        .fetch_all(&pool)
        .await
        .expect("rejected_events");
    let mut junk = shop.junk.clone();
    rejected.sort();
    junk.sort();
    assert_eq!(rejected, junk);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("events");
    assert_eq!(
        events as usize, shop.unique_events,
        "each event stored once"
    );
}

/// CloudEvents binary content mode through a real broker: half of a generated shop's records
/// go with their attributes in `ce_` headers and the data as the value, produced by the
/// simulator's rdkafka producer; the daily KPIs are exactly those of the facts, as for the
/// structured-only stream above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_half_in_binary_mode_gives_the_daily_kpis_of_the_structured_stream() {
    use perfect_order::simulate::sink;
    let Arranged {
        broker,
        pool,
        db_url,
        shop,
        ..
    } = &arrange(9, 600).await;
    let total = shop.records.len() as i64;
    let producer = producer(broker);
    let mut binary = 0;
    for (n, record) in shop.records.iter().enumerate() {
        let mode = sink::mode_of(n as u64, 0.5);
        binary += usize::from(mode == sink::Mode::Binary);
        sink::send(&producer, record.topic, &record.key, &record.value, mode).expect("produce");
    }
    sink::flush(&producer, "orders").expect("flush");
    assert_eq!(binary, shop.records.len() / 2);
    let logs = tempfile::tempdir().expect("temp dir");
    let _service = service(broker, db_url, &logs.path().join("service.log"));
    eventually(
        "the whole stream committed",
        Duration::from_secs(180),
        || async { (committed_records(pool).await == total).then_some(()) },
    )
    .await;
    assert_eq!(support::shop::daily_as_expected(pool).await, shop.expected);
    let (events, rejected): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM rejected_events)",
    )
    .fetch_one(pool)
    .await
    .expect("counts");
    assert_eq!(
        events as usize, shop.unique_events,
        "each event stored once"
    );
    assert_eq!(
        rejected as usize,
        shop.junk.len(),
        "the junk, in either mode"
    );
    // Both modes are stored in the same canonical form: every payload is a structured
    // envelope with its data.
    let bare: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE NOT (payload ? 'specversion' AND payload ? 'data')",
    )
    .fetch_one(pool)
    .await
    .expect("payloads");
    assert_eq!(bare, 0);
}
