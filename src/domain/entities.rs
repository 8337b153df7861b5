//! The entities of contract v2 (claims journal stages, reviews, couriers, spends, leads):
//! each is a fold of the *set* of its events, like the order projection.
//!
//! Single facts keep the earliest event by `(event time, source, id)` (a review's posting and
//! its answer); "latest" facts keep the latest by the same order (a courier's roster, a
//! spend's correction, a lead's temperature); histories keep every event keyed by it. So any
//! permutation of an entity's events, with any repeats, gives the same state, and the state of
//! two batches merged is the state of their union: the stores merge rows with the same rules
//! in SQL (the slot merge rules of `store::tables`), and the monthly views read the histories as of each month end.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{
    ClaimUpdated, CourierRostered, CourierViolation, Event, EventKey, EventKind, LeadCaptured,
    LeadChanged, MarketingSpend, ReviewAnswered, ReviewPosted, Temperature,
};
use super::fact::{keep_earliest, keep_latest, Fact};

/// A review: when it was posted (with its rating and whom it names) and when it was answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub posted: Option<Fact<ReviewPosted>>,
    pub answered: Option<Fact<ReviewAnswered>>,
}

impl Review {
    pub fn apply_posted(&mut self, at: DateTime<Utc>, key: EventKey, d: ReviewPosted) -> bool {
        keep_earliest(&mut self.posted, at, key, d)
    }

    pub fn apply_answered(&mut self, at: DateTime<Utc>, key: EventKey, d: ReviewAnswered) -> bool {
        keep_earliest(&mut self.answered, at, key, d)
    }
}

/// A claim's journal beyond filing and resolution (those live in the order projection): the
/// stages it went through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimTrail {
    pub stages: BTreeMap<(DateTime<Utc>, EventKey), ClaimUpdated>,
}

impl ClaimTrail {
    pub fn apply(&mut self, at: DateTime<Utc>, key: EventKey, d: ClaimUpdated) -> bool {
        self.stages.insert((at, key), d).is_none()
    }
}

/// A courier: every rostering (team over time) and every violation (red smileys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Courier {
    pub rosters: BTreeMap<(DateTime<Utc>, EventKey), CourierRostered>,
    pub violations: BTreeMap<(DateTime<Utc>, EventKey), CourierViolation>,
}

impl Courier {
    pub fn apply_rostered(&mut self, at: DateTime<Utc>, key: EventKey, d: CourierRostered) -> bool {
        self.rosters.insert((at, key), d).is_none()
    }

    pub fn apply_violation(
        &mut self,
        at: DateTime<Utc>,
        key: EventKey,
        d: CourierViolation,
    ) -> bool {
        self.violations.insert((at, key), d).is_none()
    }

    /// The latest rostering of all: its time, key and team.
    pub fn current(&self) -> Option<(&DateTime<Utc>, &EventKey, &CourierRostered)> {
        self.rosters
            .iter()
            .next_back()
            .map(|((at, key), r)| (at, key, r))
    }
}

/// A marketing spend; a correction with the same `spend_id` replaces it (the latest wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub latest: Option<Fact<MarketingSpend>>,
}

impl Spend {
    pub fn apply(&mut self, at: DateTime<Utc>, key: EventKey, d: MarketingSpend) -> bool {
        keep_latest(&mut self.latest, at, key, d)
    }
}

/// A lead: its capture (the earliest `lead.captured`), every capture's temperature (a later
/// capture is a temperature event like a change) and every temperature change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub captured: Option<Fact<LeadCaptured>>,
    pub captures: BTreeMap<(DateTime<Utc>, EventKey), Temperature>,
    pub changes: BTreeMap<(DateTime<Utc>, EventKey), LeadChanged>,
}

impl Lead {
    pub fn apply_captured(&mut self, at: DateTime<Utc>, key: EventKey, d: LeadCaptured) -> bool {
        let new = self
            .captures
            .insert((at, key.clone()), d.temperature)
            .is_none();
        keep_earliest(&mut self.captured, at, key, d) || new
    }

    pub fn apply_changed(&mut self, at: DateTime<Utc>, key: EventKey, d: LeadChanged) -> bool {
        self.changes.insert((at, key), d).is_none()
    }

    /// The latest event (any capture or change) before `end`, or of all when `end` is `None`:
    /// its time, key and temperature.
    pub fn latest_before(
        &self,
        end: Option<DateTime<Utc>>,
    ) -> Option<(DateTime<Utc>, &EventKey, Temperature)> {
        let change = match end {
            Some(end) => self.changes.range(..(end, EventKey::min())).next_back(),
            None => self.changes.iter().next_back(),
        }
        .map(|((at, key), d)| (*at, key, d.temperature));
        let capture = match end {
            Some(end) => self.captures.range(..(end, EventKey::min())).next_back(),
            None => self.captures.iter().next_back(),
        }
        .map(|((at, key), t)| (*at, key, *t));
        match (capture, change) {
            (Some(c), Some(x)) => Some(if (x.0, x.1) > (c.0, c.1) { x } else { c }),
            (c, x) => c.or(x),
        }
    }
}

/// The v2 entities one batch of events touches, folded: what the stores merge into their
/// tables. Keys are the entities' ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityBatch {
    pub claims: BTreeMap<String, ClaimTrail>,
    pub reviews: BTreeMap<String, Review>,
    pub couriers: BTreeMap<String, Courier>,
    pub spends: BTreeMap<String, Spend>,
    pub leads: BTreeMap<String, Lead>,
}

impl EntityBatch {
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
            && self.reviews.is_empty()
            && self.couriers.is_empty()
            && self.spends.is_empty()
            && self.leads.is_empty()
    }

    /// Folds one event in; v1 events are not entities here and change nothing.
    pub fn apply(&mut self, event: Event) -> bool {
        let Event {
            key,
            time: at,
            kind,
        } = event;
        match kind {
            EventKind::ClaimUpdated(d) => {
                entry(&mut self.claims, d.claim_id.as_str()).apply(at, key, d)
            }
            EventKind::ReviewPosted(d) => {
                entry(&mut self.reviews, d.review_id.as_str()).apply_posted(at, key, d)
            }
            EventKind::ReviewAnswered(d) => {
                entry(&mut self.reviews, d.review_id.as_str()).apply_answered(at, key, d)
            }
            EventKind::CourierRostered(d) => {
                entry(&mut self.couriers, d.courier_id.as_str()).apply_rostered(at, key, d)
            }
            EventKind::CourierViolation(d) => {
                entry(&mut self.couriers, d.courier_id.as_str()).apply_violation(at, key, d)
            }
            EventKind::MarketingSpend(d) => {
                entry(&mut self.spends, d.spend_id.as_str()).apply(at, key, d)
            }
            EventKind::LeadCaptured(d) => {
                entry(&mut self.leads, d.lead_id.as_str()).apply_captured(at, key, d)
            }
            EventKind::LeadChanged(d) => {
                entry(&mut self.leads, d.lead_id.as_str()).apply_changed(at, key, d)
            }
            _ => false,
        }
    }

    /// Folds a batch of events.
    pub fn fold(events: impl IntoIterator<Item = Event>) -> EntityBatch {
        let mut batch = EntityBatch::default();
        for event in events {
            batch.apply(event);
        }
        batch
    }
}

fn entry<'m, T: Default>(map: &'m mut BTreeMap<String, T>, id: &str) -> &'m mut T {
    map.entry(id.to_owned()).or_default()
}
