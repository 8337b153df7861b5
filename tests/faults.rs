//! The fault suite: nothing lost, nothing stalled. Each scenario runs the service on
//! librdkafka's mock cluster (a real Kafka protocol peer) into a real PostgreSQL database,
//! injects a fault, and checks that every record below the stored offsets is accounted for
//! (in `events`, `rejected_events` or `duplicate_events`) and that the stream goes on.

mod support;

use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use support::events::*;
use support::hostile::{corpus, created_with_data_extra, places_sql};
use support::*;

/// A PostgreSQL trigger that refuses (as a data error, SQLSTATE 22023) every event whose data
/// holds `"refuse": true`: a record the decoder accepts and the database does not.
const REFUSING_TRIGGER: &str = "
    CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.payload -> 'data' ->> 'refuse' = 'true' THEN
        RAISE EXCEPTION 'value refused by the test trigger' USING ERRCODE = '22023';
      END IF;
      IF NEW.payload -> 'data' ->> 'stall' = 'true' AND EXISTS (SELECT 1 FROM stall_switch) THEN
        RAISE EXCEPTION 'could not serialize (test trigger)' USING ERRCODE = '40001';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TABLE stall_switch (on_ boolean);
    CREATE TRIGGER refuse_marked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_marked();";

async fn migrated_with_trigger(db: &TestDb) -> sqlx::PgPool {
    let store = perfect_order::store::AnyStore::connect(&db.url, 2)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let pool = db.pool().await;
    sqlx::raw_sql(REFUSING_TRIGGER)
        .execute(&pool)
        .await
        .expect("install the trigger");
    pool
}

fn orders(from: usize, to: usize) -> Vec<(String, Vec<u8>)> {
    (from..to)
        .flat_map(|i| {
            let id = format!("A-{i}");
            perfect_lifecycle(&id, t0())
                .into_iter()
                .map(move |e| keyed(&id, e))
        })
        .collect()
}

async fn end_offsets(pool: &sqlx::PgPool, total: i64) {
    eventually(
        "offsets at the partition ends",
        Duration::from_secs(60),
        || async { (committed_records(pool).await == total).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_database_refuses_is_isolated_kept_as_store_refused_and_the_stream_goes_on() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let pool = migrated_with_trigger(&db).await;
    let mut records = orders(0, 30);
    records.insert(
        17,
        (
            "P-1".into(),
            created_with_data_extra("P-1", r#""refuse":true"#),
        ),
    );
    records.insert(
        60,
        (
            "P-2".into(),
            created_with_data_extra("P-2", r#""refuse":true"#),
        ),
    );
    produce(&producer(&brokers), "orders", &records);

    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &[]))
        .await
        .expect("service starts");
    end_offsets(&pool, records.len() as i64).await;

    let refused: Vec<(String, String)> =
        sqlx::query_as("SELECT reason, detail FROM rejected_events ORDER BY \"offset\"")
            .fetch_all(&pool)
            .await
            .expect("rejected");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused
        .iter()
        .all(|(reason, detail)| reason == "store_refused"
            && detail.contains("refused by the test trigger")));
    let fulfilled: i64 = sqlx::query_scalar("SELECT sum(fulfilled)::bigint FROM daily_kpi")
        .fetch_one(&pool)
        .await
        .expect("kpi");
    assert_eq!(
        fulfilled, 30,
        "every good order around the poison is folded"
    );
    assert!(unaccounted_offsets(&pool).await.is_empty());
    let (_, metrics) = http_get(service.http_addr, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "perfect_order_rejected_events_total{reason=\"store_refused\"}"
        ),
        Some(2.0)
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_given_up_at_shutdown_keeps_later_batches_of_its_partitions_from_passing_it() {
    // Arrange: one partition; a record the database keeps failing (a transient error) while
    // the switch is on, then more records in later batches.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let pool = migrated_with_trigger(&db).await;
    sqlx::query("INSERT INTO stall_switch VALUES (true)")
        .execute(&pool)
        .await
        .expect("switch on");
    let p = producer(&brokers);
    let first = orders(0, 2);
    produce(&p, "orders", &first);
    let stalled = vec![(
        "S-1".to_owned(),
        created_with_data_extra("S-1", r#""stall":true"#),
    )];
    let extra = [("PERFECT_ORDER__KAFKA__DRAIN_TIMEOUT", "2s")];
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &extra))
        .await
        .expect("service starts");
    end_offsets(&pool, first.len() as i64).await;
    produce(&p, "orders", &stalled);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = orders(2, 5);
    produce(&p, "orders", &later);
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Act: shutdown while the stalled batch fails and later ones wait behind it; the fault
    // clears afterwards, as a database outage would.
    service.stop().await;
    sqlx::query("DELETE FROM stall_switch")
        .execute(&pool)
        .await
        .expect("switch off");

    // Assert: the stored offset never passed the stalled record...
    let stored: i64 = committed_records(&pool).await;
    assert_eq!(
        stored,
        first.len() as i64,
        "no offset passes the given-up batch"
    );
    assert!(unaccounted_offsets(&pool).await.is_empty());
    // ...and a restart reads it again with everything after it.
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &extra))
        .await
        .expect("service restarts");
    let total = (first.len() + stalled.len() + later.len()) as i64;
    end_offsets(&pool, total).await;
    assert!(unaccounted_offsets(&pool).await.is_empty());
    let stored_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("events");
    assert_eq!(stored_events, total);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_a_batch_waits_on_a_lock_finishes_within_the_stated_bound_and_loses_nothing()
{
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let pool = migrated_with_trigger(&db).await;
    let extra = [("PERFECT_ORDER__KAFKA__DRAIN_TIMEOUT", "3s")];
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &extra))
        .await
        .expect("service starts");
    let first = orders(0, 3);
    produce(&producer(&brokers), "orders", &first);
    end_offsets(&pool, first.len() as i64).await;

    // A rebuild (or an operator) holds the events table; the next batch waits on it.
    let mut holder = pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .expect("lock");
    let later = orders(3, 10);
    produce(&producer(&brokers), "orders", &later);
    tokio::time::sleep(Duration::from_millis(800)).await;

    let started = Instant::now();
    service.stop().await;
    let took = started.elapsed();
    let bound = perfect_order::Service::shutdown_bound(Duration::from_secs(3));
    assert!(
        took <= bound,
        "shutdown took {took:?}, the bound is {bound:?}"
    );
    holder.rollback().await.expect("release the lock");

    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &extra))
        .await
        .expect("service restarts");
    end_offsets(&pool, (first.len() + later.len()) as i64).await;
    assert!(unaccounted_offsets(&pool).await.is_empty());
    let fulfilled: i64 = sqlx::query_scalar("SELECT sum(fulfilled)::bigint FROM daily_kpi")
        .fetch_one(&pool)
        .await
        .expect("kpi");
    assert_eq!(fulfilled, 10, "every order once");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_through_a_broker_each_end_in_exactly_one_table_and_the_stream_goes_on() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let max = 256 * 1024;
    let hostile = corpus(max);
    let p = producer(&brokers);
    for h in &hostile {
        let mut record = rdkafka::producer::BaseRecord::<String, Vec<u8>>::to("orders").key(&h.key);
        if let Some(value) = &h.value {
            record = record.payload(value);
        }
        if h.value.as_ref().is_some_and(Vec::is_empty) {
            record = record.headers(rdkafka::message::OwnedHeaders::new().insert(
                rdkafka::message::Header {
                    key: "ce_type",
                    value: Some("order.created"),
                },
            ));
        }
        rdkafka::producer::Producer::flush(&p, Duration::ZERO).ok();
        p.send(record).map_err(|(e, _)| e).expect("send");
    }
    rdkafka::producer::Producer::flush(&p, Duration::from_secs(30)).expect("flushed");
    let tail = orders(0, 3);
    produce(&p, "orders", &tail);
    let max_setting = max.to_string();
    let extra = [(
        "PERFECT_ORDER__DECODE__MAX_RECORD_BYTES",
        max_setting.as_str(),
    )];
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &extra))
        .await
        .expect("service starts");
    let pool = db.pool().await;
    end_offsets(&pool, (hostile.len() + tail.len()) as i64).await;

    for (offset, h) in hostile.iter().enumerate() {
        let place: Vec<(String,)> = sqlx::query_as(&places_sql(offset as i64))
            .fetch_all(&pool)
            .await
            .expect("where");
        assert_eq!(place, vec![(h.expect.place().to_owned(),)], "{}", h.name);
    }
    assert!(unaccounted_offsets(&pool).await.is_empty());
    let days: Vec<(String,)> = sqlx::query_as(
        "SELECT day::text FROM daily_kpi WHERE day < '2000-01-01' OR day > '2200-01-01'",
    )
    .fetch_all(&pool)
    .await
    .expect("days");
    assert!(days.is_empty(), "no implausible KPI day: {days:?}");
    let fulfilled: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(fulfilled), 0)::bigint FROM daily_kpi")
            .fetch_one(&pool)
            .await
            .expect("kpi");
    assert_eq!(fulfilled, 3, "the orders behind the poison are folded");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_answers_within_a_second_false_while_the_database_is_unreachable_then_resumes() {
    // Arrange: a generated shop streams in while the service writes through a TCP proxy.
    let (cluster, shop) = shop_cluster(41, 1500, 3);
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let total = shop.records.len() as i64;
    let server: std::net::SocketAddr = "127.0.0.1:5432".parse().expect("address");
    let proxy = Proxy::start(server).await;
    let through_proxy = db
        .url
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    assert_ne!(
        through_proxy, db.url,
        "TEST_PG_SERVER is 127.0.0.1:5432 for this test"
    );
    let topics = ["orders", "claims"];
    let service = perfect_order::Service::start(settings(&brokers, &topics, &through_proxy, &[]))
        .await
        .expect("service starts");
    eventually("ready", Duration::from_secs(30), || async {
        (http_get(service.http_addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let producing = {
        let records = shop.records.clone();
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            support::shop::produce_all(&brokers, &records, Duration::from_millis(30))
        })
    };
    eventually(
        "a part of the stream committed",
        Duration::from_secs(60),
        || async { (committed_records(&pool).await > total / 5).then_some(()) },
    )
    .await;

    // Act: the database becomes unreachable mid-stream, for a few seconds (the proxy closes
    // its open connections within 20 ms).
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Instant::now();
    let (status, body) = http_get(service.http_addr, "/readyz").await;
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "/readyz took {:?}",
        asked.elapsed()
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database unreachable"), "{body}");
    eventually(
        "the database check gauge at 0",
        Duration::from_secs(10),
        || async {
            let (_, text) = http_get(service.http_addr, "/metrics").await;
            (metric(&text, "perfect_order_ready_check{check=\"database\"}") == Some(0.0))
                .then_some(())
        },
    )
    .await;
    let during = committed_records(&pool).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        committed_records(&pool).await,
        during,
        "nothing commits while the database is unreachable"
    );
    proxy.restore();

    // Assert: ready again, and every day exact after the outage.
    eventually("ready again", Duration::from_secs(30), || async {
        (http_get(service.http_addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    producing.join().expect("producer");
    end_offsets(&pool, total).await;
    assert_exact(&pool, &shop).await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_false_while_the_broker_is_frozen_or_down_and_the_stream_resumes_exactly() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let extra = [("PERFECT_ORDER__KAFKA__BROKER_SILENCE", "2s")];
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &extra))
        .await
        .expect("service starts");
    eventually("ready", Duration::from_secs(30), || async {
        (http_get(service.http_addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let p = producer(&brokers);
    let first = orders(0, 5);
    produce(&p, "orders", &first);
    let second = orders(5, 10);
    produce(&p, "orders", &second);
    let not_ready = |what: &'static str| {
        let addr = service.http_addr;
        async move {
            let body = eventually(what, Duration::from_secs(30), || async {
                let (status, body) = http_get(addr, "/readyz").await;
                (status == 503).then_some(body)
            })
            .await;
            assert!(body.contains("kafka.broker_silence"), "{body}");
            let (_, text) = http_get(addr, "/metrics").await;
            assert_eq!(
                metric(&text, "perfect_order_ready_check{check=\"broker\"}"),
                Some(0.0)
            );
            let answered = metric(&text, "perfect_order_kafka_last_answer_timestamp_seconds")
                .expect("the last answer gauge");
            let silent = chrono::Utc::now().timestamp_millis() as f64 / 1000.0 - answered;
            assert!(
                silent >= 1.5,
                "the gauge shows the broker silent ({silent} s)"
            );
        }
    };

    // Act 1: the broker freezes (it answers nothing for a minute) mid-stream.
    cluster
        .broker_round_trip_time(1, Duration::from_secs(60))
        .expect("freeze");
    not_ready("not ready while the broker is frozen").await;
    cluster
        .broker_round_trip_time(1, Duration::ZERO)
        .expect("thaw");

    // Act 2: the broker goes down.
    cluster.broker_down(1).expect("broker down");
    not_ready("not ready without a broker").await;
    cluster.broker_up(1).expect("broker up");

    // Assert: ready again, and every record of the stream is there once.
    eventually("ready again", Duration::from_secs(90), || async {
        (http_get(service.http_addr, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    let third = orders(10, 12);
    produce(&p, "orders", &third);
    end_offsets(&pool, (first.len() + second.len() + third.len()) as i64).await;
    assert!(unaccounted_offsets(&pool).await.is_empty());
    let fulfilled: i64 = sqlx::query_scalar("SELECT sum(fulfilled)::bigint FROM daily_kpi")
        .fetch_one(&pool)
        .await
        .expect("kpi");
    assert_eq!(fulfilled, 12);

    // A shutdown while the broker is frozen (leaving the group cannot complete) still ends
    // within the stated bound.
    cluster
        .broker_round_trip_time(1, Duration::from_secs(60))
        .expect("freeze");
    let started = Instant::now();
    service.stop().await;
    let bound = perfect_order::Service::shutdown_bound(Duration::from_secs(10));
    assert!(
        started.elapsed() <= bound,
        "shutdown with a frozen broker took {:?}; the bound is {bound:?}",
        started.elapsed()
    );
    // The consumer left behind finishes closing once the broker answers again.
    cluster
        .broker_round_trip_time(1, Duration::ZERO)
        .expect("thaw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_stay_reachable_under_a_flood_of_slow_clients() {
    use tokio::io::AsyncWriteExt;
    // The service runs in its own process, with the open-file limit of an ordinary shell.
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let db = TestDb::create().await;
    let port = free_port();
    let child = std::process::Command::new("bash")
        .args(["-c", "ulimit -n 1024 && exec \"$0\" run"])
        .arg(env!("CARGO_BIN_EXE_perfect-order"))
        .env("PERFECT_ORDER__DATABASE__URL", &db.url)
        .env("PERFECT_ORDER__KAFKA__BROKERS", cluster.bootstrap_servers())
        .env("PERFECT_ORDER__KAFKA__TOPICS", "orders")
        .env("PERFECT_ORDER__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("PERFECT_ORDER__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run starts");
    let _service = Killed(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    eventually("the service to listen", Duration::from_secs(60), || async {
        tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
    })
    .await;

    // Act: 1,100 clients open a connection and send half a request head, then stall.
    let mut slow = Vec::new();
    for _ in 0..1100 {
        if let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await
        {
            let _ = stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .await;
            slow.push(stream);
        }
    }
    assert!(
        slow.len() >= 1000,
        "the flood got through: {} connections",
        slow.len()
    );

    // Assert: a probe is still answered, promptly.
    for path in ["/healthz", "/metrics"] {
        let answered = tokio::time::timeout(Duration::from_secs(3), http_get(addr, path)).await;
        assert!(
            matches!(answered, Ok((200, _))),
            "{path} is unreachable under the flood"
        );
    }
    drop(slow);
}

/// The service binary in its own process on `brokers` (topics `orders` and `claims`), in
/// consumer group `group`, with small batches and `extra` settings.
fn binary_service(
    brokers: &str,
    db_url: &str,
    group: &str,
    log: &std::path::Path,
    extra: &[(&str, &str)],
) -> Killed {
    let mut env = vec![
        ("PERFECT_ORDER__KAFKA__BROKERS", brokers),
        ("PERFECT_ORDER__KAFKA__TOPICS", "orders,claims"),
        ("PERFECT_ORDER__KAFKA__GROUP_ID", group),
        ("PERFECT_ORDER__DATABASE__URL", db_url),
        ("PERFECT_ORDER__HTTP__LISTEN", "127.0.0.1:0"),
        ("PERFECT_ORDER__BATCH__MAX_EVENTS", "200"),
        ("PERFECT_ORDER__BATCH__MAX_WAIT", "100ms"),
        ("PERFECT_ORDER__LOG__LEVEL", "warn"),
    ];
    env.extend_from_slice(extra);
    run_binary(log, &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_some_inside_an_open_batch_transaction_change_no_daily_kpi() {
    // Arrange: a generated shop (duplicates, late claims, junk) on two co-partitioned topics.
    let (cluster, shop) = shop_cluster(11, 3000, 3);
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let total = shop.records.len() as i64;
    let logs = tempfile::tempdir().expect("temp dir");
    let producing = {
        let records = shop.records.clone();
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            support::shop::produce_all(&brokers, &records, Duration::from_millis(20))
        })
    };

    // Act: 20 runs, each killed with SIGKILL; every other kill waits until a batch transaction
    // of the service is open. Each run joins a fresh group (the database's offsets are the
    // truth), so no run waits for a dead member's session to expire.
    let mut rng_state = 0x5eed_u64;
    let mut next = |bound: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % bound
    };
    let mut inside = 0;
    for run in 0..20 {
        let log = logs.path().join(format!("run-{run}.log"));
        let mut service = binary_service(&brokers, &db.url, &format!("kill-{run}"), &log, &[]);
        tokio::time::sleep(Duration::from_millis(400 + next(900))).await;
        if run % 2 == 1 {
            let open = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let open: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()
                           AND xact_start IS NOT NULL AND state <> 'idle'",
                    )
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(0);
                    if open > 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
            .await;
            inside += i32::from(open.is_ok());
        }
        service.0.kill().expect("SIGKILL");
        let _ = service.0.wait();
    }
    producing.join().expect("producer");
    assert!(
        inside >= 3,
        "only {inside} kills landed inside an open transaction"
    );
    let _last = binary_service(
        &brokers,
        &db.url,
        "kill-final",
        &logs.path().join("final.log"),
        &[],
    );
    end_offsets(&pool, total).await;

    // Assert
    assert_exact(&pool, &shop).await;
}

/// Every day's KPIs equal the answer computed from the generated facts, each event is stored
/// once, and every offset below the stored ones is accounted for.
async fn assert_exact(pool: &sqlx::PgPool, shop: &support::shop::Shop) {
    assert_eq!(support::shop::daily_as_expected(pool).await, shop.expected);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .expect("events");
    assert_eq!(
        events as usize, shop.unique_events,
        "each event stored once"
    );
    assert!(unaccounted_offsets(pool).await.is_empty());
}

/// A generated shop (duplicates, late claims, junk) on `orders` and `claims` of a new mock
/// cluster with `partitions` each.
fn shop_cluster(
    seed: u64,
    orders: usize,
    partitions: i32,
) -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    support::shop::Shop,
) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster
        .create_topic("orders", partitions, 1)
        .expect("topic");
    cluster
        .create_topic("claims", partitions, 1)
        .expect("topic");
    let start = chrono::DateTime::parse_from_rfc3339("2026-09-01T00:00:00+03:00")
        .expect("literal")
        .with_timezone(&chrono::Utc);
    (cluster, support::shop::generate(seed, orders, start))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_through_rebalances_and_a_restart_give_exact_daily_kpis() {
    let (cluster, shop) = shop_cluster(23, 1500, 4);
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let total = shop.records.len() as i64;
    let producing = {
        let records = shop.records.clone();
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            support::shop::produce_all(&brokers, &records, Duration::from_millis(150))
        })
    };
    // A short session, so that a member that leaves in the middle of a rebalance is expired
    // in seconds (the mock cluster then waits for its session, as Kafka does).
    let group = [
        ("PERFECT_ORDER__KAFKA__GROUP_ID", "two-instances"),
        ("PERFECT_ORDER__BATCH__MAX_EVENTS", "200"),
        (
            "PERFECT_ORDER__KAFKA__PROPERTIES__SESSION__TIMEOUT__MS",
            "6000",
        ),
        (
            "PERFECT_ORDER__KAFKA__PROPERTIES__HEARTBEAT__INTERVAL__MS",
            "500",
        ),
    ];
    let topics = ["orders", "claims"];
    let start = || perfect_order::Service::start(settings(&brokers, &topics, &db.url, &group));

    // Act: A and B share the partitions; A stops (a rebalance); C joins (another); B restarts.
    let a = start().await.expect("A starts");
    let b = start().await.expect("B starts");
    let progress = |share: i64| {
        let pool = pool.clone();
        async move {
            eventually("progress", Duration::from_secs(120), || async {
                (committed_records(&pool).await >= total * share / 10).then_some(())
            })
            .await
        }
    };
    progress(2).await;
    a.stop().await;
    let c = start().await.expect("C starts");
    progress(5).await;
    b.stop().await;
    let b = start().await.expect("B restarts");
    producing.join().expect("producer");
    end_offsets(&pool, total).await;

    // Assert
    assert_exact(&pool, &shop).await;
    c.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_backlog_exits_within_the_stated_bound_and_a_restart_finishes_exactly() {
    let (cluster, shop) = shop_cluster(31, 3000, 3);
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let total = shop.records.len() as i64;
    support::shop::produce_all(&brokers, &shop.records, Duration::ZERO);
    let logs = tempfile::tempdir().expect("temp dir");

    // Act: the binary works through the backlog; SIGTERM mid-way.
    let drain = Duration::from_secs(4);
    let mut service = binary_service(
        &brokers,
        &db.url,
        "sigterm",
        &logs.path().join("first.log"),
        &[
            ("PERFECT_ORDER__KAFKA__DRAIN_TIMEOUT", "4s"),
            ("PERFECT_ORDER__BATCH__MAX_EVENTS", "500"),
            ("PERFECT_ORDER__BATCH__MAX_WAIT", "500ms"),
        ],
    );
    eventually(
        "a part of the backlog committed",
        Duration::from_secs(60),
        || async { (committed_records(&pool).await > 0).then_some(()) },
    )
    .await;
    let before = committed_records(&pool).await;
    assert!(
        before < total,
        "the SIGTERM lands under backlog ({before} of {total})"
    );
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &service.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || {
        let status = service.0.wait();
        (service, status)
    })
    .await
    .expect("waited")
    .1
    .expect("exit status");
    let took = signalled.elapsed();
    let bound = perfect_order::Service::shutdown_bound(drain);
    assert!(exited.success(), "a clean exit on SIGTERM: {exited}");
    assert!(
        took <= bound,
        "SIGTERM took {took:?}; the bound is {bound:?}"
    );
    assert!(unaccounted_offsets(&pool).await.is_empty());

    // Assert: a restart finishes the backlog with exact results.
    let service = perfect_order::Service::start(settings(
        &brokers,
        &["orders", "claims"],
        &db.url,
        &[("PERFECT_ORDER__KAFKA__GROUP_ID", "sigterm-2")],
    ))
    .await
    .expect("service restarts");
    end_offsets(&pool, total).await;
    assert_exact(&pool, &shop).await;
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_finish_its_request_head_in_time_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let db = TestDb::create().await;
    let extra = [("PERFECT_ORDER__HTTP__HEADER_TIMEOUT", "1s")];
    let service = perfect_order::Service::start(settings(
        &cluster.bootstrap_servers(),
        &["orders"],
        &db.url,
        &extra,
    ))
    .await
    .expect("service starts");
    let mut slow = tokio::net::TcpStream::connect(service.http_addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a head");

    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "the server closes the connection: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "no answer but a timeout: {answer}"
    );
    service.stop().await;
}
