//! The order projection: a fold of the *set* of an order's facts, and its verdict.
//!
//! Every slot keeps the earliest fact by `(event time, source, id)`, so applying events in any
//! order, any number of times, gives the same projection (commutative and idempotent). The
//! verdict is then a pure function of the projection and the [`Rules`].

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::event::{
    Category, ClaimFiled, ClaimResolved, Event, EventKey, EventKind, ItemCount, OrderCancelled,
    OrderConfirmed, OrderCreated, OrderDelivered, OrderShipped,
};
use super::fact::{keep_earliest, Fact};
use super::rules::Rules;

/// What applying one event changed in a projection (so a fold needs no copy of the old one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing: a duplicate, or a later copy of a fact already known.
    None,
    /// The delivery fact (whether each claim counts for the verdict depends on it).
    Delivered,
    /// One claim's facts; `newly_filed` is its category when it had no filing before.
    Claim {
        claim_id: String,
        newly_filed: Option<super::event::Category>,
    },
    /// Another order-level fact.
    Other,
}

/// What is known of one claim of the order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filed: Option<Fact<ClaimFiled>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Fact<ClaimResolved>>,
}

/// Everything known of one order; persisted as JSON in `orders.state`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderProjection {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Fact<OrderCreated>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<Fact<OrderConfirmed>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped: Option<Fact<OrderShipped>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<Fact<OrderDelivered>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Fact<OrderCancelled>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, ClaimFacts>,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Not delivered (or delivered but its `order.created` has not been seen yet).
    Open,
    /// Cancelled: outside the perfect-order denominator, counted on its own.
    Cancelled,
    /// Fulfilled with no deviation.
    Perfect,
    /// Fulfilled with at least one deviation.
    Imperfect,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Open => "open",
            Verdict::Cancelled => "cancelled",
            Verdict::Perfect => "perfect",
            Verdict::Imperfect => "imperfect",
        }
    }
}

/// Deviations of a fulfilled order, one flag per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deviations {
    pub quality: bool,
    pub completeness: bool,
    pub delivery: bool,
    pub service: bool,
}

impl Deviations {
    fn set(&mut self, category: Category) {
        match category {
            Category::Quality => self.quality = true,
            Category::Completeness => self.completeness = true,
            Category::Delivery => self.delivery = true,
            Category::Service => self.service = true,
        }
    }

    pub fn any(&self) -> bool {
        self.quality || self.completeness || self.delivery || self.service
    }
}

/// The perfect-order components of a fulfilled order: the measured criteria and the claims,
/// each on its own (APQC/SCOR-style reports multiply their rates; the perfect-order rate is
/// the share of orders that meet all four at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Components {
    /// Confirmed within the confirmation SLA (or not confirmed at all: nothing measured).
    pub confirmed_in_sla: bool,
    /// Delivered by the end of the promised window plus the tolerance (or with no promise).
    pub on_time: bool,
    /// Every ordered item delivered (or no item count reported).
    pub in_full: bool,
    /// No claim filed in the claim window.
    pub claim_free: bool,
}

/// The verdict and the figures derived from an order's facts under the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub verdict: Verdict,
    pub deviations: Deviations,
    /// Each component as far as the facts go (a criterion with nothing measured yet is met);
    /// the daily counts count them for fulfilled orders only.
    pub components: Components,
    /// Shop-zone day of the delivery: the day whose KPIs this order counts for.
    pub delivered_day: Option<NaiveDate>,
    /// Shop-zone day of the cancellation, for the cancelled count.
    pub cancelled_day: Option<NaiveDate>,
    /// Shop-zone day of creation (confirmation-latency percentiles are per creation day).
    pub created_day: Option<NaiveDate>,
    /// The instant after which the verdict is final (delivery + claim window).
    pub final_at: Option<DateTime<Utc>>,
    pub confirmation_latency: Option<TimeDelta>,
    pub confirmed_to_shipped: Option<TimeDelta>,
    /// Delivered minus promised `to` (negative when early).
    pub delivery_lateness: Option<TimeDelta>,
    pub items_ordered: Option<u64>,
    pub items_delivered: Option<u64>,
}

impl OrderProjection {
    /// An empty projection for an order not seen before.
    pub fn new(order_id: &str) -> Self {
        OrderProjection {
            order_id: order_id.to_owned(),
            ..OrderProjection::default()
        }
    }

    /// Adds one fact. Applying the same event again, or events in another order, changes nothing.
    pub fn apply(&mut self, event: &Event) {
        self.apply_owned(event.clone());
    }

    /// [`OrderProjection::apply`] for an event the caller no longer needs: its payload moves
    /// into the projection instead of being copied (the ingest and rebuild hot path).
    /// Returns what changed.
    pub fn apply_owned(&mut self, event: Event) -> Change {
        let Event {
            key,
            time: at,
            kind,
        } = event;
        let other = |changed: bool| if changed { Change::Other } else { Change::None };
        match kind {
            EventKind::OrderCreated(d) => other(keep_earliest(&mut self.created, at, key, d)),
            EventKind::OrderConfirmed(d) => other(keep_earliest(&mut self.confirmed, at, key, d)),
            EventKind::OrderShipped(d) => other(keep_earliest(&mut self.shipped, at, key, d)),
            EventKind::OrderDelivered(d) => {
                if keep_earliest(&mut self.delivered, at, key, d) {
                    Change::Delivered
                } else {
                    Change::None
                }
            }
            EventKind::OrderCancelled(d) => other(keep_earliest(&mut self.cancelled, at, key, d)),
            EventKind::ClaimFiled(d) => {
                let claim_id = d.claim_id.as_str().to_owned();
                let category = d.category;
                let claim = self.claims.entry(claim_id.clone()).or_default();
                let was_filed = claim.filed.is_some();
                if keep_earliest(&mut claim.filed, at, key, d) {
                    Change::Claim {
                        claim_id,
                        newly_filed: (!was_filed).then_some(category),
                    }
                } else {
                    Change::None
                }
            }
            EventKind::ClaimResolved(d) => {
                let claim_id = d.claim_id.as_str().to_owned();
                let claim = self.claims.entry(claim_id.clone()).or_default();
                if keep_earliest(&mut claim.resolved, at, key, d) {
                    Change::Claim {
                        claim_id,
                        newly_filed: None,
                    }
                } else {
                    Change::None
                }
            }
            // Contract v2 types fold into their own entities (`domain::entities`).
            _ => Change::None,
        }
    }

    /// The projection as it stood when only the facts `keep` accepts were known. Every slot
    /// keeps its earliest fact, so a slot whose fact is not kept was empty then (every other
    /// fact of the slot is later): the restriction needs no other event.
    pub fn known_by(&self, keep: impl Fn(DateTime<Utc>, &EventKey) -> bool) -> OrderProjection {
        fn kept<T: Clone>(
            slot: &Option<Fact<T>>,
            keep: &impl Fn(DateTime<Utc>, &EventKey) -> bool,
        ) -> Option<Fact<T>> {
            slot.as_ref().filter(|f| keep(f.at, &f.key)).cloned()
        }
        OrderProjection {
            order_id: self.order_id.clone(),
            created: kept(&self.created, &keep),
            confirmed: kept(&self.confirmed, &keep),
            shipped: kept(&self.shipped, &keep),
            delivered: kept(&self.delivered, &keep),
            cancelled: kept(&self.cancelled, &keep),
            claims: self
                .claims
                .iter()
                .map(|(id, c)| {
                    let facts = ClaimFacts {
                        filed: kept(&c.filed, &keep),
                        resolved: kept(&c.resolved, &keep),
                    };
                    (id.clone(), facts)
                })
                .filter(|(_, c)| c.filed.is_some() || c.resolved.is_some())
                .collect(),
        }
    }

    /// Every fact the projection keeps: its event type, event time and key, in no order.
    pub fn facts(&self) -> Vec<(&'static str, DateTime<Utc>, &EventKey)> {
        fn fact<'a, T>(
            kind: &'static str,
            slot: &'a Option<Fact<T>>,
        ) -> Option<(&'static str, DateTime<Utc>, &'a EventKey)> {
            slot.as_ref().map(|f| (kind, f.at, &f.key))
        }
        [
            fact("order.created", &self.created),
            fact("order.confirmed", &self.confirmed),
            fact("order.shipped", &self.shipped),
            fact("order.delivered", &self.delivered),
            fact("order.cancelled", &self.cancelled),
        ]
        .into_iter()
        .chain(self.claims.values().flat_map(|c| {
            [
                fact("claim.filed", &c.filed),
                fact("claim.resolved", &c.resolved),
            ]
        }))
        .flatten()
        .collect()
    }

    /// Whether the delivery held every ordered item (`None` until both the creation and the
    /// delivery are known).
    pub fn in_full(&self) -> Option<bool> {
        let (created, delivered) = (self.created.as_ref()?, self.delivered.as_ref()?);
        Some(!is_short(&created.data, &delivered.data))
    }

    /// Judges the order under `rules`. Depends on the facts only, never on arrival order or
    /// the wall clock.
    pub fn assess(&self, rules: &Rules) -> Assessment {
        let created = self.created.as_ref();
        let delivered = self.delivered.as_ref();
        let items_ordered =
            created.map(|c| c.data.items.iter().map(|i| u64::from(i.quantity)).sum());
        let items_delivered = delivered.and_then(|d| match &d.data.items_delivered {
            Some(ItemCount::Total(n)) => Some(u64::from(*n)),
            Some(ItemCount::PerSku(list)) => Some(list.iter().map(|s| u64::from(s.quantity)).sum()),
            None => None,
        });
        let confirmation_latency = match (created, &self.confirmed) {
            (Some(c), Some(k)) => Some(rules.confirmation_wait(c.at, k.at)),
            _ => None,
        };
        let confirmed_to_shipped = match (&self.confirmed, &self.shipped) {
            (Some(k), Some(s)) => Some(s.at - k.at),
            _ => None,
        };
        let delivery_lateness = match (
            created.and_then(|c| c.data.promised_delivery.as_ref()),
            delivered,
        ) {
            (Some(promise), Some(d)) => Some(d.at - promise.to.with_timezone(&Utc)),
            _ => None,
        };

        let mut components = Components {
            confirmed_in_sla: confirmation_latency.is_none_or(|l| l <= rules.confirmation_sla),
            on_time: delivery_lateness.is_none_or(|l| l <= rules.delivery_tolerance),
            in_full: self.in_full() != Some(false),
            claim_free: true,
        };
        let mut deviations = Deviations::default();
        if !components.confirmed_in_sla {
            deviations.set(Category::Service);
        }
        if !components.on_time {
            deviations.set(Category::Delivery);
        }
        if !components.in_full {
            deviations.set(Category::Completeness);
        }
        for filed in self.claims.values().filter_map(|c| c.filed.as_ref()) {
            if rules.claim_counts_for_verdict(delivered.map(|d| d.at), filed.at) {
                deviations.set(filed.data.category);
                components.claim_free = false;
            }
        }

        let verdict = match (created, delivered, &self.cancelled) {
            (_, _, Some(_)) => Verdict::Cancelled,
            (Some(_), Some(_), None) if deviations.any() => Verdict::Imperfect,
            (Some(_), Some(_), None) => Verdict::Perfect,
            _ => Verdict::Open,
        };
        let fulfilled = matches!(verdict, Verdict::Perfect | Verdict::Imperfect);
        Assessment {
            verdict,
            deviations: if fulfilled {
                deviations
            } else {
                Deviations::default()
            },
            components,
            delivered_day: delivered.filter(|_| fulfilled).map(|d| rules.day_of(d.at)),
            cancelled_day: self.cancelled.as_ref().map(|c| rules.day_of(c.at)),
            created_day: created.map(|c| rules.day_of(c.at)),
            final_at: delivered.map(|d| rules.final_at(d.at)),
            confirmation_latency,
            confirmed_to_shipped,
            delivery_lateness,
            items_ordered,
            items_delivered,
        }
    }
}

/// Short delivery: fewer items than ordered, in total or for any ordered SKU.
fn is_short(created: &OrderCreated, delivered: &OrderDelivered) -> bool {
    match &delivered.items_delivered {
        None => false,
        Some(ItemCount::Total(n)) => {
            u64::from(*n)
                < created
                    .items
                    .iter()
                    .map(|i| u64::from(i.quantity))
                    .sum::<u64>()
        }
        Some(ItemCount::PerSku(list)) => {
            let mut ordered: BTreeMap<&str, u64> = BTreeMap::new();
            for item in &created.items {
                *ordered.entry(item.sku.as_str()).or_default() += u64::from(item.quantity);
            }
            let mut got: BTreeMap<&str, u64> = BTreeMap::new();
            for line in list {
                *got.entry(line.sku.as_str()).or_default() += u64::from(line.quantity);
            }
            ordered
                .iter()
                .any(|(sku, qty)| got.get(sku).copied().unwrap_or(0) < *qty)
        }
    }
}
