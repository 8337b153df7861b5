//! Persistence: a small trait the ingest loop needs, and its PostgreSQL implementation.
//!
//! A batch is committed in ONE transaction: events, rejected records, projections, claims,
//! daily KPI deltas and the next offsets. Either all of it is there or none of it is.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use crate::batch::PreparedBatch;
use crate::domain::{Category, RejectReason, Rules};

pub mod postgres;

pub use postgres::PgStore;

/// A storage failure, naming the table or step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to the database at {url}: {source} (check database.url)")]
    Connect { url: String, source: sqlx::Error },
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what} failed: {source}")]
    Query {
        what: &'static str,
        source: sqlx::Error,
    },
    #[error("stored state of order {order_id} in table orders cannot be read: {source}; run `perfect-order rebuild`")]
    CorruptState {
        order_id: String,
        source: serde_json::Error,
    },
}

/// Attaches the step name to a sqlx error.
pub fn step(what: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
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
    /// Next offset per partition after the batch.
    pub next_offsets: BTreeMap<(Arc<str>, i32), i64>,
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

    /// Whether the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), Error>> + Send;
}
