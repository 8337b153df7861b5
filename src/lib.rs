//! perfect-order: order-lifecycle events on Kafka in, perfect-order KPIs out.
//!
//! `main.rs` only parses the command line, loads settings and sets up logging; everything
//! else starts here ([`Service::start`]) so tests run the same code as the binary.

pub mod batch;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod report;
pub mod simulate;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use crate::config::Settings;
use crate::ingest::{Ingest, Readiness};
use crate::metrics::Metrics;
use crate::store::{AnyStore, Backend, Store};

/// A failure to start or run the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Ingest(#[from] ingest::Error),
    #[error("cannot listen on {addr} (http.listen): {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Creates the database of `database.url` if it does not exist yet, then connects and applies
/// the migrations (`perfect-order migrate`, and `run` unless `database.migrate_on_start` is off).
pub async fn migrate(settings: &Settings) -> Result<AnyStore, Error> {
    use sqlx::migrate::MigrateDatabase;
    let url = &settings.database.url;
    // Only a definite "does not exist" leads to CREATE DATABASE; any other failure (no server,
    // no permission) surfaces from the connect below with the URL named. A SQLite file is
    // created by the connect.
    let postgres = Backend::of(url) == Some(Backend::Postgres);
    if postgres && matches!(sqlx::Postgres::database_exists(url).await, Ok(false)) {
        sqlx::Postgres::create_database(url)
            .await
            .map_err(|source| store::Error::connect(url, source))?;
        info!(database = %settings.database_url_redacted(), "created the database");
    }
    let store = AnyStore::connect(url, settings.database.max_connections).await?;
    store.migrate().await?;
    info!(database = %settings.database_url_redacted(), "migrations applied");
    let started = std::time::Instant::now();
    let filled = store
        .backfill(&settings.rules, |orders| {
            // Every 100,000 orders (a chunk is 5,000): a big history says it is working.
            if orders > 0 && orders % 100_000 == 0 {
                info!(
                    orders,
                    "filling restated_orders from the stored orders (once)"
                );
            }
        })
        .await?;
    if filled > 0 {
        info!(
            orders = filled,
            seconds = started.elapsed().as_secs(),
            "restated_orders filled from the stored orders"
        );
    }
    Ok(store)
}

/// How long the HTTP server and the gauge timer get to stop after ingest has stopped.
const BACKGROUND_STOP: std::time::Duration = std::time::Duration::from_millis(1500);

/// How long the binary's async runtime gets to wind down after [`Service::stop`].
pub const RUNTIME_STOP: std::time::Duration = std::time::Duration::from_millis(500);

/// A running service: consumer, committer, HTTP server and the shop-wide gauge timer.
pub struct Service {
    /// The address the HTTP server bound (useful with port 0).
    pub http_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    ingest: Ingest,
    stop: watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Starts everything; returns once the consumer is subscribed and the HTTP server listens.
    pub async fn start(settings: Settings) -> Result<Service, Error> {
        info!("starting perfect-order: {}", settings.summary());
        let store = if settings.database.migrate_on_start {
            migrate(&settings).await?
        } else {
            AnyStore::connect(&settings.database.url, settings.database.max_connections).await?
        };
        store.write_settings(&settings.rules).await?;
        store.set_cache_capacity(settings.batch.projection_cache);
        let metrics = Metrics::new(settings.team_labels)?;
        let readiness = Arc::new(Readiness::new(settings.kafka.broker_silence));
        let (stop, stop_rx) = watch::channel(false);

        let listener = tokio::net::TcpListener::bind(settings.http_listen)
            .await
            .map_err(|source| Error::Listen {
                addr: settings.http_listen,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: settings.http_listen,
            source,
        })?;
        let app = http::router(Arc::new(http::AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            rules: settings.rules.clone(),
        }));
        let server = tokio::spawn(http::serve::serve(
            listener,
            app,
            settings.http_guards,
            stop_rx.clone(),
        ));
        info!(address = %http_addr, "HTTP server listening (/metrics, /healthz, /readyz, /api/late-orders)");

        let watch_task = tokio::spawn(watch_loop(
            store.clone(),
            metrics.clone(),
            readiness.clone(),
            settings.rules.clone(),
            settings.watch_interval,
            stop_rx,
        ));
        let ingest = Ingest::start(&settings, store, metrics.clone(), readiness).await?;
        Ok(Service {
            http_addr,
            metrics,
            ingest,
            stop,
            background: vec![server, watch_task],
        })
    }

    /// Commits the batch in flight, leaves the consumer group and stops the HTTP server, within
    /// [`Service::shutdown_bound`]: a batch that cannot commit within `kafka.drain_timeout`
    /// is rolled back and read again at the next start.
    pub async fn stop(self) {
        self.ingest.stop().await;
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + BACKGROUND_STOP;
        for mut task in self.background {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
        info!("stopped");
    }

    /// The longest shutdown of the process can take (`kafka.drain_timeout` + 5 s): the drain
    /// timeout for the batch in flight, then closing the consumer, the HTTP connections and
    /// the gauge timer, then the async runtime.
    pub fn shutdown_bound(drain_timeout: std::time::Duration) -> std::time::Duration {
        drain_timeout + ingest::SHUTDOWN_GRACE + BACKGROUND_STOP + RUNTIME_STOP
    }
}

/// What one tick of the gauge timer reads at `now`: the SLA watch with the rolling windows,
/// the live contract-v2 figures and how this month's and last month's rates moved since
/// first complete (also what `bench-scale` times as the watch tick).
pub async fn watch_tick<S: Store>(
    store: &S,
    rules: &domain::Rules,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Tick, store::Error> {
    Ok(Tick {
        figures: store.shop_figures(rules, now).await?,
        service: store.service_figures(rules, now).await?,
        restatements: store::restatement_changes(store, rules, now).await?,
    })
}

/// The figures of one tick of the gauge timer.
pub struct Tick {
    pub figures: store::ShopFigures,
    pub service: store::service::ServiceFigures,
    /// `current` (this month's days since each ended) and `previous` (last month since it
    /// ended).
    pub restatements: Vec<(&'static str, store::RestatementChange)>,
}

/// Recomputes the shop-wide gauges from the database on a timer, even when no event arrives.
async fn watch_loop<S: Store>(
    store: S,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    rules: domain::Rules,
    every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match watch_tick(&store, &rules, chrono::Utc::now()).await {
            Ok(tick) => {
                metrics.record_shop_figures(&tick.figures);
                metrics.record_service_figures(&tick.service);
                metrics.record_restatements(&tick.restatements);
                let checks = readiness.checks(true, chrono::Utc::now());
                metrics.record_ready(checks.ready(), &checks.labelled());
            }
            Err(e) => {
                metrics.record_watch_failure(&e);
                let checks = readiness.checks(false, chrono::Utc::now());
                metrics.record_ready(checks.ready(), &checks.labelled());
            }
        }
    }
}
