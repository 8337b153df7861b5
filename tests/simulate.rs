//! The traffic simulator: valid per the contract, deterministic, faulty as asked, and usable
//! end to end (into Kafka, from a file, consumed by the service, read back by `report`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use perfect_order::domain::{decode, Decoded};
use perfect_order::simulate::{Generator, Shop, SimRecord};
use rdkafka::mocking::MockCluster;
use support::*;

fn anchor() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-10-01T00:00:00+03:00")
        .expect("literal")
        .with_timezone(&Utc)
}

fn day_of_traffic(shop: Shop) -> Vec<SimRecord> {
    Generator::new(shop, anchor() - TimeDelta::days(1), anchor())
        .expect("valid shop")
        .collect()
}

fn validator(path: &Path) -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    jsonschema::validator_for(&schema).expect("compiles")
}

#[test]
fn simulated_events_validate_against_the_schemas_and_junk_is_rejected() {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let envelope = validator(&schemas.join("cloudevent.schema.json"));
    let records = day_of_traffic(Shop {
        junk_rate: 0.05,
        ..Shop::default()
    });
    let (mut valid, mut junk) = (0, 0);
    let mut types = std::collections::BTreeSet::new();
    for r in &records {
        match decode(&r.value) {
            Ok(Decoded::Known(e)) => {
                let json: serde_json::Value = serde_json::from_slice(&r.value).expect("JSON");
                assert!(envelope.is_valid(&json), "envelope of {json}");
                let data = validator(
                    &schemas
                        .join("data")
                        .join(format!("{}.schema.json", e.kind.type_name())),
                );
                assert!(data.is_valid(&json["data"]), "data of {json}");
                let key = ["order_id", "review_id", "courier_id", "spend_id", "lead_id"]
                    .iter()
                    .find_map(|k| json["data"][k].as_str())
                    .expect("an id to key by");
                assert_eq!(r.key, key, "keyed by order id, else by the entity's id");
                types.insert(e.kind.type_name());
                valid += 1;
            }
            Ok(Decoded::Unknown { type_name, .. }) => panic!("unknown type {type_name}"),
            Err(_) => junk += 1,
        }
    }
    assert!(valid > 10_000, "{valid} events in a day at 2 orders/min");
    // Claims come days after delivery: a single day has few of them, so only their filing
    // is required here.
    for t in perfect_order::domain::event::KNOWN_TYPES {
        let rare = ["claim.resolved", "claim.updated"].contains(&t);
        assert!(
            rare || types.contains(t),
            "the simulated day has no {t}: {types:?}"
        );
    }
    let share = junk as f64 / valid as f64;
    assert!((0.03..0.07).contains(&share), "junk share {share}");
}

#[test]
fn the_same_seed_gives_the_same_stream_and_another_seed_another() {
    let a = day_of_traffic(Shop::default());
    assert_eq!(a, day_of_traffic(Shop::default()));
    assert_ne!(
        a,
        day_of_traffic(Shop {
            seed: 7,
            ..Shop::default()
        })
    );
}

#[test]
fn stream_faults_appear_at_the_rates_asked() {
    let records = day_of_traffic(Shop {
        duplicate_rate: 0.1,
        out_of_order_rate: 0.2,
        ..Shop::default()
    });
    let mut seen = std::collections::HashSet::new();
    let duplicates = records
        .iter()
        .filter(|r| !seen.insert(r.value.clone()))
        .count();
    let share = duplicates as f64 / records.len() as f64;
    assert!((0.07..0.12).contains(&share), "duplicate share {share}");
    let times: Vec<DateTime<Utc>> = records
        .iter()
        .filter_map(|r| match decode(&r.value) {
            Ok(Decoded::Known(e)) => Some(e.time),
            _ => None,
        })
        .collect();
    let overtaken = times.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(
        overtaken > times.len() / 20,
        "records arrive out of event-time order ({overtaken})"
    );
    let arrivals: Vec<_> = records.iter().map(|r| r.arrival).collect();
    assert!(
        arrivals.windows(2).all(|w| w[0] <= w[1]),
        "emitted in arrival order"
    );
}

#[test]
fn an_out_of_range_rate_is_refused_naming_the_flag() {
    let error = Generator::new(
        Shop {
            claim_rate: 1.5,
            ..Shop::default()
        },
        anchor(),
        anchor(),
    )
    .err();
    assert!(error.is_some_and(|e| e.contains("--claim-rate")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_kafka_traffic_and_a_replayed_file_are_consumed_and_reported() {
    // Arrange: a broker, a database, and a day of traffic written to a file.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("live", 3, 1).expect("topic");
    cluster.create_topic("replayed", 3, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("events.jsonl");
    let bin = env!("CARGO_BIN_EXE_perfect-order");
    let common = [
        "--days",
        "1",
        "--orders-per-minute",
        "1",
        "--now",
        "2026-10-01T12:00:00+03:00",
    ];
    let written = Command::new(bin)
        .args(["simulate", "--output"])
        .arg(&file)
        .args(common)
        .output()
        .expect("simulate");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let lines = std::fs::read_to_string(&file)
        .expect("file")
        .lines()
        .count() as i64;

    // Act: produce into Kafka directly, and replay the file into a second topic.
    let produced = Command::new(bin)
        .args(["simulate", "--brokers", &brokers, "--topic", "live"])
        .args(common)
        .output()
        .expect("simulate");
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let replayed = Command::new(bin)
        .args([
            "simulate",
            "--brokers",
            &brokers,
            "--topic",
            "replayed",
            "--from",
        ])
        .arg(&file)
        .output()
        .expect("replay");
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let service =
        perfect_order::Service::start(settings(&brokers, &["live", "replayed"], &db.url, &[]))
            .await
            .expect("service starts");
    let pool = db.pool().await;
    eventually("both topics committed", Duration::from_secs(90), || async {
        (committed_records(&pool).await == 2 * lines).then_some(())
    })
    .await;
    service.stop().await;

    // Assert: the same stream twice is counted once; report prints the month.
    let (events, rejected): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM rejected_events)",
    )
    .fetch_one(&pool)
    .await
    .expect("counts");
    let distinct_valid = std::fs::read_to_string(&file)
        .expect("file")
        .lines()
        .filter_map(|l| match decode(l.as_bytes()) {
            Ok(Decoded::Known(e)) => Some(e.key),
            _ => None,
        })
        .collect::<std::collections::HashSet<_>>()
        .len() as i64;
    assert_eq!(events, distinct_valid, "the replayed copy adds no event");
    assert!(rejected > 0, "junk is kept, from both topics");
    let fulfilled: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(fulfilled), 0)::bigint FROM daily_kpi")
            .fetch_one(&pool)
            .await
            .expect("sum");
    assert!(fulfilled > 500, "{fulfilled} fulfilled orders");
    let report = Command::new(bin)
        .arg("report")
        .env("PERFECT_ORDER__DATABASE__URL", &db.url)
        .output()
        .expect("report");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(
        text.contains("Perfect order by month") && text.contains("2026-09"),
        "{text}"
    );
}

#[test]
fn live_traffic_is_paced_by_the_speedup() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("live", 1, 1).expect("topic");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_perfect-order"))
        .args([
            "simulate",
            "--brokers",
            &cluster.bootstrap_servers(),
            "--topic",
            "live",
        ])
        .args([
            "--days",
            "0",
            "--live",
            "--duration",
            "30m",
            "--speedup",
            "900",
            "--orders-per-minute",
            "20",
        ])
        .output()
        .expect("simulate");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 30 simulated minutes at 900x take 2 s of wall time.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(20),
        "took {took:?}"
    );
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks("live", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert!(high - low > 100, "{} records produced", high - low);
}
