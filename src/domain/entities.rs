//! The entities of contract v2 (claims journal stages, reviews, couriers, spends, leads):
//! each is a fold of the *set* of its events, like the order projection.
//!
//! Single facts keep the earliest event by `(event time, source, id)` (a review's posting and
//! its answer); "latest" facts keep the latest by the same order (a courier's roster, a
//! spend's correction, a lead's temperature); histories keep every event keyed by it. So any
//! permutation of an entity's events, with any repeats, gives the same state, and the state of
//! two batches merged is the state of their union: the stores merge rows with the same rules
//! in SQL (`store::entities`), and the monthly views read the histories as of each month end.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::event::{
    ClaimStage, ClaimUpdated, CourierRostered, CourierViolation, Event, EventKey, EventKind,
    LeadCaptured, LeadChanged, MarketingSpend, ReviewAnswered, ReviewPosted, Temperature,
};
use super::fact::{first_of_month, keep_earliest, keep_latest, whole_seconds, Fact};

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

    /// Seconds from posting to the first answer, once both are known.
    pub fn answer_seconds(&self) -> Option<i64> {
        Some(whole_seconds(
            self.posted.as_ref()?.at,
            self.answered.as_ref()?.at,
        ))
    }

    /// Answered no later than `sla` after posting (inclusive).
    pub fn answered_within(&self, sla: chrono::TimeDelta) -> Option<bool> {
        Some(self.answered.as_ref()?.at - self.posted.as_ref()?.at <= sla)
    }

    /// A negative review: rating 2 or lower.
    pub fn is_negative(&self) -> bool {
        self.posted
            .as_ref()
            .is_some_and(|p| p.data.rating.get() <= 2)
    }

    /// A yellow smiley for the courier it names: rating at least `min_rating`.
    pub fn yellow_smiley(&self, min_rating: u8) -> Option<&str> {
        let posted = self.posted.as_ref()?;
        let courier = posted.data.courier_id.as_ref()?;
        (posted.data.rating.get() >= min_rating).then_some(courier.as_str())
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

    /// The stage of the latest update before `end`; `registered` when there is none.
    pub fn stage_before(&self, end: DateTime<Utc>) -> ClaimStage {
        self.stages
            .range(..(end, EventKey::min()))
            .next_back()
            .map_or(ClaimStage::Registered, |(_, d)| d.stage)
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

    /// The team of the latest rostering at or before `t` (a smiley counts for it).
    pub fn team_at(&self, t: DateTime<Utc>) -> Option<&str> {
        self.team_before(t + chrono::TimeDelta::nanoseconds(1))
    }

    /// The team of the latest rostering strictly before `end` (team size at month end).
    pub fn team_before(&self, end: DateTime<Utc>) -> Option<&str> {
        self.rosters
            .range(..(end, EventKey::min()))
            .next_back()
            .map(|(_, r)| r.team_id.as_str())
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

    /// How the spend's days split over calendar months: `(month, days in it)`, with the
    /// total number of days (`from..=to`, both included). A month gets `days / total` of it.
    pub fn days_by_month(&self) -> (Vec<(NaiveDate, i64)>, i64) {
        let Some(spend) = &self.latest else {
            return (Vec::new(), 0);
        };
        spread(spend.data.from, spend.data.to)
    }
}

/// `(month, days)` of the dates `from..=to`, and the number of days.
pub fn spread(from: NaiveDate, to: NaiveDate) -> (Vec<(NaiveDate, i64)>, i64) {
    let total = (to - from).num_days() + 1;
    let mut out: Vec<(NaiveDate, i64)> = Vec::new();
    let mut day = from;
    while day <= to {
        let month = first_of_month(day);
        let next_month = month
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(NaiveDate::MAX);
        let last = to.min(next_month.pred_opt().unwrap_or(to));
        out.push((month, (last - day).num_days() + 1));
        match last.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    (out, total.max(0))
}

/// A lead: its capture and every temperature change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub captured: Option<Fact<LeadCaptured>>,
    pub changes: BTreeMap<(DateTime<Utc>, EventKey), LeadChanged>,
}

impl Lead {
    pub fn apply_captured(&mut self, at: DateTime<Utc>, key: EventKey, d: LeadCaptured) -> bool {
        keep_earliest(&mut self.captured, at, key, d)
    }

    pub fn apply_changed(&mut self, at: DateTime<Utc>, key: EventKey, d: LeadChanged) -> bool {
        self.changes.insert((at, key), d).is_none()
    }

    /// The latest event (capture or change) before `end`, or of all when `end` is `None`:
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
        let capture = self
            .captured
            .as_ref()
            .filter(|c| end.is_none_or(|end| c.at < end))
            .map(|c| (c.at, &c.key, c.data.temperature));
        match (capture, change) {
            (Some(c), Some(x)) => Some(if (x.0, x.1) > (c.0, c.1) { x } else { c }),
            (c, x) => c.or(x),
        }
    }

    /// The temperature of the latest event (capture or change) before `end`, if the lead was
    /// captured before `end`; `None` when it did not exist yet.
    pub fn temperature_before(&self, end: DateTime<Utc>) -> Option<Temperature> {
        self.captured.as_ref().filter(|c| c.at < end)?;
        self.latest_before(Some(end)).map(|(_, _, t)| t)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{decode, Decoded};

    fn at(local: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{local}+03:00"))
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn event(id: &str, type_name: &str, local: &str, data: &str) -> Event {
        let json = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/t","type":"{type_name}","time":"{local}+03:00","data":{data}}}"#
        );
        match decode(json.as_bytes()) {
            Ok(Decoded::Known(e)) => e,
            other => panic!("{json} should decode: {other:?}"),
        }
    }

    #[test]
    fn a_review_answered_after_25_hours_misses_the_24_hour_sla_and_one_at_24_meets_it() {
        let sla = chrono::TimeDelta::hours(24);
        let batch = EntityBatch::fold([
            event(
                "1",
                "review.posted",
                "2026-10-31T12:00:00",
                r#"{"review_id":"R-1","rating":2,"courier_id":"D-1"}"#,
            ),
            event(
                "2",
                "review.answered",
                "2026-11-01T13:00:00",
                r#"{"review_id":"R-1"}"#,
            ),
            event(
                "3",
                "review.posted",
                "2026-10-31T12:00:00",
                r#"{"review_id":"R-2","rating":4,"courier_id":"D-1"}"#,
            ),
            event(
                "4",
                "review.answered",
                "2026-11-01T12:00:00",
                r#"{"review_id":"R-2"}"#,
            ),
        ]);
        let (late, on_time) = (&batch.reviews["R-1"], &batch.reviews["R-2"]);
        assert_eq!(late.answer_seconds(), Some(25 * 3600));
        assert_eq!(late.answered_within(sla), Some(false));
        assert_eq!(on_time.answered_within(sla), Some(true));
        assert!(late.is_negative() && !on_time.is_negative());
        assert_eq!(late.yellow_smiley(4), None, "rated 2: no smiley");
        assert_eq!(on_time.yellow_smiley(4), Some("D-1"));
    }

    #[test]
    fn a_spend_from_25_sep_to_4_oct_has_six_days_in_september_and_four_in_october() {
        let batch = EntityBatch::fold([event(
            "1",
            "marketing.spend",
            "2026-09-25T09:00:00",
            r#"{"spend_id":"S","amount":"1000","currency":"RUB","from":"2026-09-25","to":"2026-10-04"}"#,
        )]);
        let (months, total) = batch.spends["S"].days_by_month();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
        assert_eq!(months, vec![(day("2026-09-01"), 6), (day("2026-10-01"), 4)]);
        assert_eq!(total, 10);
    }

    #[test]
    fn a_lead_captured_cold_and_changed_to_hot_is_hot_at_month_end_and_absent_before_capture() {
        let lead = EntityBatch::fold([
            event(
                "2",
                "lead.changed",
                "2026-10-20T10:00:00",
                r#"{"lead_id":"L","temperature":"hot"}"#,
            ),
            event(
                "1",
                "lead.captured",
                "2026-10-02T10:00:00",
                r#"{"lead_id":"L","temperature":"cold"}"#,
            ),
        ])
        .leads
        .remove("L")
        .unwrap_or_default();
        assert_eq!(
            lead.temperature_before(at("2026-11-01T00:00:00")),
            Some(Temperature::Hot)
        );
        assert_eq!(
            lead.temperature_before(at("2026-10-10T00:00:00")),
            Some(Temperature::Cold)
        );
        assert_eq!(lead.temperature_before(at("2026-10-01T00:00:00")), None);
    }

    #[test]
    fn a_roster_change_applies_from_its_event_time_and_a_stage_from_its_own() {
        let batch = EntityBatch::fold([
            event(
                "1",
                "courier.rostered",
                "2026-09-01T09:00:00",
                r#"{"courier_id":"D","team_id":"T-1"}"#,
            ),
            event(
                "2",
                "courier.rostered",
                "2026-10-20T00:00:00",
                r#"{"courier_id":"D","team_id":"T-2"}"#,
            ),
            event(
                "3",
                "claim.updated",
                "2026-10-10T11:00:00",
                r#"{"claim_id":"K","order_id":"A","stage":"investigating"}"#,
            ),
        ]);
        let courier = &batch.couriers["D"];
        assert_eq!(courier.team_at(at("2026-10-19T23:59:59")), Some("T-1"));
        assert_eq!(courier.team_at(at("2026-10-20T00:00:00")), Some("T-2"));
        assert_eq!(
            courier.current().map(|(_, _, r)| r.team_id.as_str()),
            Some("T-2")
        );
        let claim = &batch.claims["K"];
        assert_eq!(
            claim.stage_before(at("2026-10-10T11:00:00")),
            ClaimStage::Registered
        );
        assert_eq!(
            claim.stage_before(at("2026-11-01T00:00:00")),
            ClaimStage::Investigating
        );
    }
}
