//! Persistence: a small trait the ingest loop needs, with a PostgreSQL and a SQLite
//! implementation, and [`AnyStore`], the one `database.url` names.
//!
//! A batch is committed in ONE transaction: events, rejected records, projections, claims,
//! daily KPI deltas and the next offsets. Either all of it is there or none of it is.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use crate::batch::PreparedBatch;
use crate::domain::{Category, RejectReason, Rules};

/// Reads whose SQL is the same on both stores (only the pool's type differs), written once
/// and expanded inside each store's `impl`.
macro_rules! same_sql_reads {
    () => {
        /// The time of the newest stored event.
        pub async fn last_event_time(
            &self,
        ) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::store::Error> {
            sqlx::query_scalar("SELECT max(time) FROM events")
                .fetch_one(&self.pool)
                .await
                .map_err(crate::store::step("read the last event time from events"))
        }

        /// The last `months` months of `po_monthly` and `claims_monthly`, oldest first.
        pub async fn monthly_report(
            &self,
            months: i64,
        ) -> Result<Vec<crate::store::service::MonthRow>, crate::store::Error> {
            use sqlx::Row;
            let rows = sqlx::query(crate::store::service::MONTHLY_QUERY)
                .bind(months)
                .fetch_all(&self.pool)
                .await
                .map_err(crate::store::step("read po_monthly and claims_monthly"))?;
            Ok(rows
                .into_iter()
                .map(|r| crate::store::service::MonthRow {
                    month: r.get(0),
                    fulfilled: r.get(1),
                    perfect: r.get(2),
                    po_rate: r.get(3),
                    deviations: [r.get(4), r.get(5), r.get(6), r.get(7)],
                    cancelled: r.get(8),
                    claims: [r.get(9), r.get(10), r.get(11), r.get(12)],
                    claims_change: [r.get(13), r.get(14), r.get(15), r.get(16)],
                    components: [r.get(17), r.get(18), r.get(19), r.get(20)],
                    po_index: r.get(21),
                })
                .collect())
        }
    };
}
use same_sql_reads;

pub mod cache;
mod commit;
pub mod postgres;
mod read;
pub use read::{
    causes_text, month_restatement, order_story, restatement_changes, CauseCount,
    Change as RestatementChange, Figure, MonthRestatement, OrderStory,
};
mod rebuild;
mod rows;
pub mod service;
pub mod sqlite;
mod tables;
pub mod url;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A storage failure, naming the table or step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to the database at {url}: {detail} (check database.url)")]
    Connect {
        /// The URL with its secrets masked.
        url: String,
        /// The driver's message with the URL's secrets masked.
        detail: String,
    },
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what} failed: {source}")]
    Query {
        what: std::borrow::Cow<'static, str>,
        source: sqlx::Error,
    },
    #[error("cannot encode the state of order {order_id} for table orders: {source}")]
    EncodeState {
        order_id: String,
        source: serde_json::Error,
    },
    #[error("cannot encode the rows for table {table}: {source}")]
    Encode {
        table: &'static str,
        source: serde_json::Error,
    },
    #[error("database.url must start with postgres://, postgresql:// or sqlite:// (got {url})")]
    UnknownScheme { url: String },
    #[error("stored state of order {order_id} in table orders cannot be read: {source}; run `perfect-order rebuild`")]
    CorruptState {
        order_id: String,
        source: serde_json::Error,
    },
    #[error("stored order days of customer {customer_id} in table customers cannot be read ({value:?}: expected days YYYY-MM-DD separated by spaces); run `perfect-order rebuild`")]
    CorruptOrderDays { customer_id: String, value: String },
    #[error("stored lead_events row of lead {lead_id} holds the temperature {value:?}, which this version does not know; run `perfect-order rebuild`")]
    CorruptLead { lead_id: String, value: String },
    #[error("stored {table} row of claim {claim_id} holds {value:?}, which is not a claim category or stage this version knows; run `perfect-order rebuild`")]
    CorruptClaim {
        claim_id: String,
        table: &'static str,
        value: String,
    },
}

impl Error {
    /// Whether the database refused the data itself (a value it cannot hold, a violated
    /// constraint, a limit such as the stack depth), as opposed to a failure that may pass
    /// (connection lost, serialization conflict, lock timeout, shutdown). A refused batch is
    /// split until the refused records are found; anything else is retried as it is, with its
    /// offsets untouched.
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::Query {
                source: sqlx::Error::Database(db),
                ..
            } => {
                let code = db.code().unwrap_or_default();
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    // SQLSTATE classes 22 (data exception), 23 (integrity constraint) and 54
                    // (program limit exceeded, e.g. stack depth).
                    ["22", "23", "54"]
                        .iter()
                        .any(|class| code.starts_with(class))
                } else {
                    // SQLite result codes (the primary code is the low byte): TOOBIG,
                    // CONSTRAINT (including a trigger's RAISE), MISMATCH, RANGE; and a JSON
                    // text it cannot parse.
                    let primary = code.parse::<i32>().map_or(-1, |c| c & 0xff);
                    matches!(primary, 18 | 19 | 20 | 25)
                        || (primary == 1 && db.message().contains("JSON"))
                }
            }
            Error::Query {
                source: sqlx::Error::Encode(_) | sqlx::Error::InvalidArgument(_),
                ..
            } => true,
            Error::Encode { .. }
            | Error::EncodeState { .. }
            | Error::CorruptState { .. }
            | Error::CorruptOrderDays { .. }
            | Error::CorruptClaim { .. } => true,
            _ => false,
        }
    }
}

impl Error {
    /// A failure to reach the database of `url`, with every secret of the URL masked in the
    /// URL and in the driver's message.
    pub fn connect(url: &str, source: sqlx::Error) -> Error {
        Error::Connect {
            url: url::redact_url(url),
            detail: url::redact_secrets_of(url, &source.to_string()),
        }
    }
}

/// Attaches the step name to a sqlx error.
pub fn step(what: impl Into<std::borrow::Cow<'static, str>>) -> impl FnOnce(sqlx::Error) -> Error {
    let what = what.into();
    move |source| Error::Query { what, source }
}

/// What a committed batch did, for metrics and logs (counted in memory, recorded once).
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// Records in the batch.
    pub records: usize,
    /// Records skipped because their offsets were already committed (by us or another instance).
    pub fenced: usize,
    /// New events per CloudEvents type (v1 types only).
    pub consumed: BTreeMap<&'static str, u64>,
    /// Events already in the event store (producer retries, replays).
    pub duplicates: u64,
    /// Valid CloudEvents of unknown types.
    pub unknown: u64,
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Orders whose projection changed.
    pub orders_changed: usize,
    /// Latencies that became known in this batch, in seconds.
    pub confirmation_seconds: Vec<f64>,
    pub confirmed_to_shipped_seconds: Vec<f64>,
    pub delivery_lateness_seconds: Vec<f64>,
    /// Claims first filed in this batch, by category.
    pub claims_filed: BTreeMap<Category, u64>,
    /// Seconds from filing to resolution of the claims whose both facts became known.
    pub claim_resolution_seconds: Vec<f64>,
    /// Seconds from posting to the first answer of the reviews whose both facts became known.
    pub review_answer_seconds: Vec<f64>,
    /// Next offset per partition after the batch.
    pub next_offsets: BTreeMap<(Arc<str>, i32), i64>,
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: u64,
    pub orders: u64,
    /// Stored events of the v2 types folded into the entity tables.
    pub v2_events: u64,
    /// Stored events that no longer decode (kept in `events`, skipped by the fold).
    pub undecodable: u64,
}

/// Shop-wide figures for the live gauges, computed from the database so that every instance
/// reports the same value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShopFigures {
    pub awaiting_confirmation: i64,
    pub over_sla: i64,
    pub oldest_awaiting_seconds: f64,
    /// `window label -> (fulfilled, perfect, deviations per category)`.
    pub windows: Vec<WindowFigures>,
}

/// KPI sums over the last `days` shop-zone days (today included).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowFigures {
    pub label: &'static str,
    pub days: i64,
    pub fulfilled: i64,
    pub perfect: i64,
    pub deviations: BTreeMap<Category, i64>,
    /// Fulfilled orders missing each component, in [`COMPONENTS`] order.
    pub missing: [i64; 4],
}

/// The perfect-order components, in the order of [`WindowFigures::missing`] (metric labels).
pub const COMPONENTS: [&str; 4] = ["confirmed_in_sla", "on_time", "in_full", "claim_free"];

impl WindowFigures {
    /// Each component's rate (`None` when nothing was fulfilled), in [`COMPONENTS`] order.
    pub fn component_rates(&self) -> Option<[f64; 4]> {
        (self.fulfilled > 0).then(|| self.missing.map(|m| 1.0 - m as f64 / self.fulfilled as f64))
    }
}

/// An order waiting for confirmation past the SLA, for the on-call list.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LateOrder {
    pub order_id: String,
    pub customer_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub age_seconds: f64,
}

/// Everything the web console shows, read in one go (shop-wide, from the tables).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Dashboard {
    pub today: chrono::NaiveDate,
    pub sla_seconds: i64,
    /// Perfect-order rate over the last 1, 7, 30 shop-zone days and this calendar month
    /// (null when nothing was fulfilled).
    pub po_rate: BTreeMap<&'static str, Option<f64>>,
    /// Over the last 30 days: each component's rate (`confirmed_in_sla`, `on_time`,
    /// `in_full`, `claim_free`) and `index`, their product (empty when nothing was fulfilled).
    pub components_30d: BTreeMap<&'static str, f64>,
    pub awaiting_confirmation: i64,
    pub over_sla: i64,
    pub oldest_awaiting_seconds: f64,
    /// The last 60 shop-zone days, oldest first.
    pub po_daily: Vec<DayPoint>,
    /// Fulfilled orders with a deviation of each category over the last 30 days.
    pub deviations_30d: BTreeMap<&'static str, i64>,
    /// Claims per category for the last 6 months of filing.
    pub claims_monthly: Vec<ClaimsMonth>,
    /// Orders created in the last 30 days by confirmation latency: `[upper bound in minutes, count]`,
    /// the last bucket (upper bound null) being "longer".
    pub confirmation_minutes: Vec<(Option<i64>, i64)>,
}

/// The rolling windows of the live perfect-order gauges (label, days).
pub const WINDOWS: [(&str, i64); 3] = [("1d", 1), ("7d", 7), ("30d", 30)];

/// Days in the console's perfect-order chart.
pub const CHART_DAYS: i64 = 60;

/// Upper bounds (minutes) of the console's confirmation-latency buckets; one more bucket
/// holds the longer ones.
pub const CONFIRMATION_MINUTES: [i64; 8] = [5, 10, 15, 20, 25, 30, 45, 60];

/// How many shop days (today included) the console's confirmation-latency histogram counts.
pub const CONFIRMATION_DAYS: i64 = 30;

/// One day of the perfect-order chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayPoint {
    pub day: chrono::NaiveDate,
    pub fulfilled: i64,
    pub perfect: i64,
    pub po_rate: Option<f64>,
}

/// Claims of one category in one month, with the change against the previous month.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClaimsMonth {
    pub month: chrono::NaiveDate,
    pub category: String,
    pub claims: i64,
    pub change: Option<f64>,
}

/// The operations ingest and the HTTP surface need from a store.
pub trait Store: Send + Sync + 'static {
    /// Next offsets stored for these partitions (absent: never committed).
    fn load_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> impl Future<Output = Result<HashMap<(String, i32), i64>, Error>> + Send;

    /// Commits one batch atomically and reports what it did.
    fn commit_batch(
        &self,
        batch: &PreparedBatch,
        rules: &Rules,
    ) -> impl Future<Output = Result<BatchReport, Error>> + Send;

    /// Shop-wide live figures at wall-clock `now`.
    fn shop_figures(
        &self,
        rules: &Rules,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<ShopFigures, Error>> + Send;

    /// Orders past the confirmation SLA at `now`, oldest first.
    fn late_orders(
        &self,
        rules: &Rules,
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<LateOrder>, Error>> + Send;

    /// What the web console shows, at wall-clock `now`.
    fn dashboard(
        &self,
        rules: &Rules,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Dashboard, Error>> + Send;

    /// Live contract-v2 figures at `now` (open claims, unanswered negative reviews, leads,
    /// repeat customers over 30 days, this month's team ranking).
    fn service_figures(
        &self,
        rules: &Rules,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<service::ServiceFigures, Error>> + Send;

    /// Every monthly v2 view from `since` (a month's first day) on.
    fn service_months(
        &self,
        since: chrono::NaiveDate,
    ) -> impl Future<Output = Result<service::ServiceMonths, Error>> + Send;

    /// A page of a drill-down list of orders.
    fn listed_orders(
        &self,
        filter: &service::OrderFilter,
    ) -> impl Future<Output = Result<Vec<service::ListedOrder>, Error>> + Send;

    /// One order's stored projection and events, `None` for an order never stored.
    fn stored_order(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<service::StoredOrder>, Error>> + Send;

    /// The `restatements` rows of one period kind from `from` to `to` (inclusive).
    fn restatement_rows(
        &self,
        kind: crate::domain::restatement::Period,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> impl Future<Output = Result<Vec<service::PeriodRestatement>, Error>> + Send;

    /// A page of a period's restated orders (order ids after `after`).
    fn restated_orders(
        &self,
        kind: crate::domain::restatement::Period,
        period: chrono::NaiveDate,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<service::RestatedOrder>, Error>> + Send;

    /// A period's restated orders per cause type and shop-zone day of the cause.
    fn restatement_causes(
        &self,
        kind: crate::domain::restatement::Period,
        period: chrono::NaiveDate,
    ) -> impl Future<Output = Result<Vec<(String, chrono::NaiveDate, i64)>, Error>> + Send;

    /// `(perfect, fulfilled)` of the delivery days from `from` to `to` (inclusive).
    fn period_counts(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> impl Future<Output = Result<(i64, i64), Error>> + Send;

    /// Claims filed and not resolved, oldest first.
    fn open_claims(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<service::OpenClaim>, Error>> + Send;

    /// Reviews rated 2 or lower with no answer, oldest first.
    fn unanswered_negative_reviews(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<service::UnansweredReview>, Error>> + Send;

    /// Whether the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The store `database.url` names: PostgreSQL (`postgres://`, the production default) or
/// SQLite (`sqlite://`, the demo and a single small shop).
#[derive(Clone)]
pub enum AnyStore {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

/// Which store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// Runs the same expression on whichever store is inside.
macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Postgres($s) => $e,
            AnyStore::Sqlite($s) => $e,
        }
    };
}

impl AnyStore {
    /// Connects to the store of `url` (a SQLite file and its directory are created if missing).
    pub async fn connect(url: &str, max_connections: u32) -> Result<AnyStore, Error> {
        match Backend::of(url) {
            Some(Backend::Postgres) => Ok(AnyStore::Postgres(
                PgStore::connect(url, max_connections).await?,
            )),
            Some(Backend::Sqlite) => Ok(AnyStore::Sqlite(
                SqliteStore::connect(url, max_connections).await?,
            )),
            None => Err(Error::UnknownScheme {
                url: url::redact_url(url),
            }),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            AnyStore::Postgres(_) => Backend::Postgres,
            AnyStore::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the store's migrations.
    pub async fn migrate(&self) -> Result<(), Error> {
        each!(self, s => s.migrate().await)
    }

    /// Keeps up to `orders` unfinished order projections in memory between batches
    /// (`batch.projection_cache`; 0 turns the cache off).
    pub fn set_cache_capacity(&self, orders: usize) {
        each!(self, s => s.set_cache_capacity(orders))
    }

    /// Writes the rule settings the SQL views read.
    pub async fn write_settings(&self, rules: &Rules) -> Result<(), Error> {
        each!(self, s => s.write_settings(rules).await)
    }

    /// See [`PgStore::rebuild`].
    pub async fn rebuild(
        &self,
        rules: &Rules,
        limits: &crate::domain::Limits,
        chunk: i64,
        progress: impl Fn(u64, u64),
    ) -> Result<RebuildReport, Error> {
        each!(self, s => s.rebuild(rules, limits, chunk, progress).await)
    }

    /// See [`PgStore::backfill`].
    pub async fn backfill(&self, rules: &Rules, progress: impl Fn(u64)) -> Result<u64, Error> {
        each!(self, s => s.backfill(rules, progress).await)
    }

    /// The time of the newest stored event.
    pub async fn last_event_time(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
        each!(self, s => s.last_event_time().await)
    }

    /// The last `months` months of the monthly views, oldest first (`perfect-order report`).
    pub async fn monthly_report(&self, months: i64) -> Result<Vec<service::MonthRow>, Error> {
        each!(self, s => s.monthly_report(months).await)
    }
}

impl Store for AnyStore {
    async fn load_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), i64>, Error> {
        each!(self, s => s.load_offsets(partitions).await)
    }

    async fn commit_batch(
        &self,
        batch: &PreparedBatch,
        rules: &Rules,
    ) -> Result<BatchReport, Error> {
        each!(self, s => s.commit_batch(batch, rules).await)
    }

    async fn shop_figures(
        &self,
        rules: &Rules,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<ShopFigures, Error> {
        each!(self, s => s.shop_figures(rules, now).await)
    }

    async fn late_orders(
        &self,
        rules: &Rules,
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<LateOrder>, Error> {
        each!(self, s => s.late_orders(rules, now, limit).await)
    }

    async fn dashboard(
        &self,
        rules: &Rules,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Dashboard, Error> {
        each!(self, s => s.dashboard(rules, now).await)
    }

    async fn service_figures(
        &self,
        rules: &Rules,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<service::ServiceFigures, Error> {
        each!(self, s => s.service_figures(rules, now).await)
    }

    async fn service_months(
        &self,
        since: chrono::NaiveDate,
    ) -> Result<service::ServiceMonths, Error> {
        each!(self, s => s.service_months(since).await)
    }

    async fn listed_orders(
        &self,
        filter: &service::OrderFilter,
    ) -> Result<Vec<service::ListedOrder>, Error> {
        each!(self, s => s.listed_orders(filter).await)
    }

    async fn stored_order(&self, order_id: &str) -> Result<Option<service::StoredOrder>, Error> {
        each!(self, s => s.stored_order(order_id).await)
    }

    async fn restatement_rows(
        &self,
        kind: crate::domain::restatement::Period,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<service::PeriodRestatement>, Error> {
        each!(self, s => s.restatement_rows(kind, from, to).await)
    }

    async fn restated_orders(
        &self,
        kind: crate::domain::restatement::Period,
        period: chrono::NaiveDate,
        after: &str,
        limit: i64,
    ) -> Result<Vec<service::RestatedOrder>, Error> {
        each!(self, s => s.restated_orders(kind, period, after, limit).await)
    }

    async fn restatement_causes(
        &self,
        kind: crate::domain::restatement::Period,
        period: chrono::NaiveDate,
    ) -> Result<Vec<(String, chrono::NaiveDate, i64)>, Error> {
        each!(self, s => s.restatement_causes(kind, period).await)
    }

    async fn period_counts(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<(i64, i64), Error> {
        each!(self, s => s.period_counts(from, to).await)
    }

    async fn open_claims(&self, limit: i64) -> Result<Vec<service::OpenClaim>, Error> {
        each!(self, s => s.open_claims(limit).await)
    }

    async fn unanswered_negative_reviews(
        &self,
        limit: i64,
    ) -> Result<Vec<service::UnansweredReview>, Error> {
        each!(self, s => s.unanswered_negative_reviews(limit).await)
    }

    async fn ping(&self) -> Result<(), Error> {
        each!(self, s => s.ping().await)
    }
}
