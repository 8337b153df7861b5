//! The perfect-order rules of domain.md, one named scenario each, on the pure fold.

mod support;

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta};
use perfect_order::domain::{
    fold_batch, DayCounts, Event, KpiDelta, OrderProjection, Rules, Verdict,
};
use support::events::*;

fn project(events: &[String]) -> OrderProjection {
    let mut p = OrderProjection::new("A-1");
    for e in events {
        p.apply(&event(e));
    }
    p
}

fn verdict_of(events: &[String]) -> Verdict {
    project(events).assess(&Rules::default()).verdict
}

fn day(s: &str) -> NaiveDate {
    s.parse().expect("valid date literal")
}

#[test]
fn confirmation_at_29_minutes_keeps_the_order_perfect() {
    let mut events = perfect_lifecycle("A-1", t0());
    events[1] = confirmed("A-1", t0() + minutes(29));
    assert_eq!(verdict_of(&events), Verdict::Perfect);
}

#[test]
fn confirmation_at_31_minutes_is_a_service_deviation() {
    let mut events = perfect_lifecycle("A-1", t0());
    events[1] = confirmed("A-1", t0() + minutes(31));
    let a = project(&events).assess(&Rules::default());
    assert_eq!(a.verdict, Verdict::Imperfect);
    assert!(a.deviations.service);
    assert!(!a.deviations.delivery);
}

#[test]
fn confirmation_exactly_at_the_sla_is_on_time() {
    let mut events = perfect_lifecycle("A-1", t0());
    events[1] = confirmed("A-1", t0() + minutes(30));
    assert_eq!(verdict_of(&events), Verdict::Perfect);
}

#[test]
fn courier_15_minutes_late_is_a_delivery_deviation() {
    let mut events = perfect_lifecycle("A-1", t0());
    events[3] = delivered("A-1", t0() + minutes(4 * 60 + 15));
    let a = project(&events).assess(&Rules::default());
    assert_eq!(a.verdict, Verdict::Imperfect);
    assert!(a.deviations.delivery);
    assert_eq!(a.delivery_lateness, Some(minutes(15)));
}

#[test]
fn delivery_tolerance_forgives_a_late_courier_within_it() {
    let mut events = perfect_lifecycle("A-1", t0());
    events[3] = delivered("A-1", t0() + minutes(4 * 60 + 15));
    let rules = Rules {
        delivery_tolerance: minutes(15),
        ..Rules::default()
    };
    assert_eq!(project(&events).assess(&rules).verdict, Verdict::Perfect);
}

#[test]
fn short_delivery_is_a_completeness_deviation() {
    let mut events = perfect_lifecycle("A-1", t0());
    events[3] = delivered_items("A-1", t0() + minutes(180), 1);
    let a = project(&events).assess(&Rules::default());
    assert!(a.deviations.completeness);
    assert_eq!(a.verdict, Verdict::Imperfect);
}

#[test]
fn claim_filed_10_days_after_delivery_flips_the_verdict_and_corrects_the_delivery_day() {
    // Arrange: a perfect order delivered on 1 Oct (Moscow), already counted.
    let rules = Rules::default();
    let first: Vec<Event> = perfect_lifecycle("A-1", t0())
        .iter()
        .map(|e| event(e))
        .collect();
    let counted = fold_batch(HashMap::new(), first, &rules);
    let stored: HashMap<_, _> = counted
        .changed
        .iter()
        .map(|c| (c.projection.order_id.clone(), c.projection.clone()))
        .collect();
    // Act: a quality claim filed on 11 Oct arrives.
    let late = vec![event(&claim(
        "A-1",
        "K-1",
        "quality",
        t0() + TimeDelta::days(10),
    ))];
    let outcome = fold_batch(stored, late, &rules);
    // Assert: 1 Oct loses a perfect order and gains a quality deviation and a claimed order
    // (its claim-free component); 11 Oct is untouched.
    assert_eq!(outcome.changed[0].assessment.verdict, Verdict::Imperfect);
    let rows: Vec<_> = outcome.kpi.rows().collect();
    assert_eq!(
        rows,
        vec![(
            day("2026-10-01"),
            DayCounts {
                perfect: -1,
                quality: 1,
                claimed: 1,
                ..DayCounts::default()
            }
        )]
    );
}

#[test]
fn claim_filed_after_the_window_leaves_the_final_verdict() {
    let mut events = perfect_lifecycle("A-1", t0());
    events.push(claim(
        "A-1",
        "K-1",
        "quality",
        t0() + minutes(180) + TimeDelta::days(15),
    ));
    let p = project(&events);
    assert_eq!(p.assess(&Rules::default()).verdict, Verdict::Perfect);
    assert_eq!(p.claims.len(), 1, "the late claim is still journalled");
}

#[test]
fn claim_read_before_the_delivery_counts_once_delivered() {
    let mut events = perfect_lifecycle("A-1", t0());
    let delivery = events.pop().expect("lifecycle has a delivery");
    events.push(claim("A-1", "K-1", "service", t0() + minutes(100)));
    assert_eq!(verdict_of(&events), Verdict::Open);
    events.push(delivery);
    let a = project(&events).assess(&Rules::default());
    assert_eq!(a.verdict, Verdict::Imperfect);
    assert!(a.deviations.service);
}

#[test]
fn duplicate_event_changes_nothing() {
    let events = perfect_lifecycle("A-1", t0());
    let mut doubled = events.clone();
    doubled.extend(events.iter().cloned());
    assert_eq!(project(&events), project(&doubled));
}

#[test]
fn duplicate_batch_adds_no_kpi_delta() {
    let rules = Rules::default();
    let events: Vec<Event> = perfect_lifecycle("A-1", t0())
        .iter()
        .map(|e| event(e))
        .collect();
    let first = fold_batch(HashMap::new(), events.clone(), &rules);
    let stored = first
        .changed
        .into_iter()
        .map(|c| (c.projection.order_id.clone(), c.projection))
        .collect();
    let again = fold_batch(stored, events, &rules);
    assert!(again.changed.is_empty());
    assert!(again.kpi.is_empty());
}

#[test]
fn cancelled_order_is_outside_the_denominator_and_counted_on_its_own() {
    let events = [created("A-1", t0()), cancelled("A-1", t0() + minutes(5))];
    let outcome = fold_batch(
        HashMap::new(),
        events.iter().map(|e| event(e)),
        &Rules::default(),
    );
    let rows: Vec<_> = outcome.kpi.rows().collect();
    assert_eq!(
        rows,
        vec![(
            day("2026-10-01"),
            DayCounts {
                cancelled: 1,
                ..DayCounts::default()
            }
        )]
    );
}

#[test]
fn confirmation_read_after_the_shipment_gives_the_same_verdict() {
    let events = perfect_lifecycle("A-1", t0());
    let reordered = vec![
        events[3].clone(),
        events[2].clone(),
        events[0].clone(),
        events[1].clone(),
    ];
    assert_eq!(
        project(&events).assess(&Rules::default()),
        project(&reordered).assess(&Rules::default())
    );
}

#[test]
fn delivery_day_is_the_shops_calendar_day_not_utc() {
    // Created 23:00 Moscow on 1 Oct, delivered 01:30 Moscow on 2 Oct, which is 22:30 UTC on 1 Oct.
    let created_at = t0() + minutes(13 * 60);
    let mut events = perfect_lifecycle("A-1", created_at);
    events[3] = delivered("A-1", created_at + minutes(150));
    let a = project(&events).assess(&Rules::default());
    assert_eq!(a.delivered_day, Some(day("2026-10-02")));
}

#[test]
fn verdict_is_final_a_claim_window_after_delivery() {
    let events = perfect_lifecycle("A-1", t0());
    let a = project(&events).assess(&Rules::default());
    assert_eq!(a.final_at, Some(t0() + minutes(180) + TimeDelta::days(14)));
}

#[test]
fn delivered_order_whose_creation_is_unseen_stays_open() {
    let events = vec![delivered("A-1", t0())];
    assert_eq!(verdict_of(&events), Verdict::Open);
}

#[test]
fn retraction_and_addition_of_one_order_cancel_out() {
    let events = perfect_lifecycle("A-1", t0());
    let a = project(&events).assess(&Rules::default());
    let mut delta = KpiDelta::default();
    delta.add(&a, 1);
    delta.add(&a, -1);
    assert!(delta.is_empty());
}

#[test]
fn claim_read_before_the_delivery_is_rewritten_when_the_delivery_arrives() {
    let rules = Rules::default();
    let mut events = perfect_lifecycle("A-1", t0());
    let delivery = event(&events.pop().expect("lifecycle has a delivery"));
    events.push(claim("A-1", "K-1", "service", t0() + minutes(100)));
    let first = fold_batch(HashMap::new(), events.iter().map(|e| event(e)), &rules);
    let stored = first
        .changed
        .into_iter()
        .map(|c| (c.projection.order_id.clone(), c.projection))
        .collect();
    let outcome = fold_batch(stored, [delivery], &rules);
    let claims: Vec<&String> = outcome.changed[0]
        .claims_to_write()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(claims, vec!["K-1"]);
}

#[test]
fn an_order_confirmed_late_and_claimed_misses_two_components_and_meets_the_others() {
    let t = t0();
    let order = project(&[
        created("A-1", t),
        confirmed("A-1", t + minutes(41)),
        delivered("A-1", t + minutes(180)),
        claim("A-1", "K-1", "quality", t + TimeDelta::days(2)),
    ]);
    let c = order.assess(&Rules::default()).components;
    assert!(!c.confirmed_in_sla && !c.claim_free, "{c:?}");
    assert!(c.on_time && c.in_full, "{c:?}");
}

// ---- restatements: a figure as first complete, and today's ----

fn restated(events: &[String]) -> Vec<(&'static str, NaiveDate, Verdict, Verdict, String)> {
    use perfect_order::domain::restatement::restatements;
    restatements(&project(events), &Rules::default())
        .into_iter()
        .map(|r| {
            let cause = format!("{} {}", r.cause.event_type, r.cause.id);
            (r.period_kind.as_str(), r.period, r.first, r.now, cause)
        })
        .collect()
}

#[test]
fn a_claim_filed_after_the_month_restates_the_delivery_day_and_month_with_the_claim_as_cause() {
    let mut events = perfect_lifecycle("A-1", msk("2026-10-30T10:00:00"));
    events.push(claim("A-1", "K-1", "quality", msk("2026-11-03T09:00:00")));
    assert_eq!(
        restated(&events),
        [
            (
                "day",
                day("2026-10-30"),
                Verdict::Perfect,
                Verdict::Imperfect,
                "claim.filed K-1-filed".into()
            ),
            (
                "month",
                day("2026-10-01"),
                Verdict::Perfect,
                Verdict::Imperfect,
                "claim.filed K-1-filed".into()
            ),
        ]
    );
}

#[test]
fn a_claim_filed_inside_the_month_restates_only_the_delivery_day() {
    let mut events = perfect_lifecycle("A-1", msk("2026-10-12T10:00:00"));
    events.push(claim("A-1", "K-1", "quality", msk("2026-10-20T09:00:00")));
    let kinds: Vec<&str> = restated(&events).into_iter().map(|r| r.0).collect();
    assert_eq!(kinds, ["day"]);
}

#[test]
fn a_cancellation_after_the_period_takes_the_order_out_of_the_figure_that_counted_it() {
    let mut events = perfect_lifecycle("A-1", msk("2026-10-31T10:00:00"));
    events.push(cancelled("A-1", msk("2026-11-02T10:00:00")));
    let month = restated(&events).pop().expect("the month");
    assert_eq!(
        month,
        (
            "month",
            day("2026-10-01"),
            Verdict::Perfect,
            Verdict::Cancelled,
            "order.cancelled A-1-cancelled".into()
        )
    );
}

#[test]
fn a_fact_dated_inside_the_period_restates_nothing_however_late_it_arrives() {
    // The claim is applied last (it arrived weeks later) but is dated on the delivery day.
    let mut events = perfect_lifecycle("A-1", msk("2026-10-30T10:00:00"));
    events.push(claim("A-1", "K-1", "quality", msk("2026-10-30T20:00:00")));
    assert!(restated(&events).is_empty());
}

#[test]
fn the_cause_is_the_fact_from_which_on_the_order_counts_as_it_does_today() {
    // Two late claims: the first one flipped the verdict; the second changed nothing more.
    let mut events = perfect_lifecycle("A-1", msk("2026-10-30T10:00:00"));
    events.push(claim("A-1", "K-2", "delivery", msk("2026-11-05T09:00:00")));
    events.push(claim("A-1", "K-1", "quality", msk("2026-11-03T09:00:00")));
    let month = restated(&events).pop().expect("the month");
    assert_eq!(month.4, "claim.filed K-1-filed");
}

// ---- business hours: the confirmation clock runs in working time only ----

/// A shop open every day 08:00-22:00 (Moscow), closed on 31 December.
fn shop_hours() -> Rules {
    use perfect_order::domain::hours::BusinessHours;
    let day = BusinessHours::parse_day("08:00-22:00").expect("valid hours");
    Rules {
        business_hours: Some(BusinessHours {
            week: std::array::from_fn(|_| day.clone()),
            closed: [day_of("2026-12-31")].into(),
        }),
        ..Rules::default()
    }
}

fn day_of(s: &str) -> NaiveDate {
    day(s)
}

fn confirmed_order(created_local: &str, confirmed_local: &str) -> OrderProjection {
    let created_at = msk(created_local);
    let mut events = perfect_lifecycle("A-1", created_at);
    events[1] = confirmed("A-1", msk(confirmed_local));
    // No promised window (so the delivery is on time whenever it comes), delivered an hour
    // after the confirmation.
    events[0] = created_by("A-1", "C-1", "10.00", "web", created_at);
    events[2] = shipped("A-1", msk(confirmed_local) + minutes(30));
    events[3] = delivered("A-1", msk(confirmed_local) + minutes(60));
    project(&events)
}

#[test]
fn an_order_placed_at_21_55_and_confirmed_at_08_20_next_morning_waited_25_minutes() {
    let order = confirmed_order("2026-12-01T21:55:00", "2026-12-02T08:20:00");
    let a = order.assess(&shop_hours());
    assert_eq!(a.confirmation_latency, Some(minutes(25)));
    assert_eq!(a.verdict, Verdict::Perfect);
    // Its explanation says which clock measured it.
    let why =
        perfect_order::domain::explain::explain(&order, &shop_hours(), msk("2026-12-30T00:00:00"));
    let confirmation = &why.criteria[0];
    assert_eq!(confirmation.measured, "confirmed after 25 min");
    assert_eq!(
        confirmation.rule,
        "SLA 30 min of working time (rules.business_hours)"
    );
    // Without business hours the same order waited 10 h 25 min: a service deviation.
    let always_open = order.assess(&Rules::default());
    assert_eq!(always_open.confirmation_latency, Some(minutes(625)));
    assert!(always_open.deviations.service);
}

#[test]
fn a_confirmation_36_working_minutes_after_the_order_is_a_service_deviation() {
    let order = confirmed_order("2026-12-01T21:55:00", "2026-12-02T08:31:00");
    let a = order.assess(&shop_hours());
    assert_eq!(a.confirmation_latency, Some(minutes(36)));
    assert!(a.deviations.service);
}

#[test]
fn a_closed_date_does_not_count_towards_the_confirmation_wait() {
    let order = confirmed_order("2026-12-30T21:55:00", "2027-01-01T08:20:00");
    assert_eq!(
        order.assess(&shop_hours()).confirmation_latency,
        Some(minutes(25))
    );
}
