//! The reference model's readings of the contract-v2 entities: the v2 rules as plain Rust,
//! for the tests that check the SQL views (the product's definition of every v2 KPI)
//! against an independent computation. The product itself never calls these.

use chrono::{DateTime, NaiveDate, Utc};
use perfect_order::domain::entities::{ClaimTrail, Courier, Lead, Review, Spend};
use perfect_order::domain::event::{ClaimStage, EventKey, Temperature};
use perfect_order::domain::fact::{first_of_month, whole_seconds};

/// A review read as the rules read it.
pub trait ReviewReading {
    fn answer_seconds(&self) -> Option<i64>;
    fn answered_within(&self, sla: chrono::TimeDelta) -> Option<bool>;
    fn is_negative(&self) -> bool;
    fn yellow_smiley(&self, min_rating: u8) -> Option<&str>;
}

impl ReviewReading for Review {
    /// Seconds from posting to the first answer, once both are known.
    fn answer_seconds(&self) -> Option<i64> {
        Some(whole_seconds(
            self.posted.as_ref()?.at,
            self.answered.as_ref()?.at,
        ))
    }

    /// Answered no later than `sla` after posting (inclusive).
    fn answered_within(&self, sla: chrono::TimeDelta) -> Option<bool> {
        Some(self.answered.as_ref()?.at - self.posted.as_ref()?.at <= sla)
    }

    /// A negative review: rating 2 or lower.
    fn is_negative(&self) -> bool {
        self.posted
            .as_ref()
            .is_some_and(|p| p.data.rating.get() <= 2)
    }

    /// A yellow smiley for the courier it names: rating at least `min_rating`.
    fn yellow_smiley(&self, min_rating: u8) -> Option<&str> {
        let posted = self.posted.as_ref()?;
        let courier = posted.data.courier_id.as_ref()?;
        (posted.data.rating.get() >= min_rating).then_some(courier.as_str())
    }
}

/// A claim's stage as of an instant.
pub trait ClaimTrailReading {
    fn stage_before(&self, end: DateTime<Utc>) -> ClaimStage;
}

impl ClaimTrailReading for ClaimTrail {
    /// The stage of the latest update before `end`; `registered` when there is none.
    fn stage_before(&self, end: DateTime<Utc>) -> ClaimStage {
        self.stages
            .range(..(end, EventKey::min()))
            .next_back()
            .map_or(ClaimStage::Registered, |(_, d)| d.stage)
    }
}

/// A courier's team as of an instant.
pub trait CourierReading {
    fn team_at(&self, t: DateTime<Utc>) -> Option<&str>;
    fn team_before(&self, end: DateTime<Utc>) -> Option<&str>;
}

impl CourierReading for Courier {
    /// The team of the latest rostering at or before `t` (a smiley counts for it).
    fn team_at(&self, t: DateTime<Utc>) -> Option<&str> {
        self.team_before(t + chrono::TimeDelta::nanoseconds(1))
    }

    /// The team of the latest rostering strictly before `end` (team size at month end).
    fn team_before(&self, end: DateTime<Utc>) -> Option<&str> {
        self.rosters
            .range(..(end, EventKey::min()))
            .next_back()
            .map(|(_, r)| r.team_id.as_str())
    }
}

/// A spend spread over calendar months.
pub trait SpendReading {
    fn days_by_month(&self) -> (Vec<(NaiveDate, i64)>, i64);
}

impl SpendReading for Spend {
    /// How the spend's days split over calendar months: `(month, days in it)`, with the
    /// total number of days (`from..=to`, both included). A month gets `days / total` of it.
    fn days_by_month(&self) -> (Vec<(NaiveDate, i64)>, i64) {
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

/// A lead's temperature as of an instant.
pub trait LeadReading {
    fn temperature_before(&self, end: DateTime<Utc>) -> Option<Temperature>;
}

impl LeadReading for Lead {
    /// The temperature of the latest event (capture or change) before `end`, if the lead was
    /// captured before `end`; `None` when it did not exist yet.
    fn temperature_before(&self, end: DateTime<Utc>) -> Option<Temperature> {
        self.captured.as_ref().filter(|c| c.at < end)?;
        self.latest_before(Some(end)).map(|(_, _, t)| t)
    }
}
