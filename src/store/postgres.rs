//! The PostgreSQL store: the production default.
//!
//! Exactly-once per batch rests on three things, all inside one transaction:
//! 1. an advisory lock per partition number, so two instances never fold the same orders at
//!    once (order-scoped topics are co-partitioned, so an order lives on one partition number);
//! 2. fencing: records below the stored next offset are skipped, so a batch replayed after a
//!    crash or a rebalance race applies nothing twice;
//! 3. the event store's `(source, id)` key: only events new to the store are folded.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Utc};
use std::str::FromStr;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::cache::ProjectionCache;
use super::entities;
use super::rows::seconds;
use super::{
    rows, step, BatchReport, ClaimsMonth, Dashboard, DashboardReads, Error, LateOrder,
    RebuildReport, ShopFigures, Store, WindowFigures, CHART_DAYS, CONFIRMATION_MINUTES, WINDOWS,
};
use crate::batch::{Entry, PreparedBatch};
use crate::domain::{
    fold_batch, BatchOutcome, Category, EntityBatch, Event, EventKey, OrderProjection, Rules,
};

/// First key of the advisory locks this service takes (the second is the partition number).
const LOCK_NAMESPACE: i32 = 0x504f; // "PO"

/// The SLA watch's condition: created within the pending horizon ($2 seconds before $1 = now),
/// neither confirmed nor cancelled. One definition for the gauges and the on-call list (the
/// `orders_awaiting_confirmation` view says the same with `now()`).
macro_rules! awaiting_confirmation {
    () => {
        "confirmed_at IS NULL AND cancelled_at IS NULL AND created_at IS NOT NULL
         AND created_at > $1 - make_interval(secs => $2)"
    };
}

/// Wall time per step of a batch, for the debug log (where a batch's time goes).
struct Laps {
    last: std::time::Instant,
    steps: Vec<(&'static str, std::time::Duration)>,
}

impl Laps {
    fn start() -> Laps {
        Laps {
            last: std::time::Instant::now(),
            steps: Vec::with_capacity(8),
        }
    }

    fn mark(&mut self, step: &'static str) {
        let now = std::time::Instant::now();
        self.steps.push((step, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Laps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (step, took)) in self.steps.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{step}={:.1}", took.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    cache: Arc<Mutex<ProjectionCache>>,
}

impl PgStore {
    /// Connects a pool; the error names the (redacted) URL.
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore, Error> {
        let connect_error = |source| Error::connect(url, source);
        // JIT compilation costs the monthly views (their correlated look-ups make the planner
        // estimate them expensive) close to a second each, and gains the batch statements
        // nothing: it is off for the service's sessions.
        let options = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(connect_error)?
            .options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(PgStore {
            pool,
            cache: Arc::new(Mutex::new(ProjectionCache::new(0))),
        })
    }

    /// Applies the migrations in `migrations/` (embedded in the binary).
    pub async fn migrate(&self) -> Result<(), Error> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Keeps up to `orders` unfinished order projections in memory between batches
    /// (`batch.projection_cache`; 0 turns the cache off).
    pub fn set_cache_capacity(&self, orders: usize) {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = ProjectionCache::new(orders);
        }
    }

    /// Writes the rule settings the SQL views read.
    pub async fn write_settings(&self, rules: &Rules) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO service_settings (singleton, timezone, confirmation_sla, pending_horizon, claim_window,
               smiley_min_rating, review_answer_sla, team_size, updated_at)
             VALUES (true, $1, make_interval(secs => $2), make_interval(secs => $3), make_interval(secs => $4),
               $5, make_interval(secs => $6), $7, now())
             ON CONFLICT (singleton) DO UPDATE SET timezone = excluded.timezone,
               confirmation_sla = excluded.confirmation_sla, pending_horizon = excluded.pending_horizon,
               claim_window = excluded.claim_window, smiley_min_rating = excluded.smiley_min_rating,
               review_answer_sla = excluded.review_answer_sla, team_size = excluded.team_size,
               updated_at = now()",
        )
        .bind(rules.timezone.name())
        .bind(seconds(rules.confirmation_sla))
        .bind(seconds(rules.pending_horizon))
        .bind(seconds(rules.claim_window))
        .bind(i32::from(rules.smiley_min_rating))
        .bind(seconds(rules.review_answer_sla))
        .bind(rules.team_size as i32)
        .execute(&self.pool)
        .await
        .map_err(step("write service_settings"))?;
        Ok(())
    }

    /// The pool, for tests and tools that query the tables directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn fence(
        tx: &mut Transaction<'_, Postgres>,
        batch: &PreparedBatch,
    ) -> Result<HashMap<(String, i32), i64>, Error> {
        // One statement, in partition order (so that two instances never deadlock).
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1, p) FROM (SELECT unnest($2::int[]) AS p ORDER BY 1) x",
        )
        .bind(LOCK_NAMESPACE)
        .bind(batch.partition_numbers())
        .execute(&mut **tx)
        .await
        .map_err(step("lock partitions"))?;
        let keys: Vec<(&str, i32)> = batch
            .next_offsets
            .keys()
            .map(|(t, p)| (t.as_ref(), *p))
            .collect();
        read_offsets(&mut **tx, &keys).await
    }

    async fn insert_events(
        tx: &mut Transaction<'_, Postgres>,
        entries: &[&Entry],
    ) -> Result<HashSet<EventKey>, Error> {
        let rows = rows::event_rows(entries);
        if rows.is_empty() {
            return Ok(HashSet::new());
        }
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f).collect::<Vec<_>>()
            };
        }
        let rows = sqlx::query(
            "INSERT INTO events (source, id, type, time, order_id, topic, partition, \"offset\", payload)
             SELECT s, i, t, tm, o, tp, p, off, pl::jsonb
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::text[])
               AS x(s, i, t, tm, o, tp, p, off, pl)
             ON CONFLICT (source, id) DO NOTHING
             RETURNING source, id",
        )
        .bind(col!(source))
        .bind(col!(id))
        .bind(col!(type_name))
        .bind(col!(time))
        .bind(col!(order_id))
        .bind(col!(topic))
        .bind(col!(partition))
        .bind(col!(offset))
        .bind(col!(payload))
        .fetch_all(&mut **tx)
        .await
        .map_err(step("insert into events"))?;
        Ok(rows
            .into_iter()
            .map(|r| EventKey {
                source: r.get(0),
                id: r.get(1),
            })
            .collect())
    }

    /// The stored projections of `order_ids` with their versions. A cached projection whose
    /// version is still the stored one is used as is (its state is not read); any other is
    /// read and parsed.
    async fn load_projections(
        tx: &mut Transaction<'_, Postgres>,
        order_ids: &[String],
        mut cached: HashMap<String, (i64, OrderProjection)>,
    ) -> Result<HashMap<String, OrderProjection>, Error> {
        let versions: Vec<i64> = order_ids
            .iter()
            .map(|id| cached.get(id).map_or(-1, |(v, _)| *v))
            .collect();
        let rows = sqlx::query(
            "SELECT o.order_id, CASE WHEN o.version = k.v THEN NULL ELSE o.state::text END
             FROM orders o JOIN UNNEST($1::text[], $2::bigint[]) AS k(id, v) ON o.order_id = k.id",
        )
        .bind(order_ids)
        .bind(&versions)
        .fetch_all(&mut **tx)
        .await
        .map_err(step("read orders"))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let order_id: String = row.get(0);
            let state: Option<&str> = row.get(1);
            let projection = match state {
                None => match cached.remove(&order_id) {
                    Some((_, p)) => p,
                    None => continue,
                },
                Some(state) => {
                    serde_json::from_str(state).map_err(|source| Error::CorruptState {
                        order_id: order_id.clone(),
                        source,
                    })?
                }
            };
            out.insert(order_id, projection);
        }
        // A cached order whose row is gone (a rebuild is rewriting the table): its facts are
        // still facts, all from the event store.
        for (order_id, (_, projection)) in cached {
            out.entry(order_id).or_insert(projection);
        }
        Ok(out)
    }

    /// Upserts the changed orders; returns the version each row now has. A new row starts at
    /// `first_version`.
    async fn write_orders(
        tx: &mut Transaction<'_, Postgres>,
        outcome: &BatchOutcome,
        rules: &Rules,
        first_version: i64,
    ) -> Result<HashMap<String, i64>, Error> {
        let rows = rows::order_rows(outcome, rules)?;
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
            };
        }
        let versions = sqlx::query(
            "INSERT INTO orders (order_id, customer_id, verdict, created_at, confirmed_at, shipped_at,
               delivered_at, cancelled_at, promised_to, courier_id, confirmation_channel, created_day,
               delivered_day, confirmation_seconds, confirmed_to_shipped_seconds, delivery_lateness_seconds,
               items_ordered, items_delivered, deviation_quality, deviation_completeness, deviation_delivery,
               deviation_service, final_at, state, sales_channel, total, shipped_day, updated_at, version)
             SELECT a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
                    a20, a21, a22, a23, a24::jsonb, a25, a26::numeric, a27, now(), $28
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
               $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[],
               $11::text[], $12::date[], $13::date[], $14::float8[], $15::float8[], $16::float8[],
               $17::bigint[], $18::bigint[], $19::bool[], $20::bool[], $21::bool[], $22::bool[],
               $23::timestamptz[], $24::text[], $25::text[], $26::text[], $27::date[])
               AS x(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
                    a19, a20, a21, a22, a23, a24, a25, a26, a27)
             ON CONFLICT (order_id) DO UPDATE SET customer_id = excluded.customer_id,
               verdict = excluded.verdict, created_at = excluded.created_at,
               confirmed_at = excluded.confirmed_at, shipped_at = excluded.shipped_at,
               delivered_at = excluded.delivered_at, cancelled_at = excluded.cancelled_at,
               promised_to = excluded.promised_to, courier_id = excluded.courier_id,
               confirmation_channel = excluded.confirmation_channel, created_day = excluded.created_day,
               delivered_day = excluded.delivered_day, confirmation_seconds = excluded.confirmation_seconds,
               confirmed_to_shipped_seconds = excluded.confirmed_to_shipped_seconds,
               delivery_lateness_seconds = excluded.delivery_lateness_seconds,
               items_ordered = excluded.items_ordered, items_delivered = excluded.items_delivered,
               deviation_quality = excluded.deviation_quality,
               deviation_completeness = excluded.deviation_completeness,
               deviation_delivery = excluded.deviation_delivery,
               deviation_service = excluded.deviation_service, final_at = excluded.final_at,
               state = excluded.state, sales_channel = excluded.sales_channel,
               total = excluded.total, shipped_day = excluded.shipped_day,
               updated_at = now(), version = orders.version + 1
             RETURNING order_id, version",
        )
        .bind(col!(order_id)).bind(col!(customer_id)).bind(col!(verdict)).bind(col!(created_at))
        .bind(col!(confirmed_at)).bind(col!(shipped_at)).bind(col!(delivered_at))
        .bind(col!(cancelled_at)).bind(col!(promised_to)).bind(col!(courier_id))
        .bind(col!(confirmation_channel)).bind(col!(created_day)).bind(col!(delivered_day))
        .bind(col!(confirmation_seconds)).bind(col!(confirmed_to_shipped_seconds))
        .bind(col!(delivery_lateness_seconds)).bind(col!(items_ordered)).bind(col!(items_delivered))
        .bind(col!(deviation_quality)).bind(col!(deviation_completeness))
        .bind(col!(deviation_delivery)).bind(col!(deviation_service)).bind(col!(final_at))
        .bind(col!(state))
        .bind(col!(sales_channel))
        .bind(col!(total))
        .bind(col!(shipped_day))
        .bind(first_version)
        .fetch_all(&mut **tx)
        .await
        .map_err(step("upsert into orders"))?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        Ok(versions)
    }

    async fn write_claims(
        tx: &mut Transaction<'_, Postgres>,
        outcome: &BatchOutcome,
        rules: &Rules,
    ) -> Result<(), Error> {
        let rows = rows::claim_rows(outcome, rules);
        if rows.is_empty() {
            return Ok(());
        }
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
            };
        }
        sqlx::query(
            "INSERT INTO claims (claim_id, order_id, category, description, filed_at, filed_day,
               resolved_at, resolution, counts_for_verdict, resolved_day, improvement, updated_at)
             SELECT *, now() FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
               $5::timestamptz[], $6::date[], $7::timestamptz[], $8::text[], $9::bool[],
               $10::date[], $11::text[])
             ON CONFLICT (claim_id) DO UPDATE SET order_id = excluded.order_id,
               category = excluded.category, description = excluded.description,
               filed_at = excluded.filed_at, filed_day = excluded.filed_day,
               resolved_at = excluded.resolved_at, resolution = excluded.resolution,
               counts_for_verdict = excluded.counts_for_verdict,
               resolved_day = excluded.resolved_day, improvement = excluded.improvement,
               updated_at = now()",
        )
        .bind(col!(claim_id))
        .bind(col!(order_id))
        .bind(col!(category))
        .bind(col!(description))
        .bind(col!(filed_at))
        .bind(col!(filed_day))
        .bind(col!(resolved_at))
        .bind(col!(resolution))
        .bind(col!(counts_for_verdict))
        .bind(col!(resolved_day))
        .bind(col!(improvement))
        .execute(&mut **tx)
        .await
        .map_err(step("upsert into claims"))?;
        Ok(())
    }

    async fn write_kpi(
        tx: &mut Transaction<'_, Postgres>,
        outcome: &BatchOutcome,
    ) -> Result<(), Error> {
        let rows = rows::kpi_rows(outcome);
        if rows.is_empty() {
            return Ok(());
        }
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f).collect::<Vec<_>>()
            };
        }
        sqlx::query(
            "INSERT INTO daily_kpi (day, fulfilled, perfect, deviation_quality, deviation_completeness,
               deviation_delivery, deviation_service, cancelled, updated_at)
             SELECT *, now() FROM UNNEST($1::date[], $2::bigint[], $3::bigint[], $4::bigint[],
               $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
             ON CONFLICT (day) DO UPDATE SET
               fulfilled = daily_kpi.fulfilled + excluded.fulfilled,
               perfect = daily_kpi.perfect + excluded.perfect,
               deviation_quality = daily_kpi.deviation_quality + excluded.deviation_quality,
               deviation_completeness = daily_kpi.deviation_completeness + excluded.deviation_completeness,
               deviation_delivery = daily_kpi.deviation_delivery + excluded.deviation_delivery,
               deviation_service = daily_kpi.deviation_service + excluded.deviation_service,
               cancelled = daily_kpi.cancelled + excluded.cancelled,
               updated_at = now()",
        )
        .bind(col!(day))
        .bind(col!(fulfilled))
        .bind(col!(perfect))
        .bind(col!(deviation_quality))
        .bind(col!(deviation_completeness))
        .bind(col!(deviation_delivery))
        .bind(col!(deviation_service))
        .bind(col!(cancelled))
        .execute(&mut **tx)
        .await
        .map_err(step("apply deltas to daily_kpi"))?;
        Ok(())
    }

    /// `(posted_at, answered_at)` of the stored reviews the batch touches.
    async fn stored_reviews(
        tx: &mut Transaction<'_, Postgres>,
        entities: &EntityBatch,
    ) -> Result<entities::StoredReviews, Error> {
        if entities.reviews.is_empty() {
            return Ok(Default::default());
        }
        let ids: Vec<&str> = entities.reviews.keys().map(String::as_str).collect();
        let rows = sqlx::query(
            "SELECT review_id, posted_at, answered_at FROM reviews WHERE review_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await
        .map_err(step("read reviews"))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect())
    }

    /// Merges the v2 entities of a batch (see `store::entities`).
    async fn write_entities(
        tx: &mut Transaction<'_, Postgres>,
        batch: &EntityBatch,
        rules: &Rules,
    ) -> Result<(), Error> {
        let writes = entities::writes(batch, rules)?;
        let mut query = sqlx::query(entities::postgres_sql());
        for w in &writes {
            query = query.bind(w.rows.as_deref().unwrap_or("[]"));
        }
        query
            .execute(&mut **tx)
            .await
            .map_err(step("merge the batch into the v2 tables"))?;
        Ok(())
    }

    async fn write_rejected(
        tx: &mut Transaction<'_, Postgres>,
        entries: &[&Entry],
    ) -> Result<(), Error> {
        let rows = rows::rejected_rows(entries);
        if rows.is_empty() {
            return Ok(());
        }
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
            };
        }
        sqlx::query(
            "INSERT INTO rejected_events (topic, partition, \"offset\", reason, detail, key, raw)
             SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[],
               $6::bytea[], $7::bytea[])
             ON CONFLICT (topic, partition, \"offset\") DO NOTHING",
        )
        .bind(col!(topic))
        .bind(col!(partition))
        .bind(col!(offset))
        .bind(col!(reason))
        .bind(col!(detail))
        .bind(col!(key))
        .bind(col!(raw))
        .execute(&mut **tx)
        .await
        .map_err(step("insert into rejected_events"))?;
        Ok(())
    }

    async fn write_duplicates(
        tx: &mut Transaction<'_, Postgres>,
        entries: &[&Entry],
    ) -> Result<(), Error> {
        let rows = rows::duplicate_rows(entries);
        if rows.is_empty() {
            return Ok(());
        }
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f).collect::<Vec<_>>()
            };
        }
        sqlx::query(
            "INSERT INTO duplicate_events (topic, partition, \"offset\", source, id)
             SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[])
             ON CONFLICT (topic, partition, \"offset\") DO NOTHING",
        )
        .bind(col!(topic))
        .bind(col!(partition))
        .bind(col!(offset))
        .bind(col!(source))
        .bind(col!(id))
        .execute(&mut **tx)
        .await
        .map_err(step("insert into duplicate_events"))?;
        Ok(())
    }

    async fn write_offsets(
        tx: &mut Transaction<'_, Postgres>,
        batch: &PreparedBatch,
    ) -> Result<(), Error> {
        let mut topics = Vec::new();
        let mut partitions = Vec::new();
        let mut offsets = Vec::new();
        for ((topic, partition), next) in &batch.next_offsets {
            topics.push(topic.as_ref());
            partitions.push(*partition);
            offsets.push(*next);
        }
        sqlx::query(
            "INSERT INTO consumer_offsets (topic, partition, next_offset, updated_at)
             SELECT *, now() FROM UNNEST($1::text[], $2::int[], $3::bigint[])
             ON CONFLICT (topic, partition) DO UPDATE
               SET next_offset = GREATEST(consumer_offsets.next_offset, excluded.next_offset),
                   updated_at = now()",
        )
        .bind(&topics)
        .bind(&partitions)
        .bind(&offsets)
        .execute(&mut **tx)
        .await
        .map_err(step("upsert into consumer_offsets"))?;
        Ok(())
    }
}

impl PgStore {
    /// Recomputes every order projection, claim and daily KPI row from the event store under
    /// `rules` (after a rule change), and swaps the result in atomically: readers see the old
    /// tables until the transaction commits, and ingest waits on the `events` lock meanwhile.
    /// Events are read `chunk` at a time; `progress(events_done, events_total)` is called after
    /// every chunk.
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
            .begin()
            .await
            .map_err(step("begin the rebuild transaction"))?;
        // Blocks new batches (they insert into events) and waits for those in flight.
        sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(step("lock events for the rebuild"))?;
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE order_id IS NOT NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(step("count events"))?;
        sqlx::query("TRUNCATE orders, claims, daily_kpi")
            .execute(&mut *tx)
            .await
            .map_err(step("truncate orders, claims and daily_kpi"))?;
        sqlx::query(
            "DECLARE rebuild_events NO SCROLL CURSOR FOR
             SELECT order_id, payload::text FROM events WHERE order_id IS NOT NULL ORDER BY order_id",
        )
        .execute(&mut *tx)
        .await
        .map_err(step("open a cursor over events"))?;
        // Rebuilt rows get a version no instance has cached (the rebuild's time in ms, above
        // any count of updates), so every cached projection is read again after a rebuild.
        let rebuilt_version = Utc::now().timestamp_millis();
        let mut regroup = rows::Regroup::new(*limits);
        loop {
            let rows = sqlx::query(&format!("FETCH {chunk} FROM rebuild_events"))
                .fetch_all(&mut *tx)
                .await
                .map_err(step("read events"))?;
            let done = (rows.len() as i64) < chunk;
            let mut ready: Vec<Event> = Vec::with_capacity(rows.len());
            for row in rows {
                regroup.push(row.get(0), row.get::<&str, _>(1), &mut ready);
            }
            if done {
                regroup.finish(&mut ready);
            }
            let outcome = fold_batch(HashMap::new(), std::mem::take(&mut ready), rules);
            Self::write_orders(&mut tx, &outcome, rules, rebuilt_version).await?;
            Self::write_claims(&mut tx, &outcome, rules).await?;
            Self::write_kpi(&mut tx, &outcome).await?;
            progress(regroup.report.events, total.max(0) as u64);
            if done {
                break;
            }
        }
        sqlx::query("CLOSE rebuild_events")
            .execute(&mut *tx)
            .await
            .map_err(step("close the events cursor"))?;
        // Contract v2: the entities, from every stored event of a v2 type (including those
        // stored as unknown types by a version before v2).
        sqlx::query(&format!("TRUNCATE {}", entities::TABLES.join(", ")))
            .execute(&mut *tx)
            .await
            .map_err(step("truncate the v2 tables"))?;
        sqlx::query(
            "DECLARE rebuild_entities NO SCROLL CURSOR FOR
             SELECT payload::text FROM events WHERE type = ANY($1) ORDER BY source, id",
        )
        .bind(&crate::domain::event::V2_TYPES[..])
        .execute(&mut *tx)
        .await
        .map_err(step("open a cursor over the v2 events"))?;
        loop {
            let rows = sqlx::query(&format!("FETCH {chunk} FROM rebuild_entities"))
                .fetch_all(&mut *tx)
                .await
                .map_err(step("read v2 events"))?;
            let done = (rows.len() as i64) < chunk;
            let batch = EntityBatch::fold(
                rows.iter()
                    .filter_map(|r| regroup.decode_v2(r.get::<&str, _>(0))),
            );
            Self::write_entities(&mut tx, &batch, rules).await?;
            if done {
                break;
            }
        }
        sqlx::query("CLOSE rebuild_entities")
            .execute(&mut *tx)
            .await
            .map_err(step("close the v2 events cursor"))?;
        tx.commit().await.map_err(step("commit the rebuild"))?;
        Ok(regroup.report)
    }
}

impl PgStore {
    super::same_sql_reads!();
}

/// Next offsets stored for `keys` (absent partitions were never committed).
async fn read_offsets<'e, E>(
    executor: E,
    keys: &[(&str, i32)],
) -> Result<HashMap<(String, i32), i64>, Error>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let (topics, partitions): (Vec<&str>, Vec<i32>) = keys.iter().copied().unzip();
    let rows = sqlx::query(
        "SELECT c.topic, c.partition, c.next_offset FROM consumer_offsets c
         JOIN UNNEST($1::text[], $2::int[]) AS k(topic, partition) USING (topic, partition)",
    )
    .bind(&topics)
    .bind(&partitions)
    .fetch_all(executor)
    .await
    .map_err(step("read consumer_offsets"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                (r.get::<String, _>(0), r.get::<i32, _>(1)),
                r.get::<i64, _>(2),
            )
        })
        .collect())
}

impl Store for PgStore {
    async fn load_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), i64>, Error> {
        let keys: Vec<(&str, i32)> = partitions.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        read_offsets(&self.pool, &keys).await
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
            .begin()
            .await
            .map_err(step("begin the batch transaction"))?;
        let mut lap = Laps::start();
        let stored = Self::fence(&mut tx, batch).await?;
        lap.mark("lock_fence");
        let mut duplicates = Vec::new();
        let unique = rows::screen(batch, &stored, &mut report, &mut duplicates);
        let inserted = Self::insert_events(&mut tx, &unique).await?;
        lap.mark("insert_events");
        let fresh = rows::fresh_events(&unique, &inserted, &mut report, &mut duplicates);
        let (v2, fresh): (Vec<Event>, Vec<Event>) =
            fresh.into_iter().partition(|e| e.kind.order_id().is_none());
        let order_ids = rows::order_ids(&fresh);
        let cached = match self.cache.lock() {
            Ok(mut cache) => cache.take(&order_ids),
            Err(_) => HashMap::new(),
        };
        let stored_projections = if order_ids.is_empty() {
            HashMap::new()
        } else {
            Self::load_projections(&mut tx, &order_ids, cached).await?
        };
        lap.mark("load_orders");
        let outcome = fold_batch(stored_projections, fresh, rules);
        lap.mark("fold");
        let versions = Self::write_orders(&mut tx, &outcome, rules, 0).await?;
        lap.mark("write_orders");
        Self::write_claims(&mut tx, &outcome, rules).await?;
        Self::write_kpi(&mut tx, &outcome).await?;
        lap.mark("write_claims_kpi");
        if !v2.is_empty() {
            let entities = EntityBatch::fold(v2);
            let stored = Self::stored_reviews(&mut tx, &entities).await?;
            report.review_answer_seconds = entities::new_answer_seconds(&entities, &stored);
            Self::write_entities(&mut tx, &entities, rules).await?;
            lap.mark("write_v2");
        }
        Self::write_rejected(&mut tx, &unique).await?;
        Self::write_duplicates(&mut tx, &duplicates).await?;
        Self::write_offsets(&mut tx, batch).await?;
        lap.mark("write_rest");
        tx.commit()
            .await
            .map_err(step("commit the batch transaction"))?;
        lap.mark("commit");
        tracing::debug!(steps_ms = %lap, "batch steps");

        rows::finish_report(&mut report, &outcome);
        if let Ok(mut cache) = self.cache.lock() {
            for c in outcome.changed {
                if let Some(version) = versions.get(&c.projection.order_id) {
                    cache.put(*version, c.assessment.verdict, c.projection);
                }
            }
        }
        Ok(report)
    }

    async fn shop_figures(&self, rules: &Rules, now: DateTime<Utc>) -> Result<ShopFigures, Error> {
        let row = sqlx::query(concat!(
            "SELECT count(*)::bigint,
                    count(*) FILTER (WHERE created_at < $1 - make_interval(secs => $3))::bigint,
                    COALESCE(EXTRACT(EPOCH FROM ($1 - min(created_at)))::float8, 0)
             FROM orders WHERE ",
            awaiting_confirmation!()
        ))
        .bind(now)
        .bind(seconds(rules.pending_horizon))
        .bind(seconds(rules.confirmation_sla))
        .fetch_one(&self.pool)
        .await
        .map_err(step("read the SLA watch from orders"))?;
        let today = rules.day_of(now);
        let days: Vec<i32> = WINDOWS.iter().map(|(_, d)| *d as i32).collect();
        let rows = sqlx::query(
            "SELECT w.days, COALESCE(sum(d.fulfilled), 0)::bigint, COALESCE(sum(d.perfect), 0)::bigint,
                    COALESCE(sum(d.deviation_quality), 0)::bigint, COALESCE(sum(d.deviation_completeness), 0)::bigint,
                    COALESCE(sum(d.deviation_delivery), 0)::bigint, COALESCE(sum(d.deviation_service), 0)::bigint
             FROM UNNEST($1::int[]) AS w(days)
             LEFT JOIN daily_kpi d ON d.day > $2::date - w.days AND d.day <= $2::date
             GROUP BY w.days ORDER BY w.days",
        )
        .bind(&days)
        .bind(today)
        .fetch_all(&self.pool)
        .await
        .map_err(step("read rolling windows from daily_kpi"))?;
        let windows = rows
            .into_iter()
            .filter_map(|r| {
                let days = i64::from(r.get::<i32, _>(0));
                let label = WINDOWS.iter().find(|(_, d)| *d == days)?.0;
                let deviations = Category::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (*c, r.get::<i64, _>(3 + i)))
                    .collect();
                Some(WindowFigures {
                    label,
                    days,
                    fulfilled: r.get(1),
                    perfect: r.get(2),
                    deviations,
                })
            })
            .collect();
        Ok(ShopFigures {
            awaiting_confirmation: row.get(0),
            over_sla: row.get(1),
            oldest_awaiting_seconds: row.get::<f64, _>(2).max(0.0),
            windows,
        })
    }

    async fn late_orders(
        &self,
        rules: &Rules,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LateOrder>, Error> {
        let rows = sqlx::query(concat!(
            "SELECT order_id, customer_id, created_at,
                    EXTRACT(EPOCH FROM ($1 - created_at))::float8 AS age
             FROM orders WHERE ",
            awaiting_confirmation!(),
            " AND created_at < $1 - make_interval(secs => $3)
             ORDER BY created_at, order_id LIMIT $4"
        ))
        .bind(now)
        .bind(seconds(rules.pending_horizon))
        .bind(seconds(rules.confirmation_sla))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(step("read late orders from orders"))?;
        Ok(rows
            .into_iter()
            .map(|r| LateOrder {
                order_id: r.get(0),
                customer_id: r.get(1),
                created_at: r.get(2),
                age_seconds: r.get(3),
            })
            .collect())
    }

    async fn dashboard(&self, rules: &Rules, now: DateTime<Utc>) -> Result<Dashboard, Error> {
        let figures = self.shop_figures(rules, now).await?;
        let today = rules.day_of(now);
        let month_start = today.with_day0(0).unwrap_or(today);
        let month_rate: Option<f64> =
            sqlx::query_scalar("SELECT po_rate FROM po_monthly WHERE month = $1")
                .bind(month_start)
                .fetch_optional(&self.pool)
                .await
                .map_err(step("read this month from po_monthly"))?
                .flatten();
        let days = sqlx::query(
            "SELECT day, fulfilled, perfect FROM daily_kpi WHERE day > $1::date - $2 AND day <= $1",
        )
        .bind(today)
        .bind(CHART_DAYS as i32)
        .fetch_all(&self.pool)
        .await
        .map_err(step("read po_daily from daily_kpi"))?
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
        let claims_monthly = sqlx::query(
            "SELECT month, category, claims, change FROM claims_monthly
             WHERE month > ($1::date - interval '6 months') ORDER BY month, category",
        )
        .bind(month_start)
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
        let bounds: Vec<f64> = CONFIRMATION_MINUTES.iter().map(|b| *b as f64).collect();
        // width_bucket: how many bounds are at or below the latency in minutes.
        let buckets = sqlx::query(
            "SELECT width_bucket(confirmation_seconds / 60.0, $2::float8[])::bigint, count(*)::bigint
             FROM orders WHERE confirmation_seconds IS NOT NULL AND created_at > $1 - interval '30 days'
             GROUP BY 1",
        )
        .bind(now)
        .bind(bounds)
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
