//! The PostgreSQL store: the production default.
//!
//! Its part of the batch transaction ([`super::commit`]): an advisory lock per partition
//! number (several instances may share the database), rows as one typed array per column
//! (`UNNEST`), several tables in one statement (data-modifying CTEs), and a server-side cursor
//! for a rebuild's read of the event store.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row};

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

/// First key of the advisory locks this service takes (the second is the partition number).
const LOCK_NAMESPACE: i32 = 0x504f; // "PO"

/// First key of the contest's courier locks (the second is a hash of the courier id).
const COURIER_LOCKS: i32 = 0x5043; // "PC"

/// First key of the lead base's lead locks (the second is a hash of the lead id).
const LEAD_LOCKS: i32 = 0x504c; // "PL"

/// Takes transaction-scoped advisory locks (no row is written) in the key space `space`: one
/// per id, keyed by a hash of it, exclusive where `exclusive` says so and shared otherwise,
/// in key order so that two batches never wait on each other in a circle. A collision only
/// makes two ids share a lock (exclusive if either asks so).
async fn advisory_locks(
    conn: &mut PgConnection,
    space: i32,
    ids: &[&str],
    exclusive: &[bool],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT CASE WHEN x THEN pg_advisory_xact_lock($1, k)
                     ELSE pg_advisory_xact_lock_shared($1, k) END
         FROM (SELECT hashtext(id) AS k, bool_or(x) AS x
               FROM UNNEST($2::text[], $3::bool[]) AS c(id, x)
               GROUP BY 1 ORDER BY 1) l",
    )
    .bind(space)
    .bind(ids)
    .bind(exclusive)
    .execute(conn)
    .await?;
    Ok(())
}

/// The SLA watch's condition: created after $1 (now minus the pending horizon), neither
/// confirmed nor cancelled. One definition for the gauges and the on-call list (the
/// `orders_awaiting_confirmation` view says the same with `now()`).
const AWAITING: &str = "confirmed_at IS NULL AND cancelled_at IS NULL AND created_at IS NOT NULL
                        AND created_at > $1";

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
            cache: ProjectionCache::shared(),
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
        ProjectionCache::resize(&self.cache, orders);
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
}

/// How PostgreSQL takes a batch's rows: one typed array per column, opened by `UNNEST`.
struct Unnest;

fn array_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text[]",
        Kind::Int4 => "int4[]",
        Kind::Int8 => "int8[]",
        Kind::Float8 => "float8[]",
        Kind::Bool => "bool[]",
        Kind::Time => "timestamptz[]",
        Kind::Date => "date[]",
        Kind::Bytes => "bytea[]",
    }
}

impl RowSource for Unnest {
    fn from(&self, table: &Table, first: usize) -> String {
        let arrays: Vec<String> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}", first + i, array_type(c.kind)))
            .collect();
        let names: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        format!(
            "FROM UNNEST({}) AS x({})",
            arrays.join(", "),
            names.join(", ")
        )
    }

    fn value(&self, table: &Table, i: usize) -> String {
        let c = &table.columns[i];
        match c.cast {
            Some(cast) => format!("x.\"{}\"::{cast}", c.name),
            None => format!("x.\"{}\"", c.name),
        }
    }

    fn now(&self) -> &'static str {
        "now()"
    }

    fn greatest(&self) -> &'static str {
        "GREATEST"
    }

    fn parameters(&self, table: &Table) -> usize {
        table.columns.len()
    }
}

/// The statement for `writes`: one table's insert, or several as data-modifying CTEs (one
/// round trip), parameters in order.
fn statement(writes: &[Write<'_>]) -> String {
    if let [one] = writes {
        return one.table.insert_sql(&Unnest, 1);
    }
    let mut first = 1;
    let parts: Vec<String> = writes
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let sql = w.table.insert_sql(&Unnest, first);
            first += Unnest.parameters(w.table);
            format!("w{i} AS ({sql})")
        })
        .collect();
    format!("WITH {} SELECT 1", parts.join(",\n"))
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind<'q>(mut query: PgQuery<'q>, writes: &'q [Write<'q>]) -> PgQuery<'q> {
    for column in writes.iter().flat_map(|w| &w.columns) {
        query = match column {
            Values::Text(v) => query.bind(v),
            Values::Int4(v) => query.bind(v),
            Values::Int8(v) => query.bind(v),
            Values::Float8(v) => query.bind(v),
            Values::Bool(v) => query.bind(v),
            Values::Time(v) => query.bind(v),
            Values::Date(v) => query.bind(v),
            Values::Bytes(v) => query.bind(v),
        };
    }
    query
}

/// The step name of a write, for its error: the tables it writes.
fn what(writes: &[Write<'_>]) -> std::borrow::Cow<'static, str> {
    match writes {
        [one] => one.what().into(),
        _ => {
            let names: Vec<&str> = writes.iter().map(|w| w.table.name).collect();
            format!("write rows into {} (one statement)", names.join(", ")).into()
        }
    }
}

/// How far a rebuild's cursor has got: whether it is open.
#[derive(Default)]
pub(crate) struct Cursor {
    open: bool,
}

impl Database for PgStore {
    type Db = Postgres;
    type Scan = Cursor;

    fn cache(&self) -> &Mutex<ProjectionCache> {
        &self.cache
    }

    async fn begin_batch(&self, partitions: &[i32]) -> Result<Tx<Self>, Error> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(step("begin the batch transaction"))?;
        // An advisory lock per partition number, in one statement, in partition order (so
        // that two instances never deadlock).
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1, p) FROM (SELECT unnest($2::int[]) AS p ORDER BY 1) x",
        )
        .bind(LOCK_NAMESPACE)
        .bind(partitions)
        .execute(&mut *tx)
        .await
        .map_err(step("lock partitions"))?;
        Ok(tx)
    }

    async fn begin_rebuild(&self) -> Result<Tx<Self>, Error> {
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
        Ok(tx)
    }

    async fn read_offsets(
        conn: &mut PgConnection,
        keys: &[(&str, i32)],
    ) -> Result<HashMap<(String, i32), i64>, Error> {
        read_offsets(conn, keys).await
    }

    async fn insert_events(
        conn: &mut PgConnection,
        events: &Write<'_>,
    ) -> Result<HashSet<EventKey>, Error> {
        let sql = events.table.insert_sql(&Unnest, 1);
        let rows = bind(sqlx::query(&sql), std::slice::from_ref(events))
            .fetch_all(conn)
            .await
            .map_err(step(events.what()))?;
        Ok(rows
            .into_iter()
            .map(|r| EventKey {
                source: r.get(0),
                id: r.get(1),
            })
            .collect())
    }

    async fn read_states(
        conn: &mut PgConnection,
        order_ids: &[String],
        versions: &[i64],
    ) -> Result<Vec<(String, Option<String>)>, Error> {
        let rows = sqlx::query(
            "SELECT o.order_id, CASE WHEN o.version = k.v THEN NULL ELSE o.state END
             FROM orders o JOIN UNNEST($1::text[], $2::bigint[]) AS k(id, v) ON o.order_id = k.id",
        )
        .bind(order_ids)
        .bind(versions)
        .fetch_all(conn)
        .await
        .map_err(step("read orders"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn upsert_orders(
        conn: &mut PgConnection,
        orders: &Write<'_>,
    ) -> Result<HashMap<String, i64>, Error> {
        let sql = orders.table.insert_sql(&Unnest, 1);
        let rows = bind(sqlx::query(&sql), std::slice::from_ref(orders))
            .fetch_all(conn)
            .await
            .map_err(step(orders.what()))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn write(conn: &mut PgConnection, writes: &[Write<'_>]) -> Result<(), Error> {
        if writes.iter().all(Write::is_empty) {
            return Ok(());
        }
        let sql = statement(writes);
        bind(sqlx::query(&sql), writes)
            .execute(conn)
            .await
            .map_err(step(what(writes)))?;
        Ok(())
    }

    async fn forget_restatements(conn: &mut PgConnection, order_ids: &[&str]) -> Result<(), Error> {
        sqlx::query("DELETE FROM restated_orders WHERE order_id = ANY($1)")
            .bind(order_ids)
            .execute(conn)
            .await
            .map_err(step("forget the changed orders' restated_orders rows"))?;
        Ok(())
    }

    super::commit::same_sql_backfill!();

    async fn lock_customers(
        conn: &mut PgConnection,
        lock: &Write<'_>,
    ) -> Result<HashMap<String, StoredCustomer>, Error> {
        let sql = lock.table.insert_sql(&Unnest, 1);
        let rows = bind(sqlx::query(&sql), std::slice::from_ref(lock))
            .fetch_all(conn)
            .await
            .map_err(step(lock.what()))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let first = CustomerOrder::stored(r.get(1), r.get(2), r.get(3), r.get(4));
                let order_days = r.get(5);
                let leads = r.get(6);
                let customer = StoredCustomer {
                    first,
                    order_days,
                    leads,
                };
                (r.get(0), customer)
            })
            .collect())
    }

    async fn add_customer_months(
        conn: &mut PgConnection,
        months: &Write<'_>,
    ) -> Result<Vec<(String, NaiveDate, i64)>, Error> {
        let sql = months.table.insert_sql(&Unnest, 1);
        let rows = bind(sqlx::query(&sql), std::slice::from_ref(months))
            .fetch_all(conn)
            .await
            .map_err(step(months.what()))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    async fn customer_months(
        conn: &mut PgConnection,
        customers: &[&str],
    ) -> Result<Vec<(String, NaiveDate, i64)>, Error> {
        // One index probe per customer, whatever the statistics say: never analysed (no
        // autovacuum), a customer id looks like it matches most rows and a join scans the
        // whole table. OFFSET 0 keeps the planner from flattening the LATERAL into that join.
        sqlx::query_as(
            "SELECT m.customer_id, m.month, m.orders
             FROM UNNEST($1::text[]) AS k(id)
             CROSS JOIN LATERAL (SELECT * FROM customer_months m WHERE m.customer_id = k.id
                                 OFFSET 0) m",
        )
        .bind(customers)
        .fetch_all(conn)
        .await
        .map_err(step("read customer_months"))
    }

    async fn customer_orders(
        conn: &mut PgConnection,
        customers: &[&str],
    ) -> Result<Vec<CustomerOrderRow>, Error> {
        // One index probe per customer, as in customer_months.
        sqlx::query_as(
            "SELECT o.customer_id, o.created_at, o.order_id, o.created_day, o.sales_channel
             FROM UNNEST($1::text[]) AS k(id)
             CROSS JOIN LATERAL (SELECT * FROM orders o
                                 WHERE o.customer_id = k.id AND o.created_at IS NOT NULL
                                 OFFSET 0) o",
        )
        .bind(customers)
        .fetch_all(conn)
        .await
        .map_err(step("read the customers' orders"))
    }

    async fn lock_claims(
        conn: &mut PgConnection,
        lock: &Write<'_>,
    ) -> Result<Vec<StoredJournalRow>, Error> {
        let sql = lock.table.insert_sql(&Unnest, 1);
        let rows = bind(sqlx::query(&sql), std::slice::from_ref(lock))
            .fetch_all(conn)
            .await
            .map_err(step(lock.what()))?;
        rows.iter()
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
        conn: &mut PgConnection,
        claim_ids: &[&str],
    ) -> Result<Vec<StoredStageRow>, Error> {
        // One index probe per claim, whatever the statistics say (see customer_months).
        sqlx::query_as(
            "SELECT s.claim_id, s.time, s.source, s.id, s.month, s.stage
             FROM UNNEST($1::text[]) AS k(id)
             CROSS JOIN LATERAL (SELECT * FROM claim_stages s WHERE s.claim_id = k.id
                                 OFFSET 0) s",
        )
        .bind(claim_ids)
        .fetch_all(conn)
        .await
        .map_err(step("read claim_stages"))
    }

    async fn lock_couriers(
        conn: &mut PgConnection,
        couriers: &[&str],
        exclusive: &[bool],
    ) -> Result<(), Error> {
        advisory_locks(conn, COURIER_LOCKS, couriers, exclusive)
            .await
            .map_err(step("lock the couriers of the contest"))
    }

    async fn courier_rosters(
        conn: &mut PgConnection,
        couriers: &[&str],
    ) -> Result<Vec<StoredRosterRow>, Error> {
        // One index probe per courier, whatever the statistics say (see customer_months).
        sqlx::query_as(
            "SELECT r.courier_id, r.time, r.source, r.id, r.team_id
             FROM UNNEST($1::text[]) AS k(id)
             CROSS JOIN LATERAL (SELECT * FROM courier_rosters r WHERE r.courier_id = k.id
                                 OFFSET 0) r",
        )
        .bind(couriers)
        .fetch_all(conn)
        .await
        .map_err(step("read courier_rosters"))
    }

    async fn courier_smileys_since(
        conn: &mut PgConnection,
        couriers: &[&str],
        since: &[DateTime<Utc>],
        min_rating: i32,
    ) -> Result<Vec<StoredSmileyRow>, Error> {
        sqlx::query_as(
            "SELECT x.courier_id, x.colour, x.reference, x.time, x.month
             FROM UNNEST($1::text[], $2::timestamptz[]) AS k(id, since)
             CROSS JOIN LATERAL (
                 SELECT v.courier_id, 'yellow'::text AS colour, v.review_id AS reference,
                        v.posted_at AS time, v.posted_month AS month
                 FROM reviews v
                 WHERE v.courier_id = k.id AND v.posted_at >= k.since AND v.rating >= $3
                 UNION ALL
                 SELECT c.courier_id, 'red', c.source || ' ' || c.id, c.time, c.month
                 FROM courier_violations c WHERE c.courier_id = k.id AND c.time >= k.since
                 OFFSET 0) x",
        )
        .bind(couriers)
        .bind(since)
        .bind(min_rating)
        .fetch_all(conn)
        .await
        .map_err(step("read the couriers' smileys"))
    }

    async fn lock_reviews(
        conn: &mut PgConnection,
        review_ids: &[&str],
    ) -> Result<StoredReviews, Error> {
        // One statement: the row returned is the one locked, whatever committed meanwhile
        // (an update that touches nothing the figures read; the batch writes the row next).
        let rows: Vec<StoredReviewRow> = sqlx::query_as(
            "INSERT INTO reviews (review_id)
             SELECT id FROM unnest($1::text[]) AS k(id) ORDER BY id COLLATE \"C\"
             ON CONFLICT (review_id) DO UPDATE SET updated_at = now()
             RETURNING review_id, posted_at, answered_at, posted_source, posted_id, rating,
                       courier_id, posted_month",
        )
        .bind(review_ids)
        .fetch_all(conn)
        .await
        .map_err(step("lock reviews"))?;
        Ok(super::rows::stored_reviews(rows))
    }

    async fn lock_leads(conn: &mut PgConnection, lead_ids: &[&str]) -> Result<(), Error> {
        advisory_locks(conn, LEAD_LOCKS, lead_ids, &vec![true; lead_ids.len()])
            .await
            .map_err(step("lock the leads of the lead base"))
    }

    async fn lead_events(
        conn: &mut PgConnection,
        lead_ids: &[&str],
    ) -> Result<Vec<StoredLeadRow>, Error> {
        sqlx::query_as(
            "SELECT e.lead_id, e.temperature, e.time, e.source, e.id,
                    l.captured_at, l.captured_source, l.captured_id, l.customer_id
             FROM lead_events e LEFT JOIN leads l ON l.lead_id = e.lead_id
             WHERE e.lead_id = ANY($1::text[])",
        )
        .bind(lead_ids)
        .fetch_all(conn)
        .await
        .map_err(step("read lead_events"))
    }

    async fn customer_leads(
        conn: &mut PgConnection,
        customers: &[&str],
    ) -> Result<Vec<StoredCaptureRow>, Error> {
        sqlx::query_as(
            "SELECT lead_id, captured_at, captured_source, captured_id, customer_id FROM leads
             WHERE customer_id = ANY($1::text[]) AND captured_at IS NOT NULL
               AND captured_source IS NOT NULL AND captured_id IS NOT NULL",
        )
        .bind(customers)
        .fetch_all(conn)
        .await
        .map_err(step("read the leads of the customers"))
    }

    async fn count_order_events(conn: &mut PgConnection) -> Result<i64, Error> {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE order_id IS NOT NULL")
            .fetch_one(conn)
            .await
            .map_err(step("count events"))
    }

    async fn empty(conn: &mut PgConnection, tables: &[&'static Table]) -> Result<(), Error> {
        let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
        sqlx::query(&format!("TRUNCATE {}", names.join(", ")))
            .execute(conn)
            .await
            .map_err(step("truncate the tables a rebuild recomputes"))?;
        Ok(())
    }

    async fn next_stored(
        conn: &mut PgConnection,
        which: Stored,
        scan: &mut Cursor,
        chunk: i64,
    ) -> Result<Vec<StoredEvent>, Error> {
        let (cursor, declare) = match which {
            Stored::OrderEvents => (
                "rebuild_events",
                "SELECT order_id, payload::text FROM events WHERE order_id IS NOT NULL ORDER BY order_id",
            ),
            Stored::V2Events => (
                "rebuild_entities",
                "SELECT NULL::text, payload::text FROM events WHERE type = ANY($1) ORDER BY source, id",
            ),
        };
        if !scan.open {
            let sql = format!("DECLARE {cursor} NO SCROLL CURSOR FOR {declare}");
            let mut declare = sqlx::query(&sql);
            if which == Stored::V2Events {
                declare = declare.bind(&V2_TYPES[..]);
            }
            declare
                .execute(&mut *conn)
                .await
                .map_err(step("open a cursor over events"))?;
            scan.open = true;
        }
        let rows = sqlx::query(&format!("FETCH {chunk} FROM {cursor}"))
            .fetch_all(&mut *conn)
            .await
            .map_err(step("read events"))?;
        if (rows.len() as i64) < chunk {
            sqlx::query(&format!("CLOSE {cursor}"))
                .execute(&mut *conn)
                .await
                .map_err(step("close the events cursor"))?;
            scan.open = false;
        }
        Ok(rows
            .into_iter()
            .map(|r| StoredEvent {
                order_id: r.get(0),
                payload: r.get(1),
            })
            .collect())
    }
}

impl PgStore {
    /// Recomputes every order projection, claim, daily KPI row and v2 entity from the event
    /// store under `rules`, and swaps the result in atomically: readers see the old tables
    /// until the transaction commits, and ingest waits on the `events` lock meanwhile.
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

impl Reads for PgStore {
    read::same_sql_live_reads!();

    async fn watch(
        &self,
        horizon_start: DateTime<Utc>,
        sla_start: DateTime<Utc>,
    ) -> Result<Watch, Error> {
        let row = sqlx::query(&format!(
            "SELECT count(*)::bigint, count(*) FILTER (WHERE created_at < $2)::bigint, min(created_at)
             FROM orders WHERE {AWAITING}"
        ))
        .bind(horizon_start)
        .bind(sla_start)
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
        let windows: Vec<i32> = days.iter().map(|d| *d as i32).collect();
        // All windows in one statement.
        let rows = sqlx::query(
            "SELECT w.days, COALESCE(sum(d.fulfilled), 0)::bigint, COALESCE(sum(d.perfect), 0)::bigint,
                    COALESCE(sum(d.deviation_quality), 0)::bigint, COALESCE(sum(d.deviation_completeness), 0)::bigint,
                    COALESCE(sum(d.deviation_delivery), 0)::bigint, COALESCE(sum(d.deviation_service), 0)::bigint,
                    COALESCE(sum(d.confirmed_late), 0)::bigint, COALESCE(sum(d.delivered_late), 0)::bigint,
                    COALESCE(sum(d.delivered_short), 0)::bigint, COALESCE(sum(d.claimed), 0)::bigint
             FROM UNNEST($1::int[]) AS w(days)
             LEFT JOIN daily_kpi d ON d.day > $2::date - w.days AND d.day <= $2::date
             GROUP BY w.days",
        )
        .bind(&windows)
        .bind(today)
        .fetch_all(&self.pool)
        .await
        .map_err(step("read rolling windows from daily_kpi"))?;
        let by_days: HashMap<i32, WindowSums> = rows
            .into_iter()
            .map(|r| (r.get(0), std::array::from_fn(|i| r.get(1 + i))))
            .collect();
        Ok(windows
            .iter()
            .map(|d| by_days.get(d).copied().unwrap_or_default())
            .collect())
    }

    async fn confirmation_buckets(&self, after: NaiveDate) -> Result<Vec<(i64, i64)>, Error> {
        // The minutes of latency that occur, per day (and shard): not a row per order.
        Ok(sqlx::query(
            "SELECT bucket::bigint, sum(orders)::bigint
             FROM confirmation_ms_buckets WHERE day > $1
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
             WHERE {AWAITING} AND created_at < $2
             ORDER BY created_at, order_id LIMIT $3"
        ))
        .bind(rules.horizon_start(now))
        .bind(rules.sla_start(now))
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
