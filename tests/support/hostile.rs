//! A corpus of hostile records: what an attacker (or a broken producer) can put on a topic.
//! Each names where it must end: stored in `events`, rejected with a reason, or a duplicate.
#![allow(dead_code)]

use chrono::TimeDelta;
use serde_json::json;

use super::events::{cloudevent, created, t0};

/// Where a record must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Stored,
    Rejected(&'static str),
    Duplicate,
}

impl Expect {
    /// The place [`places_sql`] answers for a record that ended as expected.
    pub fn place(self) -> &'static str {
        match self {
            Expect::Stored => "stored",
            Expect::Duplicate => "duplicate",
            Expect::Rejected(reason) => reason,
        }
    }
}

/// Where the record at `offset` of `orders`/0 ended, one row per place (the same SQL on both
/// stores): `stored`, `duplicate` or its rejection reason. Exactly one row when it is
/// accounted for.
pub fn places_sql(offset: i64) -> String {
    let at = format!("topic = 'orders' AND partition = 0 AND \"offset\" = {offset}");
    format!(
        "SELECT 'stored' FROM events WHERE {at}
         UNION ALL SELECT reason FROM rejected_events WHERE {at}
         UNION ALL SELECT 'duplicate' FROM duplicate_events WHERE {at}"
    )
}

/// One hostile record: a name for messages, its key and value, and where it must end.
pub struct Hostile {
    pub name: &'static str,
    pub key: String,
    pub value: Option<Vec<u8>>,
    pub expect: Expect,
}

/// A valid `order.created` of `order` whose JSON has `extra` spliced in as the first member
/// of its `data` object (text, so it can hold what `serde_json::Value` cannot).
pub fn created_with_data_extra(order: &str, extra: &str) -> Vec<u8> {
    let base = created(order, t0());
    assert!(base.contains("\"data\":{"), "an event has a data object");
    base.replacen("\"data\":{", &format!("\"data\":{{{extra},"), 1)
        .into_bytes()
}

/// A valid `order.cancelled` of `order` with `attribute` spliced in as an envelope attribute.
fn cancelled_with_attribute(order: &str, attribute: &str) -> Vec<u8> {
    let base = cloudevent(
        &format!("{order}-x"),
        "order.cancelled",
        t0(),
        json!({"order_id": order}),
    );
    format!("{{{attribute},{}", &base[1..]).into_bytes()
}

fn at(time: &str, order: &str) -> Vec<u8> {
    let base = cloudevent(
        &format!("{order}-t"),
        "order.cancelled",
        t0(),
        json!({"order_id": order}),
    );
    let time_now = (t0().with_timezone(&chrono::FixedOffset::east_opt(3 * 3600).expect("offset")))
        .to_rfc3339();
    base.replace(&time_now, time).into_bytes()
}

/// The corpus; `max_record_bytes` is the `decode.max_record_bytes` in force (one record is a
/// byte larger).
pub fn corpus(max_record_bytes: usize) -> Vec<Hostile> {
    let h = |name, key: &str, value: Option<Vec<u8>>, expect| Hostile {
        name,
        key: key.to_owned(),
        value,
        expect,
    };
    let deep = format!("\"deep\":{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let fine_depth = format!("\"nest\":{}1{}", "[".repeat(60), "]".repeat(60));
    let padding = "x".repeat(max_record_bytes);
    let long_id = "I".repeat(100_000);
    let delivered_huge = cloudevent(
        "H-9-d",
        "order.delivered",
        t0() + TimeDelta::hours(3),
        json!({"order_id": "H-9", "items_delivered": 18446744073709551615u64}),
    );
    let good = created("H-ok", t0());
    vec![
        h(
            "a valid order before the poison",
            "H-ok",
            Some(good.clone().into_bytes()),
            Expect::Stored,
        ),
        h(
            "JSON nested 100,000 levels deep in data",
            "H-1",
            Some(created_with_data_extra("H-1", &deep)),
            Expect::Rejected("bad_value"),
        ),
        h(
            "a lone surrogate in an envelope attribute",
            "H-2",
            Some(cancelled_with_attribute("H-2", r#""note":"\ud800""#)),
            Expect::Rejected("bad_value"),
        ),
        h(
            "1e1000000 in data",
            "H-3",
            Some(created_with_data_extra("H-3", r#""n":1e1000000"#)),
            Expect::Rejected("bad_value"),
        ),
        h(
            "a record over decode.max_record_bytes",
            "H-4",
            Some(created_with_data_extra(
                "H-4",
                &format!(r#""pad":"{padding}""#),
            )),
            Expect::Rejected("too_large"),
        ),
        h(
            "bad UTF-8",
            "H-5",
            Some(b"{\"specversion\":\"1.0\",\"id\":\"\xff\xfe\"}".to_vec()),
            Expect::Rejected("not_json"),
        ),
        h(
            "a NUL escape in text",
            "H-6",
            Some(created_with_data_extra("H-6", r#""note":"a\u0000b""#)),
            Expect::Rejected("bad_value"),
        ),
        h(
            "a lone low surrogate in text",
            "H-7",
            Some(created_with_data_extra("H-7", r#""note":"\udc00""#)),
            Expect::Rejected("bad_value"),
        ),
        h(
            "-1e309 in data",
            "H-8",
            Some(created_with_data_extra("H-8", r#""n":-1e309"#)),
            Expect::Rejected("bad_value"),
        ),
        h(
            "items_delivered that wraps a 64-bit integer",
            "H-9",
            Some(delivered_huge.into_bytes()),
            Expect::Rejected("bad_value"),
        ),
        h(
            "a 100 kB id",
            "H-10",
            Some(
                cloudevent(
                    &long_id,
                    "order.cancelled",
                    t0(),
                    json!({"order_id": "H-10"}),
                )
                .into_bytes(),
            ),
            Expect::Rejected("bad_value"),
        ),
        h(
            "a duplicated envelope key",
            "H-11",
            Some(cancelled_with_attribute("H-11", r#""id":"other""#)),
            Expect::Rejected("not_cloudevent"),
        ),
        h(
            "a duplicated key inside unknown data",
            "H-12",
            Some(created_with_data_extra("H-12", r#""u":{"a":1,"a":2}"#)),
            Expect::Stored,
        ),
        h("a tombstone", "H-13", None, Expect::Rejected("not_json")),
        h(
            "an empty value (headers only)",
            "H-14",
            Some(Vec::new()),
            Expect::Rejected("not_json"),
        ),
        h(
            "an event in year 0001",
            "H-15",
            Some(at("0001-01-01T00:00:00+00:00", "H-15")),
            Expect::Rejected("bad_time"),
        ),
        h(
            "an event in year 9999",
            "H-16",
            Some(at("9999-12-31T23:59:59+00:00", "H-16")),
            Expect::Rejected("bad_time"),
        ),
        h(
            "a backslash before u0000 in text",
            "H-17",
            Some(created_with_data_extra("H-17", r#""path":"C:\\u0000""#)),
            Expect::Stored,
        ),
        h(
            "nesting 60 levels deep",
            "H-18",
            Some(created_with_data_extra("H-18", &fine_depth)),
            Expect::Stored,
        ),
        h(
            "1e300 in data",
            "H-19",
            Some(created_with_data_extra("H-19", r#""n":1e300"#)),
            Expect::Stored,
        ),
        h(
            "a producer retry of the valid order",
            "H-ok",
            Some(good.into_bytes()),
            Expect::Duplicate,
        ),
        h(
            "a valid order after the poison",
            "H-20",
            Some(created("H-20", t0()).into_bytes()),
            Expect::Stored,
        ),
    ]
}
