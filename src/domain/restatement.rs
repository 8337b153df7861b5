//! Restatements: how an order's part in a day's or a month's perfect-order figure changed
//! after the period was over, and which fact changed it.
//!
//! A period's figure *as first complete* is the one computed from the facts whose event time
//! falls in the period or before it (in the shop's zone): what a report written at the end of
//! the day or month said. Today's figure counts every fact. An order is *restated* for the
//! period of its delivery when the two count it differently (perfect, imperfect, or not
//! counted at all); the cause is the later fact from which on it counts as it does today.
//! Event time decides, never arrival: the same facts give the same restatements after any
//! replay or rebuild.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::event::EventKey;
use super::explain::Deciding;
use super::order::{OrderProjection, Verdict};
use super::rules::Rules;

/// The two periods a figure is reported for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A shop-zone calendar day, complete at its end.
    Day,
    /// A shop-zone calendar month, complete at its end.
    Month,
}

impl Period {
    pub const ALL: [Period; 2] = [Period::Day, Period::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// The period an instant falls in: its day, or the first day of its month.
    pub fn of(self, rules: &Rules, at: DateTime<Utc>) -> NaiveDate {
        match self {
            Period::Day => rules.day_of(at),
            Period::Month => rules.month_of(at),
        }
    }
}

/// How an order counted for its delivery period when the period was first complete, how it
/// counts today, and the fact that changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restatement {
    pub period_kind: Period,
    /// The delivery day, or the first day of the delivery month.
    pub period: NaiveDate,
    /// The verdict from the facts of the period and before it.
    pub first: Verdict,
    /// The verdict from every fact.
    pub now: Verdict,
    /// The later fact from which on the order counts as it does today.
    pub cause: Deciding,
}

/// How a verdict counts in a period's perfect-order figure: perfect, imperfect, or not at all.
fn counts(verdict: Verdict) -> Option<bool> {
    match verdict {
        Verdict::Perfect => Some(true),
        Verdict::Imperfect => Some(false),
        Verdict::Open | Verdict::Cancelled => None,
    }
}

/// The order's restatements, one per period whose figure counts it differently today than
/// when the period was first complete (none for an order never delivered).
pub fn restatements(order: &OrderProjection, rules: &Rules) -> Vec<Restatement> {
    let Some(delivered) = &order.delivered else {
        return Vec::new();
    };
    let facts = order.facts();
    // Most orders have no fact after their delivery day: nothing to restate, nothing to assess.
    let last = facts.iter().map(|(_, at, _)| *at).max();
    if last.is_none_or(|at| rules.day_of(at) <= rules.day_of(delivered.at)) {
        return Vec::new();
    }
    let now = order.assess(rules).verdict;
    Period::ALL
        .into_iter()
        .filter_map(|kind| restated(order, rules, now, kind, kind.of(rules, delivered.at)))
        .collect()
}

fn restated(
    order: &OrderProjection,
    rules: &Rules,
    now: Verdict,
    kind: Period,
    period: NaiveDate,
) -> Option<Restatement> {
    let within = |at: DateTime<Utc>| kind.of(rules, at) <= period;
    let first = order.known_by(|at, _| within(at)).assess(rules).verdict;
    if counts(first) == counts(now) {
        return None;
    }
    let mut later: Vec<(&'static str, DateTime<Utc>, &EventKey)> = order
        .facts()
        .into_iter()
        .filter(|(_, at, _)| !within(*at))
        .collect();
    later.sort_by(|x, y| (x.1, x.2).cmp(&(y.1, y.2)));
    // Walk the later facts in event-time order; the cause is the first of the run of facts
    // after which the order counts as it does today.
    let mut cause = None;
    for (event_type, at, key) in later {
        let known = order.known_by(|a, k| within(a) || (a, k) <= (at, key));
        if counts(known.assess(rules).verdict) == counts(now) {
            cause = cause.or(Some(Deciding {
                event_type,
                time: at,
                source: key.source.clone(),
                id: key.id.clone(),
                read: None,
            }));
        } else {
            cause = None;
        }
    }
    Some(Restatement {
        period_kind: kind,
        period,
        first,
        now,
        cause: cause?,
    })
}
