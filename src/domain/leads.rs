//! What one lead adds to the maintained lead base (`lead_base_monthly`): the rules of the
//! lead base, kept as signed deltas per month like the claims journal ([`super::journal`]).
//!
//! A lead counts from the shop-zone month of its capture (its earliest `lead.captured`, by
//! `(time, source, id)`). At each month end it has the temperature of its latest event
//! (capture or change, latest by `(time, source, id)`) before that end; events before the
//! capture month count at the capture month. A lead is converted in the month of its
//! customer's first order when that order was placed at or after the capture.
//!
//! The leads at a month end are the leads of every earlier month too, so the counts are kept
//! as *changes*: the capture month gains the lead in its temperature, and a later month
//! where its temperature changes moves it from the old one to the new one. The view runs
//! the changes up to each month end. The months a lead event falls in are counted as well:
//! they decide how far the view's months run.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::contract::{EventKey, Temperature};
use super::customers::CustomerOrder;
use super::entities::Lead;
use super::rules::Rules;

/// One event of a lead (a capture or a change), ordered as the base picks the latest: by
/// `(time, source, id)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeadMark {
    pub at: DateTime<Utc>,
    pub key: EventKey,
    /// The shop-zone month of `at` (first day).
    pub month: NaiveDate,
    pub temperature: Temperature,
}

/// A lead's capture: its earliest `lead.captured` and the customer that event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub at: DateTime<Utc>,
    pub key: EventKey,
    /// The shop-zone month of `at` (first day).
    pub month: NaiveDate,
    pub customer_id: Option<String>,
}

impl Capture {
    /// Whether a customer's first order `first` converts the lead: placed at or after the
    /// capture by the customer the capture names.
    pub fn converted_by(&self, first: &CustomerOrder) -> bool {
        self.customer_id.is_some() && first.at >= self.at
    }
}

/// A lead as the lead base reads it: its capture and every event's temperature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadTrail {
    pub capture: Option<Capture>,
    pub marks: Vec<LeadMark>,
}

impl LeadTrail {
    /// The trail once `batch`'s events of the lead join the stored ones (an event already
    /// in the trail is not added twice).
    pub fn with(&self, batch: &Lead, rules: &Rules) -> LeadTrail {
        let mark = |at: DateTime<Utc>, key: &EventKey, temperature: Temperature| LeadMark {
            at,
            key: key.clone(),
            month: rules.month_of(at),
            temperature,
        };
        let mut marks = self.marks.clone();
        marks.extend(
            batch
                .captures
                .iter()
                .map(|((at, key), t)| mark(*at, key, *t)),
        );
        marks.extend(
            batch
                .changes
                .iter()
                .map(|((at, key), d)| mark(*at, key, d.temperature)),
        );
        marks.sort();
        marks.dedup_by(|a, b| (a.at, &a.key) == (b.at, &b.key));
        let offered = batch.captured.as_ref().map(|c| Capture {
            at: c.at,
            key: c.key.clone(),
            month: rules.month_of(c.at),
            customer_id: c.data.customer_id.as_ref().map(|v| v.as_str().to_owned()),
        });
        let capture = match (&self.capture, offered) {
            (Some(kept), Some(new)) if (new.at, &new.key) < (kept.at, &kept.key) => Some(new),
            (Some(kept), _) => Some(kept.clone()),
            (None, new) => new,
        };
        LeadTrail { capture, marks }
    }
}

/// Signed counts of one month of the lead base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeadCounts {
    /// Leads captured in the month.
    pub new_leads: i64,
    /// The change, in this month, of the leads at month end in each temperature
    /// ([`Temperature::ALL`] order).
    pub temperature: [i64; 3],
    /// Leads converted in the month (their customer's first order falls in it).
    pub converted: i64,
    /// Lead events (captures and changes) with a time in the month.
    pub events: i64,
}

impl LeadCounts {
    fn is_zero(&self) -> bool {
        *self == LeadCounts::default()
    }
}

/// Signed changes to the maintained lead base. Zero months are dropped by [`Self::settle`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadDelta {
    pub months: BTreeMap<NaiveDate, LeadCounts>,
}

impl LeadDelta {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) a lead's events and its temperature at
    /// each month end from its capture on (not its conversion: see [`Self::convert`]).
    pub fn add(&mut self, lead: &LeadTrail, sign: i64) {
        for mark in &lead.marks {
            self.counts(mark.month).events += sign;
        }
        let Some(capture) = &lead.capture else {
            return;
        };
        self.counts(capture.month).new_leads += sign;
        // The latest event of each month from the capture month on (earlier ones count there).
        let mut latest: BTreeMap<NaiveDate, &LeadMark> = BTreeMap::new();
        for mark in &lead.marks {
            let month = mark.month.max(capture.month);
            match latest.get(&month) {
                Some(kept) if *kept >= mark => {}
                _ => {
                    latest.insert(month, mark);
                }
            }
        }
        let mut now: Option<Temperature> = None;
        for (month, mark) in latest {
            if now == Some(mark.temperature) {
                continue;
            }
            let counts = self.counts(month);
            if let Some(before) = now {
                counts.temperature[index(before)] -= sign;
            }
            counts.temperature[index(mark.temperature)] += sign;
            now = Some(mark.temperature);
        }
    }

    /// Adds or retracts a lead's conversion: `capture` converted by its customer's first
    /// order `first`, counted in the month of that order.
    pub fn convert(&mut self, capture: Option<&Capture>, first: Option<&CustomerOrder>, sign: i64) {
        if let (Some(capture), Some(first)) = (capture, first) {
            if capture.converted_by(first) {
                self.counts(first.month).converted += sign;
            }
        }
    }

    /// Drops the months whose changes cancel out.
    pub fn settle(&mut self) {
        self.months.retain(|_, c| !c.is_zero());
    }

    fn counts(&mut self, month: NaiveDate) -> &mut LeadCounts {
        self.months.entry(month).or_default()
    }
}

fn index(t: Temperature) -> usize {
    match t {
        Temperature::Cold => 0,
        Temperature::Warm => 1,
        Temperature::Hot => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contract::{Id, LeadCaptured, LeadChanged};
    use chrono::TimeZone;

    fn at(month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn key(id: &str) -> EventKey {
        EventKey {
            source: "s".into(),
            id: id.into(),
        }
    }

    fn first(m: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, 1).expect("valid")
    }

    fn id(s: &str) -> Id {
        serde_json::from_value(serde_json::json!(s)).expect("an id")
    }

    fn lead(
        captures: &[(DateTime<Utc>, &str, Temperature)],
        changes: &[(DateTime<Utc>, &str, Temperature)],
    ) -> Lead {
        let mut l = Lead::default();
        for (t, k, temperature) in captures {
            l.apply_captured(
                *t,
                key(k),
                LeadCaptured {
                    lead_id: id("L"),
                    temperature: *temperature,
                    source: None,
                    customer_id: Some(id("C")),
                },
            );
        }
        for (t, k, temperature) in changes {
            l.apply_changed(
                *t,
                key(k),
                LeadChanged {
                    lead_id: id("L"),
                    temperature: *temperature,
                },
            );
        }
        l
    }

    fn delta(trail: &LeadTrail) -> LeadDelta {
        let mut d = LeadDelta::default();
        d.add(trail, 1);
        d.settle();
        d
    }

    #[test]
    fn a_lead_counts_from_its_capture_month_in_the_temperature_of_each_month_end() {
        use Temperature::*;
        let rules = Rules::default();
        let l = lead(
            &[(at(3, 10), "c", Cold)],
            &[
                (at(3, 20), "w", Warm),
                (at(5, 2), "h", Hot),
                (at(6, 2), "h2", Hot),
            ],
        );
        let d = delta(&LeadTrail::default().with(&l, &rules));
        let march = d.months[&first(3)];
        assert_eq!(
            (march.new_leads, march.temperature, march.events),
            (1, [0, 1, 0], 2)
        );
        assert!(
            !d.months.contains_key(&first(4)),
            "no event, no change in April"
        );
        assert_eq!(d.months[&first(5)].temperature, [0, -1, 1]);
        assert_eq!(
            d.months[&first(6)].temperature,
            [0, 0, 0],
            "hot again: no change"
        );
        assert_eq!(d.months[&first(6)].events, 1);
    }

    #[test]
    fn a_change_before_the_capture_counts_at_the_capture_month_and_a_later_capture_is_an_event() {
        use Temperature::*;
        let rules = Rules::default();
        // Changed hot in February, captured cold in March: hot at March's end (the change is
        // earlier than the capture, so the capture is the latest). A second capture in April
        // (warm) changes the temperature like a change.
        let l = lead(
            &[(at(3, 10), "c", Cold), (at(4, 10), "c2", Warm)],
            &[(at(2, 10), "h", Hot)],
        );
        let d = delta(&LeadTrail::default().with(&l, &rules));
        assert_eq!(d.months[&first(2)].events, 1);
        assert_eq!(d.months[&first(2)].new_leads, 0);
        assert_eq!(d.months[&first(3)].temperature, [1, 0, 0]);
        assert_eq!(d.months[&first(4)].temperature, [-1, 1, 0]);
    }

    #[test]
    fn an_earlier_capture_moves_the_lead_and_retracting_the_old_trail_cancels_it() {
        use Temperature::*;
        let rules = Rules::default();
        let stored = LeadTrail::default().with(&lead(&[(at(5, 10), "late", Warm)], &[]), &rules);
        let batch = lead(&[(at(3, 10), "early", Cold)], &[]);
        let after = stored.with(&batch, &rules);
        assert_eq!(after.capture.as_ref().map(|c| c.month), Some(first(3)));
        let mut d = LeadDelta::default();
        d.add(&stored, -1);
        d.add(&after, 1);
        d.settle();
        assert_eq!(d.months[&first(3)].new_leads, 1);
        assert_eq!(d.months[&first(3)].temperature, [1, 0, 0]);
        assert_eq!(d.months[&first(5)].new_leads, -1);
        assert_eq!(
            d.months[&first(5)].temperature,
            [-1, 0, 0],
            "May: a move from cold to warm instead of a new warm lead"
        );
        let mut back = LeadDelta::default();
        back.add(&after, 1);
        back.add(&after, -1);
        back.settle();
        assert!(back.months.is_empty());
    }

    #[test]
    fn a_first_order_at_or_after_the_capture_converts_the_lead_in_its_month() {
        let capture = Capture {
            at: at(3, 10),
            key: key("c"),
            month: first(3),
            customer_id: Some("C".into()),
        };
        let order = |t: DateTime<Utc>| CustomerOrder {
            at: t,
            order_id: "A".into(),
            month: Rules::default().month_of(t),
            channel: None,
        };
        let mut d = LeadDelta::default();
        d.convert(Some(&capture), Some(&order(at(3, 10))), 1);
        d.convert(Some(&capture), Some(&order(at(3, 9))), 1);
        let unnamed = Capture {
            customer_id: None,
            ..capture.clone()
        };
        d.convert(Some(&unnamed), Some(&order(at(4, 1))), 1);
        assert_eq!(d.months[&first(3)].converted, 1);
        assert!(!d.months.contains_key(&first(4)));
    }

    #[test]
    fn a_stored_trail_is_not_counted_twice_when_its_events_come_again() {
        use Temperature::*;
        let rules = Rules::default();
        let l = lead(&[(at(3, 10), "c", Cold)], &[(at(3, 20), "w", Warm)]);
        let once = LeadTrail::default().with(&l, &rules);
        assert_eq!(once.with(&l, &rules), once);
    }
}
