//! THE table of event types: each type's CloudEvents name, its payload and whether it folds
//! into an order or into a contract-v2 entity. The enum, the names, the decoder's dispatch
//! and the known-type lists all derive from the one table at the bottom of this file.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::ids::{EventKey, Id};
use super::reject::{RejectReason, Rejection};
use super::v1::{
    ClaimFiled, ClaimResolved, OrderCancelled, OrderConfirmed, OrderCreated, OrderDelivered,
    OrderShipped,
};
use super::v2::{
    ClaimUpdated, CourierRostered, CourierViolation, LeadCaptured, LeadChanged, MarketingSpend,
    ReviewAnswered, ReviewPosted,
};

/// Declares the event types: `Variant = "type.name"`, each variant's payload type named as
/// the variant. Order-scoped types carry an `order_id` and fold into the order projection;
/// entity types fold into the contract-v2 entities.
macro_rules! event_types {
    (
        order: { $($ov:ident = $on:literal),* $(,)? }
        entities: { $($ev:ident = $en:literal),* $(,)? }
    ) => {
        /// The typed payload of an event: the order-scoped types of contract v1, then the v2
        /// types of the seeds' other KPIs (claims journal, reviews, couriers, spend, leads).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum EventKind {
            $($ov($ov),)*
            $($ev($ev),)*
        }

        impl EventKind {
            /// The order whose projection this event folds into: every order-scoped type has
            /// one; the v2 types fold into their own entities and answer `None`.
            pub fn order_id(&self) -> Option<&Id> {
                match self {
                    $(EventKind::$ov(d) => Some(&d.order_id),)*
                    $(EventKind::$ev(_) => None,)*
                }
            }

            /// The CloudEvents `type`, also the bounded `type` label of the consumption metric.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(EventKind::$ov(_) => $on,)*
                    $(EventKind::$ev(_) => $en,)*
                }
            }

            /// The payload of a known type decoded from `data`; `None` for a type this
            /// version does not know.
            pub(super) fn decode_data(
                type_name: &str,
                raw: Option<&RawValue>,
            ) -> Option<Result<EventKind, Rejection>> {
                Some(match type_name {
                    $($on => data(raw, type_name).map(EventKind::$ov),)*
                    $($en => data(raw, type_name).map(EventKind::$ev),)*
                    _ => return None,
                })
            }
        }

        /// Every type name of contracts v1 and v2, in a stable order (metrics pre-register one
        /// series each).
        pub const KNOWN_TYPES: [&str; [$($on,)* $($en,)*].len()] = [$($on,)* $($en,)*];

        /// The types of contract v2 (folded into entities, not into order projections).
        pub const V2_TYPES: [&str; [$($en,)*].len()] = [$($en,)*];
    };
}

event_types! {
    order: {
        OrderCreated = "order.created",
        OrderConfirmed = "order.confirmed",
        OrderShipped = "order.shipped",
        OrderDelivered = "order.delivered",
        OrderCancelled = "order.cancelled",
        ClaimFiled = "claim.filed",
        ClaimResolved = "claim.resolved",
    }
    entities: {
        ClaimUpdated = "claim.updated",
        ReviewPosted = "review.posted",
        ReviewAnswered = "review.answered",
        CourierRostered = "courier.rostered",
        CourierViolation = "courier.violation",
        MarketingSpend = "marketing.spend",
        LeadCaptured = "lead.captured",
        LeadChanged = "lead.changed",
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{decode, Decoded};

    /// A minimal valid event of `type_name`: every required field of every type, by name.
    fn event(type_name: &str) -> String {
        let data = r#"{"order_id":"A-1","customer_id":"C-1","items":[],"claim_id":"K-1",
            "category":"quality","stage":"registered","review_id":"R-1","rating":5,
            "courier_id":"D-1","team_id":"T-1","kind":"rude","spend_id":"S-1","amount":"1.00",
            "currency":"RUB","from":"2026-10-01","to":"2026-10-02","lead_id":"L-1",
            "temperature":"warm"}"#;
        format!(
            r#"{{"specversion":"1.0","id":"e1","source":"/shop","type":"{type_name}","time":"2026-10-01T09:00:00Z","data":{data}}}"#
        )
    }

    #[test]
    fn every_known_type_decodes_to_the_kind_that_bears_its_name() {
        for name in KNOWN_TYPES {
            match decode(event(name).as_bytes()) {
                Ok(Decoded::Known(e)) => assert_eq!(e.kind.type_name(), name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_v2_types_are_exactly_the_known_types_that_fold_into_no_order() {
        for name in KNOWN_TYPES {
            let Ok(Decoded::Known(e)) = decode(event(name).as_bytes()) else {
                panic!("{name} should decode");
            };
            assert_eq!(
                e.kind.order_id().is_none(),
                V2_TYPES.contains(&name),
                "{name}"
            );
        }
        assert_eq!(KNOWN_TYPES.len(), 15);
        assert_eq!(V2_TYPES.len(), 8);
    }

    #[test]
    fn a_type_outside_the_table_is_unknown_not_an_error() {
        assert!(matches!(
            decode(event("order.teleported").as_bytes()),
            Ok(Decoded::Unknown { .. })
        ));
    }
}
