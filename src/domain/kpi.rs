//! KPI contributions of orders to their days, as signed deltas.
//!
//! An order contributes to the daily row of its delivery day (fulfilled, perfect, deviations)
//! and of its cancellation day (cancelled). When a batch changes an order's verdict, the old
//! contribution is retracted and the new one added, so the daily rows always equal the sum over
//! the current projections, whatever the arrival order.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeDelta};

use super::event::{Category, Event, EventKind};
use super::figures::{FigureDelta, OrderFigures};
use super::order::{Assessment, Change, OrderProjection, Verdict};
use super::rules::Rules;

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
    /// Fulfilled orders missing each component (see [`super::order::Components`]).
    pub confirmed_late: i64,
    pub delivered_late: i64,
    pub delivered_short: i64,
    pub claimed: i64,
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
        self.confirmed_late += sign * other.confirmed_late;
        self.delivered_late += sign * other.delivered_late;
        self.delivered_short += sign * other.delivered_short;
        self.claimed += sign * other.claimed;
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
        let (d, c) = (&a.deviations, &a.components);
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
                confirmed_late: i64::from(!c.confirmed_in_sla),
                delivered_late: i64::from(!c.on_time),
                delivered_short: i64::from(!c.in_full),
                claimed: i64::from(!c.claim_free),
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
    pub assessment: Assessment,
    /// The assessment of the stored projection (none for an order new to the store).
    pub previous: Option<Assessment>,
    /// Whether the delivery fact changed in this batch.
    pub delivery_changed: bool,
    /// Claims whose facts changed in this batch, in first-change order.
    pub changed_claims: Vec<String>,
    /// Categories of claims first filed in this batch.
    pub newly_filed: Vec<Category>,
    /// Claims whose filing and resolution both became known in this batch: seconds from
    /// filing to resolution (observed once by the resolution histogram).
    pub newly_resolved_seconds: Vec<i64>,
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

    /// Claims whose stored row must be rewritten: those whose facts changed, and all of them
    /// when the delivery changed (whether a claim counts for the verdict depends on it).
    pub fn claims_to_write(&self) -> Vec<(&String, &super::order::ClaimFacts)> {
        if self.delivery_changed {
            self.projection.claims.iter().collect()
        } else {
            self.changed_claims
                .iter()
                .filter_map(|id| self.projection.claims.get_key_value(id))
                .collect()
        }
    }

    /// Categories of claims first filed in this batch.
    pub fn newly_filed_claims(&self) -> impl Iterator<Item = Category> + '_ {
        self.newly_filed.iter().copied()
    }
}

/// The pure result of folding one batch onto the stored projections.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    pub changed: Vec<ChangedOrder>,
    pub kpi: KpiDelta,
    /// The changed orders' contributions to the maintained distributions.
    pub figures: FigureDelta,
}

/// An order being folded: the stored projection is moved in, not copied; what the batch
/// changed is noted as it happens.
struct Touched {
    projection: OrderProjection,
    previous: Option<Assessment>,
    previous_figures: Option<OrderFigures>,
    changed: bool,
    delivery_changed: bool,
    changed_claims: Vec<String>,
    newly_filed: Vec<Category>,
    newly_resolved_seconds: Vec<i64>,
}

/// Seconds from a claim's filing to its resolution, once both are known.
fn claim_complete(p: &OrderProjection, claim_id: &str) -> Option<i64> {
    let claim = p.claims.get(claim_id)?;
    Some(super::fact::whole_seconds(
        claim.filed.as_ref()?.at,
        claim.resolved.as_ref()?.at,
    ))
}

impl Touched {
    /// The order as stored (assessed, so its old KPI contribution can be retracted), or new.
    fn load(stored: Option<OrderProjection>, id: &str, rules: &Rules) -> Touched {
        let previous = stored.as_ref().map(|p| p.assess(rules));
        let previous_figures = match (&stored, &previous) {
            (Some(p), Some(a)) => Some(OrderFigures::of(p, a, rules)),
            _ => None,
        };
        Touched {
            projection: stored.unwrap_or_else(|| OrderProjection::new(id)),
            previous,
            previous_figures,
            changed: false,
            delivery_changed: false,
            changed_claims: Vec::new(),
            newly_filed: Vec::new(),
            newly_resolved_seconds: Vec::new(),
        }
    }

    /// Applies one event and notes what it changed.
    fn apply(&mut self, event: Event) {
        let claim_before = match &event.kind {
            EventKind::ClaimFiled(d) => Some(claim_complete(&self.projection, d.claim_id.as_str())),
            EventKind::ClaimResolved(d) => {
                Some(claim_complete(&self.projection, d.claim_id.as_str()))
            }
            _ => None,
        };
        match self.projection.apply_owned(event) {
            Change::None => {}
            Change::Other => self.changed = true,
            Change::Delivered => {
                self.changed = true;
                self.delivery_changed = true;
            }
            Change::Claim {
                claim_id,
                newly_filed,
            } => {
                self.changed = true;
                if let (Some(None), Some(seconds)) =
                    (claim_before, claim_complete(&self.projection, &claim_id))
                {
                    self.newly_resolved_seconds.push(seconds);
                }
                if !self.changed_claims.contains(&claim_id) {
                    self.changed_claims.push(claim_id);
                }
                self.newly_filed.extend(newly_filed);
            }
        }
    }

    /// The changed order with its new assessment; its KPI and figure deltas go into `kpi`
    /// and `figures`.
    fn finish(self, rules: &Rules, kpi: &mut KpiDelta, figures: &mut FigureDelta) -> ChangedOrder {
        let assessment = self.projection.assess(rules);
        if let Some(p) = &self.previous {
            kpi.add(p, -1);
        }
        kpi.add(&assessment, 1);
        if let Some(f) = &self.previous_figures {
            figures.add(f, -1);
        }
        figures.add(&OrderFigures::of(&self.projection, &assessment, rules), 1);
        ChangedOrder {
            projection: self.projection,
            assessment,
            previous: self.previous,
            delivery_changed: self.delivery_changed,
            changed_claims: self.changed_claims,
            newly_filed: self.newly_filed,
            newly_resolved_seconds: self.newly_resolved_seconds,
        }
    }
}

/// Folds `events` onto `stored` (the projections of the orders they touch, as persisted).
/// Events are taken by value so their payloads move into the projections. Orders that end up
/// unchanged are left out of the outcome.
pub fn fold_batch(
    mut stored: HashMap<String, OrderProjection>,
    events: impl IntoIterator<Item = Event>,
    rules: &Rules,
) -> BatchOutcome {
    let mut touched: HashMap<String, Touched> = HashMap::new();
    for event in events {
        let Some(id) = event.kind.order_id().map(|id| id.as_str()) else {
            continue;
        };
        let order = match touched.get_mut(id) {
            Some(order) => order,
            None => {
                let id = id.to_owned();
                let order = Touched::load(stored.remove(&id), &id, rules);
                touched.entry(id).or_insert(order)
            }
        };
        order.apply(event);
    }
    let mut touched: Vec<(String, Touched)> =
        touched.into_iter().filter(|(_, t)| t.changed).collect();
    // Deterministic output order (rows are written in order-id order).
    touched.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut outcome = BatchOutcome::default();
    for (_, t) in touched {
        let changed = t.finish(rules, &mut outcome.kpi, &mut outcome.figures);
        outcome.changed.push(changed);
    }
    outcome.figures.settle();
    outcome
}
