//! `perfect-order bench-scale`: does the read side hold up as history grows?
//!
//! For each history size (orders of a shop taking 2 orders a minute, contract v2, the
//! simulator's faults), a fresh PostgreSQL database is filled through the product's own batch
//! transaction (decode, fold, commit: the same rows as `run` would write, without a broker),
//! with the history ending now, and vacuumed (as autovacuum keeps a store written over
//! months). Then every read the console, the dashboards and the watch
//! timer make is timed, `--reps` times each after one warm-up: the HTTP endpoints (through the
//! router in-process, so without the network), every query of the Grafana dashboards as
//! provisioned, every daily and monthly view read whole and for a bounded range (the last
//! month, the last 30 days), and the watch tick. It prints p50 and
//! p95 per read and size, and the ratio of the largest size's p95 to the smallest's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use perfect_order::batch::{prepare, Record};
use perfect_order::config::Settings;
use perfect_order::simulate::{Family, Generator, Shop};
use perfect_order::store::{AnyStore, Store};

/// What to measure.
pub struct Plan {
    /// History sizes in orders, measured in this order.
    pub orders: Vec<u64>,
    /// Timed repetitions of each read (after one warm-up).
    pub reps: usize,
    /// PostgreSQL server; each size gets a database `po_scale_<orders>` there.
    pub pg_server: String,
    pub seed: u64,
    pub orders_per_minute: f64,
    /// Keep the databases, and reuse one that exists instead of filling it again.
    pub keep: bool,
    /// Records per committed batch while filling.
    pub batch_records: usize,
}

/// The dashboards as provisioned: every query they run is timed.
const DASHBOARDS: [&str; 3] = [
    include_str!("../../deploy/grafana/dashboards/perfect-order.json"),
    include_str!("../../deploy/grafana/dashboards/service-kpis.json"),
    include_str!("../../deploy/grafana/dashboards/on-call-confirmation.json"),
];

/// Every daily and monthly view, read whole (what a SQL client or a report reads).
const VIEWS: [&str; 14] = [
    "po_daily",
    "po_monthly",
    "claims_monthly",
    "confirmation_latency_daily",
    "claims_journal_monthly",
    "courier_smileys_monthly",
    "team_ranking_monthly",
    "review_response_monthly",
    "repeat_customers_monthly",
    "order_dispatch_monthly",
    "acquisition_monthly",
    "lead_base_monthly",
    "restatements_monthly",
    "restatements_daily",
];

/// The endpoints the console reads.
const ENDPOINTS: [&str; 6] = [
    "/api/dashboard",
    "/api/service",
    "/api/late-orders",
    "/api/open-claims",
    "/api/unanswered-negative-reviews",
    "/metrics",
];

/// One read's timings at one size.
struct Timing {
    read: String,
    p50: Duration,
    p95: Duration,
}

/// One size's results.
struct Size {
    orders: u64,
    /// Events stored (the fill's records less duplicates and rejected records).
    events: i64,
    /// The fill, when this run made it.
    fill: Option<Fill>,
    timings: Vec<Timing>,
}

/// How the history was written.
struct Fill {
    records: u64,
    seconds: f64,
}

pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    use sqlx::migrate::MigrateDatabase;
    let mut settings = Settings::load_from(None, Vec::<(String, String)>::new())
        .context("the built-in settings")?;
    let mut sizes = Vec::new();
    for &orders in &plan.orders {
        let database = format!("po_scale_{orders}");
        settings.database.url = format!("{}/{database}", plan.pg_server);
        let reused = plan.keep
            && sqlx::Postgres::database_exists(&settings.database.url)
                .await
                .with_context(|| format!("looking for {database} on {}", plan.pg_server))?;
        if !reused {
            super::drop_database(&plan.pg_server, &database).await;
        }
        // Creates the database when it is missing, connects and migrates, as `migrate` does.
        let store = perfect_order::migrate(&settings).await?;
        store.write_settings(&settings.rules).await?;
        let AnyStore::Postgres(pg) = &store else {
            anyhow::bail!("bench-scale measures PostgreSQL; --pg-server must be postgres://");
        };
        let fill = if reused {
            eprintln!("== {orders} orders: reusing {database}");
            None
        } else {
            Some(fill(plan, orders, &store, &settings).await?)
        };
        // The fill writes months of history in minutes, faster than autovacuum follows: the
        // partial indexes of open sets (unanswered reviews, open claims, awaiting orders)
        // still point at every superseded row version, and the planner's statistics predate
        // the fill. A shop that took months to write it has been vacuumed all along.
        sqlx::query("VACUUM (ANALYZE)")
            .execute(pg.pool())
            .await
            .with_context(|| format!("vacuuming {database} after the fill"))?;
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pg.pool())
            .await
            .context("counting the stored events")?;
        eprintln!("== {orders} orders ({events} events): timing the reads");
        let timings = time_reads(plan, &store, pg.pool(), &settings).await?;
        sizes.push(Size {
            orders,
            events,
            fill,
            timings,
        });
        if !plan.keep {
            drop(store);
            super::drop_database(&plan.pg_server, &database).await;
        }
    }
    print_table(&sizes);
    Ok(())
}

/// Fills the store with `orders` orders of history ending now.
async fn fill(
    plan: &Plan,
    orders: u64,
    store: &AnyStore,
    settings: &Settings,
) -> anyhow::Result<Fill> {
    let now = Utc::now();
    let days = orders as f64 / (plan.orders_per_minute * 1440.0);
    let start = now - TimeDelta::seconds((days * 86_400.0) as i64);
    let shop = Shop {
        seed: plan.seed,
        orders_per_minute: plan.orders_per_minute,
        contract_v2: true,
        ..Shop::default()
    };
    let generator = Generator::new(shop, start, now).map_err(anyhow::Error::msg)?;
    let bar = perfect_order::simulate::sink::bar(None, &format!("{orders} orders of history"));
    let limits = settings.decode.limits(now + TimeDelta::days(1));
    let topics: [Arc<str>; 3] = [
        "shop.orders".into(),
        "shop.claims".into(),
        "shop.entities".into(),
    ];
    let mut offsets = [0i64; 3];
    let mut records = Vec::with_capacity(plan.batch_records);
    let mut events = 0u64;
    let started = Instant::now();
    let mut generator = generator.peekable();
    while generator.peek().is_some() {
        records.clear();
        for sim in generator.by_ref().take(plan.batch_records) {
            let family = match sim.family {
                Family::Orders => 0,
                Family::Claims => 1,
                Family::Entities => 2,
            };
            records.push(Record {
                topic: topics[family].clone(),
                partition: 0,
                offset: offsets[family],
                key: Some(sim.key.into_bytes()),
                payload: Some(sim.value),
                headers: Vec::new(),
            });
            offsets[family] += 1;
        }
        let batch = prepare(std::mem::take(&mut records), &limits);
        store
            .commit_batch(&batch, &settings.rules)
            .await
            .with_context(|| format!("committing the history at {events} records"))?;
        events += batch.len() as u64;
        bar.set_position(events);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "   filled: {events} records committed in {seconds:.1} s = {:.0} records/s",
        events as f64 / seconds
    );
    Ok(Fill {
        records: events,
        seconds,
    })
}

/// Times every read at the store's current history.
async fn time_reads(
    plan: &Plan,
    store: &AnyStore,
    pool: &sqlx::PgPool,
    settings: &Settings,
) -> anyhow::Result<Vec<Timing>> {
    let mut timings = Vec::new();
    let app = perfect_order::http::router(Arc::new(perfect_order::http::AppState {
        store: store.clone(),
        metrics: perfect_order::metrics::Metrics::new(settings.team_labels)?,
        readiness: Arc::new(perfect_order::ingest::Readiness::new(
            settings.kafka.broker_silence,
        )),
        rules: settings.rules.clone(),
    }));
    for path in ENDPOINTS {
        let samples = sample(plan.reps, || async { get(&app, path).await }).await?;
        timings.push(timing(format!("GET {path}"), samples));
    }
    // The bounded ranges the console and the dashboards read: the last whole month, the last
    // 30 days.
    let now = Utc::now();
    let this_month = settings.rules.month_of(now);
    let last_month = this_month
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(this_month);
    let month_ago = settings.rules.day_of(now) - TimeDelta::days(30);
    // One order explained (its page and `explain`): an order delivered on the last day.
    let order: Option<String> = sqlx::query_scalar(
        "SELECT order_id FROM orders
         WHERE delivered_day = (SELECT max(delivered_day) FROM orders) LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .context("picking an order to explain")?;
    if let Some(order) = order {
        let path = format!("/api/orders/{order}");
        let samples = sample(plan.reps, || async { get(&app, &path).await }).await?;
        timings.push(timing("GET /api/orders/{id}".into(), samples));
    }
    // The drill-down lists behind a day's and a month's figures, and the month's restatement
    // (in the last whole month).
    let ym = last_month.format("%Y-%m").to_string();
    let day = (last_month + TimeDelta::days(14)).to_string();
    for path in [
        format!("/api/days/{day}/orders?verdict=imperfect"),
        format!("/api/months/{ym}/orders?verdict=imperfect&category=delivery"),
        format!("/api/months/{ym}/orders"),
        format!("/api/restatements?month={ym}"),
    ] {
        let samples = sample(plan.reps, || async { get(&app, &path).await }).await?;
        let label = path.replace(&day, "{day}").replace(&ym, "{month}");
        timings.push(timing(format!("GET {label}"), samples));
    }
    let samples = sample(plan.reps, || async {
        perfect_order::watch_tick(store, &settings.rules, Utc::now()).await?;
        Ok(())
    })
    .await?;
    timings.push(timing("watch tick".into(), samples));
    let mut queries: Vec<(String, String)> = dashboard_queries()?
        .into_iter()
        .map(|(title, sql)| (format!("panel: {title}"), sql))
        .collect();
    queries.extend(
        VIEWS
            .iter()
            .map(|v| (format!("view: {v}"), format!("SELECT * FROM {v}"))),
    );
    // The same views read for the bounded ranges.
    queries.extend(VIEWS.iter().map(|v| {
        let (range, filter) = if v.ends_with("_daily") {
            ("last 30 days", format!("day > date '{month_ago}'"))
        } else {
            ("last month", format!("month = date '{last_month}'"))
        };
        (
            format!("view, {range}: {v}"),
            format!("SELECT * FROM {v} WHERE {filter}"),
        )
    }));
    for (label, sql) in queries {
        let samples = sample(plan.reps, || async {
            sqlx::raw_sql(&sql)
                .execute(pool)
                .await
                .with_context(|| format!("{label}: {sql}"))?;
            Ok(())
        })
        .await?;
        timings.push(timing(label, samples));
    }
    Ok(timings)
}

/// One GET through the router; fails unless it answers 200.
async fn get(app: &axum::Router, path: &str) -> anyhow::Result<()> {
    use tower::ServiceExt;
    let request = axum::http::Request::get(path).body(axum::body::Body::empty())?;
    let response = app.clone().oneshot(request).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    Ok(())
}

/// One warm-up call, then `reps` timed calls.
async fn sample<F, Fut>(reps: usize, mut call: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    call().await?;
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let started = Instant::now();
        call().await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// Nearest-rank p50 and p95.
fn timing(read: String, mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    let rank = |q: f64| super::nearest_rank(&samples, q).unwrap_or_default();
    Timing {
        read,
        p50: rank(0.5),
        p95: rank(0.95),
    }
}

/// `(panel title, rawSql)` of every panel of the provisioned dashboards.
fn dashboard_queries() -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for text in DASHBOARDS {
        let dashboard: serde_json::Value = serde_json::from_str(text)?;
        let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("untitled").to_owned();
            for target in panel["targets"].as_array().cloned().unwrap_or_default() {
                if let Some(sql) = target["rawSql"].as_str() {
                    out.push((title.clone(), sql.to_owned()));
                }
            }
        }
    }
    Ok(out)
}

fn print_table(sizes: &[Size]) {
    let mut header = String::from("| read |");
    let mut rule = String::from("|---|");
    for s in sizes {
        header.push_str(&format!(
            " p50 / p95 ms at {} orders ({} events) |",
            s.orders, s.events
        ));
        rule.push_str("---|");
    }
    if sizes.len() > 1 {
        header.push_str(" p95 largest / smallest |");
        rule.push_str("---|");
    }
    println!("{header}\n{rule}");
    let Some(first) = sizes.first() else { return };
    for (i, t) in first.timings.iter().enumerate() {
        let mut line = format!("| {} |", t.read);
        for s in sizes {
            let t = &s.timings[i];
            line.push_str(&format!(" {:.1} / {:.1} |", ms(t.p50), ms(t.p95)));
        }
        if let (true, Some(last)) = (sizes.len() > 1, sizes.last()) {
            let ratio = ms(last.timings[i].p95) / ms(first.timings[i].p95).max(0.001);
            line.push_str(&format!(" {ratio:.2}× |"));
        }
        println!("{line}");
    }
    for s in sizes {
        if let Some(fill) = &s.fill {
            println!(
                "\nfill {} orders: {} records in {:.1} s = {:.0} records/s",
                s.orders,
                fill.records,
                fill.seconds,
                fill.records as f64 / fill.seconds
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
