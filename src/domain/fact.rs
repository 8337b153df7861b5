//! Facts and how a slot keeps one: the merge primitives every fold (orders and the v2
//! entities) is built from. A slot keeps the earliest (or latest) fact by `(event time,
//! source, id)`, so any permutation of the events, with any repeats, gives the same state.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::event::EventKey;

/// One fact of an order: the payload plus what identifies and orders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact<T> {
    pub at: DateTime<Utc>,
    pub key: EventKey,
    pub data: T,
}

/// Keeps the earliest fact by `(time, key)`; says whether the slot changed. Takes the fact
/// by value, so keeping it moves it rather than copying it.
pub(crate) fn keep_earliest<T>(
    slot: &mut Option<Fact<T>>,
    at: DateTime<Utc>,
    key: EventKey,
    data: T,
) -> bool {
    let replace = match slot {
        None => true,
        Some(current) => (at, &key) < (current.at, &current.key),
    };
    if replace {
        *slot = Some(Fact { at, key, data });
    }
    replace
}

/// Keeps the latest fact by `(time, key)`; says whether the slot changed.
pub(crate) fn keep_latest<T>(
    slot: &mut Option<Fact<T>>,
    at: DateTime<Utc>,
    key: EventKey,
    data: T,
) -> bool {
    let replace = match slot {
        None => true,
        Some(current) => (at, &key) > (current.at, &current.key),
    };
    if replace {
        *slot = Some(Fact { at, key, data });
    }
    replace
}

/// Whole seconds from `from` to `to`, rounded down (the unit of every v2 percentile).
pub fn whole_seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().div_euclid(1000)
}

/// The first day of the month `day` falls in.
pub fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}
