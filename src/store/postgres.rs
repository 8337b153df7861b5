//! The PostgreSQL store: the production default.
//!
//! Exactly-once per batch rests on three things, all inside one transaction:
//! 1. an advisory lock per partition number, so two instances never fold the same orders at
//!    once (order-scoped topics are co-partitioned, so an order lives on one partition number);
//! 2. fencing: records below the stored next offset are skipped, so a batch replayed after a
//!    crash or a rebalance race applies nothing twice;
//! 3. the event store's `(source, id)` key: only events new to the store are folded.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::{
    step, BatchReport, ClaimsMonth, Dashboard, DayPoint, Error, LateOrder, ShopFigures, Store,
    WindowFigures,
};
use crate::batch::{Entry, PreparedBatch};
use crate::domain::{fold_batch, BatchOutcome, Category, Event, EventKey, OrderProjection, Rules};

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

/// The rolling windows of the live perfect-order gauges.
pub const WINDOWS: [(&str, i64); 3] = [("1d", 1), ("7d", 7), ("30d", 30)];

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

impl PgStore {
    /// Connects a pool; the error names the (redacted) URL.
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| Error::Connect {
                url: crate::config::redact_url(url),
                source,
            })?;
        Ok(PgStore { pool })
    }

    /// Applies the migrations in `migrations/` (embedded in the binary).
    pub async fn migrate(&self) -> Result<(), Error> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Writes the rule settings the SQL views read.
    pub async fn write_settings(&self, rules: &Rules) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO service_settings (singleton, timezone, confirmation_sla, pending_horizon, claim_window, updated_at)
             VALUES (true, $1, make_interval(secs => $2), make_interval(secs => $3), make_interval(secs => $4), now())
             ON CONFLICT (singleton) DO UPDATE SET timezone = excluded.timezone,
               confirmation_sla = excluded.confirmation_sla, pending_horizon = excluded.pending_horizon,
               claim_window = excluded.claim_window, updated_at = now()",
        )
        .bind(rules.timezone.name())
        .bind(seconds(rules.confirmation_sla))
        .bind(seconds(rules.pending_horizon))
        .bind(seconds(rules.claim_window))
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
        for partition in batch.partition_numbers() {
            sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                .bind(LOCK_NAMESPACE)
                .bind(partition)
                .execute(&mut **tx)
                .await
                .map_err(step("lock partition"))?;
        }
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
        let n = entries.len();
        let mut sources = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        let mut orders: Vec<Option<String>> = Vec::with_capacity(n);
        let mut topics = Vec::with_capacity(n);
        let mut partitions = Vec::with_capacity(n);
        let mut offsets = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        for entry in entries {
            let (key, time, type_name, order, payload) = match entry {
                Entry::Known { event, payload, .. } => (
                    &event.key,
                    event.time,
                    event.kind.type_name(),
                    Some(event.kind.order_id().to_string()),
                    payload,
                ),
                Entry::Unknown {
                    key,
                    time,
                    type_name,
                    payload,
                    ..
                } => (key, *time, type_name.as_str(), None, payload),
                Entry::Rejected { .. } => continue,
            };
            sources.push(key.source.as_str());
            ids.push(key.id.as_str());
            types.push(type_name);
            times.push(time);
            orders.push(order);
            topics.push(entry.at().topic.as_ref());
            partitions.push(entry.at().partition);
            offsets.push(entry.at().offset);
            payloads.push(payload.as_str());
        }
        if sources.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = sqlx::query(
            "INSERT INTO events (source, id, type, time, order_id, topic, partition, \"offset\", payload)
             SELECT s, i, t, tm, o, tp, p, off, pl::jsonb
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::text[])
               AS x(s, i, t, tm, o, tp, p, off, pl)
             ON CONFLICT (source, id) DO NOTHING
             RETURNING source, id",
        )
        .bind(&sources)
        .bind(&ids)
        .bind(&types)
        .bind(&times)
        .bind(&orders)
        .bind(&topics)
        .bind(&partitions)
        .bind(&offsets)
        .bind(&payloads)
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

    async fn load_projections(
        tx: &mut Transaction<'_, Postgres>,
        order_ids: &[String],
    ) -> Result<HashMap<String, OrderProjection>, Error> {
        let rows = sqlx::query("SELECT order_id, state::text FROM orders WHERE order_id = ANY($1)")
            .bind(order_ids)
            .fetch_all(&mut **tx)
            .await
            .map_err(step("read orders"))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let order_id: String = row.get(0);
            let state: String = row.get(1);
            let projection =
                serde_json::from_str(&state).map_err(|source| Error::CorruptState {
                    order_id: order_id.clone(),
                    source,
                })?;
            out.insert(order_id, projection);
        }
        Ok(out)
    }

    async fn write_orders(
        tx: &mut Transaction<'_, Postgres>,
        outcome: &BatchOutcome,
    ) -> Result<(), Error> {
        let n = outcome.changed.len();
        if n == 0 {
            return Ok(());
        }
        macro_rules! cols { ($($name:ident : $t:ty),*) => { $(let mut $name: Vec<$t> = Vec::with_capacity(n);)* } }
        cols!(ids: String, customers: Option<String>, verdicts: &str, created: Option<DateTime<Utc>>,
            confirmed: Option<DateTime<Utc>>, shipped: Option<DateTime<Utc>>, delivered: Option<DateTime<Utc>>,
            cancelled: Option<DateTime<Utc>>, promised: Option<DateTime<Utc>>, couriers: Option<String>,
            channels: Option<String>, created_days: Option<NaiveDate>, delivered_days: Option<NaiveDate>,
            conf_s: Option<f64>, c2s_s: Option<f64>, late_s: Option<f64>, ordered: Option<i64>,
            got: Option<i64>, dq: bool, dc: bool, dd: bool, ds: bool, finals: Option<DateTime<Utc>>,
            states: String);
        for c in &outcome.changed {
            let p = &c.projection;
            let a = &c.assessment;
            ids.push(p.order_id.clone());
            customers.push(p.created.as_ref().map(|f| f.data.customer_id.to_string()));
            verdicts.push(a.verdict.as_str());
            created.push(p.created.as_ref().map(|f| f.at));
            confirmed.push(p.confirmed.as_ref().map(|f| f.at));
            shipped.push(p.shipped.as_ref().map(|f| f.at));
            delivered.push(p.delivered.as_ref().map(|f| f.at));
            cancelled.push(p.cancelled.as_ref().map(|f| f.at));
            promised.push(
                p.created
                    .as_ref()
                    .and_then(|f| f.data.promised_delivery.as_ref())
                    .map(|w| w.to.with_timezone(&Utc)),
            );
            couriers.push(
                p.delivered
                    .as_ref()
                    .and_then(|f| f.data.courier_id.as_ref())
                    .or_else(|| p.shipped.as_ref().and_then(|f| f.data.courier_id.as_ref()))
                    .map(|c| c.to_string()),
            );
            channels.push(
                p.confirmed
                    .as_ref()
                    .and_then(|f| f.data.channel)
                    .map(|c| c.as_str().to_owned()),
            );
            created_days.push(a.created_day);
            delivered_days.push(a.delivered_day);
            conf_s.push(a.confirmation_latency.map(seconds));
            c2s_s.push(a.confirmed_to_shipped.map(seconds));
            late_s.push(a.delivery_lateness.map(seconds));
            ordered.push(a.items_ordered.map(|v| v as i64));
            got.push(a.items_delivered.map(|v| v as i64));
            dq.push(a.deviations.quality);
            dc.push(a.deviations.completeness);
            dd.push(a.deviations.delivery);
            ds.push(a.deviations.service);
            finals.push(a.final_at);
            states.push(
                serde_json::to_string(p).map_err(|source| Error::CorruptState {
                    order_id: p.order_id.clone(),
                    source,
                })?,
            );
        }
        sqlx::query(
            "INSERT INTO orders (order_id, customer_id, verdict, created_at, confirmed_at, shipped_at,
               delivered_at, cancelled_at, promised_to, courier_id, confirmation_channel, created_day,
               delivered_day, confirmation_seconds, confirmed_to_shipped_seconds, delivery_lateness_seconds,
               items_ordered, items_delivered, deviation_quality, deviation_completeness, deviation_delivery,
               deviation_service, final_at, state, updated_at)
             SELECT a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19,
                    a20, a21, a22, a23, a24::jsonb, now()
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
               $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::text[],
               $11::text[], $12::date[], $13::date[], $14::float8[], $15::float8[], $16::float8[],
               $17::bigint[], $18::bigint[], $19::bool[], $20::bool[], $21::bool[], $22::bool[],
               $23::timestamptz[], $24::text[])
               AS x(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
                    a19, a20, a21, a22, a23, a24)
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
               state = excluded.state, updated_at = now()",
        )
        .bind(&ids).bind(&customers).bind(&verdicts).bind(&created).bind(&confirmed)
        .bind(&shipped).bind(&delivered).bind(&cancelled).bind(&promised).bind(&couriers)
        .bind(&channels).bind(&created_days).bind(&delivered_days).bind(&conf_s).bind(&c2s_s)
        .bind(&late_s).bind(&ordered).bind(&got).bind(&dq).bind(&dc).bind(&dd).bind(&ds)
        .bind(&finals).bind(&states)
        .execute(&mut **tx)
        .await
        .map_err(step("upsert into orders"))?;
        Ok(())
    }

    async fn write_claims(
        tx: &mut Transaction<'_, Postgres>,
        outcome: &BatchOutcome,
        rules: &Rules,
    ) -> Result<(), Error> {
        let mut ids = Vec::new();
        let mut orders = Vec::new();
        let mut categories: Vec<Option<&str>> = Vec::new();
        let mut descriptions: Vec<Option<String>> = Vec::new();
        let mut filed: Vec<Option<DateTime<Utc>>> = Vec::new();
        let mut filed_days: Vec<Option<NaiveDate>> = Vec::new();
        let mut resolved: Vec<Option<DateTime<Utc>>> = Vec::new();
        let mut resolutions: Vec<Option<String>> = Vec::new();
        let mut counts: Vec<bool> = Vec::new();
        for c in &outcome.changed {
            let delivered_at = c.projection.delivered.as_ref().map(|d| d.at);
            for (claim_id, facts) in c.claims_to_write() {
                ids.push(claim_id.clone());
                orders.push(c.projection.order_id.clone());
                categories.push(facts.filed.as_ref().map(|f| f.data.category.as_str()));
                descriptions.push(
                    facts
                        .filed
                        .as_ref()
                        .and_then(|f| f.data.description.clone()),
                );
                filed.push(facts.filed.as_ref().map(|f| f.at));
                filed_days.push(facts.filed.as_ref().map(|f| rules.day_of(f.at)));
                resolved.push(facts.resolved.as_ref().map(|f| f.at));
                resolutions.push(
                    facts
                        .resolved
                        .as_ref()
                        .and_then(|f| f.data.resolution.clone()),
                );
                counts.push(match (delivered_at, &facts.filed) {
                    (Some(d), Some(f)) => f.at <= d + rules.claim_window,
                    _ => false,
                });
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO claims (claim_id, order_id, category, description, filed_at, filed_day,
               resolved_at, resolution, counts_for_verdict, updated_at)
             SELECT *, now() FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
               $5::timestamptz[], $6::date[], $7::timestamptz[], $8::text[], $9::bool[])
             ON CONFLICT (claim_id) DO UPDATE SET order_id = excluded.order_id,
               category = excluded.category, description = excluded.description,
               filed_at = excluded.filed_at, filed_day = excluded.filed_day,
               resolved_at = excluded.resolved_at, resolution = excluded.resolution,
               counts_for_verdict = excluded.counts_for_verdict, updated_at = now()",
        )
        .bind(&ids)
        .bind(&orders)
        .bind(&categories)
        .bind(&descriptions)
        .bind(&filed)
        .bind(&filed_days)
        .bind(&resolved)
        .bind(&resolutions)
        .bind(&counts)
        .execute(&mut **tx)
        .await
        .map_err(step("upsert into claims"))?;
        Ok(())
    }

    async fn write_kpi(
        tx: &mut Transaction<'_, Postgres>,
        outcome: &BatchOutcome,
    ) -> Result<(), Error> {
        let rows: Vec<_> = outcome.kpi.rows().collect();
        if rows.is_empty() {
            return Ok(());
        }
        let days: Vec<NaiveDate> = rows.iter().map(|(d, _)| *d).collect();
        let col = |f: fn(&crate::domain::DayCounts) -> i64| -> Vec<i64> {
            rows.iter().map(|(_, c)| f(c)).collect()
        };
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
        .bind(&days)
        .bind(col(|c| c.fulfilled))
        .bind(col(|c| c.perfect))
        .bind(col(|c| c.quality))
        .bind(col(|c| c.completeness))
        .bind(col(|c| c.delivery))
        .bind(col(|c| c.service))
        .bind(col(|c| c.cancelled))
        .execute(&mut **tx)
        .await
        .map_err(step("apply deltas to daily_kpi"))?;
        Ok(())
    }

    async fn write_rejected(
        tx: &mut Transaction<'_, Postgres>,
        entries: &[&Entry],
    ) -> Result<(), Error> {
        let mut topics = Vec::new();
        let mut partitions = Vec::new();
        let mut offsets = Vec::new();
        let mut reasons = Vec::new();
        let mut details = Vec::new();
        let mut keys: Vec<Option<&[u8]>> = Vec::new();
        let mut raws: Vec<Option<&[u8]>> = Vec::new();
        for entry in entries {
            if let Entry::Rejected {
                at,
                rejection,
                key,
                raw,
            } = entry
            {
                topics.push(at.topic.as_ref());
                partitions.push(at.partition);
                offsets.push(at.offset);
                reasons.push(rejection.reason.as_str());
                // text cannot hold NUL; the detail is for humans, so replace it.
                details.push(rejection.detail.replace('\0', "\u{fffd}"));
                keys.push(key.as_deref());
                raws.push(raw.as_deref());
            }
        }
        if topics.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO rejected_events (topic, partition, \"offset\", reason, detail, key, raw)
             SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[],
               $6::bytea[], $7::bytea[])
             ON CONFLICT (topic, partition, \"offset\") DO NOTHING",
        )
        .bind(&topics)
        .bind(&partitions)
        .bind(&offsets)
        .bind(&reasons)
        .bind(&details)
        .bind(&keys)
        .bind(&raws)
        .execute(&mut **tx)
        .await
        .map_err(step("insert into rejected_events"))?;
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

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: u64,
    pub orders: u64,
    /// Stored events that no longer decode (kept in `events`, skipped by the fold).
    pub undecodable: u64,
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
        let mut report = RebuildReport::default();
        // Events of the order that may continue in the next chunk.
        let mut carry: Vec<Event> = Vec::new();
        let mut carry_order: Option<String> = None;
        loop {
            let rows = sqlx::query(&format!("FETCH {chunk} FROM rebuild_events"))
                .fetch_all(&mut *tx)
                .await
                .map_err(step("read events"))?;
            let done = (rows.len() as i64) < chunk;
            let mut ready: Vec<Event> = Vec::with_capacity(rows.len());
            for row in rows {
                report.events += 1;
                let order_id: String = row.get(0);
                let payload: String = row.get(1);
                if carry_order.as_deref() != Some(order_id.as_str()) {
                    if carry_order.is_some() {
                        report.orders += 1;
                    }
                    ready.append(&mut carry);
                    carry_order = Some(order_id);
                }
                match crate::domain::decode(payload.as_bytes()) {
                    Ok(crate::domain::Decoded::Known(event)) => carry.push(event),
                    _ => report.undecodable += 1,
                }
            }
            if done {
                if carry_order.is_some() {
                    report.orders += 1;
                }
                ready.append(&mut carry);
            }
            let outcome = fold_batch(HashMap::new(), std::mem::take(&mut ready), rules);
            Self::write_orders(&mut tx, &outcome).await?;
            Self::write_claims(&mut tx, &outcome, rules).await?;
            Self::write_kpi(&mut tx, &outcome).await?;
            progress(report.events, total.max(0) as u64);
            if done {
                break;
            }
        }
        sqlx::query("CLOSE rebuild_events")
            .execute(&mut *tx)
            .await
            .map_err(step("close the events cursor"))?;
        tx.commit().await.map_err(step("commit the rebuild"))?;
        Ok(report)
    }
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
        let stored = Self::fence(&mut tx, batch).await?;
        let live: Vec<&Entry> = batch
            .entries
            .iter()
            .filter(|e| {
                let at = e.at();
                stored
                    .get(&(at.topic.to_string(), at.partition))
                    .is_none_or(|next| at.offset >= *next)
            })
            .collect();
        report.fenced = batch.len() - live.len();

        // One occurrence per event key within the batch; later copies are duplicates.
        let mut seen: HashSet<&EventKey> = HashSet::with_capacity(live.len());
        let mut unique: Vec<&Entry> = Vec::with_capacity(live.len());
        for entry in &live {
            match entry {
                Entry::Known { event, .. } if !seen.insert(&event.key) => report.duplicates += 1,
                Entry::Unknown { key, .. } if !seen.insert(key) => report.duplicates += 1,
                Entry::Rejected { rejection, .. } => {
                    *report.rejected.entry(rejection.reason).or_default() += 1;
                    unique.push(entry);
                }
                _ => unique.push(entry),
            }
        }
        let inserted = Self::insert_events(&mut tx, &unique).await?;
        let mut fresh: Vec<Event> = Vec::with_capacity(inserted.len());
        for entry in &unique {
            match entry {
                Entry::Known { event, .. } if inserted.contains(&event.key) => {
                    *report.consumed.entry(event.kind.type_name()).or_default() += 1;
                    fresh.push(event.clone());
                }
                Entry::Unknown { key, .. } if inserted.contains(key) => report.unknown += 1,
                Entry::Known { .. } | Entry::Unknown { .. } => report.duplicates += 1,
                Entry::Rejected { .. } => {}
            }
        }

        let mut order_ids: Vec<String> = fresh
            .iter()
            .map(|e| e.kind.order_id().to_string())
            .collect();
        order_ids.sort_unstable();
        order_ids.dedup();
        let stored_projections = if order_ids.is_empty() {
            HashMap::new()
        } else {
            Self::load_projections(&mut tx, &order_ids).await?
        };
        let outcome = fold_batch(stored_projections, fresh, rules);

        Self::write_orders(&mut tx, &outcome).await?;
        Self::write_claims(&mut tx, &outcome, rules).await?;
        Self::write_kpi(&mut tx, &outcome).await?;
        Self::write_rejected(&mut tx, &unique).await?;
        Self::write_offsets(&mut tx, batch).await?;
        tx.commit()
            .await
            .map_err(step("commit the batch transaction"))?;

        report.orders_changed = outcome.changed.len();
        for c in &outcome.changed {
            if let Some(v) = c.new_confirmation_latency() {
                report.confirmation_seconds.push(seconds(v));
            }
            if let Some(v) = c.new_confirmed_to_shipped() {
                report.confirmed_to_shipped_seconds.push(seconds(v));
            }
            if let Some(v) = c.new_delivery_lateness() {
                report.delivery_lateness_seconds.push(seconds(v));
            }
            for category in c.newly_filed_claims() {
                *report.claims_filed.entry(category).or_default() += 1;
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
        let mut po_rate = std::collections::BTreeMap::new();
        for w in &figures.windows {
            po_rate.insert(
                w.label,
                (w.fulfilled > 0).then(|| w.perfect as f64 / w.fulfilled as f64),
            );
        }
        let month: Option<f64> =
            sqlx::query_scalar("SELECT po_rate FROM po_monthly WHERE month = $1")
                .bind(month_start)
                .fetch_optional(&self.pool)
                .await
                .map_err(step("read this month from po_monthly"))?
                .flatten();
        po_rate.insert("month", month);
        let po_daily = sqlx::query(
            "SELECT d::date, COALESCE(k.fulfilled, 0), COALESCE(k.perfect, 0)
             FROM generate_series($1::date - 59, $1::date, interval '1 day') AS d
             LEFT JOIN daily_kpi k ON k.day = d::date ORDER BY d",
        )
        .bind(today)
        .fetch_all(&self.pool)
        .await
        .map_err(step("read po_daily from daily_kpi"))?
        .into_iter()
        .map(|r| {
            let (fulfilled, perfect): (i64, i64) = (r.get(1), r.get(2));
            DayPoint {
                day: r.get(0),
                fulfilled,
                perfect,
                po_rate: (fulfilled > 0).then(|| perfect as f64 / fulfilled as f64),
            }
        })
        .collect();
        let deviations_30d = figures
            .windows
            .iter()
            .find(|w| w.label == "30d")
            .map(|w| w.deviations.iter().map(|(c, n)| (c.as_str(), *n)).collect())
            .unwrap_or_default();
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
        let bounds: Vec<i64> = vec![5, 10, 15, 20, 25, 30, 45, 60];
        let rows = sqlx::query(
            "SELECT width_bucket(confirmation_seconds / 60.0, $2::float8[]) AS bucket, count(*)::bigint
             FROM orders WHERE confirmation_seconds IS NOT NULL AND created_at > $1 - interval '30 days'
             GROUP BY 1 ORDER BY 1",
        )
        .bind(now)
        .bind(bounds.iter().map(|b| *b as f64).collect::<Vec<f64>>())
        .fetch_all(&self.pool)
        .await
        .map_err(step("read confirmation latencies from orders"))?;
        // width_bucket over [5, 10, ...]: 0 is below 5 min, i is [bounds[i-1], bounds[i]), len is above.
        let mut confirmation_minutes: Vec<(Option<i64>, i64)> = bounds
            .iter()
            .map(|b| (Some(*b), 0))
            .chain([(None, 0)])
            .collect();
        for r in rows {
            let bucket: i32 = r.get(0);
            if let Some(slot) = confirmation_minutes.get_mut(bucket.max(0) as usize) {
                slot.1 += r.get::<i64, _>(1);
            }
        }
        Ok(Dashboard {
            today,
            sla_seconds: rules.confirmation_sla.num_seconds(),
            po_rate,
            awaiting_confirmation: figures.awaiting_confirmation,
            over_sla: figures.over_sla,
            oldest_awaiting_seconds: figures.oldest_awaiting_seconds,
            po_daily,
            deviations_30d,
            claims_monthly,
            confirmation_minutes,
        })
    }

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(step("ping the database"))?;
        Ok(())
    }
}
