//! `perfect-order demo`: an embedded Kafka-protocol broker (librdkafka's mock cluster), a
//! simulated shop writing its history and then live traffic into it, and the service with its
//! console reading it, in one process.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{SubsecRound, TimeDelta, Utc};
use rdkafka::mocking::MockCluster;

use crate::config::{Settings, DEFAULT_DATABASE_URL};
use crate::simulate::{mock_partitions_for, sink, Generator, Shop};

pub mod terminal;
use crate::store::AnyStore;
use crate::Service;

/// What the demo simulates.
#[derive(Debug, Clone)]
pub struct DemoPlan {
    /// Days of simulated history before now.
    pub days: f64,
    /// Average orders per minute of the simulated shop.
    pub orders_per_minute: f64,
    /// Time compression of the live traffic after the history (1 = real time).
    pub speedup: f64,
    /// Seed of the simulated shop.
    pub seed: u64,
    /// Where the demo keeps its SQLite database (unless `database.url` names another) and
    /// its log file.
    pub data_dir: PathBuf,
    /// The logs on the terminal too, and the figures as plain lines instead of a bar and a
    /// status line redrawn in place.
    pub verbose: bool,
}

/// A failure to start or run the demo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--speedup and --orders-per-minute must be positive, --days not negative")]
    Plan,
    #[error("cannot start the embedded Kafka-protocol broker: {0}")]
    Broker(rdkafka::error::KafkaError),
    #[error("cannot create topic {topic} on the embedded broker: {source}")]
    Topic {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("the simulated shop cannot start: {0}")]
    Shop(String),
    #[error(transparent)]
    Simulate(#[from] sink::Error),
    #[error(transparent)]
    Service(#[from] crate::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// Runs the demo until `shutdown` resolves, then commits the batch in flight and stops.
pub async fn run(
    plan: DemoPlan,
    mut settings: Settings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    if !(plan.speedup > 0.0 && plan.days >= 0.0 && plan.orders_per_minute > 0.0) {
        return Err(Error::Plan);
    }
    let cluster = MockCluster::new(1).map_err(Error::Broker)?;
    // Each run has a fresh in-memory broker whose offsets start at 0 again, so each run reads
    // its own topic; the replayed history is deduplicated by the event store.
    let topic = format!("demo-{}", Utc::now().timestamp());
    // The embedded broker keeps at most 5 MiB per partition and drops older records; the
    // history is produced faster than it is consumed, so the topic gets enough partitions to
    // hold all of it (about 6 records of 500 bytes per order).
    let history_bytes = plan.days * 1440.0 * plan.orders_per_minute * 6.0 * 500.0;
    let partitions = mock_partitions_for(history_bytes as u64, 3).min(512);
    cluster
        .create_topic(&topic, partitions, 1)
        .map_err(|source| Error::Topic {
            topic: topic.clone(),
            source,
        })?;
    settings.kafka.brokers = cluster.bootstrap_servers();
    settings.kafka.topics = vec![topic.clone()];
    settings.kafka.group_id = "perfect-order-demo".into();
    if settings.database.url == DEFAULT_DATABASE_URL {
        let file = plan.data_dir.join("perfect-order.db");
        settings.use_database(format!("sqlite://{}", file.display()));
    }
    let service = Service::start(settings.clone()).await?;
    let log = terminal::LogFile::path(&plan.data_dir);
    print_banner(&plan, &settings, &service, &topic, &log);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(sink::Tally::default());
    let (simulator, store) =
        start_shop(&plan, &settings, &topic, stop.clone(), tally.clone()).await?;
    let screen = terminal::Screen::new(plan.verbose, log);
    tokio::select! {
        () = shutdown => {}
        () = screen.show(&service.metrics, &store, &settings.rules, &tally) => {}
    }
    screen.stopping();
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || simulator.join()).await;
    let metrics = service.metrics.clone();
    service.stop().await;
    screen.stopped(&metrics, &settings.database_url_redacted());
    drop(cluster);
    Ok(())
}

/// Where to look.
fn print_banner(
    plan: &DemoPlan,
    settings: &Settings,
    service: &Service,
    topic: &str,
    log: &std::path::Path,
) {
    println!();
    println!("perfect-order demo is running");
    println!("  console:   http://{}/", service.http_addr);
    println!("  metrics:   http://{}/metrics", service.http_addr);
    println!("  late list: http://{}/api/late-orders", service.http_addr);
    println!(
        "  Kafka:     {} (topic {topic}; any Kafka client can read it)",
        settings.kafka.brokers
    );
    println!("  database:  {}", settings.database_url_redacted());
    if plan.verbose {
        println!("  logs:      here, and in {}", log.display());
    } else {
        println!("  logs:      {} (--verbose shows them here)", log.display());
    }
    println!(
        "  simulating up to {} day(s) of history at {} orders/min, then live traffic at {}x; Ctrl-C stops",
        plan.days, plan.orders_per_minute, plan.speedup
    );
    println!();
}

/// Starts the simulated shop on a thread of its own: the history up to now, then live
/// traffic. A second run continues the same shop from its last stored event.
async fn start_shop(
    plan: &DemoPlan,
    settings: &Settings,
    topic: &str,
    stop: Arc<AtomicBool>,
    tally: Arc<sink::Tally>,
) -> Result<(std::thread::JoinHandle<()>, AnyStore), Error> {
    let now = Utc::now().trunc_subsecs(0);
    let mut start = now - TimeDelta::seconds((plan.days * 86_400.0) as i64);
    let mut seed = plan.seed;
    // It simulates only what happened since the last stored event, with a seed of its own
    // so that its order and event ids are new.
    let store = AnyStore::connect(&settings.database.url, 1).await?;
    let last = store.last_event_time().await?;
    if let Some(last) = last.filter(|l| *l > start) {
        start = last.min(now);
        seed = seed.wrapping_add(now.timestamp() as u64);
        println!("  continuing the shop from its last event at {last}");
    }
    let shop = Shop {
        seed,
        orders_per_minute: plan.orders_per_minute,
        ..Shop::default()
    };
    let generator =
        Generator::new(shop, start, now + TimeDelta::days(3650)).map_err(Error::Shop)?;
    let producer = sink::producer(&settings.kafka.brokers, &[])?;
    let topic = topic.to_owned();
    let speedup = plan.speedup;
    let simulator = std::thread::spawn(move || {
        let target = sink::Target {
            producer: &producer,
            orders_topic: &topic,
            claims_topic: &topic,
            entity_topic: &topic,
            // A quarter in binary mode: the demo reads both modes of the binding.
            binary_share: 0.25,
        };
        let progress = sink::Progress::Tally(&tally);
        if let Err(e) = sink::produce(generator, &target, now, speedup, progress, &stop) {
            tracing::error!(error = %e, "the simulator stopped");
        }
    });
    Ok((simulator, store))
}
