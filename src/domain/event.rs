//! The event contract at the edge: CloudEvents 1.0 structured JSON in, typed events out.
//!
//! Everything downstream works on [`Event`]; a record that does not decode becomes a
//! [`Rejection`] with a bounded reason label and a human-readable detail, never a panic.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// Identity of an event: the same `source` + `id` seen twice is one event (producers retry).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventKey {
    pub source: String,
    pub id: String,
}

impl EventKey {
    /// The smallest key (empty source and id): a range bound below every real key.
    pub fn min() -> EventKey {
        EventKey {
            source: String::new(),
            id: String::new(),
        }
    }
}

/// Longest id accepted (ids are primary keys; an unbounded one could not be indexed).
pub const MAX_ID_LEN: usize = 256;

/// A non-empty identifier (order, customer, claim, courier ids are all strings in the contract).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    /// Builds an id, refusing the empty string so that an `Id` that exists is usable as a key.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            Err("id is empty".to_owned())
        } else if raw.len() > MAX_ID_LEN {
            Err(format!("id is longer than {MAX_ID_LEN} bytes"))
        } else {
            Ok(Id(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Id::parse(&raw).map_err(de::Error::custom)
    }
}

/// A money amount as the contract sends it: a decimal string such as `"3.00"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Money(String);

impl Money {
    /// Accepts an optional minus sign, digits, and an optional fraction; nothing else.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let digits = raw.strip_prefix('-').unwrap_or(raw);
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if all_digits(int) && frac.is_none_or(all_digits) {
            Ok(Money(raw.to_owned()))
        } else {
            Err(format!("`{raw}` is not a decimal string"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Money::parse(&raw).map_err(de::Error::custom)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
}

/// The delivery slot promised to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryWindow {
    pub from: DateTime<FixedOffset>,
    pub to: DateTime<FixedOffset>,
}

/// How many items went out or arrived: either a plain count or a per-SKU list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ItemCount {
    /// At most `u32::MAX`: a larger count is a bad value, never wrapped.
    Total(u32),
    PerSku(Vec<SkuQuantity>),
}

/// A SKU and a quantity, as in `items_delivered: [{"sku": "BUN-1", "quantity": 2}]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuQuantity {
    pub sku: String,
    /// At most `u32::MAX`, like an ordered quantity: a larger one is a bad value.
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfirmationChannel {
    Phone,
    Email,
    Messenger,
    Sms,
    Auto,
}

impl ConfirmationChannel {
    /// The contract's name of the channel (`orders.confirmation_channel`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationChannel::Phone => "phone",
            ConfirmationChannel::Email => "email",
            ConfirmationChannel::Messenger => "messenger",
            ConfirmationChannel::Sms => "sms",
            ConfirmationChannel::Auto => "auto",
        }
    }
}

/// The four deviation categories of the seeds; a claim names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Quality,
    Completeness,
    Delivery,
    Service,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Quality,
        Category::Completeness,
        Category::Delivery,
        Category::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Quality => "quality",
            Category::Completeness => "completeness",
            Category::Delivery => "delivery",
            Category::Service => "service",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: Id,
    pub customer_id: Id,
    pub items: Vec<LineItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_delivery: Option<DeliveryWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ConfirmationChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    pub order_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_shipped: Option<ItemCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivered {
    pub order_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_delivered: Option<ItemCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimFiled {
    pub claim_id: Id,
    pub order_id: Id,
    pub category: Category,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResolved {
    pub claim_id: Id,
    pub order_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Contract v2: the process change the claim led to (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub improvement: Option<String>,
}

/// The stages a claim passes through before it is resolved (contract v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStage {
    Registered,
    Investigating,
    ActionTaken,
}

impl ClaimStage {
    pub const ALL: [ClaimStage; 3] = [
        ClaimStage::Registered,
        ClaimStage::Investigating,
        ClaimStage::ActionTaken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStage::Registered => "registered",
            ClaimStage::Investigating => "investigating",
            ClaimStage::ActionTaken => "action_taken",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimUpdated {
    pub claim_id: Id,
    pub order_id: Id,
    pub stage: ClaimStage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A review's rating: a whole number 1..=5 (anything else is junk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Rating(u8);

impl Rating {
    pub fn parse(value: i64) -> Result<Self, String> {
        match u8::try_from(value) {
            Ok(v @ 1..=5) => Ok(Rating(v)),
            _ => Err(format!("rating {value} is outside 1..5")),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Rating {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = i64::deserialize(d)?;
        Rating::parse(raw).map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewPosted {
    pub review_id: Id,
    pub rating: Rating,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewAnswered {
    pub review_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder_id: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierRostered {
    pub courier_id: Id,
    pub team_id: Id,
    #[serde(default)]
    pub captain: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierViolation {
    pub courier_id: Id,
    pub kind: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Id>,
}

/// A marketing spend over shop-zone dates `from..=to` (both included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketingSpend {
    pub spend_id: Id,
    pub amount: Money,
    pub currency: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl<'de> Deserialize<'de> for MarketingSpend {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            spend_id: Id,
            amount: Money,
            currency: String,
            from: String,
            to: String,
            #[serde(default)]
            channel: Option<String>,
        }
        /// A date (`2026-09-25`); an RFC 3339 date-time is read as the date it names.
        fn date<E: de::Error>(field: &str, raw: &str) -> Result<NaiveDate, E> {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .or_else(|_| DateTime::parse_from_rfc3339(raw).map(|t| t.date_naive()))
                .map_err(|_| E::custom(format!("`{field}` `{raw}` is not a date (YYYY-MM-DD)")))
        }
        let raw = Raw::deserialize(d)?;
        let (from, to) = (date("from", &raw.from)?, date("to", &raw.to)?);
        if raw.amount.as_str().starts_with('-') {
            return Err(de::Error::custom(format!(
                "amount `{}` is negative",
                raw.amount.as_str()
            )));
        }
        if to < from {
            return Err(de::Error::custom(format!(
                "`to` {to} is before `from` {from}"
            )));
        }
        Ok(MarketingSpend {
            spend_id: raw.spend_id,
            amount: raw.amount,
            currency: raw.currency,
            from,
            to,
            channel: raw.channel,
        })
    }
}

/// How ready a lead is to buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Temperature {
    Cold,
    Warm,
    Hot,
}

impl Temperature {
    pub const ALL: [Temperature; 3] = [Temperature::Cold, Temperature::Warm, Temperature::Hot];

    pub fn as_str(self) -> &'static str {
        match self {
            Temperature::Cold => "cold",
            Temperature::Warm => "warm",
            Temperature::Hot => "hot",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCaptured {
    pub lead_id: Id,
    pub temperature: Temperature,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadChanged {
    pub lead_id: Id,
    pub temperature: Temperature,
}

/// The typed payload of an event: the order-scoped types of contract v1, then the v2 types
/// of the seeds' other KPIs (claims journal, reviews, couriers, spend, leads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    OrderCreated(OrderCreated),
    OrderConfirmed(OrderConfirmed),
    OrderShipped(OrderShipped),
    OrderDelivered(OrderDelivered),
    OrderCancelled(OrderCancelled),
    ClaimFiled(ClaimFiled),
    ClaimResolved(ClaimResolved),
    ClaimUpdated(ClaimUpdated),
    ReviewPosted(ReviewPosted),
    ReviewAnswered(ReviewAnswered),
    CourierRostered(CourierRostered),
    CourierViolation(CourierViolation),
    MarketingSpend(MarketingSpend),
    LeadCaptured(LeadCaptured),
    LeadChanged(LeadChanged),
}

impl EventKind {
    /// The order whose projection this event folds into: every v1 type has one; the v2 types
    /// fold into their own entities (see [`crate::domain::entities`]) and answer `None`.
    pub fn order_id(&self) -> Option<&Id> {
        match self {
            EventKind::OrderCreated(d) => Some(&d.order_id),
            EventKind::OrderConfirmed(d) => Some(&d.order_id),
            EventKind::OrderShipped(d) => Some(&d.order_id),
            EventKind::OrderDelivered(d) => Some(&d.order_id),
            EventKind::OrderCancelled(d) => Some(&d.order_id),
            EventKind::ClaimFiled(d) => Some(&d.order_id),
            EventKind::ClaimResolved(d) => Some(&d.order_id),
            _ => None,
        }
    }

    /// The CloudEvents `type`, also the bounded `type` label of the consumption metric.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::OrderCreated(_) => "order.created",
            EventKind::OrderConfirmed(_) => "order.confirmed",
            EventKind::OrderShipped(_) => "order.shipped",
            EventKind::OrderDelivered(_) => "order.delivered",
            EventKind::OrderCancelled(_) => "order.cancelled",
            EventKind::ClaimFiled(_) => "claim.filed",
            EventKind::ClaimResolved(_) => "claim.resolved",
            EventKind::ClaimUpdated(_) => "claim.updated",
            EventKind::ReviewPosted(_) => "review.posted",
            EventKind::ReviewAnswered(_) => "review.answered",
            EventKind::CourierRostered(_) => "courier.rostered",
            EventKind::CourierViolation(_) => "courier.violation",
            EventKind::MarketingSpend(_) => "marketing.spend",
            EventKind::LeadCaptured(_) => "lead.captured",
            EventKind::LeadChanged(_) => "lead.changed",
        }
    }
}

/// Every type name of contracts v1 and v2, in a stable order (metrics pre-register one
/// series each).
pub const KNOWN_TYPES: [&str; 15] = [
    "order.created",
    "order.confirmed",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    "claim.filed",
    "claim.resolved",
    "claim.updated",
    "review.posted",
    "review.answered",
    "courier.rostered",
    "courier.violation",
    "marketing.spend",
    "lead.captured",
    "lead.changed",
];

/// The types of contract v2 (folded into entities, not into order projections).
pub const V2_TYPES: [&str; 8] = [
    "claim.updated",
    "review.posted",
    "review.answered",
    "courier.rostered",
    "courier.violation",
    "marketing.spend",
    "lead.captured",
    "lead.changed",
];

/// A decoded, valid event of contract v1 or v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub key: EventKey,
    /// Event time (when it happened in the shop), normalised to UTC.
    pub time: DateTime<Utc>,
    pub kind: EventKind,
}

/// What a well-formed record turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Known(Event),
    /// A valid CloudEvent of a type this version does not know: skipped and counted.
    Unknown {
        key: EventKey,
        time: DateTime<Utc>,
        type_name: String,
    },
}

/// Why a record could not be read. The variants are the bounded `reason` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// The bytes are not JSON (or the record has no value at all).
    NotJson,
    /// JSON, but not a CloudEvents 1.0 envelope.
    NotCloudEvent,
    /// A required envelope attribute or data field is absent.
    MissingField,
    /// A field has the wrong type or an unknown enum value.
    BadValue,
    /// `time` is not RFC 3339 with an offset, or an instant of the event is outside the
    /// plausible range (`decode.earliest_time`, `decode.max_future`).
    BadTime,
    /// The record value is larger than `decode.max_record_bytes`.
    TooLarge,
    /// The database refused to store the record (its message is the detail); found by
    /// splitting the batch the database refused.
    StoreRefused,
}

impl RejectReason {
    pub const ALL: [RejectReason; 7] = [
        RejectReason::NotJson,
        RejectReason::NotCloudEvent,
        RejectReason::MissingField,
        RejectReason::BadValue,
        RejectReason::BadTime,
        RejectReason::TooLarge,
        RejectReason::StoreRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NotJson => "not_json",
            RejectReason::NotCloudEvent => "not_cloudevent",
            RejectReason::MissingField => "missing_field",
            RejectReason::BadValue => "bad_value",
            RejectReason::BadTime => "bad_time",
            RejectReason::TooLarge => "too_large",
            RejectReason::StoreRefused => "store_refused",
        }
    }
}

/// A record that cannot be read, with the reason label and a detail for the rejected table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    specversion: Option<String>,
    id: Option<String>,
    source: Option<String>,
    #[serde(rename = "type")]
    type_name: Option<String>,
    time: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

fn required(value: Option<String>, name: &str) -> Result<String, Rejection> {
    match value {
        Some(v) if v.len() > MAX_ID_LEN => Err(Rejection::new(
            RejectReason::BadValue,
            format!("CloudEvents attribute `{name}` is longer than {MAX_ID_LEN} bytes"),
        )),
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(Rejection::new(
            RejectReason::MissingField,
            format!("CloudEvents attribute `{name}` is missing or empty"),
        )),
    }
}

fn data<T: DeserializeOwned>(raw: Option<&RawValue>, type_name: &str) -> Result<T, Rejection> {
    let raw = raw.ok_or_else(|| {
        Rejection::new(
            RejectReason::MissingField,
            format!("`data` is missing for {type_name}"),
        )
    })?;
    serde_json::from_str(raw.get()).map_err(|e| {
        let msg = e.to_string();
        let reason = if msg.starts_with("missing field") {
            RejectReason::MissingField
        } else {
            RejectReason::BadValue
        };
        Rejection::new(reason, format!("{type_name} data: {msg}"))
    })
}

/// Decodes one Kafka record value. Pure; the hot path of ingest (`benches/domain.rs`, `decode`).
pub fn decode(bytes: &[u8]) -> Result<Decoded, Rejection> {
    let envelope: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category as C;
        match e.classify() {
            C::Syntax | C::Eof | C::Io => Rejection::new(RejectReason::NotJson, e.to_string()),
            C::Data => Rejection::new(
                RejectReason::NotCloudEvent,
                format!("not a CloudEvents envelope: {e}"),
            ),
        }
    })?;
    match envelope.specversion.as_deref() {
        Some("1.0") => {}
        Some(other) => {
            return Err(Rejection::new(
                RejectReason::NotCloudEvent,
                format!("specversion `{other}` is not 1.0"),
            ))
        }
        None => {
            return Err(Rejection::new(
                RejectReason::NotCloudEvent,
                "specversion is missing",
            ))
        }
    }
    let id = required(envelope.id, "id")?;
    let source = required(envelope.source, "source")?;
    let type_name = required(envelope.type_name, "type")?;
    let raw_time = required(envelope.time, "time")?;
    let time = DateTime::parse_from_rfc3339(&raw_time)
        .map_err(|e| {
            Rejection::new(
                RejectReason::BadTime,
                format!("time `{raw_time}` is not RFC 3339 with an offset: {e}"),
            )
        })?
        .with_timezone(&Utc);
    let key = EventKey { source, id };
    let raw = envelope.data;
    let kind = match type_name.as_str() {
        "order.created" => EventKind::OrderCreated(data(raw, &type_name)?),
        "order.confirmed" => EventKind::OrderConfirmed(data(raw, &type_name)?),
        "order.shipped" => EventKind::OrderShipped(data(raw, &type_name)?),
        "order.delivered" => EventKind::OrderDelivered(data(raw, &type_name)?),
        "order.cancelled" => EventKind::OrderCancelled(data(raw, &type_name)?),
        "claim.filed" => EventKind::ClaimFiled(data(raw, &type_name)?),
        "claim.resolved" => EventKind::ClaimResolved(data(raw, &type_name)?),
        "claim.updated" => EventKind::ClaimUpdated(data(raw, &type_name)?),
        "review.posted" => EventKind::ReviewPosted(data(raw, &type_name)?),
        "review.answered" => EventKind::ReviewAnswered(data(raw, &type_name)?),
        "courier.rostered" => EventKind::CourierRostered(data(raw, &type_name)?),
        "courier.violation" => EventKind::CourierViolation(data(raw, &type_name)?),
        "marketing.spend" => EventKind::MarketingSpend(data(raw, &type_name)?),
        "lead.captured" => EventKind::LeadCaptured(data(raw, &type_name)?),
        "lead.changed" => EventKind::LeadChanged(data(raw, &type_name)?),
        _ => {
            return Ok(Decoded::Unknown {
                key,
                time,
                type_name,
            })
        }
    };
    Ok(Decoded::Known(Event { key, time, kind }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(type_name: &str, data: &str) -> String {
        format!(
            r#"{{"specversion":"1.0","id":"e1","source":"/shop","type":"{type_name}","time":"2026-10-01T09:12:44+03:00","data":{data}}}"#
        )
    }

    fn reason_of(bytes: &[u8]) -> RejectReason {
        match decode(bytes) {
            Err(r) => r.reason,
            Ok(d) => panic!("expected a rejection, decoded {d:?}"),
        }
    }

    #[test]
    fn event_time_is_normalised_to_utc() {
        let raw = envelope("order.cancelled", r#"{"order_id":"A-1"}"#);
        let Ok(Decoded::Known(event)) = decode(raw.as_bytes()) else {
            panic!("should decode")
        };
        assert_eq!(event.time.to_rfc3339(), "2026-10-01T06:12:44+00:00");
    }

    #[test]
    fn bytes_that_are_not_json_are_rejected_as_not_json() {
        assert_eq!(reason_of(b"{not json"), RejectReason::NotJson);
    }

    #[test]
    fn json_that_is_not_an_object_is_not_a_cloudevent() {
        assert_eq!(reason_of(b"[1,2]"), RejectReason::NotCloudEvent);
    }

    #[test]
    fn wrong_specversion_is_not_a_cloudevent() {
        let raw = envelope("order.cancelled", r#"{"order_id":"A-1"}"#).replace("1.0", "0.3");
        assert_eq!(reason_of(raw.as_bytes()), RejectReason::NotCloudEvent);
    }

    #[test]
    fn missing_time_is_a_missing_field() {
        let raw = r#"{"specversion":"1.0","id":"e","source":"/s","type":"order.cancelled","data":{"order_id":"A"}}"#;
        assert_eq!(reason_of(raw.as_bytes()), RejectReason::MissingField);
    }

    #[test]
    fn time_without_offset_is_a_bad_time() {
        let raw = envelope("order.cancelled", r#"{"order_id":"A-1"}"#)
            .replace("2026-10-01T09:12:44+03:00", "2026-10-01 09:12");
        assert_eq!(reason_of(raw.as_bytes()), RejectReason::BadTime);
    }

    #[test]
    fn missing_required_data_field_is_a_missing_field() {
        let raw = envelope("claim.filed", r#"{"claim_id":"K","order_id":"A"}"#);
        assert_eq!(reason_of(raw.as_bytes()), RejectReason::MissingField);
    }

    #[test]
    fn unknown_claim_category_is_a_bad_value() {
        let raw = envelope(
            "claim.filed",
            r#"{"claim_id":"K","order_id":"A","category":"taste"}"#,
        );
        assert_eq!(reason_of(raw.as_bytes()), RejectReason::BadValue);
    }

    #[test]
    fn numeric_money_is_a_bad_value() {
        let raw = envelope(
            "order.created",
            r#"{"order_id":"A","customer_id":"C","items":[],"total":3.0}"#,
        );
        assert_eq!(reason_of(raw.as_bytes()), RejectReason::BadValue);
    }

    #[test]
    fn empty_order_id_is_a_bad_value() {
        let raw = envelope("order.cancelled", r#"{"order_id":""}"#);
        assert_eq!(reason_of(raw.as_bytes()), RejectReason::BadValue);
    }

    #[test]
    fn unknown_type_is_skipped_not_rejected() {
        let raw = envelope("order.teleported", r#"{"order_id":"A-1"}"#);
        assert!(matches!(
            decode(raw.as_bytes()),
            Ok(Decoded::Unknown { type_name, .. }) if type_name == "order.teleported"
        ));
    }

    #[test]
    fn a_review_rating_outside_one_to_five_is_a_bad_value() {
        for rating in ["0", "6", "4.5", "\"5\""] {
            let raw = envelope(
                "review.posted",
                &format!(r#"{{"review_id":"R","rating":{rating}}}"#),
            );
            assert_eq!(
                reason_of(raw.as_bytes()),
                RejectReason::BadValue,
                "{rating}"
            );
        }
        let ok = envelope("review.posted", r#"{"review_id":"R","rating":5}"#);
        assert!(matches!(decode(ok.as_bytes()), Ok(Decoded::Known(_))));
    }

    #[test]
    fn a_spend_that_ends_before_it_starts_or_is_negative_is_a_bad_value() {
        let backwards = envelope(
            "marketing.spend",
            r#"{"spend_id":"S","amount":"10","currency":"RUB","from":"2026-10-04","to":"2026-09-25"}"#,
        );
        let negative = envelope(
            "marketing.spend",
            r#"{"spend_id":"S","amount":"-10","currency":"RUB","from":"2026-09-25","to":"2026-10-04"}"#,
        );
        assert_eq!(reason_of(backwards.as_bytes()), RejectReason::BadValue);
        assert_eq!(reason_of(negative.as_bytes()), RejectReason::BadValue);
    }

    #[test]
    fn a_spend_reads_plain_dates_and_the_date_of_a_date_time_and_refuses_other_text() {
        let spend = |from: &str| {
            envelope(
                "marketing.spend",
                &format!(
                    r#"{{"spend_id":"S","amount":"10","currency":"RUB","from":"{from}","to":"2026-10-04"}}"#
                ),
            )
        };
        for from in ["2026-09-25", "2026-09-25T00:00:00+03:00"] {
            let Ok(Decoded::Known(Event {
                kind: EventKind::MarketingSpend(s),
                ..
            })) = decode(spend(from).as_bytes())
            else {
                panic!("{from} should decode")
            };
            assert_eq!(s.from.to_string(), "2026-09-25");
        }
        assert_eq!(
            reason_of(spend("next monday").as_bytes()),
            RejectReason::BadValue
        );
    }

    #[test]
    fn v2_events_without_their_entity_id_are_a_missing_field() {
        for (type_name, data) in [
            ("claim.updated", r#"{"claim_id":"K","order_id":"A"}"#),
            ("review.answered", r#"{"responder_id":"U"}"#),
            ("courier.rostered", r#"{"courier_id":"D"}"#),
            ("lead.changed", r#"{"lead_id":"L"}"#),
        ] {
            let raw = envelope(type_name, data);
            assert_eq!(
                reason_of(raw.as_bytes()),
                RejectReason::MissingField,
                "{type_name}"
            );
        }
    }

    #[test]
    fn an_unknown_lead_temperature_is_a_bad_value() {
        let raw = envelope(
            "lead.captured",
            r#"{"lead_id":"L","temperature":"lukewarm"}"#,
        );
        assert_eq!(reason_of(raw.as_bytes()), RejectReason::BadValue);
    }

    #[test]
    fn items_delivered_may_be_a_count_or_a_list() {
        let count = envelope("order.delivered", r#"{"order_id":"A","items_delivered":3}"#);
        let list = envelope(
            "order.delivered",
            r#"{"order_id":"A","items_delivered":[{"sku":"X","quantity":3}]}"#,
        );
        assert!(matches!(decode(count.as_bytes()), Ok(Decoded::Known(_))));
        assert!(matches!(decode(list.as_bytes()), Ok(Decoded::Known(_))));
    }
}
