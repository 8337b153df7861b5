//! Shared test helpers: fresh databases, Kafka topics and producers, HTTP.
#![allow(dead_code)]

pub mod events;
pub mod hostile;
pub mod reference;
pub mod shop;

use std::time::{Duration, Instant};

use perfect_order::config::Settings;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sqlx::{Connection, PgConnection, PgPool};

/// The server every test database lives on (trust auth, see README).
pub fn pg_server() -> String {
    std::env::var("TEST_PG_SERVER").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A uuid-named database, dropped when the guard goes.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("po_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{}/postgres", pg_server()))
            .await
            .expect("PostgreSQL runs at TEST_PG_SERVER (default 127.0.0.1:5432)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        TestDb {
            url: format!("{}/{name}", pg_server()),
            name,
        }
    }

    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url)
            .await
            .expect("connect test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; a private runtime on a plain thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut admin) =
                    PgConnection::connect(&format!("{}/postgres", pg_server())).await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Settings for a test: the given brokers, topics and database, HTTP on port 0, fast batches.
pub fn settings(brokers: &str, topics: &[&str], db_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env: Vec<(String, String)> = vec![
        ("PERFECT_ORDER__KAFKA__BROKERS".into(), brokers.into()),
        ("PERFECT_ORDER__KAFKA__TOPICS".into(), topics.join(",")),
        (
            "PERFECT_ORDER__KAFKA__GROUP_ID".into(),
            format!("test-{}", uuid::Uuid::new_v4().simple()),
        ),
        ("PERFECT_ORDER__DATABASE__URL".into(), db_url.into()),
        ("PERFECT_ORDER__HTTP__LISTEN".into(), "127.0.0.1:0".into()),
        ("PERFECT_ORDER__BATCH__MAX_WAIT".into(), "100ms".into()),
        ("PERFECT_ORDER__WATCH__INTERVAL".into(), "200ms".into()),
        (
            "PERFECT_ORDER__KAFKA__STATISTICS_INTERVAL".into(),
            "200ms".into(),
        ),
    ];
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    Settings::load_from(None, env).expect("test settings are valid")
}

/// A producer that sends one record per batch (tansu 0.6 mis-serves multi-record batches).
pub fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .expect("producer config is valid")
}

/// Sends `(key, value)` records to `topic` and waits until all are acknowledged.
pub fn produce(producer: &BaseProducer, topic: &str, records: &[(String, Vec<u8>)]) {
    for (key, value) in records {
        loop {
            match producer.send(BaseRecord::to(topic).key(key).payload(value)) {
                Ok(()) => break,
                Err((e, _)) => {
                    if !matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ) {
                        panic!("produce to {topic} failed: {e}");
                    }
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("all records acknowledged");
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if started.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sum of next offsets committed to the database (equals records consumed from offset 0).
pub async fn committed_records(pool: &PgPool) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>("SELECT sum(next_offset)::bigint FROM consumer_offsets")
        .fetch_one(pool)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// A plain HTTP/1.1 GET on loopback; returns (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// A child process (broker, Prometheus, the service) killed and reaped when the guard goes.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `perfect-order run` in a process of its own with `env` (`PERFECT_ORDER__*` pairs), its
/// output in `log`; killed when the guard goes.
pub fn run_binary(log: &std::path::Path, env: &[(&str, &str)]) -> Killed {
    let log = std::fs::File::create(log).expect("log file");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_perfect-order"))
        .arg("run")
        .envs(env.iter().copied())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .expect("start perfect-order");
    Killed(child)
}

/// A free loopback port for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The console scenario: one perfect and one 30-minutes-late order delivered in the last
/// hours, and `stuck` created 45 minutes ago and never confirmed (9 records).
pub fn console_scenario(stuck: &str) -> Vec<(String, Vec<u8>)> {
    use events::*;
    let start = chrono::Utc::now() - chrono::TimeDelta::hours(5);
    let mut records: Vec<_> = perfect_lifecycle("OK", start)
        .into_iter()
        .map(|e| keyed("OK", e))
        .collect();
    let mut late = perfect_lifecycle("LATE", start);
    late[3] = delivered("LATE", start + minutes(4 * 60 + 30));
    records.extend(late.into_iter().map(|e| keyed("LATE", e)));
    records.push(keyed(
        stuck,
        created(stuck, chrono::Utc::now() - minutes(45)),
    ));
    // Contract v2: a courier of team T-1 praised in a review, and a negative review nobody
    // answered.
    let now = chrono::Utc::now();
    records.push((
        "K-1".into(),
        rostered("K-1", "T-1", now - chrono::TimeDelta::days(2)).into_bytes(),
    ));
    // This month's smiley (the contest is per month), also just after midnight on the 1st.
    records.push((
        "R-1".into(),
        review_posted("R-1", 5, Some("K-1"), same_shop_day(now, now - minutes(50))).into_bytes(),
    ));
    records.push((
        "R-2".into(),
        review_posted("R-2", 1, None, now - minutes(40)).into_bytes(),
    ));
    records
}

/// A running service that has consumed [`console_scenario`]; the guards keep the broker and
/// the database alive as long as the fixture.
pub struct ConsoleFixture {
    pub service: perfect_order::Service,
    pub db: TestDb,
    _cluster: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
}

pub async fn console_fixture(stuck: &str) -> ConsoleFixture {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 1, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let records = console_scenario(stuck);
    produce(&producer(&brokers), "orders", &records);
    let service = perfect_order::Service::start(settings(&brokers, &["orders"], &db.url, &[]))
        .await
        .expect("service starts");
    let pool = db.pool().await;
    eventually("all records committed", Duration::from_secs(30), || async {
        (committed_records(&pool).await == records.len() as i64).then_some(())
    })
    .await;
    ConsoleFixture {
        service,
        db,
        _cluster: cluster,
    }
}

/// A record keyed by its order id, as the shop platform produces it.
pub fn keyed(order: &str, json: String) -> (String, Vec<u8>) {
    (order.to_owned(), json.into_bytes())
}

/// The value of a metric series in a Prometheus text exposition (`name{labels}` exactly).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// A tansu broker (in memory) on a free loopback port, killed when the guard goes.
pub fn tansu() -> (Killed, String) {
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = std::process::Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tansu is on PATH (cargo install tansu --locked --features dynostore; see README)");
    let guard = Killed(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "tansu did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, format!("127.0.0.1:{port}"))
}

/// Creates a topic on a tansu broker.
pub fn create_topic(broker: &str, name: &str, partitions: u32) {
    let status = std::process::Command::new("tansu")
        .args([
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
        ])
        .args(["--broker", &format!("tcp://{broker}")])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run tansu topic create");
    assert!(status.success(), "creating topic {name} failed");
}

/// Every offset below a partition's stored next offset that is not in exactly one of
/// `events` (its first copy), `rejected_events` or `duplicate_events`: empty when every
/// consumed record is accounted for (the records of these tests start at offset 0 with no gap).
pub async fn unaccounted_offsets(pool: &PgPool) -> Vec<(String, i32, i64, i64)> {
    sqlx::query_as(
        "WITH wanted AS (
           SELECT c.topic, c.partition, g.o FROM consumer_offsets c,
             generate_series(0::bigint, c.next_offset - 1) AS g(o)),
         found AS (
           SELECT topic, partition, \"offset\" AS o FROM events
           UNION ALL SELECT topic, partition, \"offset\" FROM rejected_events
           UNION ALL SELECT topic, partition, \"offset\" FROM duplicate_events)
         SELECT w.topic::text, w.partition, w.o, count(f.o)
         FROM wanted w LEFT JOIN found f USING (topic, partition, o)
         GROUP BY 1, 2, 3 HAVING count(f.o) <> 1 ORDER BY 1, 2, 3",
    )
    .fetch_all(pool)
    .await
    .expect("the accounting query runs")
}

/// A TCP proxy on loopback that a test can cut (every connection closed, new ones refused)
/// and restore: an outage of the server behind it without touching the server.
pub struct Proxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let (up2, generation2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                let born = generation2.load(Ordering::Acquire);
                let generation = generation2.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let cut = async {
                        while generation.load(Ordering::Acquire) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::Release);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::Release);
    }
}
