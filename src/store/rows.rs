//! The rows a batch writes, built from what the batch decoded and what the fold decided.
//! Pure: no database here, only the step from domain values to the rows of
//! [`super::tables`].

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::tables::{
    ChannelOrdersRow, ChannelSaleRow, ClaimJournalRow, ClaimLockRow, ClaimResolveBucketRow,
    ClaimResolveRow, ClaimRow, ClaimStageRow, ClaimsJournalRow, ConfirmationMsBucketRow,
    ConfirmationRow, CourierRow, CustomerGapRow, CustomerKpiRow, CustomerLockRow, CustomerMonthRow,
    CustomerRow, DispatchBucketRow, DispatchRow, DuplicateRow, EventRow, KpiRow, LeadBaseRow,
    LeadEventRow, LeadRow, NewCustomerRow, OffsetRow, OrderRow, RejectedRow, RestatedRow,
    ReviewAnswerBucketRow, ReviewAnswerRow, ReviewCountsRow, ReviewRow, RosterRow, SaleRow,
    SmileyTallyRow, SpendRow, ViolationRow, Write,
};
use super::Error;
use crate::batch::{Entry, PreparedBatch};
use crate::domain::contest::{Colour, Posting, Rostering, Smiley, TallyDelta};
use crate::domain::event::{ClaimStage, Temperature};
use crate::domain::fact::whole_seconds;
use crate::domain::leads::{Capture, LeadDelta, LeadMark, LeadTrail};
use crate::domain::response::{ResponseDelta, ReviewChange, ReviewMark};
use crate::domain::EntityBatch;
use crate::domain::{
    BatchOutcome, Category, CustomerChange, CustomerOrder, CustomerOrders, DayCounts, EventKey,
    JournalClaim, JournalDelta, Rules, StageMark,
};
use std::collections::BTreeMap;

/// Seconds of a duration, with millisecond precision (the unit of the latency columns).
pub(crate) fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// The event-store rows of the entries that decoded (known and unknown types).
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

/// Where each repeated event was read, and which event it repeats.
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

/// The records that could not be read, with their reasons and raw bytes.
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

/// The next offsets of a batch, one row per partition.
pub(crate) fn offset_rows(batch: &PreparedBatch) -> Vec<OffsetRow<'_>> {
    batch
        .next_offsets
        .iter()
        .map(|((topic, partition), next)| OffsetRow {
            topic: topic.as_ref(),
            partition: *partition,
            next_offset: *next,
        })
        .collect()
}

/// The changed orders of a fold; a new row starts at `first_version`.
pub(crate) fn order_rows(
    outcome: &BatchOutcome,
    rules: &Rules,
    first_version: i64,
) -> Result<Vec<OrderRow>, Error> {
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
                state: serde_json::to_string(p).map_err(|source| Error::EncodeState {
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
                version: first_version,
            })
        })
        .collect()
}

/// The restatements of the fold's changed orders ([`crate::domain::restatement`]), and the
/// orders whose stored restatements the batch forgets first: those delivered before it (an
/// order delivered in this batch had none).
pub(crate) fn restated_rows<'o>(
    outcome: &'o BatchOutcome,
    rules: &Rules,
) -> (Vec<&'o str>, Vec<RestatedRow>) {
    let forget = outcome
        .changed
        .iter()
        .filter(|c| c.previous.as_ref().is_some_and(|a| a.final_at.is_some()))
        .map(|c| c.projection.order_id.as_str())
        .collect();
    let rows = outcome
        .changed
        .iter()
        .flat_map(|c| order_restatements(&c.projection, rules))
        .collect();
    (forget, rows)
}

/// One order's restatement rows.
pub(crate) fn order_restatements(
    order: &crate::domain::OrderProjection,
    rules: &Rules,
) -> Vec<RestatedRow> {
    crate::domain::restatement::restatements(order, rules)
        .into_iter()
        .map(|r| RestatedRow {
            order_id: order.order_id.clone(),
            period_kind: r.period_kind.as_str(),
            period: r.period,
            first_verdict: r.first.as_str(),
            now_verdict: r.now.as_str(),
            cause_type: r.cause.event_type,
            cause_time: r.cause.time,
            cause_day: rules.day_of(r.cause.time),
            cause_source: r.cause.source,
            cause_id: r.cause.id,
        })
        .collect()
}

/// The claims whose rows the fold changed, with whether each counts for the verdict.
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
                counts_for_verdict: filed
                    .is_some_and(|f| rules.claim_counts_for_verdict(delivered_at, f.at)),
                resolved_day: resolved.map(|f| rules.day_of(f.at)),
                improvement: resolved.and_then(|f| f.data.improvement.clone()),
            });
        }
    }
    rows
}

/// An order's projection from its stored `orders.state` (as the rows above encode it).
pub(crate) fn decode_state(
    order_id: &str,
    state: &str,
) -> Result<crate::domain::OrderProjection, Error> {
    serde_json::from_str(state).map_err(|source| Error::CorruptState {
        order_id: order_id.to_owned(),
        source,
    })
}

/// The fold's signed deltas of the daily counts under `shard`, one row per touched day.
pub(crate) fn kpi_rows(outcome: &BatchOutcome, shard: i32) -> Vec<KpiRow> {
    outcome
        .kpi
        .rows()
        .map(|(day, c): (NaiveDate, DayCounts)| KpiRow {
            day,
            shard,
            fulfilled: c.fulfilled,
            perfect: c.perfect,
            deviation_quality: c.quality,
            deviation_completeness: c.completeness,
            deviation_delivery: c.delivery,
            deviation_service: c.service,
            cancelled: c.cancelled,
            confirmed_late: c.confirmed_late,
            delivered_late: c.delivered_late,
            delivered_short: c.delivered_short,
            claimed: c.claimed,
        })
        .collect()
}

/// The maintained distributions' rows of a batch under `shard` (see
/// `commit::writer_shard`), each in key order (one lock order for every writer).
pub(crate) struct FigureRows {
    pub dispatch: Vec<DispatchRow>,
    pub dispatch_buckets: Vec<DispatchBucketRow>,
    pub confirmation: Vec<ConfirmationRow>,
    pub confirmation_buckets: Vec<ConfirmationMsBucketRow>,
}

impl FigureRows {
    /// One write per table, in [`super::tables::ORDER_TABLES`] order.
    pub fn writes(&self) -> [Write<'_>; 4] {
        [
            Write::of(&self.dispatch),
            Write::of(&self.dispatch_buckets),
            Write::of(&self.confirmation),
            Write::of(&self.confirmation_buckets),
        ]
    }
}

/// The fold's signed deltas of the maintained distributions under `shard`: each value and
/// the bucket a percentile finds it by (the console's histogram reads the minutes too).
pub(crate) fn figure_rows(outcome: &BatchOutcome, shard: i32) -> FigureRows {
    let f = &outcome.figures;
    let dispatch = f
        .dispatch
        .iter()
        .map(|((month, seconds), orders)| DispatchRow {
            month: *month,
            seconds: *seconds,
            shard,
            orders: *orders,
        })
        .collect();
    let shipped = f.dispatch.iter().map(|((month, s), n)| (*month, *s, *n));
    let dispatch_buckets = buckets(shipped, of_width(DISPATCH_BUCKET_SECONDS))
        .into_iter()
        .map(|((month, bucket), orders)| DispatchBucketRow {
            month,
            bucket,
            shard,
            orders,
        })
        .collect();
    let confirmation = f
        .confirmation
        .iter()
        .map(|((day, ms), orders)| ConfirmationRow {
            day: *day,
            ms: *ms,
            shard,
            orders: *orders,
        })
        .collect();
    let confirmed = f.confirmation.iter().map(|((day, ms), n)| (*day, *ms, *n));
    let confirmation_buckets = buckets(confirmed, of_width(CONFIRMATION_BUCKET_MS))
        .into_iter()
        .map(|((day, bucket), orders)| ConfirmationMsBucketRow {
            day,
            bucket,
            shard,
            orders,
        })
        .collect();
    FigureRows {
        dispatch,
        dispatch_buckets,
        confirmation,
        confirmation_buckets,
    }
}

/// The width of a bucket of `dispatch_buckets`, in seconds: a month's percentile reads its
/// buckets (one per ten minutes of dispatch time that occurs) and one bucket's seconds.
pub(crate) const DISPATCH_BUCKET_SECONDS: i64 = 600;

/// The width of a bucket of `confirmation_ms_buckets`, in milliseconds: a day's percentile
/// reads its buckets (one per minute of latency that occurs) and one minute's values.
pub(crate) const CONFIRMATION_BUCKET_MS: i64 = 60_000;

/// The bucket of width `width` that holds `value` (bucket `b` holds
/// `b * width ..< (b + 1) * width`).
fn of_width(width: i64) -> impl Fn(i64) -> i64 {
    move |value| value.div_euclid(width)
}

/// A batch's signed sales and sales-channel orders under `shard`. A sale counted `n` times
/// (`-1`: retracted) is `|n|` rows of one order and its total, negated when retracted; the
/// statement sums them.
pub(crate) fn sale_rows(
    outcome: &BatchOutcome,
    shard: i32,
) -> (
    Vec<SaleRow>,
    Vec<ChannelSaleRow<'_>>,
    Vec<ChannelOrdersRow<'_>>,
) {
    let f = &outcome.figures;
    let (mut all, mut by_channel) = (Vec::new(), Vec::new());
    for (sale, n) in &f.sales {
        let (orders, revenue) = if *n > 0 {
            (1, sale.total.as_str().to_owned())
        } else {
            (-1, sale.total.negated())
        };
        for _ in 0..n.unsigned_abs() {
            all.push(SaleRow {
                month: sale.month,
                shard,
                orders,
                revenue: revenue.clone(),
            });
            if let Some(channel) = &sale.channel {
                by_channel.push(ChannelSaleRow {
                    month: sale.month,
                    channel,
                    shard,
                    orders,
                    revenue: revenue.clone(),
                });
            }
        }
    }
    let channels = f
        .channels
        .iter()
        .map(|(channel, orders)| ChannelOrdersRow {
            channel,
            shard,
            orders: *orders,
        })
        .collect();
    (all, by_channel, channels)
}

/// The rows that lock a batch's customers, in customer-id order, with the days of their
/// added orders.
pub(crate) fn customer_lock_rows<'a>(
    changed: &'a BTreeMap<String, CustomerOrders>,
    named: &BTreeMap<&'a str, i64>,
) -> Vec<CustomerLockRow<'a>> {
    let mut lock: BTreeMap<&str, (String, i64)> = named
        .iter()
        .map(|(c, n)| (*c, (String::new(), *n)))
        .collect();
    for (customer_id, orders) in changed {
        lock.entry(customer_id).or_default().0 = orders.appended_days();
    }
    lock.into_iter()
        .map(|(customer_id, (order_days, leads))| CustomerLockRow {
            customer_id,
            order_days,
            leads,
        })
        .collect()
}

/// The order-count deltas of a batch's customers per month.
pub(crate) fn customer_month_rows(
    changed: &BTreeMap<String, CustomerOrders>,
) -> Vec<CustomerMonthRow<'_>> {
    changed
        .iter()
        .flat_map(|(customer_id, orders)| {
            orders
                .months()
                .into_iter()
                .map(move |(month, n)| CustomerMonthRow {
                    customer_id,
                    month,
                    orders: n,
                })
        })
        .collect()
}

/// The customers whose first order is not the stored one any more, or whose order days
/// (`days`: the rewritten ones) changed.
pub(crate) fn customer_rows<'a>(
    stored: &'a HashMap<String, StoredCustomer>,
    firsts: &'a HashMap<&'a str, Option<CustomerOrder>>,
    days: &'a HashMap<&'a str, String>,
) -> Vec<CustomerRow<'a>> {
    let mut rows: Vec<CustomerRow<'a>> = firsts
        .iter()
        .filter_map(|(customer_id, first)| {
            let was = stored.get(*customer_id);
            let rewritten = days.get(customer_id);
            if rewritten.is_none() && was.is_some_and(|s| s.first == *first) {
                return None;
            }
            Some(CustomerRow {
                customer_id,
                first_at: first.as_ref().map(|f| f.at),
                first_order_id: first.as_ref().map(|f| f.order_id.as_str()),
                first_month: first.as_ref().map(|f| f.month),
                first_channel: first.as_ref().and_then(|f| f.channel.as_deref()),
                order_days: rewritten
                    .map_or_else(|| was.map_or("", |s| s.order_days.as_str()), String::as_str),
            })
        })
        .collect();
    rows.sort_unstable_by_key(|r| r.customer_id);
    rows
}

/// A batch's change of the customer figures as signed rows under `shard`.
pub(crate) fn customer_kpi_rows(
    change: &CustomerChange,
    shard: i32,
) -> (
    Vec<CustomerKpiRow>,
    Vec<NewCustomerRow<'_>>,
    Vec<CustomerGapRow>,
) {
    let kpi = change
        .repeat
        .iter()
        .map(|(month, c)| CustomerKpiRow {
            month: *month,
            shard,
            customers: c.customers,
            returning_customers: c.returning_customers,
            orders: c.orders,
            returning_orders: c.returning_orders,
        })
        .collect();
    let channels = change
        .new_by_channel
        .iter()
        .map(|((month, channel), n)| NewCustomerRow {
            month: *month,
            channel,
            shard,
            new_customers: *n,
        })
        .collect();
    let gaps = change
        .gaps
        .iter()
        .map(|(gap, n)| CustomerGapRow {
            day: gap.day,
            previous_day: gap.previous_day,
            shard,
            customers: *n,
        })
        .collect();
    (kpi, channels, gaps)
}

/// The rows that merge a batch of v2 entities into their tables.
#[derive(Default)]
pub(crate) struct V2Rows<'a> {
    stages: Vec<ClaimStageRow<'a>>,
    reviews: Vec<ReviewRow<'a>>,
    rosters: Vec<RosterRow<'a>>,
    violations: Vec<ViolationRow<'a>>,
    couriers: Vec<CourierRow<'a>>,
    spends: Vec<SpendRow<'a>>,
    lead_events: Vec<LeadEventRow<'a>>,
    leads: Vec<LeadRow<'a>>,
}

impl V2Rows<'_> {
    /// One write per table, in [`super::tables::V2_TABLES`] order (one lock order for all).
    pub fn writes(&self) -> Vec<Write<'_>> {
        vec![
            Write::of(&self.stages),
            Write::of(&self.reviews),
            Write::of(&self.rosters),
            Write::of(&self.violations),
            Write::of(&self.couriers),
            Write::of(&self.spends),
            Write::of(&self.lead_events),
            Write::of(&self.leads),
        ]
    }
}

/// The v2 rows of `batch`, months in the shop's zone.
pub(crate) fn v2_rows<'a>(batch: &'a EntityBatch, rules: &Rules) -> V2Rows<'a> {
    let mut rows = V2Rows::default();
    rows.add_stages(batch, rules);
    rows.add_reviews(batch, rules);
    rows.add_couriers(batch, rules);
    rows.add_spends(batch);
    rows.add_leads(batch, rules);
    rows
}

impl<'a> V2Rows<'a> {
    /// Every claim.updated of the batch.
    fn add_stages(&mut self, batch: &'a EntityBatch, rules: &Rules) {
        let month = |t: DateTime<Utc>| rules.month_of(t);
        self.stages = batch
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
    }

    /// Each review's earliest posting and earliest answer in the batch.
    fn add_reviews(&mut self, batch: &'a EntityBatch, rules: &Rules) {
        let month = |t: DateTime<Utc>| rules.month_of(t);
        self.reviews = batch
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
    }

    /// Rosterings and violations, and each courier's latest rostering.
    fn add_couriers(&mut self, batch: &'a EntityBatch, rules: &Rules) {
        let month = |t: DateTime<Utc>| rules.month_of(t);
        for (courier_id, c) in &batch.couriers {
            for ((at, key), d) in &c.rosters {
                self.rosters.push(RosterRow {
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
                self.violations.push(ViolationRow {
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
                self.couriers.push(CourierRow {
                    courier_id,
                    team_id: d.team_id.as_str(),
                    captain: d.captain,
                    rostered_at: *at,
                    rostered_source: &key.source,
                    rostered_id: &key.id,
                });
            }
        }
    }

    /// Each spend's latest version in the batch.
    fn add_spends(&mut self, batch: &'a EntityBatch) {
        self.spends = batch
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
    }

    /// Lead events, and each lead's capture and latest temperature.
    fn add_leads(&mut self, batch: &'a EntityBatch, rules: &Rules) {
        let month = |t: DateTime<Utc>| rules.month_of(t);
        for (lead_id, l) in &batch.leads {
            let captured = l.captured.as_ref();
            for ((at, key), temperature) in &l.captures {
                self.lead_events.push(LeadEventRow {
                    source: &key.source,
                    id: &key.id,
                    lead_id,
                    kind: "captured",
                    temperature: temperature.as_str(),
                    time: *at,
                    month: month(*at),
                });
            }
            for ((at, key), d) in &l.changes {
                self.lead_events.push(LeadEventRow {
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
            self.leads.push(LeadRow {
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
    }
}

/// A stored review row as read: `(review_id, posted_at, answered_at, posted_source,
/// posted_id, rating, courier_id, posted_month)`.
pub(crate) type StoredReviewRow = (
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<NaiveDate>,
);

/// What the stored review rows of a batch's reviews held before it, by review id.
pub(crate) type StoredReviews = HashMap<String, ReviewMark>;

/// Reads stored review rows into [`StoredReviews`].
pub(crate) fn stored_reviews(rows: Vec<StoredReviewRow>) -> StoredReviews {
    rows.into_iter()
        .map(
            |(id, at, answered_at, source, event_id, rating, courier, month)| {
                let posting = match (at, source, event_id, month) {
                    (Some(at), Some(source), Some(event_id), Some(month)) => Some(Posting {
                        at,
                        key: EventKey {
                            source,
                            id: event_id,
                        },
                        rating: rating.and_then(|r| u8::try_from(r).ok()),
                        courier,
                        month,
                    }),
                    _ => None,
                };
                (
                    id,
                    ReviewMark {
                        posting,
                        answered_at,
                    },
                )
            },
        )
        .collect()
}

/// Answer times (seconds) that became known with this batch: reviews whose posting and
/// answer are both known now and were not both known before.
pub(crate) fn new_answer_seconds(changes: &[ReviewChange<'_>]) -> Vec<f64> {
    changes
        .iter()
        .filter(|c| c.before.posting.is_none() || c.before.answered_at.is_none())
        .filter_map(|c| {
            let posted = c.after.posting.as_ref()?.at;
            Some(whole_seconds(posted, c.after.answered_at?) as f64)
        })
        .collect()
}

/// The width of a bucket of `review_answer_buckets`, in seconds. A percentile reads a month's
/// buckets to find the one that holds its rank, then that bucket's seconds: at most about
/// 300 buckets (answers within two days) and 600 values, however many reviews the month has.
pub(crate) const ANSWER_BUCKET_SECONDS: i64 = 600;

/// The review response figures' rows of a batch under `shard`, in key order.
#[derive(Default)]
pub(crate) struct ResponseRows {
    pub counts: Vec<ReviewCountsRow>,
    pub answers: Vec<ReviewAnswerRow>,
    pub buckets: Vec<ReviewAnswerBucketRow>,
}

impl ResponseRows {
    /// One write per table, in [`super::tables::V2_TABLES`] order.
    pub fn writes(&self) -> [Write<'_>; 3] {
        [
            Write::of(&self.counts),
            Write::of(&self.answers),
            Write::of(&self.buckets),
        ]
    }
}

/// The signed deltas of the review response figures under `shard`.
pub(crate) fn response_rows(delta: &ResponseDelta, shard: i32) -> ResponseRows {
    let counts = delta
        .months
        .iter()
        .map(|(month, c)| ReviewCountsRow {
            month: *month,
            shard,
            reviews: c.reviews,
            negative: c.negative,
            unanswered_negative: c.unanswered_negative,
        })
        .collect();
    let answers = delta
        .answers
        .iter()
        .map(|((month, time), n)| ReviewAnswerRow {
            month: *month,
            seconds: time.seconds,
            whole: time.whole,
            shard,
            reviews: *n,
        })
        .collect();
    let values = delta
        .answers
        .iter()
        .map(|((month, time), n)| (*month, time.seconds, *n));
    let buckets = buckets(values, of_width(ANSWER_BUCKET_SECONDS))
        .into_iter()
        .map(|((month, bucket), reviews)| ReviewAnswerBucketRow {
            month,
            bucket,
            shard,
            reviews,
        })
        .collect();
    ResponseRows {
        counts,
        answers,
        buckets,
    }
}

/// A stored lead event with its lead's capture: `(lead_id, temperature, time, source, id,
/// captured_at, captured_source, captured_id, customer_id)` (the capture columns of `leads`).
pub(crate) type StoredLeadRow = (
    String,
    String,
    DateTime<Utc>,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A stored capture of a lead naming a customer: `(lead_id, captured_at, captured_source,
/// captured_id, customer_id)`.
pub(crate) type StoredCaptureRow = (String, DateTime<Utc>, String, String, String);

/// The lead base's view of each lead stored with an event: its capture and its events.
pub(crate) fn stored_leads(
    rows: Vec<StoredLeadRow>,
    rules: &Rules,
) -> Result<HashMap<String, LeadTrail>, Error> {
    let mut trails: HashMap<String, LeadTrail> = HashMap::new();
    for (
        lead_id,
        temperature,
        at,
        source,
        id,
        captured_at,
        captured_source,
        captured_id,
        customer,
    ) in rows
    {
        let Some(temperature) = Temperature::ALL
            .into_iter()
            .find(|t| t.as_str() == temperature)
        else {
            return Err(Error::CorruptLead {
                lead_id,
                value: temperature,
            });
        };
        let trail = trails.entry(lead_id).or_default();
        if trail.capture.is_none() {
            if let (Some(at), Some(source), Some(id)) = (captured_at, captured_source, captured_id)
            {
                trail.capture = Some(Capture {
                    at,
                    key: EventKey { source, id },
                    month: rules.month_of(at),
                    customer_id: customer,
                });
            }
        }
        trail.marks.push(LeadMark {
            at,
            key: EventKey { source, id },
            month: rules.month_of(at),
            temperature,
        });
    }
    for trail in trails.values_mut() {
        trail.marks.sort();
    }
    Ok(trails)
}

/// A stored capture as the lead base reads it.
pub(crate) fn stored_capture(row: StoredCaptureRow, rules: &Rules) -> (String, Capture) {
    let (lead_id, at, source, id, customer) = row;
    let capture = Capture {
        at,
        key: EventKey { source, id },
        month: rules.month_of(at),
        customer_id: Some(customer),
    };
    (lead_id, capture)
}

/// The lead base's signed changes under `shard`, in month order.
pub(crate) fn lead_base_rows(delta: &LeadDelta, shard: i32) -> Vec<LeadBaseRow> {
    delta
        .months
        .iter()
        .map(|(month, c)| LeadBaseRow {
            month: *month,
            shard,
            new_leads: c.new_leads,
            cold: c.temperature[0],
            warm: c.temperature[1],
            hot: c.temperature[2],
            converted: c.converted,
            events: c.events,
        })
        .collect()
}

/// A stored rostering: `(courier_id, time, source, id, team_id)`.
pub(crate) type StoredRosterRow = (String, DateTime<Utc>, String, String, String);

/// A stored smiley: `(courier_id, colour, reference, time, month)`, colour `yellow` or `red`.
pub(crate) type StoredSmileyRow = (String, String, String, DateTime<Utc>, NaiveDate);

/// A stored rostering as the contest reads it.
pub(crate) fn stored_rostering(row: StoredRosterRow) -> (String, Rostering) {
    let (courier_id, at, source, id, team) = row;
    let key = EventKey { source, id };
    (courier_id, Rostering { at, key, team })
}

/// A stored smiley as the contest reads it.
pub(crate) fn stored_smiley(row: StoredSmileyRow) -> (String, Smiley) {
    let (courier_id, colour, reference, at, month) = row;
    let colour = if colour == "red" {
        Colour::Red
    } else {
        Colour::Yellow
    };
    (
        courier_id,
        Smiley {
            colour,
            reference,
            at,
            month,
        },
    )
}

/// The signed deltas of the contest's tallies under `shard`, in key order.
pub(crate) fn tally_rows(delta: TallyDelta, shard: i32) -> Vec<SmileyTallyRow> {
    delta
        .tallies
        .into_iter()
        .map(|((month, courier_id, team), t)| SmileyTallyRow {
            month,
            courier_id,
            team_id: team.unwrap_or_default(),
            shard,
            yellow: t.yellow,
            red: t.red,
        })
        .collect()
}

/// A customer as stored before a batch: the first order and the orders per day
/// ([`crate::domain::OrderDays`] text).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StoredCustomer {
    pub first: Option<CustomerOrder>,
    pub order_days: String,
    /// How many captured leads name the customer (after the batch's own change).
    pub leads: i64,
}

/// A claim's journal row as stored: `(claim_id, category, filed_at, filed_month,
/// resolved_at, resolved_month)`.
pub(crate) type StoredJournalRow = (
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<NaiveDate>,
    Option<DateTime<Utc>>,
    Option<NaiveDate>,
);

/// A stored `claim.updated`: `(claim_id, time, source, id, month, stage)`.
pub(crate) type StoredStageRow = (String, DateTime<Utc>, String, String, NaiveDate, String);

/// Locks the journal rows of `claim_ids` (sorted: one lock order for every writer).
pub(crate) fn claim_lock_rows<'a>(claim_ids: &[&'a str]) -> Vec<ClaimLockRow<'a>> {
    claim_ids
        .iter()
        .map(|claim_id| ClaimLockRow {
            claim_id,
            version: 0,
        })
        .collect()
}

/// The journal rows of the claims whose filing or resolution a batch changed.
pub(crate) fn claim_journal_rows<'a>(
    claims: &BTreeMap<&'a str, JournalClaim>,
) -> Vec<ClaimJournalRow<'a>> {
    claims
        .iter()
        .map(|(claim_id, c)| ClaimJournalRow {
            claim_id,
            category: c.category.map(Category::as_str),
            filed_at: c.filed.map(|f| f.0),
            filed_month: c.filed.map(|f| f.1),
            resolved_at: c.resolved.map(|r| r.0),
            resolved_month: c.resolved.map(|r| r.1),
        })
        .collect()
}

/// The signed deltas of the claims journal under `shard`, in key order.
pub(crate) fn journal_rows(
    delta: &JournalDelta,
    shard: i32,
) -> (
    Vec<ClaimsJournalRow>,
    Vec<ClaimResolveRow>,
    Vec<ClaimResolveBucketRow>,
) {
    let months = delta
        .months
        .iter()
        .map(|((month, category), c)| ClaimsJournalRow {
            month: *month,
            category: category.as_str(),
            shard,
            filed: c.filed,
            resolved: c.resolved,
            open_registered: c.open[0],
            open_investigating: c.open[1],
            open_action_taken: c.open[2],
        })
        .collect();
    let seconds = delta
        .resolve_seconds
        .iter()
        .map(|((month, category, seconds), claims)| ClaimResolveRow {
            month: *month,
            category: category.as_str(),
            seconds: *seconds,
            shard,
            claims: *claims,
        })
        .collect();
    let values = delta
        .resolve_seconds
        .iter()
        .map(|((month, category, seconds), n)| ((*month, *category), *seconds, *n));
    let buckets = buckets(values, of_width(RESOLVE_BUCKET_SECONDS))
        .into_iter()
        .map(
            |(((month, category), bucket), claims)| ClaimResolveBucketRow {
                month,
                category: category.as_str(),
                bucket,
                shard,
                claims,
            },
        )
        .collect();
    (months, seconds, buckets)
}

/// The width of a bucket of `claim_resolve_buckets`, in seconds: a percentile reads a
/// month's buckets (at most 336 within `rules.claim_window` of 14 days) and one bucket's
/// values.
pub(crate) const RESOLVE_BUCKET_SECONDS: i64 = 3600;

/// Signed counts of values summed per key and bucket (`bucket` of the value), zero sums
/// dropped: the coarse level of a distribution that a read counts or ranks by bucket first.
fn buckets<K: Ord, B: Ord>(
    values: impl Iterator<Item = (K, i64, i64)>,
    bucket: impl Fn(i64) -> B,
) -> BTreeMap<(K, B), i64> {
    let mut out: BTreeMap<(K, B), i64> = BTreeMap::new();
    for (key, value, n) in values {
        *out.entry((key, bucket(value))).or_default() += n;
    }
    out.retain(|_, n| *n != 0);
    out
}

fn corrupt_claim(claim_id: &str, table: &'static str, value: &str) -> Error {
    Error::CorruptClaim {
        claim_id: claim_id.to_owned(),
        table,
        value: value.to_owned(),
    }
}

/// A stored journal row as the journal reads it.
pub(crate) fn stored_journal_claim(row: StoredJournalRow) -> Result<(String, JournalClaim), Error> {
    let (claim_id, category, filed_at, filed_month, resolved_at, resolved_month) = row;
    let category = match category {
        None => None,
        Some(text) => Some(
            Category::ALL
                .into_iter()
                .find(|c| c.as_str() == text)
                .ok_or_else(|| corrupt_claim(&claim_id, "claim_journal", &text))?,
        ),
    };
    let claim = JournalClaim {
        category,
        filed: filed_at.zip(filed_month),
        resolved: resolved_at.zip(resolved_month),
    };
    Ok((claim_id, claim))
}

/// A stored `claim.updated` as the journal reads it.
pub(crate) fn stored_stage(row: StoredStageRow) -> Result<(String, StageMark), Error> {
    let (claim_id, at, source, id, month, stage) = row;
    let stage = ClaimStage::ALL
        .into_iter()
        .find(|s| s.as_str() == stage)
        .ok_or_else(|| corrupt_claim(&claim_id, "claim_stages", &stage))?;
    let key = EventKey { source, id };
    Ok((
        claim_id,
        StageMark {
            at,
            key,
            month,
            stage,
        },
    ))
}

#[cfg(test)]
mod tests {
    /// The functions that rank by bucket (PostgreSQL) use the widths the batches write.
    #[test]
    fn the_bucketed_percentiles_use_the_widths_the_batches_write() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let latencies = read("0021_bucketed_latencies.sql");
        let cases = [
            (
                "0018_maintained_review_response.sql",
                "seconds",
                super::ANSWER_BUCKET_SECONDS,
            ),
            (
                "0019_bucketed_resolve_times.sql",
                "seconds",
                super::RESOLVE_BUCKET_SECONDS,
            ),
            (
                "0021_bucketed_latencies.sql",
                "seconds",
                super::DISPATCH_BUCKET_SECONDS,
            ),
        ];
        for (file, value, width) in cases {
            let sql = read(file);
            assert!(
                sql.contains(&format!("{value} / {width}.0")),
                "{file}: {width}"
            );
            assert!(
                sql.contains(&format!("(hit.bucket + 1) * {width}")),
                "{file}: {width}"
            );
        }
        let width = super::CONFIRMATION_BUCKET_MS;
        assert!(latencies.contains(&format!("ms / {width}.0")));
        for bucket in ["d.b50", "d.b95"] {
            let range = format!("ms >= {bucket} * {width} AND ms < ({bucket} + 1) * {width}");
            assert!(latencies.contains(&range), "{range}");
        }
        assert!(latencies.contains(&format!("ms >= d.top * {width}")));
        assert!(latencies.contains(&format!(
            "floor(s.limit_ms / {width})::bigint + 1) * {width}"
        )));
        assert!(latencies.contains(&format!("* 1000 / {width})")));
    }
}
