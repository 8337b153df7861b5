//! Property tests: the projection is a function of the set of facts.

mod support;

use std::collections::HashMap;

use chrono::TimeDelta;
use perfect_order::domain::{fold_batch, Event, KpiDelta, OrderProjection, Rules};
use proptest::prelude::*;
use support::events::*;

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

/// The facts, shuffled, with some of them repeated.
fn permuted_with_duplicates() -> impl Strategy<Value = (Vec<Event>, Vec<Event>)> {
    order_facts().prop_flat_map(|facts| {
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
