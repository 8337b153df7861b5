//! KPI contributions of orders to their days, as signed deltas.
//!
//! An order contributes to the daily row of its delivery day (fulfilled, perfect, deviations)
//! and of its cancellation day (cancelled). When a batch changes an order's verdict, the old
//! contribution is retracted and the new one added, so the daily rows always equal the sum over
//! the current projections, whatever the arrival order.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeDelta};

use super::event::{Category, Event};
use super::order::{Assessment, OrderProjection, Rules, Verdict};

/// The counters of one shop-zone day; also used as signed deltas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub fulfilled: i64,
    pub perfect: i64,
    pub quality: i64,
    pub completeness: i64,
    pub delivery: i64,
    pub service: i64,
    pub cancelled: i64,
}

impl DayCounts {
    fn add_scaled(&mut self, other: &DayCounts, sign: i64) {
        self.fulfilled += sign * other.fulfilled;
        self.perfect += sign * other.perfect;
        self.quality += sign * other.quality;
        self.completeness += sign * other.completeness;
        self.delivery += sign * other.delivery;
        self.service += sign * other.service;
        self.cancelled += sign * other.cancelled;
    }

    pub fn is_zero(&self) -> bool {
        *self == DayCounts::default()
    }
}

/// What one order adds to which days.
pub fn contribution(a: &Assessment) -> Vec<(NaiveDate, DayCounts)> {
    let mut out = Vec::with_capacity(2);
    if let (Some(day), true) = (
        a.delivered_day,
        matches!(a.verdict, Verdict::Perfect | Verdict::Imperfect),
    ) {
        let d = &a.deviations;
        out.push((
            day,
            DayCounts {
                fulfilled: 1,
                perfect: i64::from(a.verdict == Verdict::Perfect),
                quality: i64::from(d.quality),
                completeness: i64::from(d.completeness),
                delivery: i64::from(d.delivery),
                service: i64::from(d.service),
                cancelled: 0,
            },
        ));
    }
    if let (Some(day), Verdict::Cancelled) = (a.cancelled_day, a.verdict) {
        out.push((
            day,
            DayCounts {
                cancelled: 1,
                ..DayCounts::default()
            },
        ));
    }
    out
}

/// Signed changes to daily KPI rows; zero rows are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KpiDelta {
    days: BTreeMap<NaiveDate, DayCounts>,
}

impl KpiDelta {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) an order's contribution.
    pub fn add(&mut self, a: &Assessment, sign: i64) {
        for (day, counts) in contribution(a) {
            self.days.entry(day).or_default().add_scaled(&counts, sign);
        }
    }

    /// Folds another delta into this one.
    pub fn merge(&mut self, other: &KpiDelta) {
        for (day, counts) in &other.days {
            self.days.entry(*day).or_default().add_scaled(counts, 1);
        }
    }

    /// The non-zero rows, in day order.
    pub fn rows(&self) -> impl Iterator<Item = (NaiveDate, DayCounts)> + '_ {
        self.days
            .iter()
            .filter(|(_, c)| !c.is_zero())
            .map(|(d, c)| (*d, *c))
    }

    pub fn is_empty(&self) -> bool {
        self.rows().next().is_none()
    }
}

/// An order whose projection changed in a batch, with its old and new assessment.
#[derive(Debug, Clone)]
pub struct ChangedOrder {
    pub projection: OrderProjection,
    pub before: Option<OrderProjection>,
    pub assessment: Assessment,
    pub previous: Option<Assessment>,
}

impl ChangedOrder {
    /// A latency that became known in this batch (so a histogram observes it exactly once).
    fn newly_known(&self, pick: impl Fn(&Assessment) -> Option<TimeDelta>) -> Option<TimeDelta> {
        match (
            self.previous.as_ref().and_then(&pick),
            pick(&self.assessment),
        ) {
            (None, Some(v)) => Some(v),
            _ => None,
        }
    }

    pub fn new_confirmation_latency(&self) -> Option<TimeDelta> {
        self.newly_known(|a| a.confirmation_latency)
    }

    pub fn new_confirmed_to_shipped(&self) -> Option<TimeDelta> {
        self.newly_known(|a| a.confirmed_to_shipped)
    }

    pub fn new_delivery_lateness(&self) -> Option<TimeDelta> {
        self.newly_known(|a| a.delivery_lateness)
    }

    /// Claims whose facts differ from before (new, newly filed or newly resolved).
    pub fn changed_claims(&self) -> impl Iterator<Item = (&String, &super::order::ClaimFacts)> {
        self.projection.claims.iter().filter(move |(id, facts)| {
            self.before
                .as_ref()
                .and_then(|b| b.claims.get(*id))
                .is_none_or(|old| old != *facts)
        })
    }

    /// Claims whose stored row must be rewritten: those whose facts changed, and all of them
    /// when the delivery changed (whether a claim counts for the verdict depends on it).
    pub fn claims_to_write(&self) -> Vec<(&String, &super::order::ClaimFacts)> {
        let delivery_changed =
            self.before.as_ref().map(|b| &b.delivered) != Some(&self.projection.delivered);
        if delivery_changed {
            self.projection.claims.iter().collect()
        } else {
            self.changed_claims().collect()
        }
    }

    /// Categories of claims first filed in this batch.
    pub fn newly_filed_claims(&self) -> impl Iterator<Item = Category> + '_ {
        self.changed_claims().filter_map(move |(id, facts)| {
            let was_filed = self
                .before
                .as_ref()
                .and_then(|b| b.claims.get(id))
                .is_some_and(|old| old.filed.is_some());
            match (&facts.filed, was_filed) {
                (Some(f), false) => Some(f.data.category),
                _ => None,
            }
        })
    }
}

/// The pure result of folding one batch onto the stored projections.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    pub changed: Vec<ChangedOrder>,
    pub kpi: KpiDelta,
}

/// Folds `events` onto `stored` (the projections of the orders they touch, as persisted).
/// Events are taken by value so their payloads move into the projections. Orders that end up
/// unchanged are left out of the outcome.
pub fn fold_batch(
    mut stored: HashMap<String, OrderProjection>,
    events: impl IntoIterator<Item = Event>,
    rules: &Rules,
) -> BatchOutcome {
    let mut touched: HashMap<String, OrderProjection> = HashMap::new();
    for event in events {
        let id = event.kind.order_id().as_str();
        match touched.get_mut(id) {
            Some(projection) => projection.apply_owned(event),
            None => {
                let id = id.to_owned();
                let mut projection = stored
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| OrderProjection::new(&id));
                projection.apply_owned(event);
                touched.insert(id, projection);
            }
        }
    }
    let mut touched: Vec<(String, OrderProjection)> = touched.into_iter().collect();
    // Deterministic output order (rows are written in order-id order).
    touched.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut outcome = BatchOutcome::default();
    for (id, projection) in touched {
        let before = stored.remove(&id);
        if before.as_ref() == Some(&projection) {
            continue;
        }
        let previous = before.as_ref().map(|b| b.assess(rules));
        let assessment = projection.assess(rules);
        if let Some(p) = &previous {
            outcome.kpi.add(p, -1);
        }
        outcome.kpi.add(&assessment, 1);
        outcome.changed.push(ChangedOrder {
            projection,
            before,
            assessment,
            previous,
        });
    }
    outcome
}
