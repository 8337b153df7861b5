//! The configurable rules: the numbers of the perfect-order rules and the shop's calendar.
//! Every rule that a number decides is a method here, so it is written once.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use super::hours::BusinessHours;

/// The configurable numbers of the perfect-order rules (domain.md, "Perfect-order rules").
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Confirmation later than this after creation is a service deviation.
    pub confirmation_sla: TimeDelta,
    /// Delivery later than `promised_delivery.to` plus this is a delivery deviation.
    pub delivery_tolerance: TimeDelta,
    /// Claims filed up to this long after delivery change the verdict; it is final after it.
    pub claim_window: TimeDelta,
    /// Orders created longer ago than this are ignored by the live SLA watch.
    pub pending_horizon: TimeDelta,
    /// The shop's time zone: days and months are calendar days and months in it.
    pub timezone: Tz,
    /// A review with at least this rating naming a courier is a yellow smiley (contract v2).
    pub smiley_min_rating: u8,
    /// A review answered within this long after posting (inclusive) meets the answer SLA.
    pub review_answer_sla: TimeDelta,
    /// The size of a courier team in the friendly-driver contest; other sizes are flagged.
    pub team_size: u32,
    /// When the confirmation clock runs (`None`: always, the default).
    pub business_hours: Option<BusinessHours>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            confirmation_sla: TimeDelta::minutes(30),
            delivery_tolerance: TimeDelta::zero(),
            claim_window: TimeDelta::days(14),
            pending_horizon: TimeDelta::hours(24),
            timezone: chrono_tz::Europe::Moscow,
            smiley_min_rating: 4,
            review_answer_sla: TimeDelta::hours(24),
            team_size: 10,
            business_hours: None,
        }
    }
}

impl Rules {
    /// The shop-zone calendar day of an instant: the bucket of every daily KPI.
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.timezone).date_naive()
    }

    /// The first day of the shop-zone calendar month of an instant: the bucket of every
    /// monthly v2 KPI.
    pub fn month_of(&self, at: DateTime<Utc>) -> NaiveDate {
        super::fact::first_of_month(self.day_of(at))
    }

    /// How long an order waited for its confirmation from `created` to `until`: the working
    /// time between them under `business_hours`, else the real time. The one clock of the
    /// confirmation SLA: the verdict, the latency figures, the SLA watch and the late list.
    pub fn confirmation_wait(&self, created: DateTime<Utc>, until: DateTime<Utc>) -> TimeDelta {
        match &self.business_hours {
            Some(hours) => hours.working_time(self.timezone, created, until),
            None => until - created,
        }
    }

    /// Orders created before this instant and not confirmed by `now` have waited longer
    /// than the confirmation SLA (by [`Rules::confirmation_wait`]).
    pub fn sla_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.waited_since(now, self.confirmation_sla)
    }

    /// The SLA watch ignores orders created before this instant: they have waited longer
    /// than `pending_horizon` (by the same clock, so a weekend's closure does not hide an
    /// order placed on Friday night from Monday's watch).
    pub fn horizon_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.waited_since(now, self.pending_horizon)
    }

    /// The earliest creation time of an order that has waited at most `wait` at `now`.
    fn waited_since(&self, now: DateTime<Utc>, wait: TimeDelta) -> DateTime<Utc> {
        match &self.business_hours {
            Some(hours) => hours.waited_since(self.timezone, now, wait),
            None => now - wait,
        }
    }

    /// The instant a delivered order's verdict becomes final: the end of the claim window.
    pub fn final_at(&self, delivered_at: DateTime<Utc>) -> DateTime<Utc> {
        delivered_at + self.claim_window
    }

    /// Whether a claim filed at `filed_at` changes the verdict of its order: the order is
    /// delivered and the claim was filed no later than the end of the claim window. A later
    /// claim is journalled and counted, but leaves a final verdict as it is.
    pub fn claim_counts_for_verdict(
        &self,
        delivered_at: Option<DateTime<Utc>>,
        filed_at: DateTime<Utc>,
    ) -> bool {
        delivered_at.is_some_and(|d| filed_at <= self.final_at(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.to_utc())
            .unwrap_or_default()
    }

    #[test]
    fn a_claim_filed_at_the_end_of_the_window_counts_and_one_a_second_later_does_not() {
        let rules = Rules::default();
        let delivered = at("2026-10-01T12:00:00Z");
        let deadline = at("2026-10-15T12:00:00Z");
        assert_eq!(rules.final_at(delivered), deadline);
        assert!(rules.claim_counts_for_verdict(Some(delivered), deadline));
        assert!(!rules.claim_counts_for_verdict(Some(delivered), deadline + TimeDelta::seconds(1)));
    }

    #[test]
    fn a_claim_counts_for_no_verdict_before_the_order_is_delivered() {
        let rules = Rules::default();
        assert!(!rules.claim_counts_for_verdict(None, at("2026-10-01T12:00:00Z")));
    }

    #[test]
    fn a_claim_filed_before_the_delivery_counts() {
        let rules = Rules::default();
        let delivered = at("2026-10-01T12:00:00Z");
        assert!(rules.claim_counts_for_verdict(Some(delivered), at("2026-10-01T08:00:00Z")));
    }
}
