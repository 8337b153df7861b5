//! The payloads of contract v1: the order lifecycle and claims (domain brief, "Event
//! contract, version 1").

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::ids::{Id, Money};

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
