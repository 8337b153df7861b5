//! The SQLite store: for the demo and a single small shop (one service instance).
//!
//! Same tables and meaning as PostgreSQL (migrations in `migrations/sqlite/`), the same batch
//! transaction ([`super::commit`]). Its part: SQLite has one writer at a time, so a batch
//! takes the write lock up front (`BEGIN IMMEDIATE`), which does what the per-partition
//! advisory lock does on PostgreSQL; rows go in as one JSON array per table (`json_each`),
//! one statement per table and batch; a rebuild reads the event store in keyset chunks.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool};

use super::cache::ProjectionCache;
use super::commit::{
    self, CustomerOrderRow, Database, Stored, StoredCustomer, StoredEvent, StoredJournalRow,
    StoredReviewRow, StoredReviews, StoredRosterRow, StoredSmileyRow, StoredStageRow, Tx,
};
use super::read::{self, Reads, Watch, WindowSums};
use super::rows::{seconds, StoredCaptureRow, StoredLeadRow};
use super::tables::{Kind, RowSource, Table, Values, Write};
use super::{step, BatchReport, Dashboard, Error, LateOrder, RebuildReport, ShopFigures, Store};
use crate::batch::PreparedBatch;
use crate::domain::event::V2_TYPES;
use crate::domain::{CustomerOrder, EventKey, Rules};

/// The current time as SQLite writes `updated_at`.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    cache: Arc<Mutex<ProjectionCache>>,
}

/// Serializes rows for `json_each`.
fn json<T: Serialize>(rows: &T, table: &'static str) -> Result<String, Error> {
    serde_json::to_string(rows).map_err(|source| Error::Encode { table, source })
}

impl SqliteStore {
    /// Opens (creating it and its directory if missing) the database file of a `sqlite://` URL.
    pub async fn connect(url: &str, max_connections: u32) -> Result<SqliteStore, Error> {
        let connect_error = |source| Error::connect(url, source);
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses no committed batch on a process crash; a power cut may
            // lose the last batches, offsets included, which are then consumed again.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(30));
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    connect_error(sqlx::Error::Io(std::io::Error::new(
                        e.kind(),
                        format!("cannot create directory {}: {e}", dir.display()),
                    )))
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(SqliteStore {
            pool,
            cache: ProjectionCache::shared(),
        })
    }

    /// Applies the migrations in `migrations/sqlite/` (embedded in the binary).
    pub async fn migrate(&self) -> Result<(), Error> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes the rule settings the SQL views read.
    pub async fn write_settings(&self, rules: &Rules) -> Result<(), Error> {
        sqlx::query(&format!(
            "INSERT INTO service_settings (singleton, timezone, confirmation_sla, pending_horizon,
               claim_window, smiley_min_rating, review_answer_sla, team_size, updated_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, {NOW})
             ON CONFLICT (singleton) DO UPDATE SET timezone = excluded.timezone,
               confirmation_sla = excluded.confirmation_sla,
               pending_horizon = excluded.pending_horizon, claim_window = excluded.claim_window,
               smiley_min_rating = excluded.smiley_min_rating,
               review_answer_sla = excluded.review_answer_sla, team_size = excluded.team_size,
               updated_at = excluded.updated_at"
        ))
        .bind(rules.timezone.name())
        .bind(seconds(rules.confirmation_sla))
        .bind(seconds(rules.pending_horizon))
        .bind(seconds(rules.claim_window))
        .bind(i64::from(rules.smiley_min_rating))
        .bind(seconds(rules.review_answer_sla))
        .bind(i64::from(rules.team_size))
        .execute(&self.pool)
        .await
        .map_err(step("write service_settings"))?;
        Ok(())
    }

    /// The pool, for tests and tools that query the tables directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Keeps up to `orders` unfinished order projections in memory between batches
    /// (`batch.projection_cache`; 0 turns the cache off).
    pub fn set_cache_capacity(&self, orders: usize) {
        ProjectionCache::resize(&self.cache, orders);
    }

    async fn offsets(
        conn: &mut SqliteConnection,
        keys: &[(&str, i32)],
    ) -> Result<HashMap<(String, i32), i64>, Error> {
        let rows = sqlx::query(
            "SELECT c.topic, c.partition, c.next_offset FROM consumer_offsets c
             JOIN json_each(?1) k ON c.topic = k.value ->> 0 AND c.partition = k.value ->> 1",
        )
        .bind(json(&keys, "consumer_offsets")?)
        .fetch_all(conn)
        .await
        .map_err(step("read consumer_offsets"))?;
        Ok(rows
            .into_iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect())
    }

    /// Recomputes every order projection, claim, daily KPI row and v2 entity from the event
    /// store under `rules`, in one transaction (readers see the old rows until it commits;
    /// ingest waits for the write lock).
    pub async fn rebuild(
        &self,
        rules: &Rules,
        limits: &crate::domain::Limits,
        chunk: i64,
        progress: impl Fn(u64, u64),
    ) -> Result<RebuildReport, Error> {
        super::rebuild::rebuild(self, rules, limits, chunk, progress).await
    }

    /// Fills the tables a migration left to the service (`pending_backfills`) from the
    /// stored orders; returns the orders read (0 when nothing was pending).
    pub async fn backfill(&self, rules: &Rules, progress: impl Fn(u64)) -> Result<u64, Error> {
        super::rebuild::backfill(self, rules, 5_000, progress).await
    }

    super::same_sql_reads!();
}

/// The one text form of a timestamp in SQLite: fixed width, so text order is time order.
pub(crate) fn sqlite_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// How SQLite takes a batch's rows: one JSON array of row arrays, opened by `json_each`.
struct JsonEach;

impl RowSource for JsonEach {
    fn from(&self, _: &Table, first: usize) -> String {
        // `WHERE true` keeps the parser from reading ON CONFLICT as a join constraint.
        format!("FROM json_each(?{first}) WHERE true")
    }

    fn value(&self, table: &Table, i: usize) -> String {
        match table.columns[i].kind {
            Kind::Bytes => format!("unhex(value ->> {i})"),
            _ => format!("value ->> {i}"),
        }
    }

    fn now(&self) -> &'static str {
        NOW
    }

    fn greatest(&self) -> &'static str {
        "max"
    }

    fn parameters(&self, _: &Table) -> usize {
        1
    }
}

/// A JSON string literal of `s`.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Cell `row` of `column` as JSON, in the form SQLite stores it (times as [`sqlite_time`],
/// dates as `YYYY-MM-DD`, bytes as hex for `unhex`).
fn push_json_cell(out: &mut String, column: &Values<'_>, row: usize) {
    fn or_null<T>(out: &mut String, v: Option<&Option<T>>, f: impl FnOnce(&mut String, &T)) {
        match v {
            Some(Some(v)) => f(out, v),
            _ => out.push_str("null"),
        }
    }
    match column {
        Values::Text(v) => or_null(out, v.get(row), |o, s| push_json_str(o, s)),
        Values::Int4(v) => or_null(out, v.get(row), |o, n| {
            let _ = write!(o, "{n}");
        }),
        Values::Int8(v) => or_null(out, v.get(row), |o, n| {
            let _ = write!(o, "{n}");
        }),
        // `{:?}` keeps the decimal point (5.0, not 5), so the value stays a REAL.
        Values::Float8(v) => or_null(out, v.get(row), |o, x| {
            if x.is_finite() {
                let _ = write!(o, "{x:?}");
            } else {
                o.push_str("null");
            }
        }),
        Values::Bool(v) => or_null(out, v.get(row), |o, b| {
            o.push_str(if *b { "true" } else { "false" })
        }),
        Values::Time(v) => or_null(out, v.get(row), |o, t| push_json_str(o, &sqlite_time(t))),
        Values::Date(v) => or_null(out, v.get(row), |o, d| {
            let _ = write!(o, "\"{}\"", d.format("%Y-%m-%d"));
        }),
        Values::Bytes(v) => or_null(out, v.get(row), |o, b| {
            o.push('"');
            for byte in *b {
                let _ = write!(o, "{byte:02x}");
            }
            o.push('"');
        }),
    }
}

/// A write's rows as one JSON array of row arrays, columns in the table's order.
fn json_rows(w: &Write<'_>) -> String {
    let mut out = String::with_capacity(w.rows * w.columns.len() * 16 + 2);
    out.push('[');
    for row in 0..w.rows {
        if row > 0 {
            out.push(',');
        }
        out.push('[');
        for (i, column) in w.columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_cell(&mut out, column, row);
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// Runs one write's statement; the rows it returns.
async fn run(conn: &mut SqliteConnection, w: &Write<'_>) -> Result<Vec<SqliteRow>, Error> {
    sqlx::query(&w.table.insert_sql(&JsonEach, 1))
        .bind(json_rows(w))
        .fetch_all(conn)
        .await
        .map_err(step(w.what()))
}

/// Where a rebuild's keyset read of the event store has got to: the last key read.
#[derive(Default)]
pub(crate) struct After {
    order_id: String,
    source: String,
    id: String,
}

impl Database for SqliteStore {
    type Db = Sqlite;
    type Scan = After;

    fn cache(&self) -> &Mutex<ProjectionCache> {
        &self.cache
    }

    /// SQLite has one writer at a time: the write lock taken up front (`BEGIN IMMEDIATE`)
    /// does what the per-partition lock does on PostgreSQL.
    async fn begin_batch(&self, _partitions: &[i32]) -> Result<Tx<Self>, Error> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(step("begin the batch transaction"))
    }

    async fn begin_rebuild(&self) -> Result<Tx<Self>, Error> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(step("begin the rebuild transaction"))
    }

    async fn read_offsets(
        conn: &mut SqliteConnection,
        keys: &[(&str, i32)],
    ) -> Result<HashMap<(String, i32), i64>, Error> {
        Self::offsets(conn, keys).await
    }

    async fn insert_events(
        conn: &mut SqliteConnection,
        events: &Write<'_>,
    ) -> Result<HashSet<EventKey>, Error> {
        Ok(run(conn, events)
            .await?
            .into_iter()
            .map(|r| EventKey {
                source: r.get(0),
                id: r.get(1),
            })
            .collect())
    }

    async fn read_states(
        conn: &mut SqliteConnection,
        order_ids: &[String],
        versions: &[i64],
    ) -> Result<Vec<(String, Option<String>)>, Error> {
        let keys: Vec<(&String, &i64)> = order_ids.iter().zip(versions).collect();
        let rows = sqlx::query(
            "SELECT o.order_id, CASE WHEN o.version = k.value ->> 1 THEN NULL ELSE o.state END
             FROM json_each(?1) k JOIN orders o ON o.order_id = k.value ->> 0",
        )
        .bind(json(&keys, "orders")?)
        .fetch_all(conn)
        .await
        .map_err(step("read orders"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn upsert_orders(
        conn: &mut SqliteConnection,
        orders: &Write<'_>,
    ) -> Result<HashMap<String, i64>, Error> {
        Ok(run(conn, orders)
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn write(conn: &mut SqliteConnection, writes: &[Write<'_>]) -> Result<(), Error> {
        for w in writes.iter().filter(|w| !w.is_empty()) {
            run(&mut *conn, w).await?;
        }
        Ok(())
    }

    async fn forget_restatements(
        conn: &mut SqliteConnection,
        order_ids: &[&str],
    ) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM restated_orders WHERE order_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&order_ids, "restated_orders")?)
        .execute(conn)
        .await
        .map_err(step("forget the changed orders' restated_orders rows"))?;
        Ok(())
    }

    super::commit::same_sql_backfill!();

    async fn lock_customers(
        conn: &mut SqliteConnection,
        lock: &Write<'_>,
    ) -> Result<HashMap<String, StoredCustomer>, Error> {
        let mut stored = HashMap::new();
        for r in run(conn, lock).await? {
            let at = r.try_get(1).map_err(step("read customers.first_at"))?;
            let first = CustomerOrder::stored(at, r.get(2), r.get(3), r.get(4));
            let order_days = r.get(5);
            let leads = r.try_get(6).map_err(step("read customers.leads"))?;
            let customer = StoredCustomer {
                first,
                order_days,
                leads,
            };
            stored.insert(r.get(0), customer);
        }
        Ok(stored)
    }

    async fn add_customer_months(
        conn: &mut SqliteConnection,
        months: &Write<'_>,
    ) -> Result<Vec<(String, NaiveDate, i64)>, Error> {
        Ok(run(conn, months)
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    async fn customer_months(
        conn: &mut SqliteConnection,
        customers: &[&str],
    ) -> Result<Vec<(String, NaiveDate, i64)>, Error> {
        sqlx::query_as(
            "SELECT customer_id, month, orders FROM customer_months
             WHERE customer_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&customers, "customer_months")?)
        .fetch_all(conn)
        .await
        .map_err(step("read customer_months"))
    }

    async fn customer_orders(
        conn: &mut SqliteConnection,
        customers: &[&str],
    ) -> Result<Vec<CustomerOrderRow>, Error> {
        sqlx::query_as(
            "SELECT customer_id, created_at, order_id, created_day, sales_channel
             FROM orders WHERE customer_id IN (SELECT value FROM json_each(?1))
             AND created_at IS NOT NULL",
        )
        .bind(json(&customers, "orders")?)
        .fetch_all(conn)
        .await
        .map_err(step("read the customers' orders"))
    }

    async fn lock_claims(
        conn: &mut SqliteConnection,
        lock: &Write<'_>,
    ) -> Result<Vec<StoredJournalRow>, Error> {
        run(conn, lock)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(step("read claim_journal"))
    }

    async fn claim_stages(
        conn: &mut SqliteConnection,
        claim_ids: &[&str],
    ) -> Result<Vec<StoredStageRow>, Error> {
        sqlx::query_as(
            "SELECT claim_id, time, source, id, month, stage FROM claim_stages
             WHERE claim_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&claim_ids, "claim_stages")?)
        .fetch_all(conn)
        .await
        .map_err(step("read claim_stages"))
    }

    /// One writer at a time already (`BEGIN IMMEDIATE`): nothing to lock.
    async fn lock_couriers(
        _conn: &mut SqliteConnection,
        _couriers: &[&str],
        _exclusive: &[bool],
    ) -> Result<(), Error> {
        Ok(())
    }

    async fn courier_rosters(
        conn: &mut SqliteConnection,
        couriers: &[&str],
    ) -> Result<Vec<StoredRosterRow>, Error> {
        sqlx::query_as(
            "SELECT courier_id, time, source, id, team_id FROM courier_rosters
             WHERE courier_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&couriers, "courier_rosters")?)
        .fetch_all(conn)
        .await
        .map_err(step("read courier_rosters"))
    }

    async fn courier_smileys_since(
        conn: &mut SqliteConnection,
        couriers: &[&str],
        since: &[DateTime<Utc>],
        min_rating: i32,
    ) -> Result<Vec<StoredSmileyRow>, Error> {
        let keys: Vec<(&str, String)> = couriers
            .iter()
            .zip(since)
            .map(|(c, t)| (*c, t.to_rfc3339()))
            .collect();
        sqlx::query_as(
            "SELECT v.courier_id, 'yellow', v.review_id, v.posted_at, v.posted_month
             FROM json_each(?1) k JOIN reviews v ON v.courier_id = k.value ->> 0
             WHERE unixepoch(v.posted_at, 'subsec') >= unixepoch(k.value ->> 1, 'subsec')
               AND v.rating >= ?2
             UNION ALL
             SELECT c.courier_id, 'red', c.source || ' ' || c.id, c.time, c.month
             FROM json_each(?1) k JOIN courier_violations c ON c.courier_id = k.value ->> 0
             WHERE unixepoch(c.time, 'subsec') >= unixepoch(k.value ->> 1, 'subsec')",
        )
        .bind(json(&keys, "reviews")?)
        .bind(min_rating)
        .fetch_all(conn)
        .await
        .map_err(step("read the couriers' smileys"))
    }

    /// One writer at a time already (`BEGIN IMMEDIATE`): the read is the lock.
    async fn lock_leads(_conn: &mut SqliteConnection, _lead_ids: &[&str]) -> Result<(), Error> {
        Ok(()) // one writer at a time (BEGIN IMMEDIATE)
    }

    async fn lead_events(
        conn: &mut SqliteConnection,
        lead_ids: &[&str],
    ) -> Result<Vec<StoredLeadRow>, Error> {
        sqlx::query_as(
            "SELECT e.lead_id, e.temperature, e.time, e.source, e.id,
                    l.captured_at, l.captured_source, l.captured_id, l.customer_id
             FROM lead_events e LEFT JOIN leads l ON l.lead_id = e.lead_id
             WHERE e.lead_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&lead_ids, "lead_events")?)
        .fetch_all(conn)
        .await
        .map_err(step("read lead_events"))
    }

    async fn customer_leads(
        conn: &mut SqliteConnection,
        customers: &[&str],
    ) -> Result<Vec<StoredCaptureRow>, Error> {
        sqlx::query_as(
            "SELECT lead_id, captured_at, captured_source, captured_id, customer_id FROM leads
             WHERE customer_id IN (SELECT value FROM json_each(?1)) AND captured_at IS NOT NULL
               AND captured_source IS NOT NULL AND captured_id IS NOT NULL",
        )
        .bind(json(&customers, "leads")?)
        .fetch_all(conn)
        .await
        .map_err(step("read the leads of the customers"))
    }

    async fn lock_reviews(
        conn: &mut SqliteConnection,
        review_ids: &[&str],
    ) -> Result<StoredReviews, Error> {
        let rows = sqlx::query(
            "SELECT review_id, posted_at, answered_at, posted_source, posted_id, rating,
                    courier_id, posted_month
             FROM reviews WHERE review_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&review_ids, "reviews")?)
        .fetch_all(conn)
        .await
        .map_err(step("read reviews"))?;
        let time = |t: Option<String>| {
            t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let rows = rows
            .iter()
            .map(|r| -> Result<StoredReviewRow, sqlx::Error> {
                Ok((
                    r.try_get(0)?,
                    time(r.try_get(1)?),
                    time(r.try_get(2)?),
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                    r.try_get(6)?,
                    r.try_get(7)?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(step("read reviews"))?;
        Ok(super::rows::stored_reviews(rows))
    }

    async fn count_order_events(conn: &mut SqliteConnection) -> Result<i64, Error> {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE order_id IS NOT NULL")
            .fetch_one(conn)
            .await
            .map_err(step("count events"))
    }

    async fn empty(conn: &mut SqliteConnection, tables: &[&'static Table]) -> Result<(), Error> {
        for table in tables {
            sqlx::query(&format!("DELETE FROM {}", table.name))
                .execute(&mut *conn)
                .await
                .map_err(step("empty the tables a rebuild recomputes"))?;
        }
        Ok(())
    }

    async fn next_stored(
        conn: &mut SqliteConnection,
        which: Stored,
        after: &mut After,
        chunk: i64,
    ) -> Result<Vec<StoredEvent>, Error> {
        // Keyset chunks: (order_id, source, id) for an order's events, (source, id) for v2.
        let rows = match which {
            Stored::OrderEvents => sqlx::query(
                "SELECT order_id, source, id, payload FROM events
                 WHERE order_id IS NOT NULL AND (order_id, source, id) > (?1, ?2, ?3)
                 ORDER BY order_id, source, id LIMIT ?4",
            )
            .bind(&after.order_id),
            Stored::V2Events => sqlx::query(
                "SELECT NULL, source, id, payload FROM events
                 WHERE type IN (SELECT value FROM json_each(?1)) AND (source, id) > (?2, ?3)
                 ORDER BY source, id LIMIT ?4",
            )
            .bind(json(&V2_TYPES, "events")?),
        }
        .bind(&after.source)
        .bind(&after.id)
        .bind(chunk)
        .fetch_all(conn)
        .await
        .map_err(step("read events"))?;
        if let Some(last) = rows.last() {
            if which == Stored::OrderEvents {
                after.order_id = last.get(0);
            }
            after.source = last.get(1);
            after.id = last.get(2);
        }
        Ok(rows
            .into_iter()
            .map(|r| StoredEvent {
                order_id: r.get(0),
                payload: r.get(3),
            })
            .collect())
    }
}

/// The SLA watch's condition (as on PostgreSQL): created after ?1 (now minus the pending
/// horizon), neither confirmed nor cancelled.
const AWAITING: &str = "confirmed_at IS NULL AND cancelled_at IS NULL AND created_at IS NOT NULL
                        AND created_at > ?1";

impl Reads for SqliteStore {
    read::same_sql_live_reads!();

    async fn watch(
        &self,
        horizon_start: DateTime<Utc>,
        sla_start: DateTime<Utc>,
    ) -> Result<Watch, Error> {
        let row = sqlx::query(&format!(
            "SELECT count(*), COALESCE(sum(created_at < ?2), 0), min(created_at)
             FROM orders WHERE {AWAITING}"
        ))
        .bind(sqlite_time(&horizon_start))
        .bind(sqlite_time(&sla_start))
        .fetch_one(&self.pool)
        .await
        .map_err(step("read the SLA watch from orders"))?;
        Ok(Watch {
            awaiting: row.get(0),
            over_sla: row.get(1),
            oldest: row.get(2),
        })
    }

    async fn window_sums(&self, today: NaiveDate, days: &[i64]) -> Result<Vec<WindowSums>, Error> {
        let mut out = Vec::with_capacity(days.len());
        for d in days {
            let r = sqlx::query(
                "SELECT COALESCE(sum(fulfilled), 0), COALESCE(sum(perfect), 0),
                        COALESCE(sum(deviation_quality), 0), COALESCE(sum(deviation_completeness), 0),
                        COALESCE(sum(deviation_delivery), 0), COALESCE(sum(deviation_service), 0),
                        COALESCE(sum(confirmed_late), 0), COALESCE(sum(delivered_late), 0),
                        COALESCE(sum(delivered_short), 0), COALESCE(sum(claimed), 0)
                 FROM daily_kpi WHERE day > ?1 AND day <= ?2",
            )
            .bind(today - chrono::TimeDelta::days(*d))
            .bind(today)
            .fetch_one(&self.pool)
            .await
            .map_err(step("read rolling windows from daily_kpi"))?;
            out.push(std::array::from_fn(|i| r.get(i)));
        }
        Ok(out)
    }

    async fn confirmation_buckets(&self, after: NaiveDate) -> Result<Vec<(i64, i64)>, Error> {
        // The minutes of latency that occur, per day (and shard): not a row per order.
        Ok(sqlx::query(
            "SELECT bucket, sum(orders) FROM confirmation_ms_buckets WHERE day > ?1
             GROUP BY 1 HAVING sum(orders) <> 0",
        )
        .bind(after)
        .fetch_all(&self.pool)
        .await
        .map_err(step(
            "read confirmation latencies from confirmation_ms_buckets",
        ))?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    }
}

impl Store for SqliteStore {
    async fn load_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), i64>, Error> {
        let keys: Vec<(&str, i32)> = partitions.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(step("read consumer_offsets"))?;
        Self::offsets(&mut conn, &keys).await
    }

    async fn commit_batch(
        &self,
        batch: &PreparedBatch,
        rules: &Rules,
    ) -> Result<BatchReport, Error> {
        commit::commit_batch(self, batch, rules).await
    }

    async fn shop_figures(&self, rules: &Rules, now: DateTime<Utc>) -> Result<ShopFigures, Error> {
        read::shop_figures(self, rules, now).await
    }

    async fn late_orders(
        &self,
        rules: &Rules,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LateOrder>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT order_id, customer_id, created_at FROM orders
             WHERE {AWAITING} AND created_at < ?2
             ORDER BY created_at, order_id LIMIT ?3"
        ))
        .bind(sqlite_time(&rules.horizon_start(now)))
        .bind(sqlite_time(&rules.sla_start(now)))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(step("read late orders from orders"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let created_at: DateTime<Utc> = r.get(2);
                LateOrder {
                    order_id: r.get(0),
                    customer_id: r.get(1),
                    created_at,
                    age_seconds: seconds(rules.confirmation_wait(created_at, now)),
                }
            })
            .collect())
    }

    async fn dashboard(&self, rules: &Rules, now: DateTime<Utc>) -> Result<Dashboard, Error> {
        read::dashboard(self, rules, now).await
    }

    super::service::service_reads!();

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(step("ping the database"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_times_sort_as_text_in_time_order() {
        let a: DateTime<Utc> = "2026-10-01T07:00:00Z".parse().unwrap_or_default();
        let b = a + chrono::TimeDelta::milliseconds(1);
        let c = a + chrono::TimeDelta::hours(10);
        assert!(sqlite_time(&a) < sqlite_time(&b));
        assert!(sqlite_time(&b) < sqlite_time(&c));
        assert_eq!(sqlite_time(&a), "2026-10-01T07:00:00.000000Z");
    }

    #[test]
    fn rows_travel_as_json_arrays_in_the_forms_sqlite_stores() {
        let t: DateTime<Utc> = "2026-10-01T07:00:00Z".parse().unwrap_or_default();
        let day = t.date_naive();
        let raw: &[u8] = &[0, 0xab];
        let columns = vec![
            Values::Text(vec![Some("a\"b\\\u{1}"), None]),
            Values::Float8(vec![Some(5.0), Some(f64::NAN)]),
            Values::Int8(vec![Some(-7), Some(i64::MAX)]),
            Values::Bool(vec![Some(true), Some(false)]),
            Values::Time(vec![Some(t), None]),
            Values::Date(vec![Some(day), None]),
            Values::Bytes(vec![Some(raw), None]),
        ];
        let w = Write {
            table: crate::store::tables::ORDER_TABLES[0],
            rows: 2,
            columns,
        };
        let json = json_rows(&w);
        assert_eq!(
            json,
            r#"[["a\"b\\\u0001",5.0,-7,true,"2026-10-01T07:00:00.000000Z","2026-10-01","00ab"],[null,null,9223372036854775807,false,null,null,null]]"#
        );
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&json);
        assert!(parsed.is_ok(), "{json}");
    }

    #[test]
    fn a_statement_reads_columns_by_position_and_bytes_through_unhex() {
        use crate::store::tables::{RejectedRow, Rows};
        let sql = crate::store::tables::ORDER_TABLES[0].insert_sql(&JsonEach, 1);
        assert!(
            sql.contains("FROM json_each(?1) WHERE true ON CONFLICT"),
            "{sql}"
        );
        assert!(sql.contains("value ->> 0"), "{sql}");
        let rejected = RejectedRow::TABLE.insert_sql(&JsonEach, 1);
        assert!(rejected.contains("unhex(value ->> 6)"), "{rejected}");
        assert!(sql.contains("\"updated_at\" = strftime("), "{sql}");
    }
}
