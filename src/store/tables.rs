//! Every table the batch transaction writes, described once: its columns, their Rust types,
//! the key and how a stored row merges with an incoming one.
//!
//! A table is declared with [`table!`], which gives the row type (one field per column) and
//! its [`Table`] description together, so a column is named in exactly one place. Each
//! database renders its bulk statement from the description ([`Table::insert_sql`] with the
//! database's own [`RowSource`]) and binds the rows as typed columns ([`Rows::columns`]).
//!
//! Merge rules, applied in SQL inside the row lock so that two writers meet in a fold of the
//! union whatever the order of their transactions:
//! - [`Merge::Replace`]: the incoming value (the fold already merged the stored facts);
//! - [`Merge::Add`]: stored + incoming (signed KPI deltas);
//! - [`Merge::Max`]: the greater (next offsets never move back);
//! - [`Merge::Bump`]: the incoming value on insert, stored + 1 on update (row versions);
//! - [`Merge::Slot`]: the columns of one fact, taken as a whole when the incoming fact's
//!   `(time, source, id)` stamp is earlier (or later) than the stored one;
//! - [`Merge::Keep`]: the incoming value on insert, else the stored one (a write that locks
//!   an existing row and returns it as stored);
//! - [`Conflict::Ignore`] on the table: an existing row is kept as it is (append-only).

use chrono::{DateTime, NaiveDate, Utc};

/// How a column merges when the row already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    /// Part of the conflict key.
    Key,
    Replace,
    Add,
    Max,
    Bump,
    /// Text appended to the stored text.
    Append,
    /// Belongs to the `i`-th [`Slot`] of the table.
    Slot(usize),
}

/// Columns filled by one fact, kept by the fact's `(time, source, id)` stamp.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Keep the earliest stamp (else the latest).
    pub earliest: bool,
    pub stamp: [&'static str; 3],
}

/// What happens to an existing row with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// Kept as it is: the incoming row is dropped.
    Ignore,
    /// Merged column by column by each column's [`Merge`].
    Merge,
    /// Incoming rows may share a key: they are summed per key first (every non-key column is
    /// [`Merge::Add`]), in the statement, then merged. For amounts the service does not add
    /// itself (a decimal `total` of any size, summed exactly by PostgreSQL's `numeric`).
    Sum,
}

/// The SQL type a column's values travel as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Int4,
    Int8,
    Float8,
    Bool,
    Time,
    Date,
    Bytes,
}

#[derive(Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub merge: Merge,
    /// The column's type where it differs from how the value travels (`jsonb`, `numeric`
    /// from text): PostgreSQL casts to it, SQLite stores the text.
    pub cast: Option<&'static str>,
}

/// One written table.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    /// The step an error names: `write rows into <table>`.
    pub what: &'static str,
    pub columns: &'static [Column],
    pub slots: &'static [Slot],
    pub conflict: Conflict,
    /// Whether the row has an `updated_at` the write sets to now.
    pub touch: bool,
    /// Columns the statement returns.
    pub returning: &'static [&'static str],
}

/// How one database feeds rows into a statement: everything of a bulk statement that is
/// not the table's own description.
pub(crate) trait RowSource {
    /// The `FROM …` clause that yields one row per incoming row (column `i` at parameter
    /// `first + i` on PostgreSQL, one JSON parameter on SQLite).
    fn from(&self, table: &Table, first: usize) -> String;
    /// The expression that reads column `i` of an incoming row.
    fn value(&self, table: &Table, i: usize) -> String;
    /// The current time as the database writes `updated_at`.
    fn now(&self) -> &'static str;
    /// The function that takes the greater of two values.
    fn greatest(&self) -> &'static str;
    /// How many parameters one table's rows take.
    fn parameters(&self, table: &Table) -> usize;
}

impl Table {
    fn key(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.merge == Merge::Key)
            .map(|c| quote(c.name))
            .collect()
    }

    /// The bulk statement for this table's rows, its parameters starting at `first`.
    pub fn insert_sql(&self, source: &impl RowSource, first: usize) -> String {
        let mut names: Vec<String> = self.columns.iter().map(|c| quote(c.name)).collect();
        let mut values: Vec<String> = (0..self.columns.len())
            .map(|i| source.value(self, i))
            .collect();
        let mut group = String::new();
        if self.conflict == Conflict::Sum {
            let keys: Vec<String> = (0..self.columns.len())
                .filter(|i| self.columns[*i].merge == Merge::Key)
                .map(|i| source.value(self, i))
                .collect();
            group = format!(" GROUP BY {}", keys.join(", "));
            for (value, column) in values.iter_mut().zip(self.columns) {
                if column.merge != Merge::Key {
                    *value = format!("sum({value})");
                }
            }
        }
        if self.touch {
            names.push(quote("updated_at"));
            values.push(source.now().to_owned());
        }
        let mut sql = format!(
            "INSERT INTO {} ({}) SELECT {} {}{group} ON CONFLICT ({}) {}",
            self.name,
            names.join(", "),
            values.join(", "),
            source.from(self, first),
            self.key().join(", "),
            self.on_conflict(source),
        );
        if !self.returning.is_empty() {
            let returning: Vec<String> = self.returning.iter().map(|c| quote(c)).collect();
            sql.push_str(" RETURNING ");
            sql.push_str(&returning.join(", "));
        }
        sql
    }

    fn on_conflict(&self, source: &impl RowSource) -> String {
        if self.conflict == Conflict::Ignore {
            return "DO NOTHING".to_owned();
        }
        let t = self.name;
        let mut sets: Vec<String> = Vec::with_capacity(self.columns.len() + 1);
        for c in self.columns {
            let n = quote(c.name);
            let set = match c.merge {
                Merge::Key => continue,
                Merge::Replace => format!("excluded.{n}"),
                Merge::Add => format!("{t}.{n} + excluded.{n}"),
                Merge::Max => format!("{}({t}.{n}, excluded.{n})", source.greatest()),
                Merge::Bump => format!("{t}.{n} + 1"),
                Merge::Append => format!("{t}.{n} || excluded.{n}"),
                Merge::Slot(i) => {
                    let wins = self.slot_wins(i);
                    format!("CASE WHEN {wins} THEN excluded.{n} ELSE {t}.{n} END")
                }
            };
            sets.push(format!("{n} = {set}"));
        }
        if self.touch {
            sets.push(format!("\"updated_at\" = {}", source.now()));
        }
        format!("DO UPDATE SET {}", sets.join(", "))
    }

    /// Whether the incoming fact of slot `i` replaces the stored one.
    fn slot_wins(&self, i: usize) -> String {
        let Some(slot) = self.slots.get(i) else {
            return "false".to_owned();
        };
        let t = self.name;
        let [at, src, id] = slot.stamp.map(quote);
        let op = if slot.earliest { "<" } else { ">" };
        format!(
            "(excluded.{at} IS NOT NULL AND ({t}.{at} IS NULL OR \
             (excluded.{at}, excluded.{src}, excluded.{id}) {op} ({t}.{at}, {t}.{src}, {t}.{id})))"
        )
    }
}

fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// One column of a batch's rows, typed, in row order (`None` is SQL NULL).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Values<'a> {
    Text(Vec<Option<&'a str>>),
    Int4(Vec<Option<i32>>),
    Int8(Vec<Option<i64>>),
    Float8(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
    Bytes(Vec<Option<&'a [u8]>>),
}

/// A Rust type a column can hold: how a column of them is gathered.
pub(crate) trait Cell {
    const KIND: Kind;
    fn gather<'a>(cells: impl Iterator<Item = &'a Self>) -> Values<'a>
    where
        Self: 'a;
}

/// `Cell` for a type and its `Option`, given how one value becomes the column's value.
macro_rules! cell {
    ($variant:ident, $t:ty, |$v:ident| $e:expr) => {
        impl Cell for $t {
            const KIND: Kind = Kind::$variant;
            fn gather<'a>(cells: impl Iterator<Item = &'a Self>) -> Values<'a>
            where
                Self: 'a,
            {
                Values::$variant(cells.map(|$v| Some($e)).collect())
            }
        }
        impl Cell for Option<$t> {
            const KIND: Kind = Kind::$variant;
            fn gather<'a>(cells: impl Iterator<Item = &'a Self>) -> Values<'a>
            where
                Self: 'a,
            {
                Values::$variant(cells.map(|c| c.as_ref().map(|$v| $e)).collect())
            }
        }
    };
}

cell!(Text, String, |v| v.as_str());
cell!(Text, &str, |v| *v);
cell!(Int4, i32, |v| *v);
cell!(Int4, u8, |v| i32::from(*v));
cell!(Int8, i64, |v| *v);
cell!(Float8, f64, |v| *v);
cell!(Bool, bool, |v| *v);
cell!(Time, DateTime<Utc>, |v| *v);
cell!(Date, NaiveDate, |v| *v);
cell!(Bytes, &[u8], |v| *v);

/// Rows of one table: the description, and the rows as typed columns.
pub(crate) trait Rows: Sized {
    const TABLE: &'static Table;
    /// The rows' values, column by column, in the description's column order.
    fn columns(rows: &[Self]) -> Vec<Values<'_>>;
}

/// A batch's rows of one table, ready for a database to render and bind.
pub(crate) struct Write<'a> {
    pub table: &'static Table,
    pub rows: usize,
    pub columns: Vec<Values<'a>>,
}

impl<'a> Write<'a> {
    pub fn of<R: Rows>(rows: &'a [R]) -> Write<'a> {
        Write {
            table: R::TABLE,
            rows: rows.len(),
            columns: R::columns(rows),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The step name of an error: the table the write failed on.
    pub fn what(&self) -> &'static str {
        self.table.what
    }
}

/// Declares a written table: its row type and its [`Table`] description, from one list of
/// columns. `field: Type = Merge` per column; `as "name"` where the column's name is not a
/// Rust name, `cast "type"` where the column's SQL type differs from how the value travels.
macro_rules! table {
    (
        $(#[$meta:meta])*
        $row:ident $(<$lt:lifetime>)? => $name:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $merge:expr
               $(, as $col:literal)? $(, cast $cast:literal)? ; )*
        }
        conflict: $conflict:expr, touch: $touch:expr, returning: [$($ret:literal),*]
        $(, slots: [$($slot:expr),* $(,)?])?
    ) => {
        $(#[$meta])*
        pub(crate) struct $row $(<$lt>)? {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $(<$lt>)? Rows for $row $(<$lt>)? {
            const TABLE: &'static Table = &Table {
                name: $name,
                what: concat!("write rows into ", $name),
                columns: &[$(Column {
                    name: table!(@name $field $($col)?),
                    kind: <$ty as Cell>::KIND,
                    merge: $merge,
                    cast: table!(@cast $($cast)?),
                }),*],
                slots: &[$($($slot),*)?],
                conflict: $conflict,
                touch: $touch,
                returning: &[$($ret),*],
            };

            fn columns(rows: &[Self]) -> Vec<Values<'_>> {
                vec![$( <$ty as Cell>::gather(rows.iter().map(|r| &r.$field)) ),*]
            }
        }
    };
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident $col:literal) => { $col };
    (@cast) => { None };
    (@cast $cast:literal) => { Some($cast) };
}

use Conflict::{Ignore, Merge as Merged, Sum as Summed};
use Merge::{Add, Append, Bump, Key, Max, Replace};

const EARLIEST: bool = true;
const LATEST: bool = false;

table! {
    /// A row of `events`: the event store, one row per distinct `(source, id)`.
    EventRow<'a> => "events" {
        source: &'a str = Key;
        id: &'a str = Key;
        type_name: &'a str = Replace, as "type";
        time: DateTime<Utc> = Replace;
        order_id: Option<&'a str> = Replace;
        topic: &'a str = Replace;
        partition: i32 = Replace;
        offset: i64 = Replace;
        payload: &'a str = Replace, cast "jsonb";
    }
    conflict: Ignore, touch: false, returning: ["source", "id"]
}

table! {
    /// A row of `duplicate_events`: where a repeated event was read, and which event it repeats.
    DuplicateRow<'a> => "duplicate_events" {
        topic: &'a str = Key;
        partition: i32 = Key;
        offset: i64 = Key;
        source: &'a str = Replace;
        id: &'a str = Replace;
    }
    conflict: Ignore, touch: false, returning: []
}

table! {
    /// A row of `rejected_events`: a record that could not be read, with its reason.
    RejectedRow<'a> => "rejected_events" {
        topic: &'a str = Key;
        partition: i32 = Key;
        offset: i64 = Key;
        reason: &'static str = Replace;
        detail: String = Replace;
        key: Option<&'a [u8]> = Replace;
        raw: Option<&'a [u8]> = Replace;
    }
    conflict: Ignore, touch: false, returning: []
}

table! {
    /// A row of `consumer_offsets`: the next offset to read, which never moves back.
    OffsetRow<'a> => "consumer_offsets" {
        topic: &'a str = Key;
        partition: i32 = Key;
        next_offset: i64 = Max;
    }
    conflict: Merged, touch: true, returning: []
}

table! {
    /// A row of `orders`: one order's projection and its assessment.
    OrderRow => "orders" {
        order_id: String = Key;
        customer_id: Option<String> = Replace;
        verdict: &'static str = Replace;
        created_at: Option<DateTime<Utc>> = Replace;
        confirmed_at: Option<DateTime<Utc>> = Replace;
        shipped_at: Option<DateTime<Utc>> = Replace;
        delivered_at: Option<DateTime<Utc>> = Replace;
        cancelled_at: Option<DateTime<Utc>> = Replace;
        promised_to: Option<DateTime<Utc>> = Replace;
        courier_id: Option<String> = Replace;
        confirmation_channel: Option<&'static str> = Replace;
        created_day: Option<NaiveDate> = Replace;
        delivered_day: Option<NaiveDate> = Replace;
        confirmation_seconds: Option<f64> = Replace;
        confirmed_to_shipped_seconds: Option<f64> = Replace;
        delivery_lateness_seconds: Option<f64> = Replace;
        items_ordered: Option<i64> = Replace;
        items_delivered: Option<i64> = Replace;
        deviation_quality: bool = Replace;
        deviation_completeness: bool = Replace;
        deviation_delivery: bool = Replace;
        deviation_service: bool = Replace;
        final_at: Option<DateTime<Utc>> = Replace;
        /// The projection as JSON: what the fold resumes from.
        state: String = Replace;
        sales_channel: Option<String> = Replace;
        /// `total` of order.created, a decimal string.
        total: Option<String> = Replace, cast "numeric";
        shipped_day: Option<NaiveDate> = Replace;
        /// The version a new row starts at; an update adds one.
        version: i64 = Bump;
    }
    conflict: Merged, touch: true, returning: ["order_id", "version"]
}

table! {
    /// A row of `restated_orders`: an order counted differently today than when its delivery
    /// day or month was first complete ([`crate::domain::restatement`]), and the fact that
    /// changed it. A batch forgets the rows of the orders it changes and writes them anew.
    RestatedRow => "restated_orders" {
        order_id: String = Key;
        period_kind: &'static str = Key;
        period: NaiveDate = Replace;
        first_verdict: &'static str = Replace;
        now_verdict: &'static str = Replace;
        cause_type: &'static str = Replace;
        cause_time: DateTime<Utc> = Replace;
        cause_day: NaiveDate = Replace;
        cause_source: String = Replace;
        cause_id: String = Replace;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A row of `claims`: a claim's filing and resolution, and whether it counts for the verdict.
    ClaimRow => "claims" {
        claim_id: String = Key;
        order_id: String = Replace;
        category: Option<&'static str> = Replace;
        description: Option<String> = Replace;
        filed_at: Option<DateTime<Utc>> = Replace;
        filed_day: Option<NaiveDate> = Replace;
        resolved_at: Option<DateTime<Utc>> = Replace;
        resolution: Option<String> = Replace;
        counts_for_verdict: bool = Replace;
        resolved_day: Option<NaiveDate> = Replace;
        improvement: Option<String> = Replace;
    }
    conflict: Merged, touch: true, returning: []
}

table! {
    /// Locks a claim's journal row (creating it, empty, when new) and returns it: what the
    /// claims journal counted of the claim before the batch. In claim-id order, one
    /// statement, so the row returned is the one locked.
    ClaimLockRow<'a> => "claim_journal" {
        claim_id: &'a str = Key;
        version: i64 = Bump;
    }
    conflict: Merged, touch: false,
    returning: ["claim_id", "category", "filed_at", "filed_month", "resolved_at", "resolved_month"]
}

table! {
    /// What the claims journal counts of a claim after a batch changed its filing or
    /// resolution (its stages are read from `claim_stages`).
    ClaimJournalRow<'a> => "claim_journal" {
        claim_id: &'a str = Key;
        category: Option<&'static str> = Replace;
        filed_at: Option<DateTime<Utc>> = Replace;
        filed_month: Option<NaiveDate> = Replace;
        resolved_at: Option<DateTime<Utc>> = Replace;
        resolved_month: Option<NaiveDate> = Replace;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `claims_journal_shards`: claims filed and resolved in a month and
    /// category, and the change in the month of the claims open at month end per stage,
    /// per writer shard (the view sums the shards and runs the changes up to each month).
    ClaimsJournalRow => "claims_journal_shards" {
        month: NaiveDate = Key;
        category: &'static str = Key;
        shard: i32 = Key;
        filed: i64 = Add;
        resolved: i64 = Add;
        open_registered: i64 = Add;
        open_investigating: i64 = Add;
        open_action_taken: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `claim_resolve_seconds`: claims resolved in a month and category
    /// that took this many whole seconds from filing, per writer shard.
    ClaimResolveRow => "claim_resolve_seconds" {
        month: NaiveDate = Key;
        category: &'static str = Key;
        seconds: i64 = Key;
        shard: i32 = Key;
        claims: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `claim_resolve_buckets`: claims resolved in a month and category
    /// within a bucket of [`super::rows::RESOLVE_BUCKET_SECONDS`] of time to resolve, per
    /// writer shard: what a percentile reads to find the bucket that holds its rank.
    ClaimResolveBucketRow => "claim_resolve_buckets" {
        month: NaiveDate = Key;
        category: &'static str = Key;
        bucket: i64 = Key;
        shard: i32 = Key;
        claims: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `smiley_tallies`: smileys of a month and courier that count for a
    /// team (`''`: none), per writer shard (the views sum the shards).
    SmileyTallyRow => "smiley_tallies" {
        month: NaiveDate = Key;
        courier_id: String = Key;
        team_id: String = Key;
        shard: i32 = Key;
        yellow: i64 = Add;
        red: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `review_response_shards`: reviews posted in a month, the negative
    /// ones and the negative ones still unanswered, per writer shard (summed by the view).
    ReviewCountsRow => "review_response_shards" {
        month: NaiveDate = Key;
        shard: i32 = Key;
        reviews: i64 = Add;
        negative: i64 = Add;
        unanswered_negative: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `review_answer_seconds`: reviews posted in a month and answered
    /// this many whole seconds later (`whole`: exactly, no fraction), per writer shard.
    ReviewAnswerRow => "review_answer_seconds" {
        month: NaiveDate = Key;
        seconds: i64 = Key;
        whole: bool = Key;
        shard: i32 = Key;
        reviews: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `review_answer_buckets`: reviews posted in a month and answered
    /// within a bucket of [`super::rows::ANSWER_BUCKET_SECONDS`] (bucket `b` holds the
    /// whole seconds `b * width ..< (b + 1) * width`), per writer shard: what a percentile
    /// reads to find the bucket that holds its rank.
    ReviewAnswerBucketRow => "review_answer_buckets" {
        month: NaiveDate = Key;
        bucket: i64 = Key;
        shard: i32 = Key;
        reviews: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `dispatch_seconds`: orders shipped in a month that took this many
    /// whole seconds from creation to shipment, per writer shard (summed by the view).
    DispatchRow => "dispatch_seconds" {
        month: NaiveDate = Key;
        seconds: i64 = Key;
        shard: i32 = Key;
        orders: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `dispatch_buckets`: orders shipped in a month within a bucket of
    /// [`super::rows::DISPATCH_BUCKET_SECONDS`] of order to dispatch, per writer shard: what a
    /// percentile reads to find the bucket that holds its rank.
    DispatchBucketRow => "dispatch_buckets" {
        month: NaiveDate = Key;
        bucket: i64 = Key;
        shard: i32 = Key;
        orders: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `confirmation_ms_buckets`: orders created on a day and confirmed
    /// within a bucket of [`super::rows::CONFIRMATION_BUCKET_MS`], per writer shard: what a
    /// percentile or the count over the SLA reads before one bucket of `confirmation_ms`.
    ConfirmationMsBucketRow => "confirmation_ms_buckets" {
        day: NaiveDate = Key;
        bucket: i64 = Key;
        shard: i32 = Key;
        orders: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of `confirmation_ms`: orders created on a day and confirmed this many
    /// milliseconds later, per writer shard (summed by the view).
    ConfirmationRow => "confirmation_ms" {
        day: NaiveDate = Key;
        ms: i64 = Key;
        shard: i32 = Key;
        orders: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// Locks a customer's row (creating it, with no first order, when new), appends the
    /// days of the batch's added orders to its order days, adds the change of the captured
    /// leads naming it, and returns it: the customer figures' first step of a batch, in
    /// customer-id order. One statement, so the row
    /// returned is the one locked, whatever committed meanwhile.
    CustomerLockRow<'a> => "customers" {
        customer_id: &'a str = Key;
        order_days: String = Append;
        leads: i64 = Add;
    }
    conflict: Merged, touch: false,
    returning: ["customer_id", "first_at", "first_order_id", "first_month", "first_channel", "order_days", "leads"]
}

table! {
    /// A customer's first order (`order.created`, least `(time, order id)`) and orders per
    /// day ([`crate::domain::OrderDays`]) after a batch changed them.
    CustomerRow<'a> => "customers" {
        customer_id: &'a str = Key;
        first_at: Option<DateTime<Utc>> = Replace;
        first_order_id: Option<&'a str> = Replace;
        first_month: Option<NaiveDate> = Replace;
        first_channel: Option<&'a str> = Replace;
        order_days: &'a str = Replace;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of a customer's orders created in a month; returns the new count.
    CustomerMonthRow<'a> => "customer_months" {
        customer_id: &'a str = Key;
        month: NaiveDate = Key;
        orders: i64 = Add;
    }
    conflict: Merged, touch: false, returning: ["customer_id", "month", "orders"]
}

table! {
    /// A signed delta of the repeat-customer figures of a month, per writer shard (summed by
    /// `repeat_customers_monthly`).
    CustomerKpiRow => "customer_kpi_shards" {
        month: NaiveDate = Key;
        shard: i32 = Key;
        customers: i64 = Add;
        returning_customers: i64 = Add;
        orders: i64 = Add;
        returning_orders: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of the new customers of a month whose first order came through a
    /// sales channel, per writer shard (summed by `acquisition_monthly`).
    NewCustomerRow<'a> => "new_customer_channels" {
        month: NaiveDate = Key;
        channel: &'a str = Key;
        shard: i32 = Key;
        new_customers: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed sale (a fulfilled order with a `total`, or its retraction: `orders` -1 and the
    /// total negated) in its shop-zone month of delivery, per writer shard; the rows of a
    /// batch are summed per key by the statement (exactly, as `numeric`, on PostgreSQL).
    /// `acquisition_monthly` reads the revenue and fulfilled orders of channel `all` here.
    SaleRow => "sales_shards" {
        month: NaiveDate = Key;
        shard: i32 = Key;
        orders: i64 = Add;
        revenue: String = Add, cast "numeric";
    }
    conflict: Summed, touch: false, returning: []
}

table! {
    /// A signed sale of an order with a sales channel, as [`SaleRow`], per channel.
    ChannelSaleRow<'a> => "channel_sales_shards" {
        month: NaiveDate = Key;
        channel: &'a str = Key;
        shard: i32 = Key;
        orders: i64 = Add;
        revenue: String = Add, cast "numeric";
    }
    conflict: Summed, touch: false, returning: []
}

table! {
    /// A signed delta of the orders naming a sales channel, per writer shard: a channel
    /// with orders is one acquisition reports (when it has spends too).
    ChannelOrdersRow<'a> => "sales_channel_orders" {
        channel: &'a str = Key;
        shard: i32 = Key;
        orders: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of the customers whose order day `day` follows their previous order
    /// day `previous_day` (`day` itself for a first order), per writer shard: what the rolling
    /// window's repeat-customer ratio sums (see [`crate::domain::customers::OrderGap`]).
    CustomerGapRow => "customer_order_gaps" {
        day: NaiveDate = Key;
        previous_day: NaiveDate = Key;
        shard: i32 = Key;
        customers: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

table! {
    /// A signed delta of the daily counts, added to the stored day of the writer's shard
    /// (the view `daily_kpi` sums the shards).
    KpiRow => "daily_kpi_shards" {
        day: NaiveDate = Key;
        shard: i32 = Key;
        fulfilled: i64 = Add;
        perfect: i64 = Add;
        deviation_quality: i64 = Add;
        deviation_completeness: i64 = Add;
        deviation_delivery: i64 = Add;
        deviation_service: i64 = Add;
        cancelled: i64 = Add;
        confirmed_late: i64 = Add;
        delivered_late: i64 = Add;
        delivered_short: i64 = Add;
        claimed: i64 = Add;
    }
    conflict: Merged, touch: true, returning: []
}

table! {
    /// A row of `claim_stages`: every claim.updated.
    ClaimStageRow<'a> => "claim_stages" {
        source: &'a str = Key;
        id: &'a str = Key;
        claim_id: &'a str = Replace;
        order_id: &'a str = Replace;
        stage: &'static str = Replace;
        note: Option<&'a str> = Replace;
        time: DateTime<Utc> = Replace;
        month: NaiveDate = Replace;
    }
    conflict: Ignore, touch: false, returning: []
}

table! {
    /// A row of `reviews`: the earliest review.posted and the earliest review.answered.
    ReviewRow<'a> => "reviews" {
        review_id: &'a str = Key;
        rating: Option<u8> = Merge::Slot(0);
        order_id: Option<&'a str> = Merge::Slot(0);
        customer_id: Option<&'a str> = Merge::Slot(0);
        courier_id: Option<&'a str> = Merge::Slot(0);
        text: Option<&'a str> = Merge::Slot(0);
        posted_at: Option<DateTime<Utc>> = Merge::Slot(0);
        posted_month: Option<NaiveDate> = Merge::Slot(0);
        posted_source: Option<&'a str> = Merge::Slot(0);
        posted_id: Option<&'a str> = Merge::Slot(0);
        answered_at: Option<DateTime<Utc>> = Merge::Slot(1);
        responder_id: Option<&'a str> = Merge::Slot(1);
        answered_source: Option<&'a str> = Merge::Slot(1);
        answered_id: Option<&'a str> = Merge::Slot(1);
    }
    conflict: Merged, touch: true, returning: [],
    slots: [
        Slot { earliest: EARLIEST, stamp: ["posted_at", "posted_source", "posted_id"] },
        Slot { earliest: EARLIEST, stamp: ["answered_at", "answered_source", "answered_id"] },
    ]
}

table! {
    /// A row of `courier_rosters`: every courier.rostered.
    RosterRow<'a> => "courier_rosters" {
        source: &'a str = Key;
        id: &'a str = Key;
        courier_id: &'a str = Replace;
        team_id: &'a str = Replace;
        captain: bool = Replace;
        time: DateTime<Utc> = Replace;
        month: NaiveDate = Replace;
    }
    conflict: Ignore, touch: false, returning: []
}

table! {
    /// A row of `courier_violations`: every courier.violation (a red smiley).
    ViolationRow<'a> => "courier_violations" {
        source: &'a str = Key;
        id: &'a str = Key;
        courier_id: &'a str = Replace;
        kind: &'a str = Replace;
        order_id: Option<&'a str> = Replace;
        time: DateTime<Utc> = Replace;
        month: NaiveDate = Replace;
    }
    conflict: Ignore, touch: false, returning: []
}

table! {
    /// A row of `couriers`: a courier's latest rostering (its current team).
    CourierRow<'a> => "couriers" {
        courier_id: &'a str = Key;
        team_id: &'a str = Merge::Slot(0);
        captain: bool = Merge::Slot(0);
        rostered_at: DateTime<Utc> = Merge::Slot(0);
        rostered_source: &'a str = Merge::Slot(0);
        rostered_id: &'a str = Merge::Slot(0);
    }
    conflict: Merged, touch: true, returning: [],
    slots: [Slot { earliest: LATEST, stamp: ["rostered_at", "rostered_source", "rostered_id"] }]
}

table! {
    /// A row of `spends`: the latest marketing.spend of a spend id.
    SpendRow<'a> => "spends" {
        spend_id: &'a str = Key;
        amount: &'a str = Merge::Slot(0), cast "numeric";
        currency: &'a str = Merge::Slot(0);
        from_day: NaiveDate = Merge::Slot(0);
        to_day: NaiveDate = Merge::Slot(0);
        channel: Option<&'a str> = Merge::Slot(0);
        time: DateTime<Utc> = Merge::Slot(0);
        event_source: &'a str = Merge::Slot(0);
        event_id: &'a str = Merge::Slot(0);
    }
    conflict: Merged, touch: true, returning: [],
    slots: [Slot { earliest: LATEST, stamp: ["time", "event_source", "event_id"] }]
}

table! {
    /// A row of `lead_events`: every lead.captured and lead.changed.
    LeadEventRow<'a> => "lead_events" {
        source: &'a str = Key;
        id: &'a str = Key;
        lead_id: &'a str = Replace;
        kind: &'static str = Replace;
        temperature: &'static str = Replace;
        time: DateTime<Utc> = Replace;
        month: NaiveDate = Replace;
    }
    conflict: Ignore, touch: false, returning: []
}

table! {
    /// A row of `leads`: a lead's capture and its latest temperature.
    LeadRow<'a> => "leads" {
        lead_id: &'a str = Key;
        source: Option<&'a str> = Merge::Slot(0);
        customer_id: Option<&'a str> = Merge::Slot(0);
        captured_at: Option<DateTime<Utc>> = Merge::Slot(0);
        captured_month: Option<NaiveDate> = Merge::Slot(0);
        captured_source: Option<&'a str> = Merge::Slot(0);
        captured_id: Option<&'a str> = Merge::Slot(0);
        temperature: &'static str = Merge::Slot(1);
        temperature_at: DateTime<Utc> = Merge::Slot(1);
        temperature_source: &'a str = Merge::Slot(1);
        temperature_id: &'a str = Merge::Slot(1);
    }
    conflict: Merged, touch: true, returning: [],
    slots: [
        Slot { earliest: EARLIEST, stamp: ["captured_at", "captured_source", "captured_id"] },
        Slot { earliest: LATEST, stamp: ["temperature_at", "temperature_source", "temperature_id"] },
    ]
}

table! {
    /// A signed delta of `lead_base_shards`: per month and writer shard, the leads captured,
    /// the change of the leads at month end per temperature, the leads converted and the
    /// lead events of the month ([`crate::domain::leads`]).
    LeadBaseRow => "lead_base_shards" {
        month: NaiveDate = Key;
        shard: i32 = Key;
        new_leads: i64 = Add;
        cold: i64 = Add;
        warm: i64 = Add;
        hot: i64 = Add;
        converted: i64 = Add;
        events: i64 = Add;
    }
    conflict: Merged, touch: false, returning: []
}

/// The tables a rebuild recomputes from the event store: the order tables, then the v2 ones.
pub(crate) const ORDER_TABLES: [&Table; 20] = [
    OrderRow::TABLE,
    RestatedRow::TABLE,
    ClaimRow::TABLE,
    ClaimJournalRow::TABLE,
    ClaimsJournalRow::TABLE,
    ClaimResolveRow::TABLE,
    ClaimResolveBucketRow::TABLE,
    KpiRow::TABLE,
    DispatchRow::TABLE,
    DispatchBucketRow::TABLE,
    ConfirmationRow::TABLE,
    ConfirmationMsBucketRow::TABLE,
    CustomerRow::TABLE,
    CustomerMonthRow::TABLE,
    CustomerKpiRow::TABLE,
    NewCustomerRow::TABLE,
    CustomerGapRow::TABLE,
    SaleRow::TABLE,
    ChannelSaleRow::TABLE,
    ChannelOrdersRow::TABLE,
];

/// The contract-v2 tables, in the order every batch writes them (one lock order for all).
pub(crate) const V2_TABLES: [&Table; 13] = [
    ClaimStageRow::TABLE,
    ReviewRow::TABLE,
    RosterRow::TABLE,
    ViolationRow::TABLE,
    CourierRow::TABLE,
    SpendRow::TABLE,
    LeadEventRow::TABLE,
    LeadRow::TABLE,
    SmileyTallyRow::TABLE,
    ReviewCountsRow::TABLE,
    ReviewAnswerRow::TABLE,
    ReviewAnswerBucketRow::TABLE,
    LeadBaseRow::TABLE,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A row source that names everything plainly, to read the rendered merge rules.
    struct Plain;

    impl RowSource for Plain {
        fn from(&self, table: &Table, first: usize) -> String {
            format!("FROM rows({}, {first})", table.name)
        }
        fn value(&self, table: &Table, i: usize) -> String {
            format!("x.{}", table.columns[i].name)
        }
        fn now(&self) -> &'static str {
            "now()"
        }
        fn greatest(&self) -> &'static str {
            "GREATEST"
        }
        fn parameters(&self, _: &Table) -> usize {
            1
        }
    }

    #[test]
    fn a_slot_takes_incoming_values_only_for_an_earlier_or_later_stamp_as_the_fold_keeps() {
        let sql = CourierRow::TABLE.insert_sql(&Plain, 1);
        assert!(sql.contains(
            "(excluded.\"rostered_at\", excluded.\"rostered_source\", excluded.\"rostered_id\") > \
             (couriers.\"rostered_at\", couriers.\"rostered_source\", couriers.\"rostered_id\")"
        ));
        let reviews = ReviewRow::TABLE.insert_sql(&Plain, 1);
        assert!(reviews.contains(") < (reviews.\"posted_at\""), "{reviews}");
        assert!(
            reviews.contains("ON CONFLICT (\"review_id\") DO UPDATE"),
            "{reviews}"
        );
    }

    #[test]
    fn history_rows_are_appended_once() {
        let sql = LeadEventRow::TABLE.insert_sql(&Plain, 1);
        assert!(
            sql.ends_with("ON CONFLICT (\"source\", \"id\") DO NOTHING"),
            "{sql}"
        );
        assert!(!sql.contains("updated_at"), "{sql}");
    }

    #[test]
    fn kpi_deltas_add_to_the_stored_day_and_offsets_never_move_back() {
        let kpi = KpiRow::TABLE.insert_sql(&Plain, 1);
        assert!(kpi.contains("\"perfect\" = daily_kpi_shards.\"perfect\" + excluded.\"perfect\""));
        let offsets = OffsetRow::TABLE.insert_sql(&Plain, 1);
        assert!(offsets.contains(
            "\"next_offset\" = GREATEST(consumer_offsets.\"next_offset\", excluded.\"next_offset\")"
        ));
    }

    #[test]
    fn a_lock_write_appends_the_added_order_days_and_returns_the_customer() {
        let sql = CustomerLockRow::TABLE.insert_sql(&Plain, 1);
        assert!(
            sql.contains(
                "DO UPDATE SET \"order_days\" = customers.\"order_days\" || excluded.\"order_days\", \"leads\" = customers.\"leads\" + excluded.\"leads\" RETURNING"
            ),
            "{sql}"
        );
        assert!(sql.ends_with("RETURNING \"customer_id\", \"first_at\", \"first_order_id\", \"first_month\", \"first_channel\", \"order_days\", \"leads\""), "{sql}");
    }

    #[test]
    fn an_order_row_is_replaced_and_its_version_bumped() {
        let sql = OrderRow::TABLE.insert_sql(&Plain, 1);
        assert!(
            sql.contains("\"version\" = orders.\"version\" + 1"),
            "{sql}"
        );
        assert!(sql.contains("\"verdict\" = excluded.\"verdict\""), "{sql}");
        assert!(
            sql.ends_with("RETURNING \"order_id\", \"version\""),
            "{sql}"
        );
    }

    #[test]
    fn a_column_is_gathered_in_row_order_with_its_type() {
        let rows = [
            DuplicateRow {
                topic: "t",
                partition: 1,
                offset: 7,
                source: "s",
                id: "a",
            },
            DuplicateRow {
                topic: "t",
                partition: 2,
                offset: 9,
                source: "s",
                id: "b",
            },
        ];
        let w = Write::of(&rows);
        assert_eq!(w.rows, 2);
        assert_eq!(w.columns.len(), DuplicateRow::TABLE.columns.len());
        assert_eq!(w.columns[2], Values::Int8(vec![Some(7), Some(9)]));
        assert_eq!(DuplicateRow::TABLE.columns[4].kind, Kind::Text);
    }
}
