//! What one review adds to the maintained review response figures
//! (`review_response_monthly`): the rules of review response speed, kept as signed deltas
//! like the other maintained figures ([`super::figures`]).
//!
//! A review counts once it is posted, in the shop-zone month of its (earliest) posting:
//! as a review, as a negative one when rated [`NEGATIVE_MAX_RATING`] or lower, and as an
//! unanswered negative one while no answer is known. Once answered, its answer time (the
//! earliest answer minus the posting) counts in that month's distribution, in whole seconds
//! rounded down, with whether it was a whole number of seconds exactly: the SLA share is read
//! from the distribution under the SLA of the moment (`answer <= review_answer_sla`), so a
//! changed SLA needs no rebuild.
//!
//! A batch retracts what a review counted before it and adds what it counts after; a review
//! whose count did not change cancels out.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::contest::Posting;
use super::entities::EntityBatch;
use super::rules::Rules;

/// The highest rating of a negative review.
pub const NEGATIVE_MAX_RATING: u8 = 2;

/// A review as the response figures read it: its earliest posting and its earliest answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewMark {
    pub posting: Option<Posting>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl ReviewMark {
    /// The review after `batch`'s events of it, `self` being what was stored before.
    pub fn after(&self, review_id: &str, batch: &EntityBatch, rules: &Rules) -> ReviewMark {
        let Some(review) = batch.reviews.get(review_id) else {
            return self.clone();
        };
        let mut posting = self.posting.clone();
        if let Some(new) = review.posted.as_ref().map(|p| Posting::of(p, rules)) {
            if posting.as_ref().is_none_or(|old| new.precedes(old)) {
                posting = Some(new);
            }
        }
        let answered_at = match (self.answered_at, review.answered.as_ref().map(|a| a.at)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ReviewMark {
            posting,
            answered_at,
        }
    }
}

/// A review of a batch as the store held it before the batch and as it is after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewChange<'b> {
    pub review_id: &'b str,
    pub before: ReviewMark,
    pub after: ReviewMark,
}

/// Each review of `batch`, before and after it, given what the store held of them before
/// (by review id; a review not there was not stored).
pub fn review_changes<'b>(
    batch: &'b EntityBatch,
    stored: &HashMap<String, ReviewMark>,
    rules: &Rules,
) -> Vec<ReviewChange<'b>> {
    batch
        .reviews
        .keys()
        .map(|review_id| {
            let before = stored.get(review_id).cloned().unwrap_or_default();
            let after = before.after(review_id, batch, rules);
            ReviewChange {
                review_id,
                before,
                after,
            }
        })
        .collect()
}

/// Signed counts of one month of review response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseCounts {
    pub reviews: i64,
    pub negative: i64,
    pub unanswered_negative: i64,
}

/// One value of a month's answer time distribution: whole seconds rounded down, and whether
/// the answer time was exactly that (no fraction of a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AnswerTime {
    pub seconds: i64,
    pub whole: bool,
}

impl AnswerTime {
    /// The answer time of a review posted at `posted` and answered at `answered`, to the
    /// microsecond (the precision the stores keep event times at).
    pub fn between(posted: DateTime<Utc>, answered: DateTime<Utc>) -> AnswerTime {
        let micros = answered.timestamp_micros() - posted.timestamp_micros();
        AnswerTime {
            seconds: micros.div_euclid(1_000_000),
            whole: micros.rem_euclid(1_000_000) == 0,
        }
    }

    /// Whether the answer came within `sla` (inclusive), for an SLA of whole seconds.
    pub fn within(&self, sla_seconds: i64) -> bool {
        self.seconds < sla_seconds || (self.seconds == sla_seconds && self.whole)
    }
}

/// Signed changes to the maintained review response figures. Zero entries are dropped by
/// [`Self::settle`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseDelta {
    pub months: BTreeMap<NaiveDate, ResponseCounts>,
    /// `(month of posting, answer time)` → answered reviews.
    pub answers: BTreeMap<(NaiveDate, AnswerTime), i64>,
}

impl ResponseDelta {
    /// The change a batch's reviews make ([`review_changes`]).
    pub fn of(changes: &[ReviewChange<'_>]) -> Self {
        let mut delta = ResponseDelta::default();
        for c in changes.iter().filter(|c| c.after != c.before) {
            delta.add(&c.before, -1);
            delta.add(&c.after, 1);
        }
        delta.settle();
        delta
    }

    /// Adds (`sign = 1`) or retracts (`sign = -1`) what `review` counts.
    pub fn add(&mut self, review: &ReviewMark, sign: i64) {
        let Some(posting) = &review.posting else {
            return; // not posted yet: counts nowhere
        };
        let month = posting.month;
        let negative = posting.rating.is_some_and(|r| r <= NEGATIVE_MAX_RATING);
        let counts = self.months.entry(month).or_default();
        counts.reviews += sign;
        if negative {
            counts.negative += sign;
            if review.answered_at.is_none() {
                counts.unanswered_negative += sign;
            }
        }
        if let Some(answered) = review.answered_at {
            let time = AnswerTime::between(posting.at, answered);
            *self.answers.entry((month, time)).or_default() += sign;
        }
    }

    /// Drops the entries that cancelled out.
    pub fn settle(&mut self) {
        self.months.retain(|_, c| *c != ResponseCounts::default());
        self.answers.retain(|_, n| *n != 0);
    }

    pub fn is_empty(&self) -> bool {
        self.months.is_empty() && self.answers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contract::EventKey;
    use chrono::{TimeDelta, TimeZone};

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, h, m, s)
            .single()
            .unwrap_or_default()
    }

    fn posting(rating: u8, when: DateTime<Utc>, id: &str) -> Posting {
        Posting {
            at: when,
            key: EventKey {
                source: "shop".into(),
                id: id.into(),
            },
            rating: Some(rating),
            courier: None,
            month: Rules::default().month_of(when),
        }
    }

    #[test]
    fn an_answer_of_exactly_the_sla_is_within_it_and_a_fraction_more_is_not() {
        let posted = at(10, 0, 0);
        let exact = AnswerTime::between(posted, posted + TimeDelta::hours(24));
        let over = AnswerTime::between(
            posted,
            posted + TimeDelta::hours(24) + TimeDelta::milliseconds(1),
        );
        let sla = 24 * 3600;
        assert!(exact.within(sla));
        assert_eq!(over.seconds, sla);
        assert!(!over.within(sla));
        let early = AnswerTime::between(posted, posted - TimeDelta::milliseconds(500));
        assert_eq!(early.seconds, -1);
        assert!(early.within(sla));
    }

    #[test]
    fn an_answer_moves_a_negative_review_out_of_the_unanswered_and_into_the_distribution() {
        let month = Rules::default().month_of(at(10, 0, 0));
        let before = ReviewMark {
            posting: Some(posting(1, at(10, 0, 0), "p")),
            answered_at: None,
        };
        let after = ReviewMark {
            answered_at: Some(at(10, 30, 0)),
            ..before.clone()
        };
        let mut delta = ResponseDelta::default();
        delta.add(&before, -1);
        delta.add(&after, 1);
        delta.settle();
        assert_eq!(
            delta.months.get(&month),
            Some(&ResponseCounts {
                reviews: 0,
                negative: 0,
                unanswered_negative: -1,
            })
        );
        let time = AnswerTime {
            seconds: 1800,
            whole: true,
        };
        assert_eq!(delta.answers.get(&(month, time)), Some(&1));
    }

    #[test]
    fn an_unposted_review_counts_nowhere_even_when_answered() {
        let mut delta = ResponseDelta::default();
        delta.add(
            &ReviewMark {
                posting: None,
                answered_at: Some(at(10, 0, 0)),
            },
            1,
        );
        assert!(delta.is_empty());
    }
}
