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

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::contract::EventKey;

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
