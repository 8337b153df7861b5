//! `perfect-order bench`: the end-to-end benchmark against the physical limits.
//!
//! One generated stream (the simulator's realistic contract-v1 mix, with its duplicates and
//! junk) is produced once into a broker hosted in its own process: librdkafka's mock cluster
//! (run by this binary as `bench-child broker`) and/or tansu. Then each mode drains it in a
//! child process of its own, so that its peak RSS is its own:
//! - `consume`: a bare rdkafka consumer that decodes nothing (the broker/client ceiling);
//! - `copy`: the same events written by PostgreSQL `COPY` into the event-store table (the
//!   database ceiling);
//! - `e2e`: perfect-order itself, broker to every table, offsets stored;
//! - `naive`: per event decode, one transaction upserting the order row, commit, then a
//!   synchronous Kafka offset commit.
//!
//! Each child prints one `RESULT {json}` line; the parent takes medians over the runs.
//!
//! The harness is a module of the binary, not of the library: it drives the product through
//! its public API (`Service`, the simulator, the stores) and measures commit times from the
//! service's own `batch committed` log events ([`CommitTimes`]).

pub mod scale;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use perfect_order::simulate::{mock_partitions_for, sink, Generator, Shop, SimRecord};

/// The harness's knobs (the `bench` command line).
#[derive(Debug, Clone)]
pub struct Plan {
    pub events: u64,
    pub partitions: i32,
    pub runs: usize,
    pub brokers: Vec<BrokerKind>,
    /// Events the naive consumer handles per run (its rate is per-event cost, so a prefix of
    /// the stream measures it; the full stream would take hours).
    pub naive_events: u64,
    /// PostgreSQL server (no database): each run gets a fresh database there.
    pub pg_server: String,
    pub seed: u64,
    /// Days of shop time the stream covers (sets the order rate of the simulated shop).
    pub days: f64,
    /// Orders to hold in the projection cache for the memory measurement (0: skip it).
    pub cache_orders: u64,
    /// Mix the simulator's contract-v2 events (reviews, couriers, claim stages, spend, leads)
    /// into the stream.
    pub contract_v2: bool,
}

/// Everything one `bench` measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub rows: Vec<Row>,
    /// The projection cache holding `Plan::cache_orders` orders.
    pub cache: Option<Measured>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BrokerKind {
    /// librdkafka's mock cluster, hosted by this binary in a process of its own.
    Mock,
    /// tansu (on PATH), in memory.
    Tansu,
}

impl BrokerKind {
    fn name(self) -> &'static str {
        match self {
            BrokerKind::Mock => "mock cluster",
            BrokerKind::Tansu => "tansu",
        }
    }
}

/// What one child measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measured {
    pub events: u64,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    pub p99_commit_seconds: Option<f64>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

/// The stream every mode sees: deterministic for (seed, days, events).
pub fn stream(
    seed: u64,
    days: f64,
    events: u64,
    contract_v2: bool,
) -> anyhow::Result<impl Iterator<Item = SimRecord>> {
    let start: DateTime<Utc> = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(); // 2026-01-01
                                                                                               // ~4.1 records per order in the default shop: spread the orders over `days`.
    let orders = events as f64 / 4.1;
    let shop = Shop {
        seed,
        orders_per_minute: (orders / (days * 1440.0)).max(0.01),
        // Off by default: the harness measures the order pipeline, and its figures stay
        // comparable with the runs before contract v2 (`--contract-v2` mixes v2 in).
        contract_v2,
        ..Shop::default()
    };
    let end = start + chrono::TimeDelta::days(3650);
    Ok(Generator::new(shop, start, end)
        .map_err(anyhow::Error::msg)?
        .take(events as usize))
}

/// Peak resident set of this process (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A process that is killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_listening(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not listen on 127.0.0.1:{port} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Starts a broker in its own process with `topic` of `partitions`; returns it and its address.
fn start_broker(kind: BrokerKind, topic: &str, partitions: i32) -> anyhow::Result<(Guard, String)> {
    match kind {
        BrokerKind::Mock => {
            let mut child = Command::new(std::env::current_exe()?)
                .args(["bench-child", "broker", "--topic", topic])
                .args(["--partitions", &partitions.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("cannot start the mock-cluster process")?;
            let stdout = child.stdout.take().context("mock cluster stdout")?;
            let guard = Guard(child);
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line)?;
            let address = line
                .strip_prefix("BROKER ")
                .map(|a| a.trim().to_owned())
                .with_context(|| format!("the mock cluster said {line:?}"))?;
            Ok((guard, address))
        }
        BrokerKind::Tansu => {
            let port = free_port()?;
            let url = format!("tcp://127.0.0.1:{port}");
            let child = Command::new("tansu")
                .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start tansu: install it (cargo install tansu --version 0.6.0 --locked --features dynostore) or pass --broker mock")?;
            let guard = Guard(child);
            wait_listening(port, "tansu")?;
            let status = Command::new("tansu")
                .args([
                    "topic",
                    "create",
                    topic,
                    "--partitions",
                    &partitions.to_string(),
                ])
                .args(["--broker", &url])
                .stdout(Stdio::null())
                .status()
                .context("cannot run tansu topic create")?;
            if !status.success() {
                bail!("tansu topic create {topic} failed");
            }
            Ok((guard, format!("127.0.0.1:{port}")))
        }
    }
}

/// Partitions the topic needs: the plan's, or more on the mock cluster to hold the stream
/// (with a third of headroom for record overhead).
fn partitions_for(plan: &Plan, kind: BrokerKind) -> anyhow::Result<i32> {
    if kind != BrokerKind::Mock {
        return Ok(plan.partitions);
    }
    let bytes: u64 = stream(plan.seed, plan.days, plan.events, plan.contract_v2)?
        .map(|r| (r.value.len() + r.key.len() + 64) as u64)
        .sum();
    Ok(mock_partitions_for(bytes, plan.partitions))
}

/// Produces the stream into `topic`, keyed by order; tansu gets one record per batch (its
/// fetch of multi-record batches is faulty).
fn produce(
    plan: &Plan,
    kind: BrokerKind,
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<u64> {
    let mut properties = vec![(
        "queue.buffering.max.messages".to_owned(),
        "1000000".to_owned(),
    )];
    if kind == BrokerKind::Tansu {
        properties.push(("batch.num.messages".into(), "1".into()));
    }
    let producer = sink::producer(brokers, &properties)?;
    let bar = sink::bar(
        Some(plan.events),
        &format!("producing into {}", kind.name()),
    );
    let mut n = 0u64;
    for record in stream(plan.seed, plan.days, plan.events, plan.contract_v2)? {
        sink::send(
            &producer,
            topic,
            &record.key,
            &record.value,
            sink::Mode::Structured,
        )?;
        n += 1;
        if n % 4096 == 0 {
            producer.poll(Duration::ZERO);
            bar.set_position(n);
        }
    }
    sink::flush(&producer, topic)?;
    bar.finish_with_message(format!("produced {n} records"));
    if kind == BrokerKind::Mock {
        // tansu's watermarks read wrong (docs/testing.md); the mock cluster's are exact.
        let stored = stored_records(brokers, topic, partitions)?;
        if stored < n {
            bail!("the broker holds {stored} of the {n} records produced into {topic}");
        }
    }
    Ok(n)
}

/// The sum of the high watermarks of `topic` (records stored, as all start at offset 0).
fn stored_records(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("cannot create a consumer to read the watermarks")?;
    let mut total = 0u64;
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        total += (high - low).max(0) as u64;
    }
    Ok(total)
}

/// Runs one mode in a child process and reads its `RESULT` line.
fn child(args: &[String]) -> anyhow::Result<Measured> {
    let mut command = Command::new(std::env::current_exe()?);
    if std::env::var_os("PERFECT_ORDER__LOG__LEVEL").is_none() {
        command.env("PERFECT_ORDER__LOG__LEVEL", "warn");
    }
    let out = command
        .arg("bench-child")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot start a benchmark child")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The child's logs (stdout) go to our stderr.
    for l in text.lines().filter(|l| !l.starts_with("RESULT ")) {
        eprintln!("   | {l}");
    }
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| {
            format!(
                "`bench-child {}` printed no result ({})",
                args.join(" "),
                out.status
            )
        })?;
    Ok(serde_json::from_str(line)?)
}

pub(crate) async fn drop_database(server: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    pub broker: &'static str,
    pub partitions: i32,
    pub mode: &'static str,
    pub runs: Vec<Measured>,
}

impl Row {
    pub fn median_rate(&self) -> f64 {
        let mut rates: Vec<f64> = self.runs.iter().map(Measured::rate).collect();
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len() / 2).copied().unwrap_or(0.0)
    }
}

const MODES: [(&str, &str); 4] = [
    ("consume", "consume-only (bare rdkafka consumer)"),
    ("copy", "COPY-only (PostgreSQL COPY into events)"),
    ("e2e", "perfect-order end to end"),
    ("naive", "naive consumer (tx + offset commit per event)"),
];

/// Runs the whole plan; prints progress to stderr and returns what it measured.
pub async fn run(plan: &Plan) -> anyhow::Result<Results> {
    let mut rows: Vec<Row> = Vec::new();
    for kind in &plan.brokers {
        let topic = format!("bench-{}", uuid_like());
        let partitions = partitions_for(plan, *kind)?;
        eprintln!(
            "== {}: starting, topic {topic} with {partitions} partitions",
            kind.name()
        );
        let (_broker, address) = start_broker(*kind, &topic, partitions)?;
        produce(plan, *kind, &address, &topic, partitions)?;
        for (mode, label) in MODES {
            // COPY does not read the broker: measure it once.
            if mode == "copy" && rows.iter().any(|r| r.mode == label) {
                continue;
            }
            let on = Topic {
                kind: *kind,
                address: &address,
                topic: &topic,
                partitions,
            };
            rows.push(measure_mode(plan, &on, mode, label).await?);
        }
    }
    let cache = if plan.cache_orders > 0 {
        Some(measure_cache(plan)?)
    } else {
        None
    };
    Ok(Results { rows, cache })
}

/// The topic a mode is measured on.
struct Topic<'a> {
    kind: BrokerKind,
    address: &'a str,
    topic: &'a str,
    partitions: i32,
}

/// `plan.runs` runs of one mode, each in a child process on a database of its own.
async fn measure_mode(
    plan: &Plan,
    on: &Topic<'_>,
    mode: &str,
    label: &'static str,
) -> anyhow::Result<Row> {
    let mut row = Row {
        broker: if mode == "copy" {
            "—"
        } else {
            on.kind.name()
        },
        partitions: on.partitions,
        mode: label,
        runs: Vec::new(),
    };
    for run in 1..=plan.runs {
        let database = format!("po_bench_{}", uuid_like());
        let url = format!("{}/{database}", plan.pg_server);
        let events = if mode == "naive" {
            plan.naive_events.min(plan.events)
        } else {
            plan.events
        };
        let args: Vec<String> = vec![
            mode.into(),
            "--brokers".into(),
            on.address.to_owned(),
            "--topic".into(),
            on.topic.to_owned(),
            "--partitions".into(),
            on.partitions.to_string(),
            "--events".into(),
            events.to_string(),
            "--database".into(),
            url,
            "--seed".into(),
            plan.seed.to_string(),
            "--days".into(),
            plan.days.to_string(),
            format!("--contract-v2={}", plan.contract_v2),
        ];
        let measured = child(&args);
        if mode != "consume" {
            drop_database(&plan.pg_server, &database).await;
        }
        let measured =
            measured.with_context(|| format!("{label} on {}, run {run}", on.kind.name()))?;
        eprintln!(
            "   {label}, run {run}: {} events in {:.2} s = {:.0} events/s, peak RSS {} MB{}",
            measured.events,
            measured.seconds,
            measured.rate(),
            measured.peak_rss_bytes / 1_000_000,
            measured
                .p99_commit_seconds
                .map(|p| format!(", p99 commit {:.0} ms", p * 1000.0))
                .unwrap_or_default()
        );
        row.runs.push(measured);
    }
    Ok(row)
}

/// The projection cache's measurement, in a child process.
fn measure_cache(plan: &Plan) -> anyhow::Result<Measured> {
    eprintln!("== projection cache: {} orders", plan.cache_orders);
    let args: Vec<String> = vec![
        "cache".into(),
        "--topic".into(),
        "-".into(),
        "--events".into(),
        plan.cache_orders.to_string(),
        "--seed".into(),
        plan.seed.to_string(),
        "--days".into(),
        plan.days.to_string(),
    ];
    child(&args).context("the projection cache measurement")
}

fn uuid_like() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

/// The result table and the ratios, in Markdown.
pub fn render(plan: &Plan, results: &Results) -> String {
    use std::fmt::Write;
    let rows = &results.rows;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} events, median of {} runs; naive consumer on the first {} events.\n",
        plan.events,
        plan.runs,
        plan.naive_events.min(plan.events)
    );
    let _ = writeln!(out, "| broker | partitions | mode | events/s (median) | runs (events/s) | peak RSS | p99 batch commit |");
    let _ = writeln!(out, "|---|---:|---|---:|---|---:|---:|");
    for r in rows {
        let runs: Vec<String> = r.runs.iter().map(|m| format!("{:.0}", m.rate())).collect();
        let rss = r.runs.iter().map(|m| m.peak_rss_bytes).max().unwrap_or(0);
        let p99 = r
            .runs
            .iter()
            .filter_map(|m| m.p99_commit_seconds)
            .fold(None, |a: Option<f64>, p| Some(a.map_or(p, |a| a.max(p))));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} MB | {} |",
            r.broker,
            r.partitions,
            r.mode,
            r.median_rate(),
            runs.join(", "),
            rss / 1_000_000,
            p99.map_or("—".into(), |p| format!(
                "{:.0} ms (worst run)",
                p * 1000.0
            ))
        );
    }
    let rate = |broker: &str, mode: &str| {
        rows.iter()
            .find(|r| (r.broker == broker || broker.is_empty()) && r.mode == mode)
            .map(Row::median_rate)
    };
    let _ = writeln!(out);
    for kind in &plan.brokers {
        let b = kind.name();
        let e2e = rate(b, MODES[2].1);
        let ratio = |other: Option<f64>| match (e2e, other) {
            (Some(a), Some(o)) if o > 0.0 => format!("{:.2}", a / o),
            _ => "—".into(),
        };
        let _ = writeln!(
            out,
            "- {b}: perfect-order / COPY-only = **{}** (target ≥ 0.50); perfect-order / consume-only = **{}** (target ≥ 0.80); perfect-order / naive = **{}** (target ≥ 20)",
            ratio(rate("", MODES[1].1)),
            ratio(rate(b, MODES[0].1)),
            ratio(rate(b, MODES[3].1)),
        );
    }
    if let Some(c) = &results.cache {
        let _ = writeln!(
            out,
            "- projection cache: {} orders held, peak RSS **{} MB** (target ≤ 300 MB)",
            c.events,
            c.peak_rss_bytes / 1_000_000
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// The children.

/// Arguments every child gets.
#[derive(Debug, Clone, clap::Args)]
pub struct ChildArgs {
    #[arg(long, default_value = "")]
    pub brokers: String,
    #[arg(long)]
    pub topic: String,
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    #[arg(long, default_value_t = 0)]
    pub events: u64,
    #[arg(long, default_value = "")]
    pub database: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 14.0)]
    pub days: f64,
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub contract_v2: bool,
}

fn report(m: &Measured) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "RESULT {}", serde_json::to_string(m)?)?;
    out.flush()?;
    Ok(())
}

/// `bench-child broker`: a mock cluster with the topic, until stdin closes.
pub fn child_broker(args: &ChildArgs) -> anyhow::Result<()> {
    let cluster = rdkafka::mocking::MockCluster::new(1).context("cannot start the mock cluster")?;
    cluster
        .create_topic(&args.topic, args.partitions, 1)
        .with_context(|| format!("cannot create topic {}", args.topic))?;
    println!("BROKER {}", cluster.bootstrap_servers());
    std::io::stdout().flush()?;
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink)? > 0 {}
    Ok(())
}

fn assigned_consumer(args: &ChildArgs, group: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("cannot create the consumer")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..args.partitions {
        tpl.add_partition_offset(&args.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// `bench-child consume`: drain `events` records, touching only their length.
pub fn child_consume(args: &ChildArgs) -> anyhow::Result<()> {
    let consumer = assigned_consumer(args, &format!("bench-consume-{}", uuid_like()))?;
    let mut n = 0u64;
    let mut bytes = 0u64;
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(3600);
    while n < args.events && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            started.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len) as u64;
            n += 1;
        }
    }
    std::hint::black_box(bytes);
    report(&Measured {
        events: n,
        seconds: started.map_or(0.0, |s| s.elapsed().as_secs_f64()),
        peak_rss_bytes: peak_rss(),
        p99_commit_seconds: None,
    })
}

/// The run's fresh database (`--database`), created and migrated: the settings and the store.
async fn fresh_database(
    args: &ChildArgs,
) -> anyhow::Result<(
    perfect_order::config::Settings,
    perfect_order::store::PgStore,
)> {
    let settings = settings_for(args, &[])?;
    match perfect_order::migrate(&settings).await? {
        perfect_order::store::AnyStore::Postgres(pg) => Ok((settings, pg)),
        perfect_order::store::AnyStore::Sqlite(_) => bail!("--database must be a postgres:// URL"),
    }
}

/// `bench-child copy`: COPY the stream's unique valid events into the event store.
pub async fn child_copy(args: &ChildArgs) -> anyhow::Result<()> {
    use perfect_order::domain::{decode, Decoded};
    let (_, pg) = fresh_database(args).await?;
    // The rows, prepared before the clock starts (CSV, as COPY reads it).
    let mut csv = Vec::with_capacity(args.events as usize * 600);
    let mut seen = HashSet::new();
    let mut rows = 0u64;
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for (i, record) in stream(args.seed, args.days, args.events, args.contract_v2)?.enumerate() {
        let Ok(Decoded::Known(event)) = decode(&record.value) else {
            continue;
        };
        if !seen.insert(event.key.clone()) {
            continue;
        }
        let payload = String::from_utf8_lossy(&record.value);
        let line = format!(
            "{},{},{},{},{},{},{},{},{}\n",
            quote(event.key.source.as_str()),
            quote(event.key.id.as_str()),
            event.kind.type_name(),
            event.time.to_rfc3339(),
            event
                .kind
                .order_id()
                .map_or(String::new(), |id| quote(id.as_str())),
            args.topic,
            0,
            i,
            quote(&payload)
        );
        csv.extend_from_slice(line.as_bytes());
        rows += 1;
    }
    let mut conn = pg.pool().acquire().await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY events (source, id, type, time, order_id, topic, partition, \"offset\", payload) FROM STDIN WITH (FORMAT csv)",
        )
        .await?;
    for chunk in csv.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    report(&Measured {
        events: rows,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        p99_commit_seconds: None,
    })
}

fn settings_for(
    args: &ChildArgs,
    extra: &[(&str, &str)],
) -> anyhow::Result<perfect_order::config::Settings> {
    // PERFECT_ORDER__* of the environment tune the service under test (batch.lanes, ...);
    // where it reads and writes is the harness's.
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("PERFECT_ORDER__"))
        .collect();
    env.extend([
        ("PERFECT_ORDER__KAFKA__BROKERS".into(), args.brokers.clone()),
        ("PERFECT_ORDER__KAFKA__TOPICS".into(), args.topic.clone()),
        (
            "PERFECT_ORDER__KAFKA__GROUP_ID".into(),
            format!("bench-{}", uuid_like()),
        ),
        ("PERFECT_ORDER__DATABASE__URL".into(), args.database.clone()),
        ("PERFECT_ORDER__HTTP__LISTEN".into(), "127.0.0.1:0".into()),
    ]);
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Ok(perfect_order::config::Settings::load_from(None, env)?)
}

/// `bench-child e2e`: perfect-order drains the topic into a fresh database. The clock starts
/// at the first committed batch (group join is not throughput) and stops when every record's
/// offset is stored.
pub async fn child_e2e(args: &ChildArgs) -> anyhow::Result<()> {
    let (settings, pg) = fresh_database(args).await?;
    let pool = pg.pool().clone();
    let service = perfect_order::Service::start(settings).await?;
    let committed = || async {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT sum(next_offset)::bigint FROM consumer_offsets",
        )
        .fetch_one(&pool)
        .await
        .ok()
        .flatten()
        .unwrap_or(0) as u64
    };
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut first: Option<(Instant, u64)> = None;
    let mut done = 0;
    while Instant::now() < deadline {
        done = committed().await;
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done));
        }
        if done >= args.events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end = Instant::now();
    let p99 = commit_times().quantile(0.99);
    service.stop().await;
    let (t0, at_first) = first.context("nothing was committed")?;
    report(&Measured {
        events: done.saturating_sub(at_first),
        seconds: (end - t0).as_secs_f64(),
        peak_rss_bytes: peak_rss(),
        p99_commit_seconds: p99,
    })
}

/// `bench-child naive`: the consumer most teams write first.
pub async fn child_naive(args: &ChildArgs) -> anyhow::Result<()> {
    use perfect_order::domain::{decode, Decoded, EventKind};
    let (_, pg) = fresh_database(args).await?;
    let pool = pg.pool().clone();
    sqlx::query(
        "CREATE TABLE naive_orders (order_id text PRIMARY KEY, created_at timestamptz,
           confirmed_at timestamptz, shipped_at timestamptz, delivered_at timestamptz,
           cancelled_at timestamptz, claims int NOT NULL DEFAULT 0)",
    )
    .execute(&pool)
    .await?;
    let consumer = assigned_consumer(args, &format!("bench-naive-{}", uuid_like()))?;
    let mut n = 0u64;
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(3600);
    while n < args.events && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        started.get_or_insert_with(Instant::now);
        if let Ok(Decoded::Known(event)) = decode(m.payload().unwrap_or_default()) {
            let column = match &event.kind {
                EventKind::OrderCreated(_) => "created_at",
                EventKind::OrderConfirmed(_) => "confirmed_at",
                EventKind::OrderShipped(_) => "shipped_at",
                EventKind::OrderDelivered(_) => "delivered_at",
                EventKind::OrderCancelled(_) => "cancelled_at",
                EventKind::ClaimFiled(_) | EventKind::ClaimResolved(_) => "",
                _ => continue,
            };
            let Some(order_id) = event.kind.order_id() else {
                continue;
            };
            let mut tx = pool.begin().await?;
            if column.is_empty() {
                sqlx::query(
                    "INSERT INTO naive_orders (order_id, claims) VALUES ($1, 1)
                     ON CONFLICT (order_id) DO UPDATE SET claims = naive_orders.claims + 1",
                )
                .bind(order_id.as_str())
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(&format!(
                    "INSERT INTO naive_orders (order_id, {column}) VALUES ($1, $2)
                     ON CONFLICT (order_id) DO UPDATE SET {column} = excluded.{column}"
                ))
                .bind(order_id.as_str())
                .bind(event.time)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        consumer.commit_message(&m, CommitMode::Sync)?;
        n += 1;
    }
    report(&Measured {
        events: n,
        seconds: started.map_or(0.0, |s| s.elapsed().as_secs_f64()),
        peak_rss_bytes: peak_rss(),
        p99_commit_seconds: None,
    })
}

/// `bench-child cache`: the resident memory of `events` (here: orders) order projections of
/// the simulated shop held in the projection cache. Prints the peak RSS and the RSS the empty
/// process had, so the cache's share is their difference.
pub fn child_cache(args: &ChildArgs) -> anyhow::Result<()> {
    use perfect_order::domain::{decode, Decoded, Verdict};
    use perfect_order::store::cache::ProjectionCache;
    let before = peak_rss();
    let orders = args.events as usize;
    let mut cache = ProjectionCache::new(orders);
    let started = Instant::now();
    // Enough of the stream for `orders` orders (about 4.1 records each), folded into the cache.
    for record in stream(args.seed, args.days, (orders as f64 * 4.5) as u64, false)? {
        let Ok(Decoded::Known(event)) = decode(&record.value) else {
            continue;
        };
        let Some(id) = event.kind.order_id().map(|id| id.as_str().to_owned()) else {
            continue;
        };
        let mut taken = cache.take(std::slice::from_ref(&id));
        let mut projection = match taken.remove(&id) {
            Some((_, p)) => p,
            None if cache.len() >= orders => continue,
            None => perfect_order::domain::OrderProjection::new(&id),
        };
        projection.apply_owned(event);
        // Measured as if every order were unfinished: the worst case for the cache.
        cache.put(0, Verdict::Open, projection);
    }
    let held = cache.len() as u64;
    let peak = peak_rss();
    eprintln!(
        "   {held} orders in the cache: peak RSS {} MB (empty process {} MB), {:.0} bytes per order",
        peak / 1_000_000,
        before / 1_000_000,
        (peak.saturating_sub(before)) as f64 / held.max(1) as f64
    );
    std::hint::black_box(&cache);
    report(&Measured {
        events: held,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak,
        p99_commit_seconds: None,
    })
}

/// The commit time of every batch the service logged (`batch committed`, `commit_ms`), for
/// the harness's exact p99: a logging layer of the benchmark's own, so the product keeps no
/// benchmark-only samples.
#[derive(Clone, Default)]
pub struct CommitTimes(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

/// The commit times of this process (the `e2e` child installs the layer that fills them).
pub fn commit_times() -> &'static CommitTimes {
    static TIMES: std::sync::OnceLock<CommitTimes> = std::sync::OnceLock::new();
    TIMES.get_or_init(CommitTimes::default)
}

impl CommitTimes {
    /// The `q` quantile (nearest rank) of the commit times so far, in seconds.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut ms = self.0.lock().ok()?.clone();
        ms.sort_unstable();
        nearest_rank(&ms, q).map(|v| v as f64 / 1000.0)
    }
}

/// The `q` quantile of `sorted` by nearest rank (PostgreSQL's `percentile_disc`): the value at
/// rank ceil(q * n); `None` when empty.
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let n = sorted.len();
    (n > 0).then(|| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1])
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CommitTimes {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            committed: bool,
            commit_ms: Option<u64>,
        }
        impl tracing::field::Visit for Fields {
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "commit_ms" {
                    self.commit_ms = Some(value);
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.committed = format!("{value:?}") == "batch committed";
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let (true, Some(ms)) = (fields.committed, fields.commit_ms) {
            if let Ok(mut times) = self.0.lock() {
                times.push(ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn commit_times_are_read_from_the_services_batch_committed_events() {
        let times = CommitTimes::default();
        let subscriber = tracing_subscriber::registry().with(times.clone());
        tracing::subscriber::with_default(subscriber, || {
            for ms in [30_u64, 10, 20] {
                tracing::info!(records = 5_u64, commit_ms = ms, "batch committed");
            }
            tracing::info!(commit_ms = 999_u64, "something else");
        });
        assert_eq!(times.quantile(0.5), Some(0.02));
        assert_eq!(times.quantile(0.99), Some(0.03));
    }

    #[test]
    fn no_commit_times_give_no_quantile() {
        assert_eq!(CommitTimes::default().quantile(0.99), None);
    }
}
