//! A seeded synthetic shop for end-to-end tests, with its expected KPIs computed directly
//! from the generated facts (independently of the crate's fold).
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::events::cloudevent;

/// One record to produce.
#[derive(Clone)]
pub struct Produced {
    pub topic: &'static str,
    pub key: String,
    pub value: Vec<u8>,
}

/// Expected counters of one shop-zone day.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub fulfilled: i64,
    pub perfect: i64,
    pub cancelled: i64,
}

pub struct Shop {
    pub records: Vec<Produced>,
    pub expected: BTreeMap<NaiveDate, Expected>,
    /// Restated orders per delivery day and per delivery month (first day): perfect when the
    /// period ended, imperfect now, because a claim in the window was filed after its end.
    pub restated_days: BTreeMap<NaiveDate, i64>,
    pub restated_months: BTreeMap<NaiveDate, i64>,
    pub junk: Vec<Vec<u8>>,
    pub unique_events: usize,
}

const SLA: i64 = 30 * 60;

fn moscow_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&chrono_tz::Europe::Moscow).date_naive()
}

fn moscow_month(t: DateTime<Utc>) -> NaiveDate {
    let day = moscow_day(t);
    NaiveDate::from_ymd_opt(
        chrono::Datelike::year(&day),
        chrono::Datelike::month(&day),
        1,
    )
    .unwrap_or(day)
}

/// `orders` orders created over three weeks from `start`, streamed roughly in event-time order
/// with jitter (so confirmations can arrive after shipments), 4 % duplicates, late claims
/// and 1 % junk. Order events go to `orders`, claim events to `claims`; keys are order ids.
pub fn generate(seed: u64, orders: usize, start: DateTime<Utc>) -> Shop {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut timed: Vec<(DateTime<Utc>, Produced)> = Vec::new();
    let mut expected: BTreeMap<NaiveDate, Expected> = BTreeMap::new();
    let mut restated_days: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut restated_months: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut ev = 0u64;
    let mut push = |timed: &mut Vec<(DateTime<Utc>, Produced)>,
                    topic,
                    order: &str,
                    type_name,
                    at: DateTime<Utc>,
                    data: serde_json::Value| {
        ev += 1;
        let value = cloudevent(&format!("ev-{seed}-{ev}"), type_name, at, data).into_bytes();
        timed.push((
            at,
            Produced {
                topic,
                key: order.to_owned(),
                value,
            },
        ));
    };
    for i in 0..orders {
        let order = format!("O-{seed}-{i}");
        let created = start + TimeDelta::seconds(rng.random_range(0..21 * 86_400));
        let lines = rng.random_range(1..4);
        let items: Vec<serde_json::Value> = (0..lines)
            .map(|l| json!({"sku": format!("SKU-{l}"), "quantity": rng.random_range(1..4), "unit_price": "2.50"}))
            .collect();
        let ordered: u64 = items
            .iter()
            .map(|i| i["quantity"].as_u64().unwrap_or(0))
            .sum();
        let promised_to = created + TimeDelta::hours(4);
        push(
            &mut timed,
            "orders",
            &order,
            "order.created",
            created,
            json!({
                "order_id": order, "customer_id": format!("C-{}", rng.random_range(0..500)),
                "items": items, "total": "10.00", "currency": "RUB",
                "promised_delivery": {"from": (created + TimeDelta::hours(2)).to_rfc3339(), "to": promised_to.to_rfc3339()},
                "sales_channel": "web"
            }),
        );
        let r: f64 = rng.random();
        let confirm_s = if r < 0.8 {
            rng.random_range(60..SLA - 100)
        } else if r < 0.95 {
            rng.random_range(SLA + 60..4 * SLA)
        } else {
            SLA // exactly at the SLA: on time
        };
        let confirmed = created + TimeDelta::seconds(confirm_s);
        if rng.random_bool(0.06) {
            let cancelled = created + TimeDelta::seconds(rng.random_range(60..7200));
            if rng.random_bool(0.5) {
                push(
                    &mut timed,
                    "orders",
                    &order,
                    "order.confirmed",
                    confirmed,
                    json!({"order_id": order, "channel": "phone"}),
                );
            }
            push(
                &mut timed,
                "orders",
                &order,
                "order.cancelled",
                cancelled,
                json!({"order_id": order, "reason": "customer"}),
            );
            expected.entry(moscow_day(cancelled)).or_default().cancelled += 1;
            continue;
        }
        push(
            &mut timed,
            "orders",
            &order,
            "order.confirmed",
            confirmed,
            json!({"order_id": order, "channel": "auto"}),
        );
        let shipped = confirmed + TimeDelta::seconds(rng.random_range(600..5400));
        push(
            &mut timed,
            "orders",
            &order,
            "order.shipped",
            shipped,
            json!({"order_id": order, "courier_id": "K-1", "items_shipped": ordered}),
        );
        if rng.random_bool(0.04) {
            continue; // still on its way: open
        }
        let late = rng.random_bool(0.15);
        let delivered = if late {
            promised_to + TimeDelta::seconds(rng.random_range(60..3600))
        } else {
            promised_to - TimeDelta::seconds(rng.random_range(0..6000))
        };
        let short = ordered > 1 && rng.random_bool(0.08);
        let got = if short { ordered - 1 } else { ordered };
        push(
            &mut timed,
            "orders",
            &order,
            "order.delivered",
            delivered,
            json!({"order_id": order, "courier_id": "K-1", "items_delivered": got}),
        );
        let mut claimed_in_window = false;
        let mut claim_filed = None;
        if rng.random_bool(0.1) {
            let filed = delivered + TimeDelta::seconds(rng.random_range(0..20 * 86_400));
            claimed_in_window = filed <= delivered + TimeDelta::days(14);
            claim_filed = Some(filed);
            let category =
                ["quality", "completeness", "delivery", "service"][rng.random_range(0..4)];
            let claim_id = format!("K-{seed}-{i}");
            push(
                &mut timed,
                "claims",
                &order,
                "claim.filed",
                filed,
                json!({"claim_id": claim_id, "order_id": order, "category": category}),
            );
            if rng.random_bool(0.5) {
                push(
                    &mut timed,
                    "claims",
                    &order,
                    "claim.resolved",
                    filed + TimeDelta::hours(30),
                    json!({"claim_id": claim_id, "order_id": order, "resolution": "refund"}),
                );
            }
        }
        let perfect = confirm_s <= SLA && !late && !short && !claimed_in_window;
        // Perfect but for the claim: restated for each period that ended before its filing.
        if let Some(filed) = claim_filed.filter(|_| claimed_in_window) {
            if confirm_s <= SLA && !late && !short {
                if moscow_day(filed) > moscow_day(delivered) {
                    *restated_days.entry(moscow_day(delivered)).or_default() += 1;
                }
                if moscow_month(filed) > moscow_month(delivered) {
                    *restated_months.entry(moscow_month(delivered)).or_default() += 1;
                }
            }
        }
        let day = expected.entry(moscow_day(delivered)).or_default();
        day.fulfilled += 1;
        day.perfect += i64::from(perfect);
    }
    let unique_events = timed.len();
    // Arrival order: event time plus up to two hours of jitter, so events overtake each other.
    let mut arriving: Vec<(DateTime<Utc>, Produced)> = timed
        .into_iter()
        .map(|(t, p)| (t + TimeDelta::seconds(rng.random_range(0..7200)), p))
        .collect();
    arriving.sort_by_key(|(t, _)| *t);
    let mut records: Vec<Produced> = arriving.into_iter().map(|(_, p)| p).collect();
    // Producer retries: 4 % of the records again, a little later in the stream.
    let n = records.len();
    for _ in 0..n / 25 {
        let from = rng.random_range(0..n);
        let copy = records[from].clone();
        let to = (from + rng.random_range(1..200)).min(records.len());
        records.insert(to, copy);
    }
    // Junk: 1 %, of four kinds, in the orders topic.
    let mut junk = Vec::new();
    for j in 0..n / 100 {
        let value = match j % 4 {
            0 => format!("not json {j}").into_bytes(),
            1 => json!({"specversion": "1.0", "id": format!("junk-{j}"), "source": "/shop", "type": "order.created", "data": {"order_id": "X"}}).to_string().into_bytes(),
            2 => cloudevent(&format!("junk-{j}"), "claim.filed", start, json!({"claim_id": "J", "order_id": "X", "category": "taste"})).into_bytes(),
            _ => json!({"specversion": "0.3", "id": format!("junk-{j}"), "source": "/shop"}).to_string().into_bytes(),
        };
        junk.push(value.clone());
        let at = rng.random_range(0..records.len());
        records.insert(
            at,
            Produced {
                topic: "orders",
                key: format!("junk-{j}"),
                value,
            },
        );
    }
    Shop {
        records,
        expected,
        restated_days,
        restated_months,
        junk,
        unique_events,
    }
}

/// Produces `records` to their topics in chunks of 200 (one flush per topic and chunk), pausing
/// `pause` between chunks, as a shop streams while the service runs.
pub fn produce_all(brokers: &str, records: &[Produced], pause: std::time::Duration) {
    let p = super::producer(brokers);
    for chunk in records.chunks(200) {
        for topic in ["orders", "claims"] {
            let part: Vec<(String, Vec<u8>)> = chunk
                .iter()
                .filter(|r| r.topic == topic)
                .map(|r| (r.key.clone(), r.value.clone()))
                .collect();
            super::produce(&p, topic, &part);
        }
        std::thread::sleep(pause);
    }
}

/// The stored daily KPI rows with anything in them, as [`Shop::expected`] has them.
pub async fn daily_as_expected(pool: &sqlx::PgPool) -> BTreeMap<NaiveDate, Expected> {
    let rows: Vec<(NaiveDate, i64, i64, i64)> = sqlx::query_as(
        "SELECT day, fulfilled, perfect, cancelled FROM daily_kpi
         WHERE fulfilled <> 0 OR perfect <> 0 OR cancelled <> 0 ORDER BY day",
    )
    .fetch_all(pool)
    .await
    .expect("daily_kpi");
    rows.into_iter()
        .map(|(d, fulfilled, perfect, cancelled)| {
            let e = Expected {
                fulfilled,
                perfect,
                cancelled,
            };
            (d, e)
        })
        .collect()
}
