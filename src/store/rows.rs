//! What both stores do the same way: screening a batch (fencing and in-batch duplicates),
//! turning a fold's outcome into table rows, and the report of a committed batch. Each store
//! only says how the rows reach its tables.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Serialize, Serializer};

use super::{BatchReport, Error};
use crate::batch::{Entry, PreparedBatch};
use crate::domain::{BatchOutcome, DayCounts, Event, EventKey, Rules};

/// The one text form of a timestamp in SQLite: fixed width, so text order is time order.
pub(crate) fn sqlite_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn ts<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&sqlite_time(t))
}

pub(crate) fn opt_ts<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ts(t, s),
        None => s.serialize_none(),
    }
}

fn opt_hex<S: Serializer>(b: &Option<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => {
            let mut out = String::with_capacity(b.len() * 2);
            for byte in *b {
                use std::fmt::Write;
                let _ = write!(out, "{byte:02x}");
            }
            s.serialize_str(&out)
        }
        None => s.serialize_none(),
    }
}

pub(crate) fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// Drops the records below the stored next offsets (fencing) and the second and later copies
/// of an event within the batch (added to `duplicates`), counting both in `report`.
pub(crate) fn screen<'b>(
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
pub(crate) fn fresh_events<'b>(
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
pub(crate) fn order_ids(events: &[Event]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .filter_map(|e| e.kind.order_id().map(|id| id.to_string()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Adds what the committed fold changed to the report (latencies, newly filed claims).
pub(crate) fn finish_report(report: &mut BatchReport, outcome: &BatchOutcome) {
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

/// A row of `events`.
#[derive(Serialize)]
pub(crate) struct EventRow<'a> {
    pub source: &'a str,
    pub id: &'a str,
    pub type_name: &'a str,
    #[serde(serialize_with = "ts")]
    pub time: DateTime<Utc>,
    pub order_id: Option<&'a str>,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub payload: &'a str,
}

pub(crate) fn event_rows<'a>(entries: &[&'a Entry]) -> Vec<EventRow<'a>> {
    entries
        .iter()
        .filter_map(|entry| {
            let (key, time, type_name, order_id, payload) = match entry {
                Entry::Known { event, payload, .. } => (
                    &event.key,
                    event.time,
                    event.kind.type_name(),
                    event.kind.order_id().map(|id| id.as_str()),
                    payload,
                ),
                Entry::Unknown {
                    key,
                    time,
                    type_name,
                    payload,
                    ..
                } => (key, *time, type_name.as_str(), None, payload),
                Entry::Rejected { .. } => return None,
            };
            Some(EventRow {
                source: key.source.as_str(),
                id: key.id.as_str(),
                type_name,
                time,
                order_id,
                topic: entry.at().topic.as_ref(),
                partition: entry.at().partition,
                offset: entry.at().offset,
                payload: payload.as_str(),
            })
        })
        .collect()
}

/// A row of `duplicate_events`: where a repeated event was read, and which event it repeats.
#[derive(Serialize)]
pub(crate) struct DuplicateRow<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub source: &'a str,
    pub id: &'a str,
}

pub(crate) fn duplicate_rows<'a>(entries: &[&'a Entry]) -> Vec<DuplicateRow<'a>> {
    entries
        .iter()
        .filter_map(|entry| {
            let (at, key) = match entry {
                Entry::Known { at, event, .. } => (at, &event.key),
                Entry::Unknown { at, key, .. } => (at, key),
                Entry::Rejected { .. } => return None,
            };
            Some(DuplicateRow {
                topic: at.topic.as_ref(),
                partition: at.partition,
                offset: at.offset,
                source: key.source.as_str(),
                id: key.id.as_str(),
            })
        })
        .collect()
}

/// A row of `rejected_events`.
#[derive(Serialize)]
pub(crate) struct RejectedRow<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub reason: &'static str,
    pub detail: String,
    #[serde(serialize_with = "opt_hex")]
    pub key: Option<&'a [u8]>,
    #[serde(serialize_with = "opt_hex")]
    pub raw: Option<&'a [u8]>,
}

pub(crate) fn rejected_rows<'a>(entries: &[&'a Entry]) -> Vec<RejectedRow<'a>> {
    entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Rejected {
                at,
                rejection,
                key,
                raw,
            } => Some(RejectedRow {
                topic: at.topic.as_ref(),
                partition: at.partition,
                offset: at.offset,
                reason: rejection.reason.as_str(),
                // Text cannot hold NUL in PostgreSQL; the detail is for humans, so replace it.
                detail: rejection.detail.replace('\0', "\u{fffd}"),
                key: key.as_deref(),
                raw: raw.as_deref(),
            }),
            _ => None,
        })
        .collect()
}

/// A row of `orders`.
#[derive(Serialize)]
pub(crate) struct OrderRow {
    pub order_id: String,
    pub customer_id: Option<String>,
    pub verdict: &'static str,
    #[serde(serialize_with = "opt_ts")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_ts")]
    pub confirmed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_ts")]
    pub shipped_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_ts")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_ts")]
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_ts")]
    pub promised_to: Option<DateTime<Utc>>,
    pub courier_id: Option<String>,
    pub confirmation_channel: Option<&'static str>,
    pub created_day: Option<NaiveDate>,
    pub delivered_day: Option<NaiveDate>,
    pub confirmation_seconds: Option<f64>,
    pub confirmed_to_shipped_seconds: Option<f64>,
    pub delivery_lateness_seconds: Option<f64>,
    pub items_ordered: Option<i64>,
    pub items_delivered: Option<i64>,
    pub deviation_quality: bool,
    pub deviation_completeness: bool,
    pub deviation_delivery: bool,
    pub deviation_service: bool,
    #[serde(serialize_with = "opt_ts")]
    pub final_at: Option<DateTime<Utc>>,
    /// The projection as JSON: what the fold resumes from.
    pub state: String,
    pub sales_channel: Option<String>,
    /// `total` of order.created, a decimal string.
    pub total: Option<String>,
    pub shipped_day: Option<NaiveDate>,
}

pub(crate) fn order_rows(outcome: &BatchOutcome, rules: &Rules) -> Result<Vec<OrderRow>, Error> {
    outcome
        .changed
        .iter()
        .map(|c| {
            let p = &c.projection;
            let a = &c.assessment;
            Ok(OrderRow {
                order_id: p.order_id.clone(),
                customer_id: p.created.as_ref().map(|f| f.data.customer_id.to_string()),
                verdict: a.verdict.as_str(),
                created_at: p.created.as_ref().map(|f| f.at),
                confirmed_at: p.confirmed.as_ref().map(|f| f.at),
                shipped_at: p.shipped.as_ref().map(|f| f.at),
                delivered_at: p.delivered.as_ref().map(|f| f.at),
                cancelled_at: p.cancelled.as_ref().map(|f| f.at),
                promised_to: p
                    .created
                    .as_ref()
                    .and_then(|f| f.data.promised_delivery.as_ref())
                    .map(|w| w.to.with_timezone(&Utc)),
                courier_id: p
                    .delivered
                    .as_ref()
                    .and_then(|f| f.data.courier_id.as_ref())
                    .or_else(|| p.shipped.as_ref().and_then(|f| f.data.courier_id.as_ref()))
                    .map(|c| c.to_string()),
                confirmation_channel: p
                    .confirmed
                    .as_ref()
                    .and_then(|f| f.data.channel)
                    .map(|c| c.as_str()),
                created_day: a.created_day,
                delivered_day: a.delivered_day,
                confirmation_seconds: a.confirmation_latency.map(seconds),
                confirmed_to_shipped_seconds: a.confirmed_to_shipped.map(seconds),
                delivery_lateness_seconds: a.delivery_lateness.map(seconds),
                items_ordered: a.items_ordered.map(|v| v as i64),
                items_delivered: a.items_delivered.map(|v| v as i64),
                deviation_quality: a.deviations.quality,
                deviation_completeness: a.deviations.completeness,
                deviation_delivery: a.deviations.delivery,
                deviation_service: a.deviations.service,
                final_at: a.final_at,
                state: serde_json::to_string(p).map_err(|source| Error::CorruptState {
                    order_id: p.order_id.clone(),
                    source,
                })?,
                sales_channel: p
                    .created
                    .as_ref()
                    .and_then(|f| f.data.sales_channel.clone()),
                total: p
                    .created
                    .as_ref()
                    .and_then(|f| f.data.total.as_ref())
                    .map(|t| t.as_str().to_owned()),
                shipped_day: p.shipped.as_ref().map(|f| rules.day_of(f.at)),
            })
        })
        .collect()
}

/// A row of `claims`.
#[derive(Serialize)]
pub(crate) struct ClaimRow {
    pub claim_id: String,
    pub order_id: String,
    pub category: Option<&'static str>,
    pub description: Option<String>,
    #[serde(serialize_with = "opt_ts")]
    pub filed_at: Option<DateTime<Utc>>,
    pub filed_day: Option<NaiveDate>,
    #[serde(serialize_with = "opt_ts")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub counts_for_verdict: bool,
    pub resolved_day: Option<NaiveDate>,
    pub improvement: Option<String>,
}

pub(crate) fn claim_rows(outcome: &BatchOutcome, rules: &Rules) -> Vec<ClaimRow> {
    let mut rows = Vec::new();
    for c in &outcome.changed {
        let delivered_at = c.projection.delivered.as_ref().map(|d| d.at);
        for (claim_id, facts) in c.claims_to_write() {
            let filed = facts.filed.as_ref();
            let resolved = facts.resolved.as_ref();
            rows.push(ClaimRow {
                claim_id: claim_id.clone(),
                order_id: c.projection.order_id.clone(),
                category: filed.map(|f| f.data.category.as_str()),
                description: filed.and_then(|f| f.data.description.clone()),
                filed_at: filed.map(|f| f.at),
                filed_day: filed.map(|f| rules.day_of(f.at)),
                resolved_at: resolved.map(|f| f.at),
                resolution: resolved.and_then(|f| f.data.resolution.clone()),
                counts_for_verdict: match (delivered_at, filed) {
                    (Some(d), Some(f)) => f.at <= d + rules.claim_window,
                    _ => false,
                },
                resolved_day: resolved.map(|f| rules.day_of(f.at)),
                improvement: resolved.and_then(|f| f.data.improvement.clone()),
            });
        }
    }
    rows
}

/// A signed delta of `daily_kpi`.
#[derive(Serialize)]
pub(crate) struct KpiRow {
    pub day: NaiveDate,
    pub fulfilled: i64,
    pub perfect: i64,
    pub deviation_quality: i64,
    pub deviation_completeness: i64,
    pub deviation_delivery: i64,
    pub deviation_service: i64,
    pub cancelled: i64,
}

pub(crate) fn kpi_rows(outcome: &BatchOutcome) -> Vec<KpiRow> {
    outcome
        .kpi
        .rows()
        .map(|(day, c): (NaiveDate, DayCounts)| KpiRow {
            day,
            fulfilled: c.fulfilled,
            perfect: c.perfect,
            deviation_quality: c.quality,
            deviation_completeness: c.completeness,
            deviation_delivery: c.delivery,
            deviation_service: c.service,
            cancelled: c.cancelled,
        })
        .collect()
}

/// Regroups the event store, read ordered by order, into chunks of whole orders for a
/// rebuild: the events of the last order of a chunk wait for the next one. Stored events are
/// decoded within the decoder's bounds in force, so a rebuild folds what ingest would take
/// today (an event an older version stored, such as one dated year 1, is skipped and counted).
pub(crate) struct Regroup {
    limits: crate::domain::Limits,
    carry: Vec<Event>,
    carry_order: Option<String>,
    pub report: super::RebuildReport,
}

impl Regroup {
    pub fn new(limits: crate::domain::Limits) -> Regroup {
        Regroup {
            limits,
            carry: Vec::new(),
            carry_order: None,
            report: super::RebuildReport::default(),
        }
    }

    /// Takes one stored event; events of finished orders move to `ready`.
    pub fn push(&mut self, order_id: String, payload: &str, ready: &mut Vec<Event>) {
        self.report.events += 1;
        if self.carry_order.as_deref() != Some(order_id.as_str()) {
            if self.carry_order.is_some() {
                self.report.orders += 1;
            }
            ready.append(&mut self.carry);
            self.carry_order = Some(order_id);
        }
        match crate::domain::decode_within(payload.as_bytes(), &self.limits) {
            Ok(crate::domain::Decoded::Known(event)) => self.carry.push(event),
            _ => self.report.undecodable += 1,
        }
    }

    /// Decodes a stored event of a v2 type for the rebuild's entity pass.
    pub fn decode_v2(&mut self, payload: &str) -> Option<Event> {
        self.report.v2_events += 1;
        match crate::domain::decode_within(payload.as_bytes(), &self.limits) {
            Ok(crate::domain::Decoded::Known(event)) if event.kind.order_id().is_none() => {
                Some(event)
            }
            _ => {
                self.report.undecodable += 1;
                None
            }
        }
    }

    /// The end of the event store: the last order is complete.
    pub fn finish(&mut self, ready: &mut Vec<Event>) {
        if self.carry_order.take().is_some() {
            self.report.orders += 1;
        }
        ready.append(&mut self.carry);
    }
}
