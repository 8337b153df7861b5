//! The batch transaction, written once for every database.
//!
//! Exactly-once per batch rests on three things, all inside one transaction:
//! 1. the database's lock on the batch's partition numbers ([`Database::begin_batch`]), so
//!    two writers never fold the same orders at once (order-scoped topics are co-partitioned,
//!    so an order lives on one partition number);
//! 2. fencing: records below the stored next offsets are skipped, so a batch replayed after a
//!    crash or a rebalance race applies nothing twice;
//! 3. the event store's `(source, id)` key: only events new to the store are folded.
//!
//! The steps, in order: begin (and lock), fence, screen duplicates, insert events, load the
//! projections (cache first), fold, write orders, claims and KPI deltas, the v2 entities,
//! rejected and duplicate records and the next offsets, the customer figures (their
//! customers locked in id order, last so that they are held only for the commit), commit,
//! then update the cache. A database only says how each step's rows reach its tables
//! ([`Database`]).

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;

use super::cache::ProjectionCache;
use super::rows::{self, seconds, StoredCaptureRow, StoredLeadRow};
use super::tables::{
    ClaimJournalRow, ClaimResolveBucketRow, ClaimResolveRow, ClaimsJournalRow, SmileyTallyRow,
    Table, Write,
};
use super::{BatchReport, Error};
use crate::batch::{Entry, PreparedBatch};
use crate::domain::contest::{ContestChange, Posting, Rostering, Smiley, TallyDelta};
use crate::domain::leads::{Capture, LeadDelta};
use crate::domain::response::{review_changes, ResponseDelta};
use crate::domain::{
    fold_batch, BatchOutcome, CustomerChange, CustomerOrder, CustomerOrders, EntityBatch, Event,
    EventKey, JournalClaim, JournalDelta, OrderDays, OrderProjection, Rules, StageMark,
};
use chrono::{DateTime, NaiveDate, Utc};

/// The connection a database's transaction runs on.
pub(crate) type Conn<D> = <<D as Database>::Db as sqlx::Database>::Connection;

/// A database's transaction.
pub(crate) type Tx<D> = sqlx::Transaction<'static, <D as Database>::Db>;

pub(crate) use super::rows::{
    StoredCustomer, StoredJournalRow, StoredReviewRow, StoredReviews, StoredRosterRow,
    StoredSmileyRow, StoredStageRow,
};

/// Which stored events a rebuild reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Events of an order, ordered by order id.
    OrderEvents,
    /// Events of the contract-v2 entity types.
    V2Events,
}

/// One stored event, as a rebuild reads it.
pub(crate) struct StoredEvent {
    pub order_id: Option<String>,
    pub payload: String,
}

/// The table operations and the locking a database provides to the batch transaction and
/// the rebuild. Per-dialect SQL lives in the implementations; the order of the steps, the
/// screening and the reporting live here.
pub(crate) trait Database: Send + Sync + 'static {
    type Db: sqlx::Database;
    /// Where a rebuild's read of the event store has got to.
    type Scan: Default + Send;

    /// The projections kept between batches.
    fn cache(&self) -> &Mutex<ProjectionCache>;

    /// Opens a batch transaction that alone may fold the orders of `partitions`.
    fn begin_batch(
        &self,
        partitions: &[i32],
    ) -> impl Future<Output = Result<Tx<Self>, Error>> + Send;

    /// Opens the rebuild's transaction: no batch commits until it ends.
    fn begin_rebuild(&self) -> impl Future<Output = Result<Tx<Self>, Error>> + Send;

    /// Next offsets stored for `keys` (absent: never committed).
    fn read_offsets(
        conn: &mut Conn<Self>,
        keys: &[(&str, i32)],
    ) -> impl Future<Output = Result<HashMap<(String, i32), i64>, Error>> + Send;

    /// Inserts the events new to the store; returns the keys it took.
    fn insert_events(
        conn: &mut Conn<Self>,
        events: &Write<'_>,
    ) -> impl Future<Output = Result<HashSet<EventKey>, Error>> + Send;

    /// `(order_id, state)` of the stored orders among `order_ids`; the state is `None` where
    /// the row's version is the one given (the cached projection is still the stored one).
    fn read_states(
        conn: &mut Conn<Self>,
        order_ids: &[String],
        versions: &[i64],
    ) -> impl Future<Output = Result<Vec<(String, Option<String>)>, Error>> + Send;

    /// Upserts order rows; returns the version each row now has.
    fn upsert_orders(
        conn: &mut Conn<Self>,
        orders: &Write<'_>,
    ) -> impl Future<Output = Result<HashMap<String, i64>, Error>> + Send;

    /// Writes the rows of several tables, in the order given (one lock order for every
    /// writer); a database may send them as one statement.
    fn write(
        conn: &mut Conn<Self>,
        writes: &[Write<'_>],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Deletes the stored restatements of `order_ids` (the batch writes them anew).
    fn forget_restatements(
        conn: &mut Conn<Self>,
        order_ids: &[&str],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether a migration left `name` to be filled from the stored orders
    /// (`pending_backfills`): a cheap look before taking the rebuild's lock.
    fn backfill_pending(&self, name: &str) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Takes the backfill `name` off `pending_backfills`; says whether it was still there
    /// (in the rebuild's transaction: of two instances starting at once, one fills).
    fn claim_backfill(
        conn: &mut Conn<Self>,
        name: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// The next `limit` delivered orders after `after` in order-id order: id and stored
    /// projection (`orders.state`).
    fn delivered_states(
        conn: &mut Conn<Self>,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(String, String)>, Error>> + Send;

    /// Locks the customers of `lock` (rows of `customers`, in customer-id order; missing
    /// ones are created with no first order) and returns each one's stored first order.
    fn lock_customers(
        conn: &mut Conn<Self>,
        lock: &Write<'_>,
    ) -> impl Future<Output = Result<HashMap<String, StoredCustomer>, Error>> + Send;

    /// Adds order-count deltas to `customer_months`; returns each row's count after it.
    fn add_customer_months(
        conn: &mut Conn<Self>,
        months: &Write<'_>,
    ) -> impl Future<Output = Result<Vec<(String, NaiveDate, i64)>, Error>> + Send;

    /// Every stored `(customer, month, orders)` of `customers`.
    fn customer_months(
        conn: &mut Conn<Self>,
        customers: &[&str],
    ) -> impl Future<Output = Result<Vec<(String, NaiveDate, i64)>, Error>> + Send;

    /// Every stored order of `customers` with an `order.created`, as the customer figures
    /// see it.
    fn customer_orders(
        conn: &mut Conn<Self>,
        customers: &[&str],
    ) -> impl Future<Output = Result<Vec<CustomerOrderRow>, Error>> + Send;

    /// Locks the journal rows of `lock` (rows of `claim_journal`, in claim-id order; missing
    /// ones are created empty) and returns each one as stored.
    fn lock_claims(
        conn: &mut Conn<Self>,
        lock: &Write<'_>,
    ) -> impl Future<Output = Result<Vec<StoredJournalRow>, Error>> + Send;

    /// Every stored `claim.updated` of `claim_ids`.
    fn claim_stages(
        conn: &mut Conn<Self>,
        claim_ids: &[&str],
    ) -> impl Future<Output = Result<Vec<StoredStageRow>, Error>> + Send;

    /// Locks `couriers` for the contest until the commit: exclusively those whose
    /// rosterings the batch changes (`exclusive[i]`), the others shared, so batches that
    /// only add smileys do not wait on each other.
    fn lock_couriers(
        conn: &mut Conn<Self>,
        couriers: &[&str],
        exclusive: &[bool],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Every stored rostering of `couriers`.
    fn courier_rosters(
        conn: &mut Conn<Self>,
        couriers: &[&str],
    ) -> impl Future<Output = Result<Vec<StoredRosterRow>, Error>> + Send;

    /// The stored smileys of each courier of `couriers` at or after its instant in `since`
    /// (reviews rated at least `min_rating` naming it, and its violations).
    fn courier_smileys_since(
        conn: &mut Conn<Self>,
        couriers: &[&str],
        since: &[DateTime<Utc>],
        min_rating: i32,
    ) -> impl Future<Output = Result<Vec<StoredSmileyRow>, Error>> + Send;

    /// Locks the review rows of `review_ids` (sorted; on a store with concurrent writers a
    /// missing row is created empty, so that it can be locked) and returns what they held
    /// before the batch: a review's posting and its answer may come on different lanes.
    fn lock_reviews(
        conn: &mut Conn<Self>,
        review_ids: &[&str],
    ) -> impl Future<Output = Result<StoredReviews, Error>> + Send;

    /// Locks `lead_ids` for the lead base until the commit: two batches that touch one lead
    /// (its events normally share a partition, but nothing in the contract makes them) wait
    /// for each other from here.
    fn lock_leads(
        conn: &mut Conn<Self>,
        lead_ids: &[&str],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Every stored event of `lead_ids`, each with its lead's capture.
    fn lead_events(
        conn: &mut Conn<Self>,
        lead_ids: &[&str],
    ) -> impl Future<Output = Result<Vec<StoredLeadRow>, Error>> + Send;

    /// The captured leads that name one of `customers`.
    fn customer_leads(
        conn: &mut Conn<Self>,
        customers: &[&str],
    ) -> impl Future<Output = Result<Vec<StoredCaptureRow>, Error>> + Send;

    /// How many stored events belong to an order (a rebuild's progress total).
    fn count_order_events(conn: &mut Conn<Self>)
        -> impl Future<Output = Result<i64, Error>> + Send;

    /// Empties `tables` inside the rebuild's transaction.
    fn empty(
        conn: &mut Conn<Self>,
        tables: &[&'static Table],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The next `chunk` stored events of `which` after `scan`; fewer than `chunk` means the end.
    fn next_stored(
        conn: &mut Conn<Self>,
        which: Stored,
        scan: &mut Self::Scan,
        chunk: i64,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, Error>> + Send;
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

/// The backfill's statements, the same SQL on both stores (only the connection's type
/// differs), expanded inside each store's `impl Database`.
macro_rules! same_sql_backfill {
    () => {
        async fn backfill_pending(&self, name: &str) -> Result<bool, crate::store::Error> {
            let pending: Option<String> =
                sqlx::query_scalar("SELECT name FROM pending_backfills WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::step("read pending_backfills"))?;
            Ok(pending.is_some())
        }

        async fn claim_backfill(
            conn: &mut crate::store::commit::Conn<Self>,
            name: &str,
        ) -> Result<bool, crate::store::Error> {
            let done = sqlx::query("DELETE FROM pending_backfills WHERE name = $1")
                .bind(name)
                .execute(conn)
                .await
                .map_err(crate::store::step(
                    "take the backfill off pending_backfills",
                ))?;
            Ok(done.rows_affected() > 0)
        }

        async fn delivered_states(
            conn: &mut crate::store::commit::Conn<Self>,
            after: &str,
            limit: i64,
        ) -> Result<Vec<(String, String)>, crate::store::Error> {
            sqlx::query_as(
                "SELECT order_id, state FROM orders
                 WHERE order_id > $1 AND delivered_at IS NOT NULL
                 ORDER BY order_id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(conn)
            .await
            .map_err(crate::store::step(
                "read the delivered orders' states from orders",
            ))
        }
    };
}
pub(crate) use same_sql_backfill;

/// Commits one batch atomically on `db` and reports what it did.
pub(crate) async fn commit_batch<D: Database>(
    db: &D,
    batch: &PreparedBatch,
    rules: &Rules,
) -> Result<BatchReport, Error> {
    let mut report = BatchReport {
        records: batch.len(),
        next_offsets: batch.next_offsets.clone(),
        ..BatchReport::default()
    };
    let mut lap = Laps::start();
    let partitions = batch.partition_numbers();
    let mut tx = db.begin_batch(&partitions).await?;
    let keys: Vec<(&str, i32)> = batch
        .next_offsets
        .keys()
        .map(|(t, p)| (t.as_ref(), *p))
        .collect();
    let stored_offsets = D::read_offsets(&mut tx, &keys).await?;
    lap.mark("lock_fence");
    let mut duplicates = Vec::new();
    let unique = screen(batch, &stored_offsets, &mut report, &mut duplicates);
    let event_rows = rows::event_rows(&unique);
    let inserted = if event_rows.is_empty() {
        HashSet::new()
    } else {
        D::insert_events(&mut tx, &Write::of(&event_rows)).await?
    };
    lap.mark("insert_events");
    let fresh = fresh_events(&unique, &inserted, &mut report, &mut duplicates);
    let (v2, fresh): (Vec<Event>, Vec<Event>) =
        fresh.into_iter().partition(|e| e.kind.order_id().is_none());
    let stored = load_projections(db, &mut tx, &order_ids(&fresh)).await?;
    lap.mark("load_orders");
    let outcome = fold_batch(stored, fresh, rules);
    lap.mark("fold");
    let shard = writer_shard(&partitions);
    let versions = write_fold::<D>(&mut tx, &outcome, rules, 0, shard).await?;
    lap.mark("write_orders_claims_kpi");
    let entities = EntityBatch::fold(v2);
    let journal = claim_journal::<D>(&mut tx, &outcome, &entities, rules, shard).await?;
    lap.mark("claims_journal");
    let leads = lead_base::<D>(&mut tx, &entities, rules).await?;
    if !entities.is_empty() {
        report.review_answer_seconds = write_v2::<D>(&mut tx, &entities, rules, shard).await?;
        lap.mark("write_v2");
    }
    let rejected = rows::rejected_rows(&unique);
    let duplicate_rows = rows::duplicate_rows(&duplicates);
    let offsets = rows::offset_rows(batch);
    let [journal_claims, journal_months, journal_seconds, journal_buckets] = journal.writes();
    let rest = [
        journal_claims,
        journal_months,
        journal_seconds,
        journal_buckets,
        Write::of(&rejected),
        Write::of(&duplicate_rows),
        Write::of(&offsets),
    ];
    D::write(&mut tx, &rest).await?;
    lap.mark("write_rest");
    // Last: the customers stay locked only for the commit.
    write_customers::<D>(&mut tx, &outcome, leads, rules, shard).await?;
    lap.mark("customers");
    tx.commit()
        .await
        .map_err(super::step("commit the batch transaction"))?;
    lap.mark("commit");
    tracing::debug!(steps_ms = %lap, "batch steps");

    finish_report(&mut report, &outcome);
    if let Ok(mut cache) = db.cache().lock() {
        for c in outcome.changed {
            if let Some(version) = versions.get(&c.projection.order_id) {
                cache.put(*version, c.assessment.verdict, c.projection);
            }
        }
    }
    Ok(report)
}

/// Writes a fold's orders (new rows at `first_version`), claims, KPI deltas and distribution
/// deltas (under `shard`); returns the version each order row now has. The fold's customer
/// figures follow with [`write_customers`].
pub(crate) async fn write_fold<D: Database>(
    conn: &mut Conn<D>,
    outcome: &BatchOutcome,
    rules: &Rules,
    first_version: i64,
    shard: i32,
) -> Result<HashMap<String, i64>, Error> {
    let orders = rows::order_rows(outcome, rules, first_version)?;
    let versions = if orders.is_empty() {
        HashMap::new()
    } else {
        D::upsert_orders(conn, &Write::of(&orders)).await?
    };
    let (forget, restated) = rows::restated_rows(outcome, rules);
    if !forget.is_empty() {
        D::forget_restatements(conn, &forget).await?;
    }
    let claims = rows::claim_rows(outcome, rules);
    let kpi = rows::kpi_rows(outcome, shard);
    let figures = rows::figure_rows(outcome, shard);
    let [dispatch, dispatch_buckets, confirmation, confirmation_buckets] = figures.writes();
    let (sales, channel_sales, channels) = rows::sale_rows(outcome, shard);
    D::write(
        conn,
        &[
            Write::of(&restated),
            Write::of(&claims),
            Write::of(&kpi),
            dispatch,
            dispatch_buckets,
            confirmation,
            confirmation_buckets,
            Write::of(&sales),
            Write::of(&channel_sales),
            Write::of(&channels),
        ],
    )
    .await?;
    Ok(versions)
}

/// The claims journal's changes for a batch: the claims whose filing or
/// resolution the fold changed and the claims with new `claim.updated` events (see
/// [`crate::domain::journal`]). The touched claims' journal rows are locked first, in id
/// order, so two writers never change one claim's contribution at once; then their stored
/// stages are read, and each claim's old contribution is retracted and its new one added.
/// Runs before the batch's stages are written: the stored stages are those before it. The
/// caller writes the rows it returns.
pub(crate) async fn claim_journal<'o, D: Database>(
    conn: &mut Conn<D>,
    outcome: &'o BatchOutcome,
    entities: &EntityBatch,
    rules: &Rules,
    shard: i32,
) -> Result<JournalRows<'o>, Error> {
    // The claims whose facts the fold changed (not every claim of an order whose delivery
    // changed: the journal does not depend on the delivery).
    let mut folded: BTreeMap<&str, JournalClaim> = BTreeMap::new();
    for c in &outcome.changed {
        for (claim_id, facts) in c
            .changed_claims
            .iter()
            .filter_map(|id| c.projection.claims.get_key_value(id))
        {
            folded.insert(claim_id, JournalClaim::of(facts, rules));
        }
    }
    let mut ids: Vec<&str> = folded.keys().copied().collect();
    ids.extend(entities.claims.keys().map(String::as_str));
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(JournalRows::default());
    }
    let mut lap = Laps::start();
    let lock = rows::claim_lock_rows(&ids);
    let mut before: HashMap<String, JournalClaim> = HashMap::with_capacity(ids.len());
    for row in D::lock_claims(conn, &Write::of(&lock)).await? {
        let (claim_id, claim) = rows::stored_journal_claim(row)?;
        before.insert(claim_id, claim);
    }
    lap.mark("lock");
    let mut stored: HashMap<String, Vec<StageMark>> = HashMap::new();
    for row in D::claim_stages(conn, &ids).await? {
        let (claim_id, mark) = rows::stored_stage(row)?;
        stored.entry(claim_id).or_default().push(mark);
    }
    let mut delta = JournalDelta::default();
    let none = JournalClaim::default();
    for claim_id in &ids {
        let old = before.get(*claim_id).unwrap_or(&none);
        let new = folded.get(claim_id).unwrap_or(old);
        let mut stages = stored.remove(*claim_id).unwrap_or_default();
        delta.add(old, &stages, -1);
        if let Some(trail) = entities.claims.get(*claim_id) {
            stages.extend(trail.stages.iter().map(|((at, key), d)| StageMark {
                at: *at,
                key: key.clone(),
                month: rules.month_of(*at),
                stage: d.stage,
            }));
        }
        delta.add(new, &stages, 1);
    }
    delta.settle();
    folded.retain(|claim_id, c| before.get(*claim_id) != Some(c));
    let journal = rows::claim_journal_rows(&folded);
    let (months, seconds, buckets) = rows::journal_rows(&delta, shard);
    lap.mark("stages");
    tracing::debug!(claims = ids.len(), steps_ms = %lap, "claims journal steps");
    Ok(JournalRows {
        journal,
        months,
        seconds,
        buckets,
    })
}

/// The rows a batch's claims journal step writes, with the batch's other rows (one
/// statement fewer).
#[derive(Default)]
pub(crate) struct JournalRows<'o> {
    journal: Vec<ClaimJournalRow<'o>>,
    months: Vec<ClaimsJournalRow>,
    seconds: Vec<ClaimResolveRow>,
    buckets: Vec<ClaimResolveBucketRow>,
}

impl JournalRows<'_> {
    pub fn writes(&self) -> [Write<'_>; 4] {
        [
            Write::of(&self.journal),
            Write::of(&self.months),
            Write::of(&self.seconds),
            Write::of(&self.buckets),
        ]
    }
}

/// `(customer, created_at, order_id, created_day, sales_channel)` of a stored order.
pub(crate) type CustomerOrderRow = (String, DateTime<Utc>, String, NaiveDate, Option<String>);

/// Each changed customer's order counts per month of creation, `(before, after)` a batch.
type CustomerCounts = HashMap<String, BTreeMap<NaiveDate, (i64, i64)>>;

/// Notes stored counts `(customer, month, orders now)` as `(before, after)` the batch: before
/// is now minus what the batch added. A month already noted is kept.
fn note_counts(
    counts: &mut CustomerCounts,
    changed: &BTreeMap<String, CustomerOrders>,
    stored: Vec<(String, NaiveDate, i64)>,
) {
    for (customer, month, after) in stored {
        let delta = changed.get(&customer).map_or(0, |c| c.orders_in(month));
        counts
            .entry(customer)
            .or_default()
            .entry(month)
            .or_insert((after - delta, after));
    }
}

/// Brings the customer figures up to date with a fold's changed orders (see
/// [`crate::domain::customers`]). The touched customers are locked first, in id order, so
/// two writers never change one customer's figures at once; everything else reads only
/// those customers' rows: their first order, their counts in the months the batch changed,
/// and, for a customer whose first order moved to another month, all of their months. A
/// batch runs it as its last step, so another batch that shares a customer waits only for
/// this step and the commit; it reads the fold's orders as written.
pub(crate) async fn write_customers<D: Database>(
    conn: &mut Conn<D>,
    outcome: &BatchOutcome,
    leads: LeadStep,
    rules: &Rules,
    shard: i32,
) -> Result<(), Error> {
    let changed = &outcome.figures.customers;
    if changed.is_empty() && leads.is_empty() {
        return Ok(());
    }
    let mut lap = Laps::start();
    let lock = rows::customer_lock_rows(changed, &leads.customers());
    let stored = D::lock_customers(conn, &Write::of(&lock)).await?;
    lap.mark("lock");
    // With the customers locked: a `(customer, month)` row locked from early in a batch made
    // other batches wait on it far longer (measured: 22 ms a batch against 6, BENCHMARKS).
    let mut months = CustomerCounts::new();
    let month_rows = rows::customer_month_rows(changed);
    if !month_rows.is_empty() {
        let now = D::add_customer_months(conn, &Write::of(&month_rows)).await?;
        note_counts(&mut months, changed, now);
    }
    lap.mark("months");
    let mut firsts: HashMap<&str, Option<CustomerOrder>> = HashMap::new();
    let mut look_up: Vec<&str> = Vec::new();
    for (customer, orders) in changed {
        let before = stored.get(customer).and_then(|s| s.first.as_ref());
        match orders.first_after(before) {
            Some(first) => {
                firsts.insert(customer, first);
            }
            None => look_up.push(customer),
        }
    }
    if !look_up.is_empty() {
        let mut found: HashMap<String, CustomerOrder> = HashMap::new();
        for (customer, at, order_id, day, channel) in D::customer_orders(conn, &look_up).await? {
            let order = CustomerOrder::placed(at, order_id, day, channel);
            match found.entry(customer) {
                MapEntry::Occupied(mut least) if order < *least.get() => {
                    least.insert(order);
                }
                MapEntry::Occupied(_) => {}
                MapEntry::Vacant(first) => {
                    first.insert(order);
                }
            }
        }
        for customer in look_up {
            firsts.insert(customer, found.remove(customer));
        }
    }
    let moved: Vec<&str> = changed
        .keys()
        .map(String::as_str)
        .filter(|c| {
            let before = stored
                .get(*c)
                .and_then(|s| s.first.as_ref())
                .map(|f| f.month);
            let after = firsts.get(c).and_then(Option::as_ref).map(|f| f.month);
            before.is_some() && before != after
        })
        .collect();
    if !moved.is_empty() {
        let all = D::customer_months(conn, &moved).await?;
        note_counts(&mut months, changed, all);
    }
    lap.mark("look_up");
    let mut change = CustomerChange::default();
    let no_months = BTreeMap::new();
    // The order days of the customers whose row must be rewritten: a retracted order's day
    // is not in the stored days with the added ones appended.
    let mut days: HashMap<&str, String> = HashMap::new();
    for (customer, orders) in changed {
        let stored = stored.get(customer);
        let before = stored.and_then(|s| s.first.as_ref());
        let after = firsts.get(customer.as_str()).and_then(Option::as_ref);
        let months = months.get(customer).unwrap_or(&no_months);
        change.between(before, after, months);
        if !orders.days.is_empty() {
            // The lock appended the added orders' days; a retracted order's day is taken
            // out here, and the row rewritten.
            let text = stored.map_or("", |s| s.order_days.as_str());
            let now = OrderDays::parse(text).ok_or_else(|| Error::CorruptOrderDays {
                customer_id: customer.clone(),
                value: text.to_owned(),
            })?;
            let (before, after) = orders.days_around(&now);
            change.days_between(&before, &after);
            if after != now {
                days.insert(customer, after.text());
            }
        }
    }
    change.settle();
    let customers = rows::customer_rows(&stored, &firsts, &days);
    let (kpi, channels, gaps) = rows::customer_kpi_rows(&change, shard);
    let lead_base = lead_conversions::<D>(conn, leads, &stored, &firsts, rules).await?;
    let lead_base = rows::lead_base_rows(&lead_base, shard);
    D::write(
        conn,
        &[
            Write::of(&customers),
            Write::of(&kpi),
            Write::of(&channels),
            Write::of(&gaps),
            Write::of(&lead_base),
        ],
    )
    .await?;
    lap.mark("write");
    tracing::debug!(customers = changed.len(), steps_ms = %lap, "customer steps");
    Ok(())
}

/// What a batch changed of its leads, for the lead base: the changes of their events and
/// temperatures (written with the customer figures), and each touched lead's capture before
/// and after the batch, whose conversions are counted once the customers are locked.
#[derive(Default)]
pub(crate) struct LeadStep {
    delta: LeadDelta,
    captures: Vec<(String, Option<Capture>, Option<Capture>)>,
}

impl LeadStep {
    /// No lead touched (a touched lead always has its entry in `captures`).
    fn is_empty(&self) -> bool {
        self.captures.is_empty()
    }

    /// The customers the touched leads name, before or after the batch, each with the
    /// change of the number of captured leads naming it.
    fn customers(&self) -> BTreeMap<&str, i64> {
        let mut named = BTreeMap::new();
        for (_, before, after) in &self.captures {
            for (capture, sign) in [(before, -1), (after, 1)] {
                if let Some(customer) = capture.as_ref().and_then(|c| c.customer_id.as_deref()) {
                    *named.entry(customer).or_default() += sign;
                }
            }
        }
        named
    }
}

/// The lead base's changes for a batch's leads ([`crate::domain::leads`]): the touched leads
/// are locked, their stored events read, and each lead's old contribution retracted and its
/// new one added. Runs before the batch's lead events are written: the stored events are
/// those before it. Conversions follow in [`write_customers`], where the customers the leads
/// name are locked with the batch's other customers.
pub(crate) async fn lead_base<D: Database>(
    conn: &mut Conn<D>,
    entities: &EntityBatch,
    rules: &Rules,
) -> Result<LeadStep, Error> {
    if entities.leads.is_empty() {
        return Ok(LeadStep::default());
    }
    let ids: Vec<&str> = entities.leads.keys().map(String::as_str).collect();
    D::lock_leads(conn, &ids).await?;
    let mut stored = rows::stored_leads(D::lead_events(conn, &ids).await?, rules)?;
    let mut step = LeadStep::default();
    for (lead_id, lead) in &entities.leads {
        let before = stored.remove(lead_id).unwrap_or_default();
        let after = before.with(lead, rules);
        step.delta.add(&before, -1);
        step.delta.add(&after, 1);
        step.captures
            .push((lead_id.clone(), before.capture, after.capture));
    }
    Ok(step)
}

/// The lead base's full change for a batch, conversions included: the touched leads'
/// conversions under their customers' first orders before and after the batch, and the
/// conversions of the other stored leads whose customer's first order the batch moved.
/// `stored` holds the locked customers as they were, `firsts` the first orders the batch
/// gave the customers it changed.
async fn lead_conversions<D: Database>(
    conn: &mut Conn<D>,
    leads: LeadStep,
    stored: &HashMap<String, StoredCustomer>,
    firsts: &HashMap<&str, Option<CustomerOrder>>,
    rules: &Rules,
) -> Result<LeadDelta, Error> {
    // A capture's customer's first order before and after the batch.
    let before = |c: &Capture| {
        let customer = c.customer_id.as_deref()?;
        stored.get(customer)?.first.as_ref()
    };
    let after = |c: &Capture| match firsts.get(c.customer_id.as_deref()?) {
        Some(first) => first.as_ref(),
        None => before(c),
    };
    let LeadStep {
        mut delta,
        captures,
    } = leads;
    for (_, old, new) in &captures {
        delta.convert(old.as_ref(), old.as_ref().and_then(before), -1);
        delta.convert(new.as_ref(), new.as_ref().and_then(after), 1);
    }
    // Only customers some captured lead names (counted on their row) can have conversions.
    let moved: Vec<&str> = firsts
        .iter()
        .filter(|(c, first)| {
            let stored = stored.get(**c);
            stored.and_then(|s| s.first.as_ref()) != first.as_ref()
                && stored.is_some_and(|s| s.leads > 0)
        })
        .map(|(c, _)| *c)
        .collect();
    if !moved.is_empty() {
        let touched: HashSet<&str> = captures.iter().map(|(id, _, _)| id.as_str()).collect();
        for row in D::customer_leads(conn, &moved).await? {
            let (lead_id, capture) = rows::stored_capture(row, rules);
            if touched.contains(lead_id.as_str()) {
                continue;
            }
            delta.convert(Some(&capture), before(&capture), -1);
            delta.convert(Some(&capture), after(&capture), 1);
        }
    }
    delta.settle();
    Ok(delta)
}

/// How many writer shards the maintained figure tables keep per key.
const SHARDS: i32 = 8;

/// The shard a batch of `partitions` writes its figure deltas under. Concurrent batches hold
/// disjoint partitions (the lanes split them), so they mostly write different shards and do
/// not wait on each other's row locks; the views sum the shards.
fn writer_shard(partitions: &[i32]) -> i32 {
    partitions.first().map_or(0, |p| p.rem_euclid(SHARDS))
}

/// Writes a batch of v2 entities: their rows, the contest's tallies (see
/// [`contest_tallies`]) and the review response figures' deltas ([`ResponseDelta`]), in one
/// write. Returns the answer times of the reviews answered with this batch.
pub(crate) async fn write_v2<D: Database>(
    conn: &mut Conn<D>,
    entities: &EntityBatch,
    rules: &Rules,
    shard: i32,
) -> Result<Vec<f64>, Error> {
    let ids: Vec<&str> = entities.reviews.keys().map(String::as_str).collect();
    let before = if ids.is_empty() {
        StoredReviews::default()
    } else {
        D::lock_reviews(conn, &ids).await?
    };
    let tallies = contest_tallies::<D>(conn, entities, &before, rules, shard).await?;
    let changes = review_changes(entities, &before, rules);
    let response = rows::response_rows(&ResponseDelta::of(&changes), shard);
    let rows = rows::v2_rows(entities, rules);
    let mut writes = rows.writes();
    writes.push(Write::of(&tallies));
    writes.extend(response.writes());
    D::write(conn, &writes).await?;
    Ok(rows::new_answer_seconds(&changes))
}

/// The contest's tally changes for a batch's smileys and rosterings
/// ([`ContestChange`]: the smileys it adds and retracts, and for a courier with a new
/// rostering, its stored smileys from that time on, whose team may change). The touched
/// couriers are locked first, in id order (reviews, violations and rosterings
/// of one courier may come on different lanes): shared where the batch only adds or
/// retracts smileys (such batches commute), exclusively where it brings rosterings (which
/// move the smileys other batches add); then their rosterings and those smileys are read.
/// Runs before the batch's rows are written: what it reads is the store before it.
async fn contest_tallies<D: Database>(
    conn: &mut Conn<D>,
    entities: &EntityBatch,
    reviews: &StoredReviews,
    rules: &Rules,
    shard: i32,
) -> Result<Vec<SmileyTallyRow>, Error> {
    let postings: HashMap<String, Posting> = reviews
        .iter()
        .filter_map(|(id, r)| Some((id.clone(), r.posting.clone()?)))
        .collect();
    let change = ContestChange::of(entities, &postings, rules);
    let couriers = change.couriers();
    if couriers.is_empty() {
        return Ok(Vec::new());
    }
    let mut lap = Laps::start();
    let since = change.since();
    let exclusive: Vec<bool> = couriers.iter().map(|c| since.contains_key(c)).collect();
    D::lock_couriers(conn, &couriers, &exclusive).await?;
    lap.mark("lock");
    let mut rosters: HashMap<String, Vec<Rostering>> = HashMap::new();
    for row in D::courier_rosters(conn, &couriers).await? {
        let (courier, rostering) = rows::stored_rostering(row);
        rosters.entry(courier).or_default().push(rostering);
    }
    lap.mark("rosters");
    let mut window: HashMap<String, Vec<Smiley>> = HashMap::new();
    if !since.is_empty() {
        let (ids, times): (Vec<&str>, Vec<DateTime<Utc>>) = since.iter().unzip();
        let min_rating = i32::from(rules.smiley_min_rating);
        for row in D::courier_smileys_since(conn, &ids, &times, min_rating).await? {
            let (courier, smiley) = rows::stored_smiley(row);
            window.entry(courier).or_default().push(smiley);
        }
    }
    let mut delta = TallyDelta::default();
    for courier in &couriers {
        let stored = rosters.remove(*courier).unwrap_or_default();
        let window = window.remove(*courier).unwrap_or_default();
        change.tally(courier, stored, window, &mut delta);
    }
    delta.settle();
    lap.mark("smileys");
    tracing::debug!(couriers = couriers.len(), steps_ms = %lap, "contest steps");
    Ok(rows::tally_rows(delta, shard))
}

/// The stored projections of `order_ids`. A cached projection whose version is still the
/// stored one is used as is (its state is not read); any other is read and parsed.
async fn load_projections<D: Database>(
    db: &D,
    conn: &mut Conn<D>,
    order_ids: &[String],
) -> Result<HashMap<String, OrderProjection>, Error> {
    if order_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut cached = match db.cache().lock() {
        Ok(mut cache) => cache.take(order_ids),
        Err(_) => HashMap::new(),
    };
    let versions: Vec<i64> = order_ids
        .iter()
        .map(|id| cached.get(id).map_or(-1, |(v, _)| *v))
        .collect();
    let states = D::read_states(conn, order_ids, &versions).await?;
    let mut out = HashMap::with_capacity(states.len());
    for (order_id, state) in states {
        let projection = match state {
            None => match cached.remove(&order_id) {
                Some((_, p)) => p,
                None => continue,
            },
            Some(state) => rows::decode_state(&order_id, &state)?,
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

/// Drops the records below the stored next offsets (fencing) and the second and later copies
/// of an event within the batch (added to `duplicates`), counting both in `report`.
fn screen<'b>(
    batch: &'b PreparedBatch,
    stored: &HashMap<(String, i32), i64>,
    report: &mut BatchReport,
    duplicates: &mut Vec<&'b Entry>,
) -> Vec<&'b Entry> {
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
    let mut seen: HashSet<&EventKey> = HashSet::with_capacity(live.len());
    let mut unique: Vec<&Entry> = Vec::with_capacity(live.len());
    for entry in live {
        match entry {
            Entry::Known { event, .. } if !seen.insert(&event.key) => {
                report.duplicates += 1;
                duplicates.push(entry);
            }
            Entry::Unknown { key, .. } if !seen.insert(key) => {
                report.duplicates += 1;
                duplicates.push(entry);
            }
            Entry::Rejected { rejection, .. } => {
                *report.rejected.entry(rejection.reason).or_default() += 1;
                unique.push(entry);
            }
            _ => unique.push(entry),
        }
    }
    unique
}

/// The events the event store took (`inserted`), to be folded; the rest are duplicates
/// (added to `duplicates`).
fn fresh_events<'b>(
    unique: &[&'b Entry],
    inserted: &HashSet<EventKey>,
    report: &mut BatchReport,
    duplicates: &mut Vec<&'b Entry>,
) -> Vec<Event> {
    let mut fresh: Vec<Event> = Vec::with_capacity(inserted.len());
    for entry in unique {
        match entry {
            Entry::Known { event, .. } if inserted.contains(&event.key) => {
                *report.consumed.entry(event.kind.type_name()).or_default() += 1;
                fresh.push(event.clone());
            }
            Entry::Unknown { key, .. } if inserted.contains(key) => report.unknown += 1,
            Entry::Known { .. } | Entry::Unknown { .. } => {
                report.duplicates += 1;
                duplicates.push(entry);
            }
            Entry::Rejected { .. } => {}
        }
    }
    fresh
}

/// The orders `events` touch, sorted and without repeats.
fn order_ids(events: &[Event]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .filter_map(|e| e.kind.order_id().map(|id| id.to_string()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Adds what the committed fold changed to the report (latencies, newly filed claims).
fn finish_report(report: &mut BatchReport, outcome: &BatchOutcome) {
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
        report
            .claim_resolution_seconds
            .extend(c.newly_resolved_seconds.iter().map(|s| *s as f64));
    }
}
