//! The envelope decoder: CloudEvents 1.0 structured JSON in, a typed [`Event`] (or a
//! [`Rejection`] with a bounded reason, never a panic) out.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::ids::{EventKey, MAX_ID_LEN};
use super::kinds::{Decoded, Event, EventKind};
use super::reject::{RejectReason, Rejection};

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
    let kind = match EventKind::decode_data(&type_name, envelope.data) {
        Some(kind) => kind?,
        None => {
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
