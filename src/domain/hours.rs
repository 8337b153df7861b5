//! Business hours: when the shop's operators work, so when the confirmation clock runs.
//!
//! A week of opening hours in the shop's zone (each day a list of `HH:MM-HH:MM` intervals,
//! `24:00` closing at midnight) and a list of closed dates. Working time between two instants
//! is the real time inside the opening intervals between them: each interval's local bounds
//! are turned into instants in the shop's zone, so across a DST change the clock counts the
//! minutes that really passed (a local time the change skips opens at the first instant after
//! the gap; an ambiguous one opens at its first occurrence and closes at its last).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// How far back [`BusinessHours::waited_since`] looks for working time before it decides that no
/// order can be over the SLA.
const SEARCH_DAYS: i64 = 400;

/// One opening interval of a day, local time; `close` `None` is midnight at the day's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    pub open: NaiveTime,
    pub close: Option<NaiveTime>,
}

/// The shop's opening hours: per weekday (Monday first) and the dates it is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusinessHours {
    pub week: [Vec<Opening>; 7],
    pub closed: BTreeSet<NaiveDate>,
}

/// The weekday names the settings use, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The index (Monday 0) of a weekday named short (`mon`) or in full (`monday`), any case.
pub fn weekday(name: &str) -> Option<usize> {
    let name = name.trim().to_ascii_lowercase();
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    (0..7).find(|&i| name == WEEKDAYS[i] || name == FULL[i])
}

impl BusinessHours {
    /// Parses one day's hours: `08:00-22:00`, `08:00-13:00,14:00-20:00`, `00:00-24:00`; an
    /// empty text or `closed` is a closed day. Intervals must not overlap.
    pub fn parse_day(text: &str) -> Result<Vec<Opening>, String> {
        // An en dash is how people often write a range.
        let text = text.trim().replace(['\u{2013}', '\u{2014}'], "-");
        let text = text.as_str();
        if text.is_empty() || text.eq_ignore_ascii_case("closed") {
            return Ok(Vec::new());
        }
        let time = |t: &str| -> Result<Option<NaiveTime>, String> {
            match t.trim() {
                "24:00" => Ok(None),
                t => NaiveTime::parse_from_str(t, "%H:%M")
                    .map(Some)
                    .map_err(|_| format!("`{t}` is not a time HH:MM (00:00 to 24:00)")),
            }
        };
        let mut out: Vec<Opening> = Vec::new();
        for part in text.split(',') {
            let (open, close) = part
                .split_once('-')
                .ok_or_else(|| format!("`{}` is not an interval HH:MM-HH:MM", part.trim()))?;
            let open = time(open)?.ok_or("an interval cannot open at 24:00")?;
            let close = time(close)?;
            if close.is_some_and(|c| c <= open) {
                return Err(format!(
                    "`{}` closes before it opens (write 24:00 for midnight)",
                    part.trim()
                ));
            }
            out.push(Opening { open, close });
        }
        out.sort_by_key(|o| o.open);
        for pair in out.windows(2) {
            if pair[0].close.is_none_or(|c| c > pair[1].open) {
                return Err(format!("the intervals of `{text}` overlap"));
            }
        }
        Ok(out)
    }

    /// The hours as the settings write them: `mon 08:00-22:00; …; sun closed; closed
    /// 2026-12-31`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = WEEKDAYS
            .iter()
            .zip(&self.week)
            .map(|(day, openings)| {
                let hours: Vec<String> = openings
                    .iter()
                    .map(|o| {
                        let close = o
                            .close
                            .map_or("24:00".to_owned(), |c| c.format("%H:%M").to_string());
                        format!("{}-{close}", o.open.format("%H:%M"))
                    })
                    .collect();
                match hours.is_empty() {
                    true => format!("{day} closed"),
                    false => format!("{day} {}", hours.join(",")),
                }
            })
            .collect();
        if !self.closed.is_empty() {
            let dates: Vec<String> = self.closed.iter().map(NaiveDate::to_string).collect();
            parts.push(format!("closed {}", dates.join(",")));
        }
        parts.join("; ")
    }

    /// The working intervals of one shop-zone day, as instants, in order.
    fn intervals(&self, zone: Tz, day: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.closed.contains(&day) {
            return Vec::new();
        }
        let openings = &self.week[day.weekday().num_days_from_monday() as usize];
        openings
            .iter()
            .filter_map(|o| {
                let open = instant(zone, day, o.open, true);
                let close = match o.close {
                    Some(c) => instant(zone, day, c, false),
                    None => instant(zone, day.succ_opt()?, NaiveTime::MIN, true),
                };
                (close > open).then_some((open, close))
            })
            .collect()
    }

    /// Working time from `from` to `to` (negative when `to` is earlier).
    pub fn working_time(&self, zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        if to < from {
            return -self.working_time(zone, to, from);
        }
        let last = to.with_timezone(&zone).date_naive();
        let mut day = from.with_timezone(&zone).date_naive();
        let mut total = TimeDelta::zero();
        while day <= last {
            for (open, close) in self.intervals(zone, day) {
                let (start, end) = (open.max(from), close.min(to));
                if end > start {
                    total += end - start;
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        total
    }

    /// The instant before which an order created and still waiting at `now` has waited more
    /// than `wait` of working time (the SLA, or the watch's horizon): the earliest `t` with
    /// `working_time(t, now) <= wait`. Orders created in the closed hours just before it have
    /// waited exactly `wait` (on time), so it moves back to the close of the working interval
    /// before them.
    pub fn waited_since(&self, zone: Tz, now: DateTime<Utc>, wait: TimeDelta) -> DateTime<Utc> {
        let mut remaining = wait;
        // Whether the wait ran out exactly at an opening: then the previous close is the answer.
        let mut exhausted = false;
        let mut day = now.with_timezone(&zone).date_naive();
        for _ in 0..SEARCH_DAYS {
            for (open, close) in self.intervals(zone, day).into_iter().rev() {
                if open >= now {
                    continue;
                }
                let end = close.min(now);
                if exhausted {
                    return end;
                }
                let available = end - open;
                if remaining < available {
                    return end - remaining;
                }
                remaining -= available;
                exhausted = remaining == TimeDelta::zero();
            }
            let Some(previous) = day.pred_opt() else {
                break;
            };
            day = previous;
        }
        // No earlier working time: nothing created before has waited longer than the SLA.
        DateTime::<Utc>::MIN_UTC
    }
}

/// The instant of a local time on a shop-zone day: a time the DST change skips is the first
/// instant after the gap; an ambiguous one is its first occurrence when `earliest`, else its
/// last.
fn instant(zone: Tz, day: NaiveDate, time: NaiveTime, earliest: bool) -> DateTime<Utc> {
    let local = day.and_time(time);
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => if earliest { a } else { b }.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: the first whole minute after it.
            (1..=24 * 60)
                .find_map(|m| {
                    zone.from_local_datetime(&(local + TimeDelta::minutes(m)))
                        .earliest()
                })
                .map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
        }
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

    fn every_day(text: &str) -> BusinessHours {
        let day = BusinessHours::parse_day(text).unwrap_or_default();
        BusinessHours {
            week: std::array::from_fn(|_| day.clone()),
            closed: BTreeSet::new(),
        }
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    #[test]
    fn a_day_is_written_as_intervals_and_a_malformed_one_says_why() {
        let day = BusinessHours::parse_day("14:00-20:00, 08:00-13:00").unwrap_or_default();
        assert_eq!(day.len(), 2);
        assert_eq!(
            day[0].open,
            NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default()
        );
        assert_eq!(
            BusinessHours::parse_day("00:00-24:00").map(|d| d[0].close),
            Ok(None)
        );
        assert_eq!(BusinessHours::parse_day("closed"), Ok(Vec::new()));
        assert_eq!(
            BusinessHours::parse_day("8:00\u{2013}22:00"),
            BusinessHours::parse_day("08:00-22:00"),
            "one-digit hours and an en dash read as written"
        );
        for (bad, why) in [
            ("8-22", "not a time"),
            ("22:00-08:00", "closes before it opens"),
            ("08:00-14:00,13:00-20:00", "overlap"),
            ("08:00", "not an interval"),
        ] {
            let e = BusinessHours::parse_day(bad).err().unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_clock_counts_only_the_opening_hours_across_the_night() {
        let hours = every_day("08:00-22:00");
        let moscow = chrono_tz::Europe::Moscow;
        // 21:55 to 08:20 next morning, Moscow (UTC+3): 5 + 20 minutes.
        let waited = hours.working_time(
            moscow,
            at("2026-12-01T18:55:00Z"),
            at("2026-12-02T05:20:00Z"),
        );
        assert_eq!(waited, TimeDelta::minutes(25));
        assert_eq!(
            hours.working_time(
                moscow,
                at("2026-12-02T05:20:00Z"),
                at("2026-12-01T18:55:00Z")
            ),
            TimeDelta::minutes(-25)
        );
    }

    #[test]
    fn across_a_dst_change_the_clock_counts_the_minutes_that_really_passed() {
        // A night shift 00:00-06:00 in Berlin: six local hours, but five real ones on the
        // night clocks go forward (29 March 2026) and seven on the night they go back (25
        // October 2026).
        let hours = every_day("00:00-06:00");
        let spring = hours.working_time(
            BERLIN,
            at("2026-03-28T22:00:00Z"),
            at("2026-03-29T12:00:00Z"),
        );
        assert_eq!(spring, TimeDelta::hours(5));
        let autumn = hours.working_time(
            BERLIN,
            at("2026-10-24T21:00:00Z"),
            at("2026-10-25T12:00:00Z"),
        );
        assert_eq!(autumn, TimeDelta::hours(7));
        // An order at 01:50 CET confirmed at 03:20 CEST waited 30 real minutes.
        let waited = hours.working_time(
            BERLIN,
            at("2026-03-29T00:50:00Z"),
            at("2026-03-29T01:20:00Z"),
        );
        assert_eq!(waited, TimeDelta::minutes(30));
    }

    #[test]
    fn the_sla_starts_where_the_working_time_before_now_reaches_it() {
        let hours = every_day("08:00-22:00");
        let moscow = chrono_tz::Europe::Moscow;
        let sla = TimeDelta::minutes(30);
        // At 08:20 the SLA reaches back 20 minutes into the day and 10 into the evening before.
        assert_eq!(
            hours.waited_since(moscow, at("2026-12-02T05:20:00Z"), sla),
            at("2026-12-01T18:50:00Z")
        );
        // At 08:30 it is used up at the opening: orders of the closed night waited exactly
        // 30 minutes, so the SLA starts at the evening's close.
        assert_eq!(
            hours.waited_since(moscow, at("2026-12-02T05:30:00Z"), sla),
            at("2026-12-01T19:00:00Z")
        );
        // During the day it is now minus the SLA.
        assert_eq!(
            hours.waited_since(moscow, at("2026-12-02T09:00:00Z"), sla),
            at("2026-12-02T08:30:00Z")
        );
        // For each answer, working_time(start, now) is the SLA and a second earlier exceeds it.
        for now in [
            "2026-12-02T05:20:00Z",
            "2026-12-02T05:30:00Z",
            "2026-12-02T09:00:00Z",
        ] {
            let now = at(now);
            let start = hours.waited_since(moscow, now, sla);
            assert_eq!(hours.working_time(moscow, start, now), sla);
            assert!(hours.working_time(moscow, start - TimeDelta::seconds(1), now) > sla);
        }
    }

    #[test]
    fn a_closed_date_stops_the_clock_for_the_whole_day() {
        let mut hours = every_day("08:00-22:00");
        hours
            .closed
            .insert(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default());
        let moscow = chrono_tz::Europe::Moscow;
        // 30 December 21:55 to 1 January 08:20.
        let waited = hours.working_time(
            moscow,
            at("2026-12-30T18:55:00Z"),
            at("2027-01-01T05:20:00Z"),
        );
        assert_eq!(waited, TimeDelta::minutes(25));
        assert!(
            hours.describe().ends_with("closed 2026-12-31"),
            "{}",
            hours.describe()
        );
    }
}
