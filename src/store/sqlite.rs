//! The SQLite store: for the demo and a single small shop (one service instance).
//!
//! Same tables and meaning as PostgreSQL (migrations in `migrations/sqlite/`), same batch
//! transaction. SQLite has one writer at a time: a batch takes the write lock up front
//! (`BEGIN IMMEDIATE`), which does what the per-partition advisory lock does on PostgreSQL;
//! fencing and the event store's `(source, id)` key work as there. Rows go in as one JSON
//! array per table (`json_each`), one statement per table and batch.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::entities;
use super::rows::{self, seconds, sqlite_time};
use super::{
    step, BatchReport, ClaimsMonth, Dashboard, DashboardReads, Error, LateOrder, RebuildReport,
    ShopFigures, Store, WindowFigures, CHART_DAYS, CONFIRMATION_MINUTES, WINDOWS,
};
use crate::batch::{Entry, PreparedBatch};
use crate::domain::{
    fold_batch, BatchOutcome, Category, EntityBatch, Event, EventKey, OrderProjection, Rules,
};

/// The current time as SQLite writes `updated_at`.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Serializes rows for `json_each`.
fn json<T: Serialize>(rows: &T, table: &'static str) -> Result<String, Error> {
    serde_json::to_string(rows).map_err(|source| Error::Encode { table, source })
}

/// `INSERT INTO table (cols) SELECT value->>'col'... FROM json_each(?1)`, with an upsert
/// clause. `exprs` overrides how a column is read from the JSON row.
fn insert_json(table: &str, cols: &[&str], exprs: &[(&str, &str)], tail: &str) -> String {
    let names: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
    let values: Vec<String> = cols
        .iter()
        .map(|c| {
            exprs
                .iter()
                .find(|(name, _)| name == c)
                .map(|(_, e)| (*e).to_owned())
                .unwrap_or_else(|| format!("value ->> '{c}'"))
        })
        .collect();
    format!(
        "INSERT INTO {table} ({}) SELECT {} FROM json_each(?1) WHERE true {tail}",
        names.join(", "),
        values.join(", ")
    )
}

/// `ON CONFLICT (key) DO UPDATE SET c = excluded.c, ...` for every non-key column.
fn upsert_all(key: &str, cols: &[&str]) -> String {
    let sets: Vec<String> = cols
        .iter()
        .filter(|c| **c != key)
        .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
        .collect();
    format!("ON CONFLICT ({key}) DO UPDATE SET {}", sets.join(", "))
}

const ORDER_COLUMNS: [&str; 28] = [
    "order_id",
    "customer_id",
    "verdict",
    "created_at",
    "confirmed_at",
    "shipped_at",
    "delivered_at",
    "cancelled_at",
    "promised_to",
    "courier_id",
    "confirmation_channel",
    "created_day",
    "delivered_day",
    "confirmation_seconds",
    "confirmed_to_shipped_seconds",
    "delivery_lateness_seconds",
    "items_ordered",
    "items_delivered",
    "deviation_quality",
    "deviation_completeness",
    "deviation_delivery",
    "deviation_service",
    "final_at",
    "state",
    "sales_channel",
    "total",
    "shipped_day",
    "updated_at",
];

const CLAIM_COLUMNS: [&str; 12] = [
    "claim_id",
    "order_id",
    "category",
    "description",
    "filed_at",
    "filed_day",
    "resolved_at",
    "resolution",
    "counts_for_verdict",
    "resolved_day",
    "improvement",
    "updated_at",
];

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
        Ok(SqliteStore { pool })
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

    async fn read_offsets(
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

    async fn insert_events(
        conn: &mut SqliteConnection,
        entries: &[&Entry],
    ) -> Result<HashSet<EventKey>, Error> {
        let rows = rows::event_rows(entries);
        if rows.is_empty() {
            return Ok(HashSet::new());
        }
        let sql = insert_json(
            "events",
            &[
                "source",
                "id",
                "type",
                "time",
                "order_id",
                "topic",
                "partition",
                "offset",
                "payload",
            ],
            &[("type", "value ->> 'type_name'")],
            "ON CONFLICT (source, id) DO NOTHING RETURNING source, id",
        );
        let inserted = sqlx::query(&sql)
            .bind(json(&rows, "events")?)
            .fetch_all(conn)
            .await
            .map_err(step("insert into events"))?;
        Ok(inserted
            .into_iter()
            .map(|r| EventKey {
                source: r.get(0),
                id: r.get(1),
            })
            .collect())
    }

    async fn load_projections(
        conn: &mut SqliteConnection,
        order_ids: &[String],
    ) -> Result<HashMap<String, OrderProjection>, Error> {
        let rows = sqlx::query(
            "SELECT order_id, state FROM orders WHERE order_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&order_ids, "orders")?)
        .fetch_all(conn)
        .await
        .map_err(step("read orders"))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let order_id: String = row.get(0);
            let projection = serde_json::from_str(row.get::<&str, _>(1)).map_err(|source| {
                Error::CorruptState {
                    order_id: order_id.clone(),
                    source,
                }
            })?;
            out.insert(order_id, projection);
        }
        Ok(out)
    }

    /// Orders, claims and daily KPI deltas of a fold.
    async fn write_outcome(
        conn: &mut SqliteConnection,
        outcome: &BatchOutcome,
        rules: &Rules,
    ) -> Result<(), Error> {
        let orders = rows::order_rows(outcome, rules)?;
        if !orders.is_empty() {
            let sql = insert_json(
                "orders",
                &ORDER_COLUMNS,
                &[("updated_at", NOW)],
                &format!(
                    "{}, version = orders.version + 1",
                    upsert_all("order_id", &ORDER_COLUMNS)
                ),
            );
            sqlx::query(&sql)
                .bind(json(&orders, "orders")?)
                .execute(&mut *conn)
                .await
                .map_err(step("upsert into orders"))?;
        }
        let claims = rows::claim_rows(outcome, rules);
        if !claims.is_empty() {
            let sql = insert_json(
                "claims",
                &CLAIM_COLUMNS,
                &[("updated_at", NOW)],
                &upsert_all("claim_id", &CLAIM_COLUMNS),
            );
            sqlx::query(&sql)
                .bind(json(&claims, "claims")?)
                .execute(&mut *conn)
                .await
                .map_err(step("upsert into claims"))?;
        }
        let kpi = rows::kpi_rows(outcome);
        if !kpi.is_empty() {
            let counts = [
                "fulfilled",
                "perfect",
                "deviation_quality",
                "deviation_completeness",
                "deviation_delivery",
                "deviation_service",
                "cancelled",
            ];
            let mut cols = vec!["day"];
            cols.extend(counts);
            cols.push("updated_at");
            let sets: Vec<String> = counts
                .iter()
                .map(|c| format!("{c} = {c} + excluded.{c}"))
                .collect();
            let sql = insert_json(
                "daily_kpi",
                &cols,
                &[("updated_at", NOW)],
                &format!(
                    "ON CONFLICT (day) DO UPDATE SET {}, updated_at = excluded.updated_at",
                    sets.join(", ")
                ),
            );
            sqlx::query(&sql)
                .bind(json(&kpi, "daily_kpi")?)
                .execute(&mut *conn)
                .await
                .map_err(step("apply deltas to daily_kpi"))?;
        }
        Ok(())
    }

    /// `(posted_at, answered_at)` of the stored reviews the batch touches.
    async fn stored_reviews(
        conn: &mut SqliteConnection,
        batch: &EntityBatch,
    ) -> Result<entities::StoredReviews, Error> {
        if batch.reviews.is_empty() {
            return Ok(Default::default());
        }
        let ids: Vec<&str> = batch.reviews.keys().map(String::as_str).collect();
        let rows = sqlx::query(
            "SELECT review_id, posted_at, answered_at FROM reviews
             WHERE review_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&ids, "reviews")?)
        .fetch_all(&mut *conn)
        .await
        .map_err(step("read reviews"))?;
        let time = |t: Option<String>| {
            t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), (time(r.get(1)), time(r.get(2)))))
            .collect())
    }

    /// Merges the v2 entities of a batch (see `store::entities`).
    async fn write_entities(
        conn: &mut SqliteConnection,
        batch: &EntityBatch,
        rules: &Rules,
    ) -> Result<(), Error> {
        for w in entities::writes(batch, rules)? {
            let Some(rows) = &w.rows else { continue };
            sqlx::query(&w.sqlite_sql())
                .bind(rows)
                .execute(&mut *conn)
                .await
                .map_err(step(w.what))?;
        }
        Ok(())
    }

    async fn write_rejected(conn: &mut SqliteConnection, entries: &[&Entry]) -> Result<(), Error> {
        let rows = rows::rejected_rows(entries);
        if rows.is_empty() {
            return Ok(());
        }
        let sql = insert_json(
            "rejected_events",
            &[
                "topic",
                "partition",
                "offset",
                "reason",
                "detail",
                "key",
                "raw",
            ],
            &[
                ("key", "unhex(value ->> 'key')"),
                ("raw", "unhex(value ->> 'raw')"),
            ],
            "ON CONFLICT (topic, partition, \"offset\") DO NOTHING",
        );
        sqlx::query(&sql)
            .bind(json(&rows, "rejected_events")?)
            .execute(conn)
            .await
            .map_err(step("insert into rejected_events"))?;
        Ok(())
    }

    async fn write_duplicates(
        conn: &mut SqliteConnection,
        entries: &[&Entry],
    ) -> Result<(), Error> {
        let rows = rows::duplicate_rows(entries);
        if rows.is_empty() {
            return Ok(());
        }
        let sql = insert_json(
            "duplicate_events",
            &["topic", "partition", "offset", "source", "id"],
            &[],
            "ON CONFLICT (topic, partition, \"offset\") DO NOTHING",
        );
        sqlx::query(&sql)
            .bind(json(&rows, "duplicate_events")?)
            .execute(conn)
            .await
            .map_err(step("insert into duplicate_events"))?;
        Ok(())
    }

    async fn write_offsets(
        conn: &mut SqliteConnection,
        batch: &PreparedBatch,
    ) -> Result<(), Error> {
        let rows: Vec<(&str, i32, i64)> = batch
            .next_offsets
            .iter()
            .map(|((topic, partition), next)| (topic.as_ref(), *partition, *next))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO consumer_offsets (topic, partition, next_offset, updated_at)
             SELECT value ->> 0, value ->> 1, value ->> 2, {NOW} FROM json_each(?1) WHERE true
             ON CONFLICT (topic, partition) DO UPDATE
               SET next_offset = max(next_offset, excluded.next_offset),
                   updated_at = excluded.updated_at"
        ))
        .bind(json(&rows, "consumer_offsets")?)
        .execute(conn)
        .await
        .map_err(step("upsert into consumer_offsets"))?;
        Ok(())
    }

    /// Recomputes every order projection, claim and daily KPI row from the event store under
    /// `rules`, in one transaction (readers see the old rows until it commits; ingest waits
    /// for the write lock). Events are read `chunk` at a time, `progress(done, total)` after
    /// each chunk.
    pub async fn rebuild(
        &self,
        rules: &Rules,
        limits: &crate::domain::Limits,
        chunk: i64,
        progress: impl Fn(u64, u64),
    ) -> Result<RebuildReport, Error> {
        let chunk = chunk.max(1);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(step("begin the rebuild transaction"))?;
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE order_id IS NOT NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(step("count events"))?;
        for table in ["orders", "claims", "daily_kpi"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(step("empty orders, claims and daily_kpi"))?;
        }
        let mut regroup = rows::Regroup::new(*limits);
        let mut after = (String::new(), String::new(), String::new());
        loop {
            let rows = sqlx::query(
                "SELECT order_id, source, id, payload FROM events
                 WHERE order_id IS NOT NULL AND (order_id, source, id) > (?1, ?2, ?3)
                 ORDER BY order_id, source, id LIMIT ?4",
            )
            .bind(&after.0)
            .bind(&after.1)
            .bind(&after.2)
            .bind(chunk)
            .fetch_all(&mut *tx)
            .await
            .map_err(step("read events"))?;
            let done = (rows.len() as i64) < chunk;
            let mut ready: Vec<Event> = Vec::with_capacity(rows.len());
            for row in &rows {
                regroup.push(row.get(0), row.get::<&str, _>(3), &mut ready);
            }
            if let Some(last) = rows.last() {
                after = (last.get(0), last.get(1), last.get(2));
            }
            if done {
                regroup.finish(&mut ready);
            }
            let outcome = fold_batch(HashMap::new(), ready, rules);
            Self::write_outcome(&mut tx, &outcome, rules).await?;
            progress(regroup.report.events, total.max(0) as u64);
            if done {
                break;
            }
        }
        // Contract v2: the entities, from every stored event of a v2 type (including those
        // stored as unknown types by a version before v2), in keyset chunks.
        for table in entities::TABLES {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(step("empty the v2 tables"))?;
        }
        let types = json(&crate::domain::event::V2_TYPES, "events")?;
        let mut after = (String::new(), String::new());
        loop {
            let rows = sqlx::query(
                "SELECT source, id, payload FROM events
                 WHERE type IN (SELECT value FROM json_each(?1)) AND (source, id) > (?2, ?3)
                 ORDER BY source, id LIMIT ?4",
            )
            .bind(&types)
            .bind(&after.0)
            .bind(&after.1)
            .bind(chunk)
            .fetch_all(&mut *tx)
            .await
            .map_err(step("read v2 events"))?;
            let done = (rows.len() as i64) < chunk;
            if let Some(last) = rows.last() {
                after = (last.get(0), last.get(1));
            }
            let batch = EntityBatch::fold(
                rows.iter()
                    .filter_map(|r| regroup.decode_v2(r.get::<&str, _>(2))),
            );
            Self::write_entities(&mut tx, &batch, rules).await?;
            if done {
                break;
            }
        }
        tx.commit().await.map_err(step("commit the rebuild"))?;
        Ok(regroup.report)
    }

    super::same_sql_reads!();

    /// `sum(column)` over `daily_kpi` for the days in `(after, until]`.
    async fn window(
        &self,
        label: &'static str,
        days: i64,
        today: NaiveDate,
    ) -> Result<WindowFigures, Error> {
        let r = sqlx::query(
            "SELECT COALESCE(sum(fulfilled), 0), COALESCE(sum(perfect), 0),
                    COALESCE(sum(deviation_quality), 0), COALESCE(sum(deviation_completeness), 0),
                    COALESCE(sum(deviation_delivery), 0), COALESCE(sum(deviation_service), 0)
             FROM daily_kpi WHERE day > ?1 AND day <= ?2",
        )
        .bind(today - chrono::TimeDelta::days(days))
        .bind(today)
        .fetch_one(&self.pool)
        .await
        .map_err(step("read rolling windows from daily_kpi"))?;
        Ok(WindowFigures {
            label,
            days,
            fulfilled: r.get(0),
            perfect: r.get(1),
            deviations: Category::ALL
                .iter()
                .enumerate()
                .map(|(i, c)| (*c, r.get::<i64, _>(2 + i)))
                .collect(),
        })
    }
}

/// The SLA watch's condition (as on PostgreSQL): created after ?1 (now minus the pending
/// horizon), neither confirmed nor cancelled.
const AWAITING: &str = "confirmed_at IS NULL AND cancelled_at IS NULL AND created_at IS NOT NULL
                        AND created_at > ?1";

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
        Self::read_offsets(&mut conn, &keys).await
    }

    async fn commit_batch(
        &self,
        batch: &PreparedBatch,
        rules: &Rules,
    ) -> Result<BatchReport, Error> {
        let mut report = BatchReport {
            records: batch.len(),
            next_offsets: batch.next_offsets.clone(),
            ..BatchReport::default()
        };
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(step("begin the batch transaction"))?;
        let keys: Vec<(&str, i32)> = batch
            .next_offsets
            .keys()
            .map(|(t, p)| (t.as_ref(), *p))
            .collect();
        let stored = Self::read_offsets(&mut tx, &keys).await?;
        let mut duplicates = Vec::new();
        let unique = rows::screen(batch, &stored, &mut report, &mut duplicates);
        let inserted = Self::insert_events(&mut tx, &unique).await?;
        let fresh = rows::fresh_events(&unique, &inserted, &mut report, &mut duplicates);
        let (v2, fresh): (Vec<Event>, Vec<Event>) =
            fresh.into_iter().partition(|e| e.kind.order_id().is_none());
        let order_ids = rows::order_ids(&fresh);
        let stored_projections = if order_ids.is_empty() {
            HashMap::new()
        } else {
            Self::load_projections(&mut tx, &order_ids).await?
        };
        let outcome = fold_batch(stored_projections, fresh, rules);
        Self::write_outcome(&mut tx, &outcome, rules).await?;
        if !v2.is_empty() {
            let entities = EntityBatch::fold(v2);
            let stored = Self::stored_reviews(&mut tx, &entities).await?;
            report.review_answer_seconds = entities::new_answer_seconds(&entities, &stored);
            Self::write_entities(&mut tx, &entities, rules).await?;
        }
        Self::write_rejected(&mut tx, &unique).await?;
        Self::write_duplicates(&mut tx, &duplicates).await?;
        Self::write_offsets(&mut tx, batch).await?;
        tx.commit()
            .await
            .map_err(step("commit the batch transaction"))?;
        rows::finish_report(&mut report, &outcome);
        Ok(report)
    }

    async fn shop_figures(&self, rules: &Rules, now: DateTime<Utc>) -> Result<ShopFigures, Error> {
        let row = sqlx::query(&format!(
            "SELECT count(*), COALESCE(sum(created_at < ?2), 0), min(created_at)
             FROM orders WHERE {AWAITING}"
        ))
        .bind(sqlite_time(&(now - rules.pending_horizon)))
        .bind(sqlite_time(&(now - rules.confirmation_sla)))
        .fetch_one(&self.pool)
        .await
        .map_err(step("read the SLA watch from orders"))?;
        let oldest: Option<DateTime<Utc>> = row.get(2);
        let today = rules.day_of(now);
        let mut windows = Vec::with_capacity(WINDOWS.len());
        for (label, days) in WINDOWS {
            windows.push(self.window(label, days, today).await?);
        }
        Ok(ShopFigures {
            awaiting_confirmation: row.get(0),
            over_sla: row.get(1),
            oldest_awaiting_seconds: oldest.map_or(0.0, |t| seconds(now - t).max(0.0)),
            windows,
        })
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
        .bind(sqlite_time(&(now - rules.pending_horizon)))
        .bind(sqlite_time(&(now - rules.confirmation_sla)))
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
                    age_seconds: seconds(now - created_at),
                }
            })
            .collect())
    }

    async fn dashboard(&self, rules: &Rules, now: DateTime<Utc>) -> Result<Dashboard, Error> {
        let figures = self.shop_figures(rules, now).await?;
        let today = rules.day_of(now);
        let month_start = today.with_day0(0).unwrap_or(today);
        let month_rate: Option<f64> =
            sqlx::query_scalar("SELECT po_rate FROM po_monthly WHERE month = ?1")
                .bind(month_start)
                .fetch_optional(&self.pool)
                .await
                .map_err(step("read this month from po_monthly"))?
                .flatten();
        let days = sqlx::query(
            "SELECT day, fulfilled, perfect FROM daily_kpi WHERE day > ?1 AND day <= ?2",
        )
        .bind(today - chrono::TimeDelta::days(CHART_DAYS))
        .bind(today)
        .fetch_all(&self.pool)
        .await
        .map_err(step("read po_daily from daily_kpi"))?
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
        let claims_monthly = sqlx::query(
            "SELECT month, category, claims, change FROM claims_monthly
             WHERE month > ?1 ORDER BY month, category",
        )
        .bind(
            month_start
                .checked_sub_months(Months::new(6))
                .unwrap_or(month_start),
        )
        .fetch_all(&self.pool)
        .await
        .map_err(step("read claims_monthly"))?
        .into_iter()
        .map(|r| ClaimsMonth {
            month: r.get(0),
            category: r.get(1),
            claims: r.get(2),
            change: r.get(3),
        })
        .collect();
        // How many bounds are at or below the latency in minutes (PostgreSQL's width_bucket).
        let bucket: Vec<String> = CONFIRMATION_MINUTES
            .iter()
            .map(|b| format!("(m >= {b})"))
            .collect();
        let buckets = sqlx::query(&format!(
            "SELECT {} AS bucket, count(*) FROM (
                 SELECT confirmation_seconds / 60.0 AS m FROM orders
                 WHERE confirmation_seconds IS NOT NULL AND created_at > ?1)
             GROUP BY 1",
            bucket.join(" + ")
        ))
        .bind(sqlite_time(&(now - chrono::TimeDelta::days(30))))
        .fetch_all(&self.pool)
        .await
        .map_err(step("read confirmation latencies from orders"))?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        Ok(Dashboard::assemble(DashboardReads {
            rules,
            now,
            figures,
            month_rate,
            days,
            claims_monthly,
            buckets,
        }))
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
    fn insert_json_reads_each_column_from_the_json_row_unless_told_otherwise() {
        let sql = insert_json("t", &["a", "b"], &[("b", "unhex(value ->> 'b')")], "");
        assert_eq!(
            sql.trim(),
            "INSERT INTO t (\"a\", \"b\") SELECT value ->> 'a', unhex(value ->> 'b') FROM json_each(?1) WHERE true"
        );
    }

    #[test]
    fn sqlite_times_sort_as_text_in_time_order() {
        let a: DateTime<Utc> = "2026-10-01T07:00:00Z".parse().unwrap_or_default();
        let b = a + chrono::TimeDelta::milliseconds(1);
        let c = a + chrono::TimeDelta::hours(10);
        assert!(sqlite_time(&a) < sqlite_time(&b));
        assert!(sqlite_time(&b) < sqlite_time(&c));
        assert_eq!(sqlite_time(&a), "2026-10-01T07:00:00.000000Z");
    }
}
