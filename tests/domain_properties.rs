//! Property tests: the projection is a function of the set of facts.

mod support;

use std::collections::HashMap;

use chrono::TimeDelta;
use perfect_order::domain::{fold_batch, EntityBatch, Event, KpiDelta, OrderProjection, Rules};
use proptest::prelude::*;
use support::events::*;
use support::reference::*;

/// All the facts one order can have, with times drawn by proptest.
fn order_facts() -> impl Strategy<Value = Vec<Event>> {
    (
        0i64..90,
        0i64..600,
        0i64..600,
        prop::option::of(0i64..60 * 24 * 20),
        prop::sample::select(vec!["quality", "completeness", "delivery", "service"]),
        1u64..3,
        any::<bool>(),
    )
        .prop_map(
            |(confirm, ship, deliver, claim_at, category, items, cancel)| {
                let mut out = vec![
                    created("A-1", t0()),
                    confirmed("A-1", t0() + minutes(confirm)),
                    shipped("A-1", t0() + minutes(ship)),
                    delivered_items("A-1", t0() + minutes(deliver), items),
                ];
                if let Some(c) = claim_at {
                    out.push(claim("A-1", "K-1", category, t0() + minutes(c)));
                    out.push(resolved(
                        "A-1",
                        "K-1",
                        t0() + minutes(c) + TimeDelta::hours(5),
                    ));
                }
                if cancel {
                    out.push(cancelled("A-1", t0() + minutes(1)));
                }
                out.iter().map(|e| event(e)).collect()
            },
        )
}

/// An order's facts, and the same shuffled with some of them repeated.
fn permuted_with_duplicates() -> impl Strategy<Value = (Vec<Event>, Vec<Event>)> {
    shuffled_with_duplicates(order_facts())
}

/// The facts drawn by `facts`, and the same shuffled with some of them repeated.
fn shuffled_with_duplicates(
    facts: impl Strategy<Value = Vec<Event>>,
) -> impl Strategy<Value = (Vec<Event>, Vec<Event>)> {
    facts.prop_flat_map(|facts| {
        let n = facts.len();
        (
            Just(facts.clone()),
            prop::collection::vec(0..n, 0..n * 2),
            Just(facts).prop_shuffle(),
        )
            .prop_map(|(facts, dups, shuffled)| {
                let mut noisy = shuffled;
                noisy.extend(dups.into_iter().map(|i| facts[i].clone()));
                (facts, noisy)
            })
    })
}

fn fold(events: &[Event]) -> OrderProjection {
    let mut p = OrderProjection::new("A-1");
    for e in events {
        p.apply(e);
    }
    p
}

proptest! {
    #[test]
    fn any_permutation_with_duplicates_folds_to_the_same_projection((facts, noisy) in permuted_with_duplicates()) {
        prop_assert_eq!(fold(&facts), fold(&noisy));
    }

    #[test]
    fn applying_a_batch_twice_equals_applying_it_once(facts in order_facts()) {
        let once = fold(&facts);
        let mut twice = once.clone();
        for e in &facts {
            twice.apply(e);
        }
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn kpi_deltas_of_split_batches_sum_to_the_delta_of_one_batch(
        (facts, noisy) in permuted_with_duplicates(),
        split in 0usize..12,
    ) {
        let rules = Rules::default();
        let whole = fold_batch(HashMap::new(), facts, &rules).kpi;
        let cut = split.min(noisy.len());
        let first = fold_batch(HashMap::new(), noisy[..cut].to_vec(), &rules);
        let stored = first.changed.iter().map(|c| (c.projection.order_id.clone(), c.projection.clone())).collect();
        let second = fold_batch(stored, noisy[cut..].to_vec(), &rules);
        let mut summed = KpiDelta::default();
        summed.merge(&first.kpi);
        summed.merge(&second.kpi);
        prop_assert_eq!(whole.rows().collect::<Vec<_>>(), summed.rows().collect::<Vec<_>>());
    }
}

// ---- contract v2 entities ---------------------------------------------------------------

/// The v2 events of one review, one claim's stages, one courier, one spend and one lead, with
/// times drawn by proptest (several events of a kind may share a time: ties are broken by
/// the event key, never by arrival).
fn entity_facts() -> impl Strategy<Value = Vec<Event>> {
    (
        prop::collection::vec((0i64..3000, 1u8..=5), 1..3),
        prop::collection::vec(0i64..3000, 0..3),
        prop::collection::vec((0i64..3000, prop::sample::select(vec!["T-1", "T-2"])), 1..4),
        prop::collection::vec(0i64..3000, 0..3),
        prop::collection::vec((0i64..3000, 0i64..20), 1..3),
        prop::collection::vec(
            (
                0i64..3000,
                prop::sample::select(vec!["cold", "warm", "hot"]),
            ),
            1..4,
        ),
        prop::collection::vec(
            (
                0i64..3000,
                prop::sample::select(vec!["investigating", "action_taken"]),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(posts, answers, rosters, violations, spends, leads, stages)| {
                let at = |m: i64| t0() + minutes(m);
                let mut out = Vec::new();
                for (i, (m, rating)) in posts.into_iter().enumerate() {
                    let e = review_posted("R-1", rating, Some("D-1"), at(m));
                    out.push(e.replace("review.posted-R-1", &format!("review.posted-R-1-{i}")));
                }
                for (i, m) in answers.into_iter().enumerate() {
                    let e = review_answered("R-1", at(m));
                    out.push(e.replace("review.answered-R-1", &format!("review.answered-R-1-{i}")));
                }
                for (i, (m, team)) in rosters.into_iter().enumerate() {
                    let e = rostered("D-1", team, at(m));
                    out.push(e.replace(
                        "\"id\":\"courier.rostered-D-1",
                        &format!("\"id\":\"courier.rostered-D-1-{i}"),
                    ));
                }
                for (i, m) in violations.into_iter().enumerate() {
                    out.push(violation("D-1", &format!("V-{i}"), at(m)));
                }
                for (i, (m, days)) in spends.into_iter().enumerate() {
                    let to = (t0() + TimeDelta::days(days))
                        .format("%Y-%m-%d")
                        .to_string();
                    let e = spend(
                        "S-1",
                        &format!("{}.00", 100 * (i + 1)),
                        "2026-10-01",
                        &to,
                        "ads",
                        at(m),
                    );
                    out.push(e.replace("marketing.spend-S-1", &format!("marketing.spend-S-1-{i}")));
                }
                for (i, (m, t)) in leads.into_iter().enumerate() {
                    let e = if i == 0 {
                        lead_captured("L-1", t, Some("C-1"), at(m))
                    } else {
                        lead_changed("L-1", t, at(m))
                    };
                    out.push(e.replace("\"id\":\"lead.", &format!("\"id\":\"{i}-lead.")));
                }
                for (i, (m, stage)) in stages.into_iter().enumerate() {
                    let e = claim_updated("A-1", "K-1", stage, at(m));
                    out.push(e.replace(
                        "\"id\":\"claim.updated",
                        &format!("\"id\":\"{i}-claim.updated"),
                    ));
                }
                out.iter().map(|e| event(e)).collect()
            },
        )
}

fn permuted_entities_with_duplicates() -> impl Strategy<Value = (Vec<Event>, Vec<Event>)> {
    shuffled_with_duplicates(entity_facts())
}

proptest! {
    #[test]
    fn any_permutation_with_duplicates_of_an_entitys_events_folds_to_the_same_state(
        (facts, noisy) in permuted_entities_with_duplicates()
    ) {
        prop_assert_eq!(EntityBatch::fold(facts), EntityBatch::fold(noisy));
    }

    #[test]
    fn a_lead_courier_and_claim_read_as_of_an_instant_do_not_depend_on_arrival_order(
        (facts, noisy) in permuted_entities_with_duplicates(),
        at in 0i64..3200,
    ) {
        let a = EntityBatch::fold(facts);
        let b = EntityBatch::fold(noisy);
        let t = t0() + minutes(at);
        prop_assert_eq!(a.leads["L-1"].temperature_before(t), b.leads["L-1"].temperature_before(t));
        prop_assert_eq!(a.couriers["D-1"].team_at(t), b.couriers["D-1"].team_at(t));
        let stage = |e: &EntityBatch| e.claims.get("K-1").map(|c| c.stage_before(t));
        prop_assert_eq!(stage(&a), stage(&b));
        prop_assert_eq!(a.reviews["R-1"].answer_seconds(), b.reviews["R-1"].answer_seconds());
    }
}
