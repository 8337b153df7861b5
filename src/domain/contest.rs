//! The friendly-driver contest's tallies: the smileys per month, courier and the team the
//! courier was in at each smiley's time, kept as signed deltas like the other maintained
//! figures ([`super::figures`]), so the monthly views sum a month's tallies instead of
//! looking up every smiley's team.
//!
//! A smiley is yellow (a review rated at least `rules.smiley_min_rating` naming the courier)
//! or red (a violation). It counts for the team of the courier's latest rostering, by
//! `(time, source, id)`, at or before the smiley's time; with no such rostering it counts for
//! no team (the courier's own figures still count it). A late rostering moves the courier's
//! smileys from its time on (up to the courier's next rostering) to its team; a review whose
//! posting is replaced by an earlier one moves its smiley.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use super::contract::{EventKey, ReviewPosted};
use super::entities::EntityBatch;
use super::fact::Fact;
use super::rules::Rules;

/// One rostering of a courier, ordered as the contest picks the latest: by `(time, source,
/// id)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rostering {
    pub at: DateTime<Utc>,
    pub key: EventKey,
    pub team: String,
}

/// A smiley's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Colour {
    Yellow,
    Red,
}

/// One smiley of a courier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Smiley {
    pub colour: Colour,
    /// What it comes from: the review id (yellow) or the violation's `source`/`id` (red).
    pub reference: String,
    pub at: DateTime<Utc>,
    /// The shop-zone month of `at` (first day).
    pub month: NaiveDate,
}

/// A review's posting as the contest reads it: its stamp (the earliest posting of a review
/// is the one that counts) and what makes it a smiley.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub at: DateTime<Utc>,
    pub key: EventKey,
    pub rating: Option<u8>,
    pub courier: Option<String>,
    /// The shop-zone month of `at` (first day).
    pub month: NaiveDate,
}

impl Posting {
    /// The posting a `review.posted` event makes, its month in the shop's zone.
    pub fn of(posted: &Fact<ReviewPosted>, rules: &Rules) -> Posting {
        Posting {
            at: posted.at,
            key: posted.key.clone(),
            rating: Some(posted.data.rating.get()),
            courier: posted.data.courier_id.as_ref().map(|c| c.to_string()),
            month: rules.month_of(posted.at),
        }
    }

    /// Whether this posting comes before `other` (by `(time, source, id)`): of a review's
    /// postings, the earliest is the one that counts.
    pub fn precedes(&self, other: &Posting) -> bool {
        (&self.at, &self.key) < (&other.at, &other.key)
    }

    /// The yellow smiley this posting of `review_id` is, with its courier: rated at least
    /// `rules.smiley_min_rating` and naming a courier.
    pub fn smiley(&self, review_id: &str, rules: &Rules) -> Option<(&str, Smiley)> {
        let courier = self.courier.as_deref()?;
        let yellow = self.rating? >= rules.smiley_min_rating;
        yellow.then(|| {
            let smiley = Smiley {
                colour: Colour::Yellow,
                reference: review_id.to_owned(),
                at: self.at,
                month: self.month,
            };
            (courier, smiley)
        })
    }
}

/// What one batch changes of the contest, per courier: the smileys it adds (reviews newly
/// posted, violations), the stored ones it retracts (a review whose stored posting an
/// earlier one replaces), and its new rosterings, which move the courier's stored smileys
/// from the earliest of them on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContestChange {
    pub added: BTreeMap<String, Vec<Smiley>>,
    pub retracted: BTreeMap<String, Vec<Smiley>>,
    pub rosterings: BTreeMap<String, Vec<Rostering>>,
}

impl ContestChange {
    /// The change `batch` makes, given the stored postings of its reviews (by review id).
    pub fn of(batch: &EntityBatch, stored: &HashMap<String, Posting>, rules: &Rules) -> Self {
        let mut change = ContestChange::default();
        for (review_id, review) in &batch.reviews {
            let Some(p) = &review.posted else { continue };
            let new = Posting::of(p, rules);
            if let Some(old) = stored.get(review_id) {
                if !new.precedes(old) {
                    continue; // the stored posting is the earliest: nothing changes
                }
                if let Some((courier, smiley)) = old.smiley(review_id, rules) {
                    push(&mut change.retracted, courier, smiley);
                }
            }
            if let Some((courier, smiley)) = new.smiley(review_id, rules) {
                push(&mut change.added, courier, smiley);
            }
        }
        for (courier, c) in &batch.couriers {
            for (at, key) in c.violations.keys() {
                let smiley = Smiley {
                    colour: Colour::Red,
                    reference: format!("{} {}", key.source, key.id),
                    at: *at,
                    month: rules.month_of(*at),
                };
                push(&mut change.added, courier, smiley);
            }
            if !c.rosters.is_empty() {
                let rosterings = c.rosters.iter().map(|((at, key), r)| Rostering {
                    at: *at,
                    key: key.clone(),
                    team: r.team_id.to_string(),
                });
                change
                    .rosterings
                    .insert(courier.clone(), rosterings.collect());
            }
        }
        change
    }

    /// The couriers the change touches, sorted (the order they are locked in).
    pub fn couriers(&self) -> Vec<&str> {
        let mut couriers: Vec<&str> = self.added.keys().map(String::as_str).collect();
        couriers.extend(self.retracted.keys().map(String::as_str));
        couriers.extend(self.rosterings.keys().map(String::as_str));
        couriers.sort_unstable();
        couriers.dedup();
        couriers
    }

    /// From when each courier with new rosterings has stored smileys whose team may change.
    pub fn since(&self) -> BTreeMap<&str, DateTime<Utc>> {
        self.rosterings
            .iter()
            .filter_map(|(courier, r)| Some((courier.as_str(), r.iter().map(|r| r.at).min()?)))
            .collect()
    }

    /// Adds to `delta` the change of `courier`'s tallies: its stored rosterings are
    /// `stored`, its stored smileys from [`Self::since`] on are `window`. Those smileys and
    /// the retracted ones leave the teams of the stored rosterings; those smileys that stay
    /// and the added ones join the teams of all rosterings.
    pub fn tally(
        &self,
        courier: &str,
        stored: Vec<Rostering>,
        window: Vec<Smiley>,
        delta: &mut TallyDelta,
    ) {
        let none = Vec::new();
        let retracted = self.retracted.get(courier).unwrap_or(&none);
        let gone: HashSet<(Colour, &str)> = retracted
            .iter()
            .map(|s| (s.colour, s.reference.as_str()))
            .collect();
        let kept: Vec<Smiley> = window
            .into_iter()
            .filter(|s| !gone.contains(&(s.colour, s.reference.as_str())))
            .collect();
        delta.add(courier, &kept, &stored, -1);
        delta.add(courier, retracted, &stored, -1);
        let mut all = stored;
        all.extend(self.rosterings.get(courier).into_iter().flatten().cloned());
        delta.add(courier, &kept, &all, 1);
        delta.add(courier, self.added.get(courier).unwrap_or(&none), &all, 1);
    }
}

fn push(map: &mut BTreeMap<String, Vec<Smiley>>, courier: &str, smiley: Smiley) {
    map.entry(courier.to_owned()).or_default().push(smiley);
}

/// The team a courier with `rosters` (in any order) was in at `at`: its latest rostering at
/// or before it.
pub fn team_at(rosters: &[Rostering], at: DateTime<Utc>) -> Option<&str> {
    rosters
        .iter()
        .filter(|r| r.at <= at)
        .max()
        .map(|r| r.team.as_str())
}

/// Signed yellow and red counts of one `(month, courier, team)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub yellow: i64,
    pub red: i64,
}

/// Signed changes to the maintained tallies, keyed by `(month, courier, team)`; `None` is no
/// team.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyDelta {
    pub tallies: BTreeMap<(NaiveDate, String, Option<String>), Tally>,
}

impl TallyDelta {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) `smileys` of `courier`, each for its team
    /// under `rosters`.
    pub fn add(&mut self, courier: &str, smileys: &[Smiley], rosters: &[Rostering], sign: i64) {
        for s in smileys {
            let team = team_at(rosters, s.at).map(str::to_owned);
            let tally = self
                .tallies
                .entry((s.month, courier.to_owned(), team))
                .or_default();
            match s.colour {
                Colour::Yellow => tally.yellow += sign,
                Colour::Red => tally.red += sign,
            }
        }
    }

    /// Drops the entries that cancelled out (smileys whose team did not change).
    pub fn settle(&mut self) {
        self.tallies.retain(|_, t| *t != Tally::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        format!("{s}Z").parse().unwrap()
    }

    fn rostering(time: &str, id: &str, team: &str) -> Rostering {
        Rostering {
            at: at(time),
            key: EventKey {
                source: "s".into(),
                id: id.into(),
            },
            team: team.into(),
        }
    }

    fn smiley(time: &str, reference: &str) -> Smiley {
        Smiley {
            colour: Colour::Yellow,
            reference: reference.into(),
            at: at(time),
            month: format!("{}-01", &time[..7]).parse().unwrap(),
        }
    }

    #[test]
    fn a_smiley_counts_for_the_latest_rostering_at_or_before_it_and_ties_go_to_the_greater_key() {
        let rosters = [
            rostering("2026-10-01T00:00:00", "b", "T-2"),
            rostering("2026-10-01T00:00:00", "a", "T-1"),
            rostering("2026-10-20T00:00:00", "c", "T-3"),
        ];
        assert_eq!(team_at(&rosters, at("2026-09-30T23:59:59")), None);
        assert_eq!(team_at(&rosters, at("2026-10-01T00:00:00")), Some("T-2"));
        assert_eq!(team_at(&rosters, at("2026-10-19T00:00:00")), Some("T-2"));
        assert_eq!(team_at(&rosters, at("2026-10-20T00:00:00")), Some("T-3"));
    }

    fn posted(
        review: &str,
        id: &str,
        rating: u8,
        courier: &str,
        time: &str,
    ) -> crate::domain::Event {
        use crate::domain::event::{EventKind, Id, Rating, ReviewPosted};
        crate::domain::Event {
            key: EventKey {
                source: "s".into(),
                id: id.into(),
            },
            time: at(time),
            kind: EventKind::ReviewPosted(ReviewPosted {
                review_id: Id::parse(review).unwrap(),
                rating: Rating::parse(rating.into()).unwrap(),
                order_id: None,
                customer_id: None,
                courier_id: Some(Id::parse(courier).unwrap()),
                text: None,
            }),
        }
    }

    #[test]
    fn only_an_earlier_posting_moves_a_stored_review_and_only_a_rating_at_the_threshold_is_yellow()
    {
        let rules = Rules::default();
        let stored = Posting {
            at: at("2026-10-10T00:00:00"),
            key: EventKey {
                source: "s".into(),
                id: "old".into(),
            },
            rating: Some(rules.smiley_min_rating),
            courier: Some("D-1".into()),
            month: "2026-10-01".parse().unwrap(),
        };
        let postings = HashMap::from([("R-1".to_owned(), stored)]);
        let later = EntityBatch::fold([posted("R-1", "new", 5, "D-2", "2026-10-11T00:00:00")]);
        assert_eq!(
            ContestChange::of(&later, &postings, &rules),
            ContestChange::default()
        );
        let earlier = EntityBatch::fold([posted("R-1", "new", 3, "D-2", "2026-10-09T00:00:00")]);
        let change = ContestChange::of(&earlier, &postings, &rules);
        assert_eq!(
            change.retracted.keys().collect::<Vec<_>>(),
            vec!["D-1"],
            "the stored posting's smiley leaves"
        );
        assert!(change.added.is_empty(), "rated 3: no smiley");
        assert_eq!(change.couriers(), vec!["D-1"]);
    }

    #[test]
    fn a_late_rostering_moves_only_the_smileys_from_its_time_on() {
        let before = [rostering("2026-10-01T00:00:00", "a", "T-1")];
        let mut after = before.to_vec();
        after.push(rostering("2026-10-15T00:00:00", "b", "T-2"));
        let smileys = [
            smiley("2026-10-10T00:00:00", "R-1"),
            smiley("2026-10-16T00:00:00", "R-2"),
        ];
        let mut d = TallyDelta::default();
        d.add("D-1", &smileys, &before, -1);
        d.add("D-1", &smileys, &after, 1);
        d.settle();
        let october: NaiveDate = "2026-10-01".parse().unwrap();
        assert_eq!(
            d.tallies.into_iter().collect::<Vec<_>>(),
            vec![
                (
                    (october, "D-1".into(), Some("T-1".into())),
                    Tally { yellow: -1, red: 0 }
                ),
                (
                    (october, "D-1".into(), Some("T-2".into())),
                    Tally { yellow: 1, red: 0 }
                ),
            ]
        );
    }
}
