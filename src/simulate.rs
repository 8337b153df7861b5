//! A synthetic shop: realistic contract-v1 traffic with the stream's own faults.
//!
//! The generator is deterministic for a seed. It works as a stream: orders are created hour by
//! hour (Poisson arrivals), each order's lifecycle is drawn at once, and its records wait in a
//! heap ordered by *arrival* time. Every record whose arrival time lies before the end of the
//! generated hours can be emitted, because later orders only produce later records. So live
//! traffic needs no upfront generation, and history of any length streams in constant memory
//! per hour.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Poisson};
use serde_json::json;

/// The knobs of the simulated shop; every rate is a probability per order (or per record for
/// the stream faults).
#[derive(Debug, Clone, PartialEq)]
pub struct Shop {
    pub seed: u64,
    pub orders_per_minute: f64,
    /// Median confirmation delay in minutes (log-normal).
    pub confirmation_median_minutes: f64,
    /// Spread of the confirmation delay (log-normal sigma): larger means a longer tail past 30 min.
    pub confirmation_sigma: f64,
    pub late_courier_rate: f64,
    pub short_delivery_rate: f64,
    pub claim_rate: f64,
    /// Share of claims filed after the 14-day window.
    pub late_claim_rate: f64,
    pub cancel_rate: f64,
    pub duplicate_rate: f64,
    pub out_of_order_rate: f64,
    pub junk_rate: f64,
    /// Also emit the contract-v2 events: courier rosters, reviews and answers, violations,
    /// claim stages, weekly marketing spend and leads.
    pub contract_v2: bool,
    /// Share of delivered orders that get a review.
    pub review_rate: f64,
    /// Share of delivered orders with a courier violation (a red smiley).
    pub violation_rate: f64,
    /// Average leads captured per hour.
    pub leads_per_hour: f64,
}

impl Default for Shop {
    fn default() -> Self {
        Shop {
            seed: 42,
            orders_per_minute: 2.0,
            confirmation_median_minutes: 8.0,
            confirmation_sigma: 0.7,
            late_courier_rate: 0.03,
            short_delivery_rate: 0.01,
            claim_rate: 0.03,
            late_claim_rate: 0.1,
            cancel_rate: 0.04,
            duplicate_rate: 0.02,
            out_of_order_rate: 0.05,
            junk_rate: 0.005,
            contract_v2: true,
            review_rate: 0.15,
            violation_rate: 0.01,
            leads_per_hour: 0.5,
        }
    }
}

impl Shop {
    /// Checks the knobs; the error names the flag.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("--late-courier-rate", self.late_courier_rate),
            ("--short-delivery-rate", self.short_delivery_rate),
            ("--claim-rate", self.claim_rate),
            ("--late-claim-rate", self.late_claim_rate),
            ("--cancel-rate", self.cancel_rate),
            ("--duplicate-rate", self.duplicate_rate),
            ("--out-of-order-rate", self.out_of_order_rate),
            ("--junk-rate", self.junk_rate),
            ("--review-rate", self.review_rate),
            ("--violation-rate", self.violation_rate),
        ];
        for (flag, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{flag} must be between 0 and 1, got {rate}"));
            }
        }
        if !(self.orders_per_minute > 0.0 && self.orders_per_minute.is_finite()) {
            return Err("--orders-per-minute must be a positive number".into());
        }
        if !(self.leads_per_hour >= 0.0 && self.leads_per_hour.is_finite()) {
            return Err("--leads-per-hour must be zero or more".into());
        }
        if !(self.confirmation_median_minutes > 0.0 && self.confirmation_sigma >= 0.0) {
            return Err("--confirmation-median-minutes must be positive and --confirmation-sigma not negative".into());
        }
        Ok(())
    }
}

/// Which family of topic a record belongs to (one topic may carry both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Orders,
    Claims,
    /// Contract-v2 events keyed by their own entity (reviews, couriers, spend, leads).
    Entities,
}

/// One record of the simulated stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SimRecord {
    /// When the record reaches the broker (event time plus any delivery delay).
    pub arrival: DateTime<Utc>,
    pub family: Family,
    /// The Kafka key: the order id, or the entity's id for a v2 event without one (junk
    /// records get a key of their own).
    pub key: String,
    /// The record value: a CloudEvent, or junk.
    pub value: Vec<u8>,
}

/// The stream generator; an iterator of records in arrival order.
pub struct Generator {
    shop: Shop,
    rng: StdRng,
    confirmation: LogNormal<f64>,
    claim_delay: Exp<f64>,
    /// Orders are generated up to here (exclusive).
    horizon: DateTime<Utc>,
    end: DateTime<Utc>,
    heap: BinaryHeap<Reverse<(DateTime<Utc>, u64, SimRecord)>>,
    sequence: u64,
    orders: u64,
    events: u64,
    /// Contract v2: the start of the next week of marketing spend, and leads so far.
    next_spend: DateTime<Utc>,
    leads: u64,
    rostered: bool,
}

const CATEGORIES: [(&str, f64); 4] = [
    ("quality", 0.4),
    ("delivery", 0.25),
    ("completeness", 0.2),
    ("service", 0.15),
];
const SKUS: [(&str, &str); 6] = [
    ("BUN-1", "1.50"),
    ("BREAD-2", "2.40"),
    ("MILK-1", "1.10"),
    ("CHEESE-3", "7.80"),
    ("APPLE-5", "0.60"),
    ("CAKE-1", "12.00"),
];
const CHANNELS: [&str; 3] = ["web", "app", "phone"];

impl Generator {
    /// Orders created from `start` until `end` (exclusive); records arriving from `end` on are
    /// cut off.
    pub fn new(shop: Shop, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Generator, String> {
        shop.validate()?;
        let confirmation = LogNormal::new(
            shop.confirmation_median_minutes.ln(),
            shop.confirmation_sigma,
        )
        .map_err(|e| format!("confirmation delay: {e}"))?;
        let claim_delay = Exp::new(1.0 / 2.0).map_err(|e| format!("claim delay: {e}"))?;
        Ok(Generator {
            rng: StdRng::seed_from_u64(shop.seed),
            shop,
            confirmation,
            claim_delay,
            horizon: start,
            end,
            heap: BinaryHeap::new(),
            sequence: 0,
            orders: 0,
            events: 0,
            // Spend weeks start on Mondays, and a spend's id names its week (not the seed): a
            // run that continues the shop re-sends the current week's spend, which replaces it.
            next_spend: start
                .date_naive()
                .week(chrono::Weekday::Mon)
                .first_day()
                .and_time(chrono::NaiveTime::MIN)
                .and_utc(),
            leads: 0,
            rostered: false,
        })
    }

    /// The arrival time of the next record, if any (for real-time pacing).
    pub fn peek_arrival(&mut self) -> Option<DateTime<Utc>> {
        self.fill();
        self.heap
            .peek()
            .map(|Reverse((t, _, _))| *t)
            .filter(|t| *t < self.end)
    }

    fn push(&mut self, record: SimRecord) {
        self.sequence += 1;
        self.heap
            .push(Reverse((record.arrival, self.sequence, record)));
    }

    /// Emits a CloudEvent, with the stream's faults: a delayed arrival, a duplicate, junk.
    fn emit(
        &mut self,
        family: Family,
        order: &str,
        type_name: &str,
        at: DateTime<Utc>,
        data: serde_json::Value,
    ) {
        self.events += 1;
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8000-{:012x}",
            self.shop.seed as u32,
            (self.events >> 32) as u16,
            self.events as u16 & 0xfff,
            self.events
        );
        let source = match family {
            Family::Orders => "/shop/orders".to_owned(),
            Family::Claims => "/shop/claims".to_owned(),
            Family::Entities => format!("/shop/{}", type_name.split('.').next().unwrap_or("shop")),
        };
        let value = json!({
            "specversion": "1.0", "id": id, "source": source, "type": type_name,
            "time": at.to_rfc3339(),
            "subject": order, "datacontenttype": "application/json", "data": data,
        })
        .to_string()
        .into_bytes();
        let mut arrival = at;
        if self.rng.random_bool(self.shop.out_of_order_rate) {
            arrival += TimeDelta::seconds(self.rng.random_range(60..7200));
        }
        let record = SimRecord {
            arrival,
            family,
            key: order.to_owned(),
            value,
        };
        if self.rng.random_bool(self.shop.duplicate_rate) {
            let mut copy = record.clone();
            copy.arrival += TimeDelta::seconds(self.rng.random_range(1..600));
            self.push(copy);
        }
        if self.rng.random_bool(self.shop.junk_rate) {
            let junk = self.junk(order, at);
            self.push(SimRecord {
                arrival,
                family: Family::Orders,
                key: format!("junk-{}", self.events),
                value: junk,
            });
        }
        self.push(record);
    }

    fn junk(&mut self, order: &str, at: DateTime<Utc>) -> Vec<u8> {
        match self.rng.random_range(0..4) {
            0 => format!("order {order} shipped at {at}").into_bytes(),
            1 => json!({"specversion": "1.0", "id": format!("junk-{}", self.events), "source": "/shop/orders", "type": "order.created", "data": {"order_id": order}}).to_string().into_bytes(),
            2 => json!({"specversion": "1.0", "id": format!("junk-{}", self.events), "source": "/shop/claims", "type": "claim.filed", "time": at.to_rfc3339(), "data": {"claim_id": "J", "order_id": order, "category": "taste"}}).to_string().into_bytes(),
            _ => json!({"specversion": "1.0", "id": format!("junk-{}", self.events), "source": "/shop/orders", "type": "order.confirmed", "time": "yesterday", "data": {"order_id": order}}).to_string().into_bytes(),
        }
    }

    /// Draws one order's whole lifecycle.
    fn order(&mut self, created: DateTime<Utc>) {
        self.orders += 1;
        let order = format!("O-{}-{}", self.shop.seed, self.orders);
        let customer = format!("C-{}", self.rng.random_range(0..(self.orders / 3 + 50)));
        let (items, ordered, total_cents) = self.basket();
        let slot_from = created + TimeDelta::hours(self.rng.random_range(2..6));
        let slot_to = slot_from + TimeDelta::hours(2);
        let sales_channel = CHANNELS[self.rng.random_range(0..CHANNELS.len())];
        self.emit(Family::Orders, &order, "order.created", created, json!({
            "order_id": order, "customer_id": customer, "items": items,
            "total": format!("{}.{:02}", total_cents / 100, total_cents % 100), "currency": "RUB",
            "promised_delivery": {"from": slot_from.to_rfc3339(), "to": slot_to.to_rfc3339()},
            "sales_channel": sales_channel,
        }));
        let confirm_minutes = self.confirmation.sample(&mut self.rng).min(600.0);
        let confirmed = created + TimeDelta::seconds((confirm_minutes * 60.0) as i64);
        if self.rng.random_bool(self.shop.cancel_rate) {
            self.cancellation(&order, created, confirmed);
            return;
        }
        let slot = (slot_from, slot_to);
        let (courier, delivered) = self.fulfilment(&order, ordered, confirmed, slot);
        if self.shop.contract_v2 {
            self.review(&order, &customer, &courier, delivered);
        }
        if self.rng.random_bool(self.shop.claim_rate) {
            self.claim(&order, delivered);
        }
    }

    /// The order's lines: their JSON, the items ordered and the total in cents.
    fn basket(&mut self) -> (Vec<serde_json::Value>, u64, u64) {
        let lines = self.rng.random_range(1..=3);
        let mut items = Vec::new();
        let mut ordered = 0u64;
        let mut total_cents = 0u64;
        for _ in 0..lines {
            let (sku, price) = SKUS[self.rng.random_range(0..SKUS.len())];
            let quantity = self.rng.random_range(1..=4u64);
            ordered += quantity;
            let cents: u64 = price.replace('.', "").parse().unwrap_or(100);
            total_cents += cents * quantity;
            items.push(json!({"sku": sku, "quantity": quantity, "unit_price": price}));
        }
        (items, ordered, total_cents)
    }

    /// A cancelled order: confirmed first when the confirmation came before the cancellation.
    fn cancellation(&mut self, order: &str, created: DateTime<Utc>, confirmed: DateTime<Utc>) {
        let cancelled = created + TimeDelta::minutes(self.rng.random_range(2..90));
        if confirmed < cancelled {
            self.emit(
                Family::Orders,
                order,
                "order.confirmed",
                confirmed,
                json!({"order_id": order, "channel": "phone", "operator_id": "OP-1"}),
            );
        }
        self.emit(
            Family::Orders,
            order,
            "order.cancelled",
            cancelled,
            json!({"order_id": order, "reason": "customer"}),
        );
    }

    /// A fulfilled order's confirmation, shipment and delivery (late or short now and then):
    /// the courier and the delivery time.
    fn fulfilment(
        &mut self,
        order: &str,
        ordered: u64,
        confirmed: DateTime<Utc>,
        (slot_from, slot_to): (DateTime<Utc>, DateTime<Utc>),
    ) -> (String, DateTime<Utc>) {
        let channel = ["phone", "email", "messenger", "sms", "auto"][self.rng.random_range(0..5)];
        let operator = format!("OP-{}", self.rng.random_range(1..8));
        self.emit(
            Family::Orders,
            order,
            "order.confirmed",
            confirmed,
            json!({"order_id": order, "channel": channel, "operator_id": operator}),
        );
        let courier = format!("K-{}", self.rng.random_range(1..31));
        let shipped = (slot_from - TimeDelta::minutes(self.rng.random_range(20..90)))
            .max(confirmed + TimeDelta::minutes(5));
        self.emit(
            Family::Orders,
            order,
            "order.shipped",
            shipped,
            json!({"order_id": order, "courier_id": courier, "items_shipped": ordered}),
        );
        let delivered = if self.rng.random_bool(self.shop.late_courier_rate) {
            slot_to + TimeDelta::minutes(self.rng.random_range(1..75))
        } else {
            slot_from + TimeDelta::seconds(self.rng.random_range(0..7200))
        }
        .max(shipped + TimeDelta::minutes(10));
        let got = if ordered > 1 && self.rng.random_bool(self.shop.short_delivery_rate) {
            ordered - 1
        } else {
            ordered
        };
        self.emit(
            Family::Orders,
            order,
            "order.delivered",
            delivered,
            json!({"order_id": order, "courier_id": courier, "items_delivered": got}),
        );
        (courier, delivered)
    }

    /// A claim about a delivered order (late now and then), its journal stages (contract v2)
    /// and, mostly, its resolution.
    fn claim(&mut self, order: &str, delivered: DateTime<Utc>) {
        let filed = if self.rng.random_bool(self.shop.late_claim_rate) {
            delivered + TimeDelta::days(self.rng.random_range(15..40))
        } else {
            delivered
                + TimeDelta::seconds(
                    (self.claim_delay.sample(&mut self.rng) * 86_400.0).min(13.0 * 86_400.0) as i64,
                )
        };
        let pick: f64 = self.rng.random();
        let mut acc = 0.0;
        let category = CATEGORIES
            .iter()
            .find(|(_, w)| {
                acc += w;
                pick < acc
            })
            .map_or("quality", |(c, _)| *c);
        let claim_id = format!("CL-{}-{}", self.shop.seed, self.orders);
        self.emit(Family::Claims, order, "claim.filed", filed, json!({"claim_id": claim_id, "order_id": order, "category": category, "description": format!("{category} issue")}));
        let resolves = self.rng.random_bool(0.7);
        let resolved = filed + TimeDelta::minutes(self.rng.random_range(60..4320));
        if self.shop.contract_v2 {
            // The journal's stages, before the resolution when there is one.
            let span = if resolves {
                resolved - filed
            } else {
                TimeDelta::days(3)
            };
            for (stage, share) in [("investigating", 0.3), ("action_taken", 0.7)] {
                if resolves || self.rng.random_bool(0.5) {
                    let at = filed + TimeDelta::seconds((span.num_seconds() as f64 * share) as i64);
                    self.emit(Family::Claims, order, "claim.updated", at, json!({"claim_id": claim_id, "order_id": order, "stage": stage, "note": format!("{category}: {stage}")}));
                }
            }
        }
        if resolves {
            self.emit(
                Family::Claims,
                order,
                "claim.resolved",
                resolved,
                json!({"claim_id": claim_id, "order_id": order, "resolution": "refund", "improvement": format!("{category} check added")}),
            );
        }
    }

    /// Contract v2: a review of a delivered order (naming its courier), its answer, and now
    /// and then a courier violation.
    fn review(&mut self, order: &str, customer: &str, courier: &str, delivered: DateTime<Utc>) {
        if self.rng.random_bool(self.shop.review_rate) {
            let review = format!("RV-{}-{}", self.shop.seed, self.orders);
            let rating = match self.rng.random_range(0..100) {
                0..50 => 5,
                50..75 => 4,
                75..85 => 3,
                85..93 => 2,
                _ => 1,
            };
            let posted = delivered + TimeDelta::minutes(self.rng.random_range(10..720));
            self.emit(Family::Entities, order, "review.posted", posted, json!({"review_id": review, "rating": rating, "order_id": order, "customer_id": customer, "courier_id": courier, "text": "thanks"}));
            if self.rng.random_bool(0.9) {
                // Most answers within hours, some after the 24 h SLA.
                let hours = self.confirmation.sample(&mut self.rng) / 2.0;
                let answered = posted + TimeDelta::seconds((hours * 3600.0) as i64 + 60);
                let responder = format!("OP-{}", self.rng.random_range(1..8));
                self.emit(
                    Family::Entities,
                    &review.clone(),
                    "review.answered",
                    answered,
                    json!({"review_id": review, "responder_id": responder}),
                );
            }
        }
        if self.rng.random_bool(self.shop.violation_rate) {
            let at = delivered - TimeDelta::minutes(self.rng.random_range(1..30));
            let kind = ["rude", "late_call", "damaged_package"][self.rng.random_range(0..3)];
            self.emit(
                Family::Entities,
                order,
                "courier.violation",
                at,
                json!({"courier_id": courier, "kind": kind, "order_id": order}),
            );
        }
    }

    /// Contract v2 traffic that is not about one order: the weekly courier roster and spend
    /// per channel, and leads.
    fn shop_events(&mut self, hour: DateTime<Utc>, hour_end: DateTime<Utc>) {
        while self.next_spend < hour_end {
            let from = self.next_spend;
            let to = from + TimeDelta::days(6);
            // The roster is published every week: three teams of 10 with a captain each; from
            // the second week on, K-30 has moved from T-3 to T-1 (so both are flagged).
            for n in 1..=30u32 {
                let courier = format!("K-{n}");
                let team = if n == 30 && self.rostered {
                    "T-1".to_owned()
                } else {
                    format!("T-{}", (n - 1) / 10 + 1)
                };
                let captain = n % 10 == 1;
                self.emit(
                    Family::Entities,
                    &courier.clone(),
                    "courier.rostered",
                    from,
                    json!({"courier_id": courier, "team_id": team, "captain": captain}),
                );
            }
            self.rostered = true;
            for (channel, amount) in [("web", "21000.00"), ("app", "14000.00")] {
                let spend = format!("SP-{}-{channel}", from.format("%Y%m%d"));
                self.emit(Family::Entities, &spend.clone(), "marketing.spend", from, json!({"spend_id": spend, "amount": amount, "currency": "RUB", "from": from.format("%Y-%m-%d").to_string(), "to": to.format("%Y-%m-%d").to_string(), "channel": channel}));
            }
            self.next_spend = from + TimeDelta::days(7);
        }
        let n = Poisson::new(
            self.shop.leads_per_hour * (hour_end - hour).num_seconds() as f64 / 3600.0,
        )
        .map(|p| p.sample(&mut self.rng) as u64)
        .unwrap_or(0);
        for _ in 0..n {
            self.leads += 1;
            let lead = format!("L-{}-{}", self.shop.seed, self.leads);
            let at = hour
                + TimeDelta::seconds(
                    self.rng
                        .random_range(0..(hour_end - hour).num_seconds().max(1)),
                );
            let temperature = match self.rng.random_range(0..10) {
                0..6 => "cold",
                6..9 => "warm",
                _ => "hot",
            };
            // Some leads name a customer who will order (ids as the orders draw them).
            let customer = format!("C-{}", self.rng.random_range(0..(self.orders / 3 + 80)));
            let source = ["web", "app", "phone"][self.rng.random_range(0..3)];
            self.emit(Family::Entities, &lead.clone(), "lead.captured", at, json!({"lead_id": lead, "temperature": temperature, "source": source, "customer_id": customer}));
            if self.rng.random_bool(0.3) {
                let later = at + TimeDelta::hours(self.rng.random_range(6..240));
                let warmer = if temperature == "cold" { "warm" } else { "hot" };
                self.emit(
                    Family::Entities,
                    &lead.clone(),
                    "lead.changed",
                    later,
                    json!({"lead_id": lead, "temperature": warmer}),
                );
            }
        }
    }

    /// Generates orders hour by hour until the earliest pending record is safe to emit.
    fn fill(&mut self) {
        loop {
            let safe = self
                .heap
                .peek()
                .is_some_and(|Reverse((t, _, _))| *t < self.horizon);
            if safe || self.horizon >= self.end {
                return;
            }
            let hour_end = (self.horizon + TimeDelta::hours(1)).min(self.end);
            let span_minutes = (hour_end - self.horizon).num_seconds() as f64 / 60.0;
            let expected = self.shop.orders_per_minute * span_minutes;
            let n = if expected > 0.0 {
                Poisson::new(expected)
                    .map(|p| p.sample(&mut self.rng) as u64)
                    .unwrap_or(0)
            } else {
                0
            };
            let span = (hour_end - self.horizon).num_seconds().max(1);
            let mut starts: Vec<i64> = (0..n).map(|_| self.rng.random_range(0..span)).collect();
            starts.sort_unstable();
            let base = self.horizon;
            if self.shop.contract_v2 {
                self.shop_events(base, hour_end);
            }
            for s in starts {
                self.order(base + TimeDelta::seconds(s));
            }
            self.horizon = hour_end;
        }
    }
}

impl Iterator for Generator {
    type Item = SimRecord;

    /// Records arriving at or after the end are not emitted: the stream is a snapshot of the
    /// shop at `end` (orders created just before it are still open).
    fn next(&mut self) -> Option<SimRecord> {
        self.peek_arrival()?;
        self.heap.pop().map(|Reverse((_, _, r))| r)
    }
}

/// Where simulated records go.
pub mod sink {
    use std::io::{BufRead, BufWriter, Write};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use indicatif::{ProgressBar, ProgressStyle};
    use rdkafka::config::ClientConfig;
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::{Family, Generator};

    /// A failure of a sink, naming the file or topic.
    #[derive(Debug, thiserror::Error)]
    pub enum Error {
        #[error("cannot write {path}: {source}")]
        File {
            path: String,
            source: std::io::Error,
        },
        #[error("cannot read {path}: {source}")]
        Read {
            path: String,
            source: std::io::Error,
        },
        #[error("cannot create the Kafka producer for {brokers}: {source}")]
        Producer {
            brokers: String,
            source: rdkafka::error::KafkaError,
        },
        #[error("producing to topic {topic} failed: {source}")]
        Produce {
            topic: String,
            source: rdkafka::error::KafkaError,
        },
    }

    /// A progress bar (a spinner without a known length) for producing or reading `what`.
    pub fn bar(len: Option<u64>, what: &str) -> ProgressBar {
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = if len.is_some() {
            "{spinner} {msg} [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})"
        } else {
            "{spinner} {msg} {pos} records ({per_sec})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        bar
    }

    /// Writes every record value as one line (junk included: replay sends the lines as they are).
    pub fn write_file(
        generator: Generator,
        path: &Path,
        estimate: Option<u64>,
    ) -> Result<u64, Error> {
        let err = |source| Error::File {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::create(path).map_err(err)?;
        let mut out = BufWriter::new(file);
        let progress = bar(estimate, "writing");
        let mut n = 0u64;
        for record in generator {
            out.write_all(&record.value).map_err(err)?;
            out.write_all(b"\n").map_err(err)?;
            n += 1;
            if n % 1024 == 0 {
                progress.set_position(n);
            }
        }
        out.flush().map_err(err)?;
        progress.finish_with_message(format!("wrote {n} records to {}", path.display()));
        Ok(n)
    }

    /// A producer for the simulator; `properties` pass through to librdkafka
    /// (e.g. `batch.num.messages=1` for brokers that mis-serve multi-record batches).
    pub fn producer(brokers: &str, properties: &[(String, String)]) -> Result<BaseProducer, Error> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5");
        for (k, v) in properties {
            config.set(k, v);
        }
        config.create().map_err(|source| Error::Producer {
            brokers: brokers.to_owned(),
            source,
        })
    }

    /// Sends one record, waiting for room in the producer's queue: the CloudEvent in
    /// structured mode (the envelope as the value), or in binary mode (the attributes in
    /// `ce_` headers, the data as the value; junk goes as it is).
    pub fn send(
        producer: &BaseProducer,
        topic: &str,
        key: &str,
        value: &[u8],
        mode: Mode,
    ) -> Result<(), Error> {
        let binary = match mode {
            Mode::Binary => crate::domain::contract::binding::to_binary(value),
            Mode::Structured => None,
        };
        let (headers, value) = match &binary {
            Some((attributes, data)) => {
                let headers = attributes.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                    h.insert(Header {
                        key: k.as_str(),
                        value: Some(v.as_slice()),
                    })
                });
                (headers, data.as_slice())
            }
            None => (
                OwnedHeaders::new().insert(Header {
                    key: "content-type",
                    value: Some("application/cloudevents+json"),
                }),
                value,
            ),
        };
        let mut record = BaseRecord::to(topic)
            .key(key)
            .payload(value)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => return Ok(()),
                Err((e, back))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(20));
                    record = back;
                }
                Err((source, _)) => {
                    return Err(Error::Produce {
                        topic: topic.to_owned(),
                        source,
                    })
                }
            }
        }
    }

    /// Waits until every queued record of `topic` is acknowledged.
    pub fn flush(producer: &BaseProducer, topic: &str) -> Result<(), Error> {
        producer
            .flush(Duration::from_secs(60))
            .map_err(|source| Error::Produce {
                topic: topic.to_owned(),
                source,
            })
    }

    /// Where produced records go: the producer and the topic of each family.
    pub struct Target<'a> {
        pub producer: &'a BaseProducer,
        pub orders_topic: &'a str,
        pub claims_topic: &'a str,
        /// Contract-v2 events keyed by their own entity (reviews, couriers, spend, leads).
        pub entity_topic: &'a str,
        /// The share of records sent in CloudEvents binary mode (0: all structured, 1: all
        /// binary), spread evenly over the stream.
        pub binary_share: f64,
    }

    pub use crate::domain::contract::binding::Mode;

    /// The mode of the `n`th record (from 0) when `share` of them go in binary mode: exactly
    /// `floor(n * share)` of the first `n` are binary, spread evenly.
    pub fn mode_of(n: u64, share: f64) -> Mode {
        let share = share.clamp(0.0, 1.0);
        if ((n + 1) as f64 * share).floor() > (n as f64 * share).floor() {
            Mode::Binary
        } else {
            Mode::Structured
        }
    }

    /// How [`produce`] shows its progress.
    pub enum Progress<'a> {
        /// A bar on the terminal, with the history's estimated records when known.
        Bar(Option<u64>),
        /// Counts kept for a caller that shows them itself (the demo's terminal).
        Tally(&'a Tally),
    }

    /// The records [`produce`] has sent of the history, and whether the history is all sent.
    #[derive(Debug, Default)]
    pub struct Tally {
        history: AtomicU64,
        history_sent: AtomicBool,
    }

    impl Tally {
        /// The history's records sent so far, and whether that is all of them.
        pub fn history(&self) -> (u64, bool) {
            // Read the flag first: once set, the count is final.
            let sent = self.history_sent.load(Ordering::Acquire);
            (self.history.load(Ordering::Acquire), sent)
        }

        fn sent(&self, n: u64, history_sent: bool) {
            self.history.store(n, Ordering::Release);
            if history_sent {
                self.history_sent.store(true, Ordering::Release);
            }
        }
    }

    /// Produces the generated stream. Records due before `now` (history) go out as fast as the
    /// broker takes them; later ones (live traffic) when the simulated clock reaches them, the
    /// clock running `speedup` times faster than the wall clock. Stops at the end of the stream or
    /// when `stop` is set.
    pub fn produce(
        mut generator: Generator,
        target: &Target<'_>,
        now: DateTime<Utc>,
        speedup: f64,
        progress: Progress<'_>,
        stop: &AtomicBool,
    ) -> Result<u64, Error> {
        let Target {
            producer,
            orders_topic,
            claims_topic,
            entity_topic,
            binary_share,
        } = *target;
        let (progress, tally) = match progress {
            Progress::Bar(estimate) => (bar(estimate, "producing history"), None),
            Progress::Tally(tally) => (ProgressBar::hidden(), Some(tally)),
        };
        let wall_start = std::time::Instant::now();
        let mut n = 0u64;
        let mut live = false;
        while !stop.load(Ordering::Relaxed) {
            let Some(arrival) = generator.peek_arrival() else {
                break;
            };
            if arrival > now {
                if !live {
                    live = true;
                    flush(producer, orders_topic)?;
                    progress.set_message("live traffic");
                    if let Some(tally) = tally {
                        tally.sent(n, true);
                    }
                }
                let simulated = now
                    + chrono::TimeDelta::milliseconds(
                        (wall_start.elapsed().as_secs_f64() * speedup * 1000.0) as i64,
                    );
                if arrival > simulated {
                    producer.poll(Duration::ZERO);
                    let wait = ((arrival - simulated).num_milliseconds() as f64 / speedup)
                        .clamp(1.0, 200.0);
                    std::thread::sleep(Duration::from_millis(wait as u64));
                    continue;
                }
            }
            let Some(record) = generator.next() else {
                break;
            };
            let topic = match record.family {
                Family::Orders => orders_topic,
                Family::Claims => claims_topic,
                Family::Entities => entity_topic,
            };
            let mode = mode_of(n, binary_share);
            send(producer, topic, &record.key, &record.value, mode)?;
            n += 1;
            if n % 512 == 0 {
                producer.poll(Duration::ZERO);
                progress.set_position(n);
                if let (Some(tally), false) = (tally, live) {
                    tally.sent(n, false);
                }
            }
        }
        flush(producer, orders_topic)?;
        if let (Some(tally), false) = (tally, live) {
            // The stream ended (or stopped) before any live traffic.
            tally.sent(n, true);
        }
        progress.finish_with_message(format!("produced {n} records"));
        Ok(n)
    }

    /// Sends the lines of a file written by [`write_file`] to `topic`, keyed by the order id of
    /// each event (junk lines get a key of their own).
    pub fn replay(
        path: &Path,
        producer: &BaseProducer,
        topic: &str,
        binary_share: f64,
    ) -> Result<u64, Error> {
        let file = std::fs::File::open(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).ok();
        let progress = bar(size, "replaying");
        let mut n = 0u64;
        let mut bytes = 0u64;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.map_err(|source| Error::Read {
                path: path.display().to_string(),
                source,
            })?;
            bytes += line.len() as u64 + 1;
            if line.is_empty() {
                continue;
            }
            let key = serde_json::from_slice::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| {
                    // The order id where the event has one, else the entity's own id.
                    ["order_id", "review_id", "courier_id", "spend_id", "lead_id"]
                        .iter()
                        .find_map(|k| v["data"][k].as_str().map(str::to_owned))
                })
                .unwrap_or_else(|| format!("unkeyed-{n}"));
            send(producer, topic, &key, &line, mode_of(n, binary_share))?;
            n += 1;
            if n % 512 == 0 {
                producer.poll(Duration::ZERO);
                progress.set_position(bytes);
            }
        }
        flush(producer, topic)?;
        progress.finish_with_message(format!("replayed {n} records from {}", path.display()));
        Ok(n)
    }
}

/// librdkafka's mock cluster keeps at most 5 MiB per partition (`rdkafka_mock.c`,
/// `max_size`) and drops the oldest records beyond: the stream must be spread over enough
/// partitions to be held whole.
const MOCK_PARTITION_BYTES: u64 = 5 * 1024 * 1024;

/// Partitions (at least `at_least`) that hold `bytes` of records on the mock cluster, with a
/// third of headroom for record overhead. The demo sizes its topic with it too.
pub fn mock_partitions_for(bytes: u64, at_least: i32) -> i32 {
    let needed = (bytes * 4 / 3).div_ceil(MOCK_PARTITION_BYTES);
    at_least.max(i32::try_from(needed).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod binary_share_tests {
    use super::sink::{mode_of, Mode};

    #[test]
    fn a_share_of_binary_mode_sends_exactly_that_share_spread_over_the_stream() {
        let binary = |share: f64, n: u64| {
            (0..n)
                .filter(|i| mode_of(*i, share) == Mode::Binary)
                .count()
        };
        assert_eq!(binary(0.0, 1000), 0);
        assert_eq!(binary(1.0, 1000), 1000);
        assert_eq!(binary(0.25, 1000), 250);
        assert_eq!(binary(0.5, 7), 3);
        // Spread: every other record at one half.
        let modes: Vec<Mode> = (0..4).map(|i| mode_of(i, 0.5)).collect();
        assert_eq!(
            modes,
            [
                Mode::Structured,
                Mode::Binary,
                Mode::Structured,
                Mode::Binary
            ]
        );
    }
}
