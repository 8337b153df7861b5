//! Writing the contract-v2 entities, the same way on both stores.
//!
//! A batch's events are folded into an [`EntityBatch`] (pure), which becomes rows: history
//! rows (claim stages, rosterings, violations, lead events) are appended once per event;
//! entity rows (reviews, couriers, spends, leads) are merged into the stored row *in SQL* with
//! the fold's own rules: a slot takes the incoming values when its `(time, source, id)` stamp
//! is earlier (or later) than the stored one. Two instances, or two commit lanes, writing the
//! same review from different partitions therefore meet in the row lock and the result is the
//! fold of the union, whatever the order of the transactions.
//!
//! Each table's rows travel as one JSON array parameter, so one SQL text per table serves both
//! stores but for how the array is opened (`jsonb_populate_recordset` / `json_each`). On
//! PostgreSQL the eight writes go as one statement (a data-modifying CTE each); SQLite runs
//! the tables that have rows one after the other.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::rows::{opt_ts, ts};
use super::Error;
use crate::domain::entities::{whole_seconds, EntityBatch};
use crate::domain::Rules;

/// Which store the SQL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

/// A slot of an entity row: columns that come from one fact, kept by its stamp.
struct Slot {
    /// Keep the earliest stamp (else the latest).
    earliest: bool,
    /// `(time, source, id)` columns of the stamp.
    stamp: [&'static str; 3],
    /// The other columns the fact fills.
    cols: &'static [&'static str],
}

/// A table written from the v2 fold.
struct Table {
    name: &'static str,
    key: &'static str,
    cols: &'static [&'static str],
    /// Empty: an append-only history (`ON CONFLICT DO NOTHING`).
    slots: &'static [Slot],
}

const CLAIM_STAGES: Table = Table {
    name: "claim_stages",
    key: "source, id",
    cols: &[
        "source", "id", "claim_id", "order_id", "stage", "note", "time", "month",
    ],
    slots: &[],
};
const COURIER_ROSTERS: Table = Table {
    name: "courier_rosters",
    key: "source, id",
    cols: &[
        "source",
        "id",
        "courier_id",
        "team_id",
        "captain",
        "time",
        "month",
    ],
    slots: &[],
};
const COURIER_VIOLATIONS: Table = Table {
    name: "courier_violations",
    key: "source, id",
    cols: &[
        "source",
        "id",
        "courier_id",
        "kind",
        "order_id",
        "time",
        "month",
    ],
    slots: &[],
};
const LEAD_EVENTS: Table = Table {
    name: "lead_events",
    key: "source, id",
    cols: &[
        "source",
        "id",
        "lead_id",
        "kind",
        "temperature",
        "time",
        "month",
    ],
    slots: &[],
};
const REVIEWS: Table = Table {
    name: "reviews",
    key: "review_id",
    cols: &[
        "review_id",
        "rating",
        "order_id",
        "customer_id",
        "courier_id",
        "text",
        "posted_at",
        "posted_month",
        "posted_source",
        "posted_id",
        "answered_at",
        "responder_id",
        "answered_source",
        "answered_id",
    ],
    slots: &[
        Slot {
            earliest: true,
            stamp: ["posted_at", "posted_source", "posted_id"],
            cols: &[
                "rating",
                "order_id",
                "customer_id",
                "courier_id",
                "text",
                "posted_month",
            ],
        },
        Slot {
            earliest: true,
            stamp: ["answered_at", "answered_source", "answered_id"],
            cols: &["responder_id"],
        },
    ],
};
const COURIERS: Table = Table {
    name: "couriers",
    key: "courier_id",
    cols: &[
        "courier_id",
        "team_id",
        "captain",
        "rostered_at",
        "rostered_source",
        "rostered_id",
    ],
    slots: &[Slot {
        earliest: false,
        stamp: ["rostered_at", "rostered_source", "rostered_id"],
        cols: &["team_id", "captain"],
    }],
};
const SPENDS: Table = Table {
    name: "spends",
    key: "spend_id",
    cols: &[
        "spend_id",
        "amount",
        "currency",
        "from_day",
        "to_day",
        "channel",
        "time",
        "event_source",
        "event_id",
    ],
    slots: &[Slot {
        earliest: false,
        stamp: ["time", "event_source", "event_id"],
        cols: &["amount", "currency", "from_day", "to_day", "channel"],
    }],
};
const LEADS: Table = Table {
    name: "leads",
    key: "lead_id",
    cols: &[
        "lead_id",
        "source",
        "customer_id",
        "captured_at",
        "captured_month",
        "captured_source",
        "captured_id",
        "temperature",
        "temperature_at",
        "temperature_source",
        "temperature_id",
    ],
    slots: &[
        Slot {
            earliest: true,
            stamp: ["captured_at", "captured_source", "captured_id"],
            cols: &["source", "customer_id", "captured_month"],
        },
        Slot {
            earliest: false,
            stamp: ["temperature_at", "temperature_source", "temperature_id"],
            cols: &["temperature"],
        },
    ],
};

/// The tables the v2 fold writes, emptied by a rebuild.
pub(crate) const TABLES: [&str; 8] = [
    "claim_stages",
    "courier_rosters",
    "courier_violations",
    "lead_events",
    "reviews",
    "couriers",
    "spends",
    "leads",
];

/// The statement that writes `table`'s rows, given as the JSON array parameter `param`.
fn insert_sql(dialect: Dialect, table: &Table, param: usize) -> String {
    let quoted: Vec<String> = table.cols.iter().map(|c| format!("\"{c}\"")).collect();
    let (source, updated) = match dialect {
        Dialect::Postgres => (
            format!(
                "SELECT {} FROM jsonb_populate_recordset(NULL::{}, ${param}::jsonb)",
                quoted.join(", "),
                table.name
            ),
            "now()",
        ),
        Dialect::Sqlite => {
            let values: Vec<String> = table
                .cols
                .iter()
                .map(|c| format!("value ->> '{c}'"))
                .collect();
            (
                format!(
                    "SELECT {}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM json_each(?{param}) WHERE true",
                    values.join(", ")
                ),
                "excluded.updated_at",
            )
        }
    };
    let mut cols = quoted.join(", ");
    if dialect == Dialect::Sqlite && !table.slots.is_empty() {
        cols.push_str(", updated_at");
    }
    let source = if dialect == Dialect::Sqlite && table.slots.is_empty() {
        // History tables have no updated_at.
        source.replace(", strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM", " FROM")
    } else {
        source
    };
    let conflict = if table.slots.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        let t = table.name;
        let mut sets: Vec<String> = Vec::new();
        for slot in table.slots {
            let [at, src, id] = slot.stamp;
            let op = if slot.earliest { "<" } else { ">" };
            let wins = format!(
                "(excluded.\"{at}\" IS NOT NULL AND ({t}.\"{at}\" IS NULL OR \
                 (excluded.\"{at}\", excluded.\"{src}\", excluded.\"{id}\") {op} \
                 ({t}.\"{at}\", {t}.\"{src}\", {t}.\"{id}\")))"
            );
            for c in slot.stamp.iter().chain(slot.cols) {
                sets.push(format!(
                    "\"{c}\" = CASE WHEN {wins} THEN excluded.\"{c}\" ELSE {t}.\"{c}\" END"
                ));
            }
        }
        sets.push(format!("updated_at = {updated}"));
        format!("DO UPDATE SET {}", sets.join(", "))
    };
    format!(
        "INSERT INTO {} ({cols}) {source} ON CONFLICT ({}) {conflict}",
        table.name, table.key
    )
}

#[derive(Serialize)]
struct ClaimStageRow<'a> {
    source: &'a str,
    id: &'a str,
    claim_id: &'a str,
    order_id: &'a str,
    stage: &'static str,
    note: Option<&'a str>,
    #[serde(serialize_with = "ts")]
    time: DateTime<Utc>,
    month: NaiveDate,
}

#[derive(Serialize)]
struct RosterRow<'a> {
    source: &'a str,
    id: &'a str,
    courier_id: &'a str,
    team_id: &'a str,
    captain: bool,
    #[serde(serialize_with = "ts")]
    time: DateTime<Utc>,
    month: NaiveDate,
}

#[derive(Serialize)]
struct ViolationRow<'a> {
    source: &'a str,
    id: &'a str,
    courier_id: &'a str,
    kind: &'a str,
    order_id: Option<&'a str>,
    #[serde(serialize_with = "ts")]
    time: DateTime<Utc>,
    month: NaiveDate,
}

#[derive(Serialize)]
struct LeadEventRow<'a> {
    source: &'a str,
    id: &'a str,
    lead_id: &'a str,
    kind: &'static str,
    temperature: &'static str,
    #[serde(serialize_with = "ts")]
    time: DateTime<Utc>,
    month: NaiveDate,
}

#[derive(Serialize)]
struct ReviewRow<'a> {
    review_id: &'a str,
    rating: Option<u8>,
    order_id: Option<&'a str>,
    customer_id: Option<&'a str>,
    courier_id: Option<&'a str>,
    text: Option<&'a str>,
    #[serde(serialize_with = "opt_ts")]
    posted_at: Option<DateTime<Utc>>,
    posted_month: Option<NaiveDate>,
    posted_source: Option<&'a str>,
    posted_id: Option<&'a str>,
    #[serde(serialize_with = "opt_ts")]
    answered_at: Option<DateTime<Utc>>,
    responder_id: Option<&'a str>,
    answered_source: Option<&'a str>,
    answered_id: Option<&'a str>,
}

#[derive(Serialize)]
struct CourierRow<'a> {
    courier_id: &'a str,
    team_id: &'a str,
    captain: bool,
    #[serde(serialize_with = "ts")]
    rostered_at: DateTime<Utc>,
    rostered_source: &'a str,
    rostered_id: &'a str,
}

#[derive(Serialize)]
struct SpendRow<'a> {
    spend_id: &'a str,
    amount: &'a str,
    currency: &'a str,
    from_day: NaiveDate,
    to_day: NaiveDate,
    channel: Option<&'a str>,
    #[serde(serialize_with = "ts")]
    time: DateTime<Utc>,
    event_source: &'a str,
    event_id: &'a str,
}

#[derive(Serialize)]
struct LeadRow<'a> {
    lead_id: &'a str,
    source: Option<&'a str>,
    customer_id: Option<&'a str>,
    #[serde(serialize_with = "opt_ts")]
    captured_at: Option<DateTime<Utc>>,
    captured_month: Option<NaiveDate>,
    captured_source: Option<&'a str>,
    captured_id: Option<&'a str>,
    temperature: &'static str,
    #[serde(serialize_with = "ts")]
    temperature_at: DateTime<Utc>,
    temperature_source: &'a str,
    temperature_id: &'a str,
}

/// The tables in the order every batch writes them (one lock order for all transactions).
const WRITE_ORDER: [&Table; 8] = [
    &CLAIM_STAGES,
    &REVIEWS,
    &COURIER_ROSTERS,
    &COURIER_VIOLATIONS,
    &COURIERS,
    &SPENDS,
    &LEAD_EVENTS,
    &LEADS,
];

/// One table's rows of a batch, as a JSON array (`None`: no rows).
pub(crate) struct Write {
    table: &'static Table,
    pub rows: Option<String>,
    pub what: &'static str,
}

impl Write {
    /// SQLite's statement for these rows (parameter 1).
    pub(crate) fn sqlite_sql(&self) -> String {
        insert_sql(Dialect::Sqlite, self.table, 1)
    }
}

/// PostgreSQL's one statement for a whole batch: every table's write as a data-modifying CTE,
/// parameter `i` holding the rows of the `i`-th table of [`WRITE_ORDER`] (`[]` for none). One
/// round trip instead of eight.
pub(crate) fn postgres_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let parts: Vec<String> = WRITE_ORDER
            .iter()
            .enumerate()
            .map(|(i, t)| format!("w{i} AS ({})", insert_sql(Dialect::Postgres, t, i + 1)))
            .collect();
        format!("WITH {} SELECT 1", parts.join(",\n"))
    })
}

fn write<T: Serialize>(
    table: &'static Table,
    rows: &[T],
    what: &'static str,
    out: &mut Vec<Write>,
) -> Result<(), Error> {
    let rows = if rows.is_empty() {
        None
    } else {
        Some(serde_json::to_string(rows).map_err(|source| Error::Encode {
            table: table.name,
            source,
        })?)
    };
    debug_assert_eq!(
        WRITE_ORDER[out.len()].name,
        table.name,
        "written out of WRITE_ORDER"
    );
    out.push(Write { table, rows, what });
    Ok(())
}

/// The rows that merge `batch` into the v2 tables, one [`Write`] per table in
/// [`WRITE_ORDER`].
pub(crate) fn writes(batch: &EntityBatch, rules: &Rules) -> Result<Vec<Write>, Error> {
    let month = |t: DateTime<Utc>| rules.month_of(t);
    let mut out = Vec::new();

    let stages: Vec<ClaimStageRow> = batch
        .claims
        .values()
        .flat_map(|c| c.stages.iter())
        .map(|((at, key), d)| ClaimStageRow {
            source: &key.source,
            id: &key.id,
            claim_id: d.claim_id.as_str(),
            order_id: d.order_id.as_str(),
            stage: d.stage.as_str(),
            note: d.note.as_deref(),
            time: *at,
            month: month(*at),
        })
        .collect();
    write(&CLAIM_STAGES, &stages, "insert into claim_stages", &mut out)?;

    let reviews: Vec<ReviewRow> = batch
        .reviews
        .iter()
        .map(|(id, r)| {
            let p = r.posted.as_ref();
            let a = r.answered.as_ref();
            ReviewRow {
                review_id: id,
                rating: p.map(|p| p.data.rating.get()),
                order_id: p.and_then(|p| p.data.order_id.as_ref()).map(|v| v.as_str()),
                customer_id: p
                    .and_then(|p| p.data.customer_id.as_ref())
                    .map(|v| v.as_str()),
                courier_id: p
                    .and_then(|p| p.data.courier_id.as_ref())
                    .map(|v| v.as_str()),
                text: p.and_then(|p| p.data.text.as_deref()),
                posted_at: p.map(|p| p.at),
                posted_month: p.map(|p| month(p.at)),
                posted_source: p.map(|p| p.key.source.as_str()),
                posted_id: p.map(|p| p.key.id.as_str()),
                answered_at: a.map(|a| a.at),
                responder_id: a
                    .and_then(|a| a.data.responder_id.as_ref())
                    .map(|v| v.as_str()),
                answered_source: a.map(|a| a.key.source.as_str()),
                answered_id: a.map(|a| a.key.id.as_str()),
            }
        })
        .collect();
    write(&REVIEWS, &reviews, "merge into reviews", &mut out)?;

    let mut rosters = Vec::new();
    let mut violations = Vec::new();
    let mut couriers = Vec::new();
    for (courier_id, c) in &batch.couriers {
        for ((at, key), d) in &c.rosters {
            rosters.push(RosterRow {
                source: &key.source,
                id: &key.id,
                courier_id,
                team_id: d.team_id.as_str(),
                captain: d.captain,
                time: *at,
                month: month(*at),
            });
        }
        for ((at, key), d) in &c.violations {
            violations.push(ViolationRow {
                source: &key.source,
                id: &key.id,
                courier_id,
                kind: d.kind.as_str(),
                order_id: d.order_id.as_ref().map(|v| v.as_str()),
                time: *at,
                month: month(*at),
            });
        }
        if let Some((at, key, d)) = c.current() {
            couriers.push(CourierRow {
                courier_id,
                team_id: d.team_id.as_str(),
                captain: d.captain,
                rostered_at: *at,
                rostered_source: &key.source,
                rostered_id: &key.id,
            });
        }
    }
    write(
        &COURIER_ROSTERS,
        &rosters,
        "insert into courier_rosters",
        &mut out,
    )?;
    write(
        &COURIER_VIOLATIONS,
        &violations,
        "insert into courier_violations",
        &mut out,
    )?;
    write(&COURIERS, &couriers, "merge into couriers", &mut out)?;

    let spends: Vec<SpendRow> = batch
        .spends
        .iter()
        .filter_map(|(id, s)| {
            let f = s.latest.as_ref()?;
            Some(SpendRow {
                spend_id: id,
                amount: f.data.amount.as_str(),
                currency: &f.data.currency,
                from_day: f.data.from,
                to_day: f.data.to,
                channel: f.data.channel.as_deref(),
                time: f.at,
                event_source: &f.key.source,
                event_id: &f.key.id,
            })
        })
        .collect();
    write(&SPENDS, &spends, "merge into spends", &mut out)?;

    let mut lead_events = Vec::new();
    let mut leads = Vec::new();
    for (lead_id, l) in &batch.leads {
        let captured = l.captured.as_ref();
        if let Some(c) = captured {
            lead_events.push(LeadEventRow {
                source: &c.key.source,
                id: &c.key.id,
                lead_id,
                kind: "captured",
                temperature: c.data.temperature.as_str(),
                time: c.at,
                month: month(c.at),
            });
        }
        for ((at, key), d) in &l.changes {
            lead_events.push(LeadEventRow {
                source: &key.source,
                id: &key.id,
                lead_id,
                kind: "changed",
                temperature: d.temperature.as_str(),
                time: *at,
                month: month(*at),
            });
        }
        // The latest event of the batch carries the temperature.
        let Some((temperature_at, temperature_key, temperature)) = l.latest_before(None) else {
            continue;
        };
        leads.push(LeadRow {
            lead_id,
            source: captured.and_then(|c| c.data.source.as_deref()),
            customer_id: captured
                .and_then(|c| c.data.customer_id.as_ref())
                .map(|v| v.as_str()),
            captured_at: captured.map(|c| c.at),
            captured_month: captured.map(|c| month(c.at)),
            captured_source: captured.map(|c| c.key.source.as_str()),
            captured_id: captured.map(|c| c.key.id.as_str()),
            temperature: temperature.as_str(),
            temperature_at,
            temperature_source: &temperature_key.source,
            temperature_id: &temperature_key.id,
        });
    }
    write(
        &LEAD_EVENTS,
        &lead_events,
        "insert into lead_events",
        &mut out,
    )?;
    write(&LEADS, &leads, "merge into leads", &mut out)?;
    Ok(out)
}

/// What the stored review rows held before the batch: `review_id -> (posted_at, answered_at)`.
pub(crate) type StoredReviews = HashMap<String, (Option<DateTime<Utc>>, Option<DateTime<Utc>>)>;

/// Answer times (seconds) that became known with this batch: reviews whose posting and
/// answer are both known now and were not both known before.
pub(crate) fn new_answer_seconds(batch: &EntityBatch, stored: &StoredReviews) -> Vec<f64> {
    let earliest = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    batch
        .reviews
        .iter()
        .filter_map(|(id, r)| {
            let (old_posted, old_answered) = stored.get(id).copied().unwrap_or((None, None));
            if old_posted.is_some() && old_answered.is_some() {
                return None;
            }
            let posted = earliest(old_posted, r.posted.as_ref().map(|p| p.at))?;
            let answered = earliest(old_answered, r.answered.as_ref().map(|a| a.at))?;
            Some(whole_seconds(posted, answered) as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_takes_incoming_values_only_for_an_earlier_or_later_stamp_as_the_fold_keeps() {
        let sql = insert_sql(Dialect::Postgres, &COURIERS, 1);
        assert!(sql.contains("jsonb_populate_recordset(NULL::couriers, $1::jsonb)"));
        assert!(sql.contains(
            "(excluded.\"rostered_at\", excluded.\"rostered_source\", excluded.\"rostered_id\") > \
             (couriers.\"rostered_at\", couriers.\"rostered_source\", couriers.\"rostered_id\")"
        ));
        let sqlite = insert_sql(Dialect::Sqlite, &REVIEWS, 1);
        assert!(sqlite.contains("FROM json_each(?1) WHERE true ON CONFLICT (review_id)"));
        assert!(sqlite.contains(") < (reviews.\"posted_at\""));
    }

    #[test]
    fn postgres_writes_every_table_in_one_statement_with_a_parameter_each() {
        let sql = postgres_sql();
        for (i, t) in WRITE_ORDER.iter().enumerate() {
            assert!(
                sql.contains(&format!("NULL::{}, ${}::jsonb", t.name, i + 1)),
                "{sql}"
            );
        }
        assert!(sql.starts_with("WITH w0 AS (INSERT INTO claim_stages"));
    }

    #[test]
    fn history_rows_are_appended_once() {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let sql = insert_sql(dialect, &LEAD_EVENTS, 1);
            assert!(
                sql.ends_with("ON CONFLICT (source, id) DO NOTHING"),
                "{sql}"
            );
            assert!(!sql.contains("updated_at"), "{sql}");
        }
    }
}
