//! What one claim adds to the maintained claims journal (`claims_journal_monthly`): the
//! rules of the journal, kept as signed deltas like the other maintained figures
//! ([`super::figures`]).
//!
//! Per shop-zone month and category, the journal counts the claims filed and resolved in the
//! month, the time to resolve of those resolved, and the claims open at month end by stage.
//! A claim counts once it is filed (with its category). It is open at the end of every month
//! from its filing month up to, not including, its resolution month; its stage at a month's
//! end is the stage of its latest `claim.updated` with event time before the month's end
//! (latest by `(time, source, id)`), `registered` when there is none.
//!
//! An open claim counts in months no event has reached yet (a claim filed in March and still
//! open is open at the end of every later month), so the open counts are kept as *changes*:
//! the month a claim starts being open in a stage gains one, the month it leaves that stage
//! (a later stage, or its resolution) loses one, and the claims open at a month's end are
//! the sum of the changes up to it. Only the months where a claim's state changes are
//! written; a month no claim changed in is never touched.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::contract::{Category, ClaimStage, EventKey};
use super::fact::whole_seconds;
use super::order::ClaimFacts;
use super::rules::Rules;

/// A claim as the journal reads it: its category and the instants and shop-zone months of
/// its filing and resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalClaim {
    pub category: Option<Category>,
    pub filed: Option<(DateTime<Utc>, NaiveDate)>,
    pub resolved: Option<(DateTime<Utc>, NaiveDate)>,
}

impl JournalClaim {
    /// The claim whose facts (in its order's projection) are `facts`, with its months under
    /// `rules`.
    pub fn of(facts: &ClaimFacts, rules: &Rules) -> JournalClaim {
        JournalClaim {
            category: facts.filed.as_ref().map(|f| f.data.category),
            filed: facts.filed.as_ref().map(|f| (f.at, rules.month_of(f.at))),
            resolved: facts
                .resolved
                .as_ref()
                .map(|f| (f.at, rules.month_of(f.at))),
        }
    }
}

/// One `claim.updated` of a claim, ordered as the journal picks the latest: by
/// `(time, source, id)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StageMark {
    pub at: DateTime<Utc>,
    pub key: EventKey,
    /// The shop-zone month of `at` (first day).
    pub month: NaiveDate,
    pub stage: ClaimStage,
}

/// Signed counts of one `(month, category)` of the journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalCounts {
    pub filed: i64,
    pub resolved: i64,
    /// The change, in this month, of the claims open at month end in each stage
    /// ([`ClaimStage::ALL`] order).
    pub open: [i64; 3],
}

impl JournalCounts {
    fn is_zero(&self) -> bool {
        *self == JournalCounts::default()
    }
}

/// Signed changes to the maintained journal. Zero entries are dropped by [`Self::settle`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalDelta {
    pub months: BTreeMap<(NaiveDate, Category), JournalCounts>,
    /// `(month of resolution, category, whole seconds to resolve)` → claims.
    pub resolve_seconds: BTreeMap<(NaiveDate, Category, i64), i64>,
}

impl JournalDelta {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) a claim whose `claim.updated` events are
    /// `stages`, in any order.
    pub fn add(&mut self, claim: &JournalClaim, stages: &[StageMark], sign: i64) {
        let (Some(category), Some((filed_at, filed))) = (claim.category, claim.filed) else {
            return;
        };
        self.counts(filed, category).filed += sign;
        let resolved = claim.resolved.map(|(at, month)| {
            self.counts(month, category).resolved += sign;
            let seconds = whole_seconds(filed_at, at);
            *self
                .resolve_seconds
                .entry((month, category, seconds))
                .or_default() += sign;
            month
        });
        if resolved.is_some_and(|r| r <= filed) {
            return; // resolved by the end of its filing month: never open at a month end
        }
        // The stage at each month end from the filing month on: the latest event up to it.
        let mut latest: BTreeMap<NaiveDate, &StageMark> = BTreeMap::new();
        for mark in stages {
            let month = mark.month.max(filed);
            match latest.get(&month) {
                Some(kept) if *kept >= mark => {}
                _ => {
                    latest.insert(month, mark);
                }
            }
        }
        // The claim is open from its filing month: in the stage of that month end, then in
        // each later month's where it changes, until the month it is resolved.
        let mut stage = ClaimStage::Registered;
        let mut counted = false;
        for (month, mark) in latest {
            if resolved.is_some_and(|r| month >= r) {
                break;
            }
            if month == filed {
                stage = mark.stage;
                continue;
            }
            if !counted {
                self.open(filed, category, stage, sign);
                counted = true;
            }
            if mark.stage != stage {
                self.open(month, category, stage, -sign);
                self.open(month, category, mark.stage, sign);
                stage = mark.stage;
            }
        }
        if !counted {
            self.open(filed, category, stage, sign);
        }
        if let Some(r) = resolved {
            self.open(r, category, stage, -sign);
        }
    }

    /// Drops the entries that cancelled out (a claim whose contribution did not change).
    pub fn settle(&mut self) {
        self.months.retain(|_, c| !c.is_zero());
        self.resolve_seconds.retain(|_, n| *n != 0);
    }

    pub fn is_empty(&self) -> bool {
        self.months.is_empty() && self.resolve_seconds.is_empty()
    }

    fn counts(&mut self, month: NaiveDate, category: Category) -> &mut JournalCounts {
        self.months.entry((month, category)).or_default()
    }

    fn open(&mut self, month: NaiveDate, category: Category, stage: ClaimStage, sign: i64) {
        let i = ClaimStage::ALL
            .iter()
            .position(|s| *s == stage)
            .unwrap_or_default();
        self.counts(month, category).open[i] += sign;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(s: &str) -> NaiveDate {
        format!("{s}-01").parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        format!("{s}Z").parse().unwrap()
    }

    fn claim(filed: &str, resolved: Option<&str>) -> JournalClaim {
        JournalClaim {
            category: Some(Category::Delivery),
            filed: Some((at(filed), month(&filed[..7]))),
            resolved: resolved.map(|r| (at(r), month(&r[..7]))),
        }
    }

    fn mark(time: &str, id: &str, stage: ClaimStage) -> StageMark {
        StageMark {
            at: at(time),
            key: EventKey {
                source: "s".into(),
                id: id.into(),
            },
            month: month(&time[..7]),
            stage,
        }
    }

    /// The claims open at each month end from `from` to `to`, per stage: the running sums
    /// of the changes, as the view reads them.
    fn open_at_ends(delta: &JournalDelta, months: &[&str]) -> Vec<[i64; 3]> {
        let mut sums = [0; 3];
        let mut out = Vec::new();
        let mut changes = delta.months.iter().peekable();
        for m in months {
            let m = month(m);
            while let Some(((at, _), c)) = changes.peek() {
                if *at > m {
                    break;
                }
                for (sum, change) in sums.iter_mut().zip(c.open) {
                    *sum += change;
                }
                changes.next();
            }
            out.push(sums);
        }
        out
    }

    use ClaimStage::{ActionTaken, Investigating, Registered};

    #[test]
    fn a_claim_is_open_in_its_latest_stage_at_each_month_end_until_the_month_it_is_resolved() {
        let c = claim("2026-01-20T10:00:00", Some("2026-04-02T10:00:00"));
        let stages = [
            mark("2026-02-10T00:00:00", "b", Investigating),
            mark("2026-02-01T00:00:00", "a", Registered),
            mark("2026-03-05T00:00:00", "c", ActionTaken),
        ];
        let mut d = JournalDelta::default();
        d.add(&c, &stages, 1);
        assert_eq!(
            open_at_ends(&d, &["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]),
            vec![[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]]
        );
        assert_eq!(d.months[&(month("2026-01"), Category::Delivery)].filed, 1);
        assert_eq!(
            d.months[&(month("2026-04"), Category::Delivery)].resolved,
            1
        );
        let seconds = (at("2026-04-02T10:00:00") - at("2026-01-20T10:00:00")).num_seconds();
        assert_eq!(
            d.resolve_seconds
                .get(&(month("2026-04"), Category::Delivery, seconds)),
            Some(&1)
        );
    }

    #[test]
    fn a_stage_before_the_filing_month_counts_from_the_filing_month_and_an_unresolved_claim_stays_open(
    ) {
        let c = claim("2026-03-01T00:00:00", None);
        let stages = [mark("2026-01-05T00:00:00", "a", Investigating)];
        let mut d = JournalDelta::default();
        d.add(&c, &stages, 1);
        assert_eq!(
            open_at_ends(&d, &["2026-02", "2026-03", "2027-12"]),
            vec![[0, 0, 0], [0, 1, 0], [0, 1, 0]]
        );
    }

    #[test]
    fn a_claim_resolved_in_its_filing_month_is_never_open_and_one_without_a_filing_counts_nothing()
    {
        let mut d = JournalDelta::default();
        d.add(
            &claim("2026-03-01T00:00:00", Some("2026-03-30T00:00:00")),
            &[mark("2026-03-02T00:00:00", "a", ActionTaken)],
            1,
        );
        assert!(d.months.values().all(|c| c.open == [0, 0, 0]));
        let unfiled = JournalClaim {
            filed: None,
            ..claim("2026-03-01T00:00:00", Some("2026-03-30T00:00:00"))
        };
        let mut none = JournalDelta::default();
        none.add(&unfiled, &[], 1);
        assert!(none.is_empty());
    }

    #[test]
    fn within_a_month_the_latest_stage_by_time_then_source_and_id_wins_in_any_order() {
        let c = claim("2026-01-01T00:00:00", None);
        let same_time = [
            mark("2026-02-03T00:00:00", "z", ActionTaken),
            mark("2026-02-03T00:00:00", "a", Investigating),
        ];
        let mut reversed = same_time.clone();
        reversed.reverse();
        for stages in [same_time, reversed] {
            let mut d = JournalDelta::default();
            d.add(&c, &stages, 1);
            assert_eq!(
                open_at_ends(&d, &["2026-01", "2026-02"]),
                vec![[1, 0, 0], [0, 0, 1]]
            );
        }
    }

    #[test]
    fn a_late_stage_retracts_the_old_contribution_and_adds_the_new_one() {
        let c = claim("2026-01-10T00:00:00", Some("2026-05-01T00:00:00"));
        let before = [mark("2026-02-01T00:00:00", "a", Investigating)];
        let after = [
            mark("2026-02-01T00:00:00", "a", Investigating),
            mark("2026-03-15T00:00:00", "b", ActionTaken),
        ];
        let mut d = JournalDelta::default();
        d.add(&c, &before, -1);
        d.add(&c, &after, 1);
        d.settle();
        assert!(d.resolve_seconds.is_empty());
        assert_eq!(
            d.months.into_iter().collect::<Vec<_>>(),
            vec![
                (
                    (month("2026-03"), Category::Delivery),
                    JournalCounts {
                        open: [0, -1, 1],
                        ..JournalCounts::default()
                    }
                ),
                (
                    (month("2026-05"), Category::Delivery),
                    JournalCounts {
                        open: [0, 1, -1],
                        ..JournalCounts::default()
                    }
                ),
            ]
        );
    }
}
