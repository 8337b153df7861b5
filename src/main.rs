//! The `perfect-order` command line: load settings, set up logging, run.

// The benchmark harness is part of the binary, not of the library: the product does not
// depend on it.
mod bench;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use perfect_order::config::{LogFormat, Settings};
use perfect_order::simulate::Shop;
use tracing_subscriber::EnvFilter;

/// Perfect-order KPIs from a shop's order events.
///
/// Consumes CloudEvents (order.created, order.confirmed, order.shipped, order.delivered,
/// order.cancelled, claim.filed, claim.resolved) from Kafka, folds every order into a
/// perfect-order projection, and keeps KPI tables in PostgreSQL and metrics for Prometheus.
///
/// Settings: built-in defaults, then the --config file (YAML or TOML), then environment
/// variables such as PERFECT_ORDER__KAFKA__BROKERS=host:9092 (double underscores between
/// levels). See docs/reference.md, "Configuration".
#[derive(Parser)]
#[command(name = "perfect-order", version, about, long_about)]
struct Cli {
    /// Configuration file (YAML or TOML); environment variables override it.
    #[arg(long, short, global = true, env = "PERFECT_ORDER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume events and keep the tables and metrics up to date (until Ctrl-C or SIGTERM).
    Run,
    /// Create or upgrade the tables and views (PostgreSQL or SQLite, as database.url says), then
    /// exit.
    Migrate,
    /// See it work in one command: an embedded Kafka-protocol broker, a simulated shop (history,
    /// then live traffic), the service and its web console. Ctrl-C stops it cleanly.
    ///
    /// Stores into a SQLite file under --data-dir (default ./perfect-order-demo), unless
    /// database.url (file or environment) names another database; a second run continues with
    /// the same data.
    Demo(DemoArgs),
    /// Recompute every projection and KPI row from the event store under the current rules
    /// (after a rule change, e.g. a new delivery tolerance), swapping the result in atomically.
    Rebuild,
    /// Print the monthly KPI table: perfect-order rate, deviations and claims by category with
    /// the month-over-month change.
    Report {
        /// How many months, most recent last.
        #[arg(long, default_value_t = 12)]
        months: i64,
    },
    /// Explain one order: its verdict and maturity, each criterion of the rules with the
    /// measured value, the rule's value and the event that decided it (with where it was
    /// read), and the order's timeline with each event's arrival.
    Explain {
        /// The order's id, as in the events' `data.order_id`.
        order_id: String,
        /// The same as JSON (what GET /api/orders/{id} answers).
        #[arg(long)]
        json: bool,
    },
    /// Generate realistic shop traffic (contract v1) into Kafka or a file, or replay a file.
    ///
    /// Examples:
    ///   perfect-order simulate --output events.jsonl --days 30
    ///   perfect-order simulate --brokers 127.0.0.1:9092 --topic shop.orders --days 60 --live --speedup 60
    ///   perfect-order simulate --from events.jsonl --brokers 127.0.0.1:9092 --topic shop.orders
    Simulate(Box<SimulateArgs>),
    /// End-to-end benchmark: one generated stream (>= 1M events) through a broker in its own
    /// process, drained by a bare consumer, PostgreSQL COPY, perfect-order and a naive
    /// consumer; prints events/s (median), peak RSS, p99 batch commit and the ratios.
    ///
    /// Example: perfect-order bench --events 1000000 --partitions 6 --runs 3 --broker mock --broker tansu
    Bench(BenchArgs),
    /// Read-side benchmark: fills PostgreSQL with histories of several sizes (the product's own
    /// batch transaction, no broker) and times every console endpoint, every dashboard query,
    /// every daily and monthly view and the watch tick (p50/p95 per size).
    ///
    /// Example: perfect-order bench-scale --orders 100000 --orders 300000 --orders 1000000
    BenchScale(ScaleArgs),
    /// One measured mode of `bench`, in a process of its own (used by `bench`).
    #[command(hide = true)]
    BenchChild {
        #[arg(value_parser = ["broker", "consume", "copy", "e2e", "naive", "cache"])]
        mode: String,
        #[command(flatten)]
        args: bench::ChildArgs,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Records in the stream (the simulator's contract-v1 mix with duplicates and junk).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Partitions of the benchmark topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Runs per mode (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Brokers to run on (repeat for several): the mock cluster in its own process, tansu.
    #[arg(long = "broker", value_enum, default_values_t = [bench::BrokerKind::Mock])]
    brokers: Vec<bench::BrokerKind>,
    /// Events the naive consumer handles per run (it is slow; its rate is per-event cost).
    #[arg(long, default_value_t = 20_000)]
    naive_events: u64,
    /// PostgreSQL server for the runs' databases (each run creates and drops its own).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg_server: String,
    /// Seed of the simulated shop.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Days of shop time the stream spans (sets the simulated order rate).
    #[arg(long, default_value_t = 14.0)]
    days: f64,
    /// Orders held in the projection cache for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    cache_orders: u64,
    /// Mix contract-v2 events (reviews, couriers, claim stages, spend, leads) into the stream.
    #[arg(long)]
    contract_v2: bool,
}

#[derive(clap::Args)]
struct ScaleArgs {
    /// History sizes in orders (repeat for several), measured in this order.
    #[arg(long = "orders", default_values_t = [100_000u64, 300_000, 1_000_000])]
    orders: Vec<u64>,
    /// Timed repetitions of each read, after one warm-up.
    #[arg(long, default_value_t = 20)]
    reps: usize,
    /// PostgreSQL server; each size gets a database po_scale_<orders> there.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg_server: String,
    /// Seed of the simulated shop.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Orders per minute of the simulated shop (the history spans orders / rate).
    #[arg(long, default_value_t = 2.0)]
    orders_per_minute: f64,
    /// Keep the databases afterwards, and reuse (migrate, then time) any that exists.
    #[arg(long)]
    keep: bool,
    /// Records per committed batch while filling.
    #[arg(long, default_value_t = 5000)]
    batch_records: usize,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Days of simulated history before now.
    #[arg(long, default_value_t = 60.0)]
    days: f64,
    /// Average orders per minute of the simulated shop.
    #[arg(long, default_value_t = 1.0)]
    orders_per_minute: f64,
    /// Time compression of the live traffic after the history (1 = real time).
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// Random seed of the simulated shop (the same seed replays the same history, which the
    /// event store deduplicates).
    #[arg(long, default_value_t = Shop::default().seed)]
    seed: u64,
    /// Where the demo keeps its SQLite database (used unless database.url names another) and
    /// its log file (perfect-order.log).
    #[arg(long, default_value = "perfect-order-demo")]
    data_dir: PathBuf,
    /// Show the logs on the terminal too (they always go to the log file), with the figures
    /// as plain lines instead of the progress bar and the status line.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Kafka bootstrap servers to produce to.
    #[arg(long)]
    brokers: Option<String>,
    /// Topic for order events (and claims, unless --claims-topic is given).
    #[arg(long, default_value = "shop.orders")]
    topic: String,
    /// Topic for claim events, when the shop keeps one topic per family (co-partitioned).
    #[arg(long)]
    claims_topic: Option<String>,
    /// Write the records to this file (one record value per line) instead of Kafka.
    #[arg(long, conflicts_with_all = ["brokers", "from"])]
    output: Option<PathBuf>,
    /// Replay a file written by --output into Kafka (needs --brokers).
    #[arg(long, requires = "brokers")]
    from: Option<PathBuf>,
    /// Random seed: the same seed and knobs give the same stream.
    #[arg(long, default_value_t = Shop::default().seed)]
    seed: u64,
    /// Average orders per minute (Poisson arrivals).
    #[arg(long, default_value_t = Shop::default().orders_per_minute)]
    orders_per_minute: f64,
    /// Days of history before now.
    #[arg(long, default_value_t = 7.0)]
    days: f64,
    /// After the history, keep producing live traffic (until Ctrl-C or --duration).
    #[arg(long)]
    live: bool,
    /// Simulated time of live traffic to produce, e.g. 2h (with --live; default: until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Time compression of live traffic: 60 plays an hour of shop time per minute.
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// Median confirmation delay in minutes (log-normal).
    #[arg(long, default_value_t = Shop::default().confirmation_median_minutes)]
    confirmation_median_minutes: f64,
    /// Spread of the confirmation delay; larger means a longer tail past 30 minutes.
    #[arg(long, default_value_t = Shop::default().confirmation_sigma)]
    confirmation_sigma: f64,
    /// Share of deliveries after the promised slot.
    #[arg(long, default_value_t = Shop::default().late_courier_rate)]
    late_courier_rate: f64,
    /// Share of deliveries with an item missing.
    #[arg(long, default_value_t = Shop::default().short_delivery_rate)]
    short_delivery_rate: f64,
    /// Share of delivered orders that get a claim (quality most often).
    #[arg(long, default_value_t = Shop::default().claim_rate)]
    claim_rate: f64,
    /// Share of claims filed after the 14-day window.
    #[arg(long, default_value_t = Shop::default().late_claim_rate)]
    late_claim_rate: f64,
    /// Share of orders cancelled.
    #[arg(long, default_value_t = Shop::default().cancel_rate)]
    cancel_rate: f64,
    /// Share of records sent twice (producer retries).
    #[arg(long, default_value_t = Shop::default().duplicate_rate)]
    duplicate_rate: f64,
    /// Share of records that arrive up to two hours late.
    #[arg(long, default_value_t = Shop::default().out_of_order_rate)]
    out_of_order_rate: f64,
    /// Share of records followed by an unreadable one.
    #[arg(long, default_value_t = Shop::default().junk_rate)]
    junk_rate: f64,
    /// Emit contract v1 only (no reviews, couriers, claim stages, spend or leads).
    #[arg(long)]
    v1_only: bool,
    /// Share of delivered orders that get a review (contract v2).
    #[arg(long, default_value_t = Shop::default().review_rate)]
    review_rate: f64,
    /// Share of delivered orders with a courier violation (contract v2).
    #[arg(long, default_value_t = Shop::default().violation_rate)]
    violation_rate: f64,
    /// Average leads captured per hour (contract v2).
    #[arg(long, default_value_t = Shop::default().leads_per_hour)]
    leads_per_hour: f64,
    /// Topic for the contract-v2 events keyed by their own entity (reviews, couriers, spend,
    /// leads); default: the --topic.
    #[arg(long)]
    entity_topic: Option<String>,
    /// Pretend it is this instant (RFC 3339): with the same seed, the output is identical.
    #[arg(long, value_parser = parse_instant)]
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// Send this share of the records in CloudEvents binary mode (attributes in `ce_`
    /// headers, the data as the value) and the rest in structured mode; `--binary-mode`
    /// alone sends them all in binary mode. Kafka only: a file of values has no headers.
    #[arg(long, value_name = "SHARE", num_args = 0..=1, default_missing_value = "1",
          default_value_t = 0.0, value_parser = parse_share, conflicts_with = "output")]
    binary_mode: f64,
    /// librdkafka producer property, repeatable: --producer-property batch.num.messages=1
    #[arg(long = "producer-property", value_parser = parse_property)]
    producer_properties: Vec<(String, String)>,
}

fn parse_instant(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{raw}` is not RFC 3339 ({e}), e.g. 2026-10-01T00:00:00+03:00"))
}

fn parse_share(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!(
            "`{raw}` is not a share between 0 and 1 (0.5: half the records)"
        )),
    }
}

fn parse_property(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{raw}` is not key=value"))
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    use perfect_order::simulate::{sink, Generator};
    let shop = Shop {
        seed: args.seed,
        orders_per_minute: args.orders_per_minute,
        confirmation_median_minutes: args.confirmation_median_minutes,
        confirmation_sigma: args.confirmation_sigma,
        late_courier_rate: args.late_courier_rate,
        short_delivery_rate: args.short_delivery_rate,
        claim_rate: args.claim_rate,
        late_claim_rate: args.late_claim_rate,
        cancel_rate: args.cancel_rate,
        duplicate_rate: args.duplicate_rate,
        out_of_order_rate: args.out_of_order_rate,
        junk_rate: args.junk_rate,
        contract_v2: !args.v1_only,
        review_rate: args.review_rate,
        violation_rate: args.violation_rate,
        leads_per_hour: args.leads_per_hour,
    };
    if !(args.days >= 0.0 && args.days.is_finite()) {
        anyhow::bail!("--days must be zero or more");
    }
    if !(args.speedup > 0.0 && args.speedup.is_finite()) {
        anyhow::bail!("--speedup must be a positive number");
    }
    let now = chrono::SubsecRound::trunc_subsecs(args.now.unwrap_or_else(chrono::Utc::now), 0);
    let start = now - chrono::TimeDelta::seconds((args.days * 86_400.0) as i64);
    let end = match (args.live, args.duration) {
        (false, _) => now,
        (true, Some(d)) => {
            now + chrono::TimeDelta::from_std(d).context("--duration is too long")?
        }
        (true, None) => now + chrono::TimeDelta::days(3650),
    };
    // About 5 records per order, for the progress bar of the history.
    let estimate =
        Some((args.orders_per_minute * args.days * 1440.0 * 5.0) as u64).filter(|_| !args.live);
    if let Some(path) = &args.output {
        let generator = Generator::new(shop, start, end).map_err(anyhow::Error::msg)?;
        sink::write_file(generator, path, estimate)?;
        return Ok(());
    }
    let Some(brokers) = &args.brokers else {
        anyhow::bail!("say where the records go: --brokers HOST:PORT (Kafka) or --output FILE");
    };
    let producer = sink::producer(brokers, &args.producer_properties)?;
    if let Some(path) = &args.from {
        sink::replay(path, &producer, &args.topic, args.binary_mode)?;
        return Ok(());
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let generator = Generator::new(shop, start, end).map_err(anyhow::Error::msg)?;
    let claims_topic = args.claims_topic.as_deref().unwrap_or(&args.topic);
    let entity_topic = args.entity_topic.as_deref().unwrap_or(&args.topic);
    let target = sink::Target {
        producer: &producer,
        orders_topic: &args.topic,
        claims_topic,
        entity_topic,
        binary_share: args.binary_mode,
    };
    sink::produce(
        generator,
        &target,
        now,
        args.speedup,
        sink::Progress::Bar(estimate),
        &stop,
    )?;
    Ok(())
}

/// Where the demo's logs go: a file under its data directory, and the terminal only with
/// `--verbose`.
struct DemoLog {
    file: std::fs::File,
    verbose: bool,
}

impl DemoLog {
    /// Opens (appends to) the log file under `args.data_dir`, creating the directory.
    fn open(args: &DemoArgs) -> anyhow::Result<DemoLog> {
        std::fs::create_dir_all(&args.data_dir).with_context(|| {
            format!(
                "cannot create the demo's data directory {}; pass --data-dir a writable directory",
                args.data_dir.display()
            )
        })?;
        let path = perfect_order::demo::terminal::LogFile::path(&args.data_dir);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "cannot write the demo's log file {}; pass --data-dir a writable directory",
                    path.display()
                )
            })?;
        Ok(DemoLog {
            file,
            verbose: args.verbose,
        })
    }
}

/// Installs the logger; `commit_times` adds the benchmark's layer that keeps each batch's
/// commit time (`bench-child e2e`); `demo` sends the logs to the demo's file.
fn init_logging(
    settings: &Settings,
    commit_times: bool,
    demo: Option<DemoLog>,
) -> anyhow::Result<()> {
    let filter = || {
        anyhow::Ok(
            EnvFilter::try_new(&settings.log_level)
                .with_context(|| {
                    format!("log.level `{}` is not a valid filter", settings.log_level)
                })?
                // The driver's URL parser logs the value of a parameter it does not know (an
                // `sslpassword`, say): that line never reaches the logs.
                .add_directive(
                    "sqlx_postgres::options=error"
                        .parse()
                        .context("the built-in log directive is valid")?,
                ),
        )
    };
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let on_terminal = demo.as_ref().is_none_or(|d| d.verbose);
    let terminal = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
    };
    let terminal = on_terminal.then_some(terminal.with_filter(filter()?));
    let file = match demo {
        Some(demo) => Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(demo.file))
                .with_filter(filter()?),
        ),
        None => None,
    };
    let warnings = file
        .is_some()
        .then_some(perfect_order::demo::terminal::CountWarnings);
    tracing_subscriber::registry()
        .with(terminal)
        .with(file)
        .with(warnings)
        .with(
            commit_times
                .then(|| bench::commit_times().clone())
                .with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("perfect_order::metrics", tracing::Level::INFO),
                ),
        )
        .try_init()
        .context("cannot install the logger")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds at startup");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => return simulate(*args),
        Command::BenchChild { mode, args }
            if mode == "broker" || mode == "consume" || mode == "cache" =>
        {
            return match mode.as_str() {
                "broker" => bench::child_broker(&args),
                "consume" => bench::child_consume(&args),
                _ => bench::child_cache(&args),
            };
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(cli));
    // Shutdown is bounded (see `Service::shutdown_bound`): a consumer that could not leave its
    // group (a frozen broker) is not waited for.
    runtime.shutdown_timeout(perfect_order::RUNTIME_STOP);
    result
}

/// Dispatches a command that runs inside the async runtime.
async fn serve(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref()).context("invalid configuration")?;
    let e2e = matches!(&cli.command, Command::BenchChild { mode, .. } if mode == "e2e");
    let demo = match &cli.command {
        Command::Demo(args) => Some(DemoLog::open(args)?),
        _ => None,
    };
    init_logging(&settings, e2e, demo)?;
    match cli.command {
        Command::Migrate => {
            perfect_order::migrate(&settings).await?;
        }
        Command::Rebuild => rebuild(&settings).await?,
        Command::Report { months } => report(&settings, months).await?,
        Command::Explain { order_id, json } => explain(&settings, &order_id, json).await?,
        Command::Simulate(_) => unreachable!("handled before the runtime starts"),
        Command::Bench(args) => run_bench(args).await?,
        Command::BenchScale(args) => {
            bench::scale::run(&bench::scale::Plan {
                orders: args.orders,
                reps: args.reps,
                pg_server: args.pg_server,
                seed: args.seed,
                orders_per_minute: args.orders_per_minute,
                keep: args.keep,
                batch_records: args.batch_records,
            })
            .await?
        }
        Command::BenchChild { mode, args } => match mode.as_str() {
            "copy" => bench::child_copy(&args).await?,
            "e2e" => bench::child_e2e(&args).await?,
            "naive" => bench::child_naive(&args).await?,
            other => anyhow::bail!("unknown bench mode {other}"),
        },
        Command::Demo(args) => {
            let plan = perfect_order::demo::DemoPlan {
                days: args.days,
                orders_per_minute: args.orders_per_minute,
                speedup: args.speedup,
                seed: args.seed,
                data_dir: args.data_dir,
                verbose: args.verbose,
            };
            perfect_order::demo::run(plan, settings, shutdown_signal()).await?
        }
        Command::Run => run(settings).await?,
    }
    Ok(())
}

/// `perfect-order rebuild`, with a progress bar.
async fn rebuild(settings: &Settings) -> anyhow::Result<()> {
    let store = perfect_order::migrate(settings).await?;
    store.write_settings(&settings.rules).await?;
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} rebuilding [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let started = std::time::Instant::now();
    let report = store
        .rebuild(
            &settings.rules,
            &settings.decode.limits(chrono::Utc::now()),
            20_000,
            |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            },
        )
        .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rebuilt {} orders from {} events in {:.1} s ({:.0} events/s){}",
        report.orders,
        report.events,
        secs,
        report.events as f64 / secs.max(1e-9),
        if report.undecodable > 0 {
            format!(
                "; {} stored events no longer decode and were skipped",
                report.undecodable
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `perfect-order report`: the monthly tables of perfect order, claims and the v2 views.
/// `perfect-order explain ORDER_ID`.
async fn explain(settings: &Settings, order_id: &str, json: bool) -> anyhow::Result<()> {
    let store = perfect_order::store::AnyStore::connect(&settings.database.url, 1).await?;
    let story =
        perfect_order::store::order_story(&store, &settings.rules, order_id, chrono::Utc::now())
            .await
            .context("reading the order failed (run `perfect-order migrate` first?)")?;
    let Some(story) = story else {
        anyhow::bail!(
            "no order {order_id:?} is stored in {}: check the id (order ids are case-sensitive) \
             and database.url",
            settings.database_url_redacted()
        );
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&story)?);
    } else {
        print!("{}", perfect_order::report::render_order(&story));
    }
    Ok(())
}

async fn report(settings: &Settings, months: i64) -> anyhow::Result<()> {
    let store = perfect_order::store::AnyStore::connect(
        &settings.database.url,
        settings.database.max_connections,
    )
    .await?;
    let rows = store
        .monthly_report(months)
        .await
        .context("reading the KPI views failed (run `perfect-order migrate` first?)")?;
    print!("{}", perfect_order::report::render(&rows));
    let mut restated = Vec::with_capacity(rows.len());
    for row in &rows {
        restated.push(
            perfect_order::store::month_restatement(&store, row.month, "", 0)
                .await
                .context("reading the restatements failed (run `perfect-order migrate` first?)")?,
        );
    }
    print!("{}", perfect_order::report::render_restatements(&restated));
    // The seeds' other KPIs (contract v2), over the same months up to the newest event.
    let newest = store
        .last_event_time()
        .await?
        .unwrap_or_else(chrono::Utc::now);
    let last = settings.rules.month_of(newest);
    let since = last
        .checked_sub_months(chrono::Months::new(months.clamp(1, 1200) as u32 - 1))
        .unwrap_or(last);
    let service = perfect_order::store::Store::service_months(&store, since)
        .await
        .context("reading the contract-v2 views failed (run `perfect-order migrate` first?)")?;
    print!("{}", perfect_order::report::render_service(&service));
    Ok(())
}

/// `perfect-order bench`: the harness, then its table.
async fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    let plan = bench::Plan {
        events: args.events,
        partitions: args.partitions,
        runs: args.runs.max(1),
        brokers: args.brokers,
        naive_events: args.naive_events,
        pg_server: args.pg_server.trim_end_matches('/').to_owned(),
        seed: args.seed,
        days: args.days,
        cache_orders: args.cache_orders,
        contract_v2: args.contract_v2,
    };
    eprintln!(
        "machine: {} cores; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let results = bench::run(&plan).await?;
    print!("{}", bench::render(&plan, &results));
    Ok(())
}

/// `perfect-order run`: the service until SIGINT or SIGTERM.
async fn run(settings: Settings) -> anyhow::Result<()> {
    let drain_timeout = settings.kafka.drain_timeout;
    let service = perfect_order::Service::start(settings).await?;
    shutdown_signal().await;
    tracing::info!(
        bound_s = perfect_order::Service::shutdown_bound(drain_timeout).as_secs_f64(),
        "shutting down: committing the batch in flight"
    );
    service.stop().await;
    Ok(())
}
