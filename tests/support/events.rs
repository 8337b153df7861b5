//! Builders of contract-v1 CloudEvents for tests: JSON text, decoded through the real decoder.
#![allow(dead_code)]

use chrono::{DateTime, TimeDelta, Utc};
use perfect_order::domain::{decode, Decoded, Event};
use serde_json::{json, Value};

/// A fixed instant: 2026-10-01 10:00 Moscow time (07:00 UTC).
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-10-01T10:00:00+03:00")
        .expect("valid literal")
        .with_timezone(&Utc)
}

pub fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

pub fn cloudevent(id: &str, type_name: &str, at: DateTime<Utc>, data: Value) -> String {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "/shop/test",
        "type": type_name,
        "time": at.with_timezone(&chrono::FixedOffset::east_opt(3 * 3600).expect("valid offset")).to_rfc3339(),
        "subject": data.get("order_id").cloned().unwrap_or(Value::Null),
        "data": data,
    })
    .to_string()
}

/// `event` under another CloudEvents `id`: a second fact of the same type for the order (a
/// correction the fold weighs by its time), not a duplicate.
pub fn with_id(event: String, id: &str) -> String {
    let mut v: Value = serde_json::from_str(&event).expect("a test event is JSON");
    v["id"] = Value::String(id.to_owned());
    v.to_string()
}

pub fn event(json: &str) -> Event {
    match decode(json.as_bytes()) {
        Ok(Decoded::Known(e)) => e,
        other => panic!("test event should decode, got {other:?}"),
    }
}

/// An order with 2 items, promised by `at + 4h`.
pub fn created(order: &str, at: DateTime<Utc>) -> String {
    cloudevent(
        &format!("{order}-created"),
        "order.created",
        at,
        json!({
            "order_id": order, "customer_id": "C-1",
            "items": [{"sku": "BUN-1", "quantity": 2, "unit_price": "1.50"}],
            "total": "3.00", "currency": "RUB",
            "promised_delivery": {"from": (at + TimeDelta::hours(2)).to_rfc3339(), "to": (at + TimeDelta::hours(4)).to_rfc3339()},
            "sales_channel": "web"
        }),
    )
}

pub fn confirmed(order: &str, at: DateTime<Utc>) -> String {
    cloudevent(
        &format!("{order}-confirmed"),
        "order.confirmed",
        at,
        json!({"order_id": order, "channel": "phone", "operator_id": "OP-1"}),
    )
}

pub fn shipped(order: &str, at: DateTime<Utc>) -> String {
    cloudevent(
        &format!("{order}-shipped"),
        "order.shipped",
        at,
        json!({"order_id": order, "courier_id": "K-1", "items_shipped": 2}),
    )
}

pub fn delivered_items(order: &str, at: DateTime<Utc>, items: u64) -> String {
    cloudevent(
        &format!("{order}-delivered"),
        "order.delivered",
        at,
        json!({"order_id": order, "courier_id": "K-1", "items_delivered": items}),
    )
}

pub fn delivered(order: &str, at: DateTime<Utc>) -> String {
    delivered_items(order, at, 2)
}

pub fn cancelled(order: &str, at: DateTime<Utc>) -> String {
    cloudevent(
        &format!("{order}-cancelled"),
        "order.cancelled",
        at,
        json!({"order_id": order, "reason": "customer"}),
    )
}

pub fn claim(order: &str, claim_id: &str, category: &str, at: DateTime<Utc>) -> String {
    cloudevent(
        &format!("{claim_id}-filed"),
        "claim.filed",
        at,
        json!({"claim_id": claim_id, "order_id": order, "category": category, "description": "stale bun"}),
    )
}

pub fn resolved(order: &str, claim_id: &str, at: DateTime<Utc>) -> String {
    cloudevent(
        &format!("{claim_id}-resolved"),
        "claim.resolved",
        at,
        json!({"claim_id": claim_id, "order_id": order, "resolution": "refund"}),
    )
}

/// A perfect lifecycle: confirmed at +10 min, shipped at +1 h, delivered at +3 h (promise +4 h).
pub fn perfect_lifecycle(order: &str, at: DateTime<Utc>) -> Vec<String> {
    vec![
        created(order, at),
        confirmed(order, at + minutes(10)),
        shipped(order, at + minutes(60)),
        delivered(order, at + minutes(180)),
    ]
}

// ---- contract v2 ----------------------------------------------------------------------

/// An instant in the shop's zone (Moscow), from `YYYY-MM-DDTHH:MM:SS`.
pub fn msk(local: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{local}+03:00"))
        .expect("valid literal")
        .with_timezone(&Utc)
}

fn v2(type_name: &str, id: &str, at: DateTime<Utc>, data: Value) -> String {
    cloudevent(&format!("{type_name}-{id}"), type_name, at, data)
}

pub fn review_posted(review: &str, rating: u8, courier: Option<&str>, at: DateTime<Utc>) -> String {
    v2(
        "review.posted",
        review,
        at,
        json!({"review_id": review, "rating": rating, "courier_id": courier, "customer_id": "C-1", "text": "thanks"}),
    )
}

pub fn review_answered(review: &str, at: DateTime<Utc>) -> String {
    v2(
        "review.answered",
        review,
        at,
        json!({"review_id": review, "responder_id": "U-1"}),
    )
}

/// `courier` joins `team` at `at` (the event id names the time, so rosterings differ).
pub fn rostered(courier: &str, team: &str, at: DateTime<Utc>) -> String {
    v2(
        "courier.rostered",
        &format!("{courier}-{}", at.timestamp()),
        at,
        json!({"courier_id": courier, "team_id": team, "captain": false}),
    )
}

pub fn violation(courier: &str, id: &str, at: DateTime<Utc>) -> String {
    v2(
        "courier.violation",
        id,
        at,
        json!({"courier_id": courier, "kind": "rude", "order_id": "A-1"}),
    )
}

pub fn spend(
    id: &str,
    amount: &str,
    from: &str,
    to: &str,
    channel: &str,
    at: DateTime<Utc>,
) -> String {
    v2(
        "marketing.spend",
        id,
        at,
        json!({"spend_id": id, "amount": amount, "currency": "RUB", "from": from, "to": to, "channel": channel}),
    )
}

pub fn lead_captured(
    lead: &str,
    temperature: &str,
    customer: Option<&str>,
    at: DateTime<Utc>,
) -> String {
    v2(
        "lead.captured",
        lead,
        at,
        json!({"lead_id": lead, "temperature": temperature, "source": "web", "customer_id": customer}),
    )
}

pub fn lead_changed(lead: &str, temperature: &str, at: DateTime<Utc>) -> String {
    v2(
        "lead.changed",
        &format!("{lead}-{}", at.timestamp()),
        at,
        json!({"lead_id": lead, "temperature": temperature}),
    )
}

pub fn claim_updated(order: &str, claim_id: &str, stage: &str, at: DateTime<Utc>) -> String {
    v2(
        "claim.updated",
        &format!("{claim_id}-{stage}"),
        at,
        json!({"claim_id": claim_id, "order_id": order, "stage": stage, "note": "looking"}),
    )
}

/// An order created by `customer` at `at` with a total and a sales channel.
pub fn created_by(
    order: &str,
    customer: &str,
    total: &str,
    channel: &str,
    at: DateTime<Utc>,
) -> String {
    cloudevent(
        &format!("{order}-created"),
        "order.created",
        at,
        json!({"order_id": order, "customer_id": customer,
               "items": [{"sku": "BUN-1", "quantity": 1, "unit_price": total}],
               "total": total, "currency": "RUB", "sales_channel": channel}),
    )
}

// ---- instants relative to the shop's calendar (tests must pass at any hour) --------------

/// The first instant of the shop day (Europe/Moscow, the default zone) that holds `now`.
pub fn shop_day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::TimeZone;
    let rules = perfect_order::domain::Rules::default();
    rules
        .timezone
        .from_local_datetime(&rules.day_of(now).and_time(chrono::NaiveTime::MIN))
        .earliest()
        .expect("a shop day has a first instant")
        .with_timezone(&Utc)
}

/// `at`, or a minute into the shop day of `now` if `at` falls on an earlier day: a fact a test
/// means to count "today" (or "this month") stays there just after midnight too.
pub fn same_shop_day(now: DateTime<Utc>, at: DateTime<Utc>) -> DateTime<Utc> {
    at.max(shop_day_start(now) + minutes(1))
}
