//! Why an order has its verdict: each criterion of the rules with its outcome, the value
//! measured against the rule's value in force, and the fact that decided it. A pure function
//! of the order's projection, the rules and the instant asked about (which only says whether
//! a verdict is still provisional); the store adds where each deciding fact was read.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use super::event::EventKey;
use super::fact::Fact;
use super::order::{Assessment, OrderProjection, Verdict};
use super::rules::Rules;

/// How a criterion stands for the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The facts that decide it have not arrived yet.
    NotYetKnown,
}

/// The fact that decided a criterion (the store adds where it was read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deciding {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub time: DateTime<Utc>,
    pub source: String,
    pub id: String,
    /// Where the stored copy was read and when it was stored (`None` until the store says).
    pub read: Option<Location>,
}

/// Where an event was read from, and when it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub stored_at: DateTime<Utc>,
}

impl Deciding {
    fn of<T>(event_type: &'static str, fact: &Fact<T>) -> Deciding {
        let EventKey { source, id } = &fact.key;
        Deciding {
            event_type,
            time: fact.at,
            source: source.clone(),
            id: id.clone(),
            read: None,
        }
    }
}

/// One criterion of the rules, judged for the order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    /// `confirmation`, `on_time`, `in_full`, `claims` or `cancelled`.
    pub name: &'static str,
    pub outcome: Outcome,
    /// What was measured, in words ("confirmed after 41 min").
    pub measured: String,
    /// The rule's value in force ("SLA 30 min").
    pub rule: String,
    pub deciding: Option<Deciding>,
}

/// Whether the verdict can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Maturity {
    /// Not fulfilled or cancelled yet: the verdict waits for the delivery.
    Open,
    /// Delivered: a claim filed up to `until` (the end of the claim window) can still
    /// change it.
    Provisional { until: DateTime<Utc> },
    /// Settled: the claim window is over, or the order was cancelled.
    Final,
}

/// Why an order stands where it does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub order_id: String,
    pub verdict: Verdict,
    pub maturity: Maturity,
    /// The shop-zone day whose figures the order counts for (its delivery day).
    pub counts_for_day: Option<NaiveDate>,
    pub criteria: Vec<Criterion>,
    /// The periods whose figure counts the order differently today than when they were
    /// first complete, each with the fact that changed it.
    pub restatements: Vec<super::restatement::Restatement>,
}

/// Explains `order` under `rules`, as of `now`.
pub fn explain(order: &OrderProjection, rules: &Rules, now: DateTime<Utc>) -> Explanation {
    let assessment = order.assess(rules);
    let maturity = match (assessment.verdict, assessment.final_at) {
        (Verdict::Cancelled, _) => Maturity::Final,
        (Verdict::Open, _) | (_, None) => Maturity::Open,
        (_, Some(until)) if now < until => Maturity::Provisional { until },
        _ => Maturity::Final,
    };
    let criteria = vec![
        confirmation(order, &assessment, rules),
        on_time(order, &assessment, rules),
        in_full(order, &assessment),
        claims(order, &assessment, rules),
        cancelled(order),
    ];
    Explanation {
        order_id: order.order_id.clone(),
        verdict: assessment.verdict,
        maturity,
        counts_for_day: assessment.delivered_day,
        criteria,
        restatements: super::restatement::restatements(order, rules),
    }
}

// Each criterion's outcome is the assessment's component (the rules are applied in
// `OrderProjection::assess` only); these functions say what was measured and which fact
// decided it.

fn confirmation(order: &OrderProjection, a: &Assessment, rules: &Rules) -> Criterion {
    let rule = match rules.business_hours {
        Some(_) => format!(
            "SLA {} of working time (rules.business_hours)",
            duration(rules.confirmation_sla)
        ),
        None => format!("SLA {}", duration(rules.confirmation_sla)),
    };
    let deciding = order
        .confirmed
        .as_ref()
        .map(|f| Deciding::of("order.confirmed", f));
    let (outcome, measured) = match (a.confirmation_latency, &order.confirmed) {
        (Some(latency), _) => (
            pass_if(a.components.confirmed_in_sla),
            format!("confirmed after {}", duration(latency)),
        ),
        (None, Some(_)) => (
            Outcome::NotYetKnown,
            "confirmed; the order's creation has not arrived".to_owned(),
        ),
        (None, None) => (Outcome::NotYetKnown, "not confirmed".to_owned()),
    };
    Criterion {
        name: "confirmation",
        outcome,
        measured,
        rule,
        deciding,
    }
}

fn on_time(order: &OrderProjection, a: &Assessment, rules: &Rules) -> Criterion {
    let rule = match rules.delivery_tolerance {
        t if t == TimeDelta::zero() => "delivered by the end of the promised window".to_owned(),
        t => format!(
            "delivered by the end of the promised window, {} tolerance",
            duration(t)
        ),
    };
    let Some(delivered) = &order.delivered else {
        return Criterion {
            name: "on_time",
            outcome: Outcome::NotYetKnown,
            measured: "not delivered".into(),
            rule,
            deciding: None,
        };
    };
    let (outcome, measured) = match (a.delivery_lateness, &order.created) {
        (Some(late), _) if late > TimeDelta::zero() => (
            pass_if(a.components.on_time),
            format!("delivered {} after the window", duration(late)),
        ),
        (Some(early), _) => (
            pass_if(a.components.on_time),
            format!("delivered {} before the window's end", duration(-early)),
        ),
        (None, Some(_)) => (Outcome::Pass, "delivered; no promised window".to_owned()),
        (None, None) => (
            Outcome::NotYetKnown,
            "delivered; the order's creation has not arrived".to_owned(),
        ),
    };
    Criterion {
        name: "on_time",
        outcome,
        measured,
        rule,
        deciding: Some(Deciding::of("order.delivered", delivered)),
    }
}

fn in_full(order: &OrderProjection, a: &Assessment) -> Criterion {
    let rule = "every ordered item delivered (per SKU when the delivery lists them)".to_owned();
    let Some(fact) = &order.delivered else {
        return Criterion {
            name: "in_full",
            outcome: Outcome::NotYetKnown,
            measured: "not delivered".into(),
            rule,
            deciding: None,
        };
    };
    let (outcome, measured) = match (a.items_ordered, a.items_delivered) {
        (None, _) => (
            Outcome::NotYetKnown,
            "delivered; the order's creation has not arrived".to_owned(),
        ),
        (Some(_), None) => (
            Outcome::Pass,
            "delivered; no item count reported".to_owned(),
        ),
        (Some(ordered), Some(got)) => (
            pass_if(a.components.in_full),
            format!("{got} of {ordered} items delivered"),
        ),
    };
    Criterion {
        name: "in_full",
        outcome,
        measured,
        rule,
        deciding: Some(Deciding::of("order.delivered", fact)),
    }
}

fn claims(order: &OrderProjection, a: &Assessment, rules: &Rules) -> Criterion {
    let rule = format!(
        "no claim filed up to {} after the delivery",
        duration(rules.claim_window)
    );
    let delivered_at = order.delivered.as_ref().map(|d| d.at);
    let filed: Vec<_> = order
        .claims
        .values()
        .filter_map(|c| c.filed.as_ref())
        .collect();
    // The claims the verdict counts, earliest first (by time, then key).
    let mut counted: Vec<_> = filed
        .iter()
        .filter(|f| rules.claim_counts_for_verdict(delivered_at, f.at))
        .collect();
    counted.sort_by(|x, y| (x.at, &x.key).cmp(&(y.at, &y.key)));
    let (outcome, measured, deciding) = match (counted.first(), delivered_at) {
        (Some(first), _) => (
            pass_if(a.components.claim_free),
            format!(
                "{} claim(s) in the window, the first a {} claim",
                counted.len(),
                first.data.category.as_str()
            ),
            Some(Deciding::of("claim.filed", first)),
        ),
        (None, None) => (
            Outcome::NotYetKnown,
            "not delivered: the window has not opened".to_owned(),
            None,
        ),
        (None, Some(_)) => (
            Outcome::Pass,
            match filed.len() {
                0 => "no claim filed".to_owned(),
                n => format!("{n} claim(s) filed after the window: journalled, not counted"),
            },
            None,
        ),
    };
    Criterion {
        name: "claims",
        outcome,
        measured,
        rule,
        deciding,
    }
}

fn cancelled(order: &OrderProjection) -> Criterion {
    let rule = "a cancelled order leaves the perfect-order figures (counted on its own)".to_owned();
    match &order.cancelled {
        Some(fact) => Criterion {
            name: "cancelled",
            outcome: Outcome::Fail,
            measured: "cancelled".into(),
            rule,
            deciding: Some(Deciding::of("order.cancelled", fact)),
        },
        None => Criterion {
            name: "cancelled",
            outcome: Outcome::Pass,
            measured: "not cancelled".into(),
            rule,
            deciding: None,
        },
    }
}

fn pass_if(holds: bool) -> Outcome {
    if holds {
        Outcome::Pass
    } else {
        Outcome::Fail
    }
}

/// A duration as people read it: `41 min`, `2 h 5 min`, `3 days 4 h`, `12 s`.
pub fn duration(d: TimeDelta) -> String {
    let seconds = d.num_seconds().abs();
    let sign = if d < TimeDelta::zero() { "-" } else { "" };
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    let text = match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) if secs == 0 => format!("{m} min"),
        (0, 0, m) => format!("{m} min {secs} s"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} day{}", if d == 1 { "" } else { "s" }),
        (d, h, _) => format!("{d} day{} {h} h", if d == 1 { "" } else { "s" }),
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let cases = [
            (TimeDelta::seconds(12), "12 s"),
            (TimeDelta::minutes(41), "41 min"),
            (TimeDelta::seconds(35 * 60 + 1), "35 min 1 s"),
            (TimeDelta::minutes(125), "2 h 5 min"),
            (TimeDelta::hours(3), "3 h"),
            (TimeDelta::days(14), "14 days"),
            (TimeDelta::hours(28), "1 day 4 h"),
            (TimeDelta::minutes(-5), "-5 min"),
        ];
        for (d, text) in cases {
            assert_eq!(duration(d), text);
        }
    }

    #[test]
    fn an_order_without_its_delivery_is_open_and_its_later_criteria_not_yet_known() {
        let order = OrderProjection::new("O-1");
        let e = explain(&order, &Rules::default(), Utc::now());
        assert_eq!(e.maturity, Maturity::Open);
        assert_eq!(e.counts_for_day, None);
        let outcomes: Vec<(&str, Outcome)> =
            e.criteria.iter().map(|c| (c.name, c.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("confirmation", Outcome::NotYetKnown),
                ("on_time", Outcome::NotYetKnown),
                ("in_full", Outcome::NotYetKnown),
                ("claims", Outcome::NotYetKnown),
                ("cancelled", Outcome::Pass),
            ]
        );
    }
}
