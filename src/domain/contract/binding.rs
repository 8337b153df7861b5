//! The CloudEvents Kafka protocol binding: which content mode a record uses, and a
//! binary-mode record as the structured envelope it stands for.
//!
//! - **Structured mode**: the record value is the whole CloudEvent as JSON (the `content-type`
//!   header, when present, starts with `application/cloudevents`). A record without headers
//!   is read this way too: it is what producers of contract v1 send.
//! - **Binary mode** (the default of the Java and Go SDKs, Knative, Debezium's CloudEvents
//!   converter): the attributes travel in `ce_`-prefixed headers (`ce_specversion`, `ce_id`,
//!   `ce_source`, `ce_type`, `ce_time`, …), the `content-type` header describes the data, and
//!   the record value is the data itself. A record is binary when its `content-type` does not
//!   start with `application/cloudevents` and it has a `ce_specversion` header.
//!
//! A binary-mode record is rewritten here into the structured envelope (its canonical form:
//! the attributes in a fixed order, then `data`), which the envelope decoder then reads like
//! any other record: the same validation and rejection reasons, and the same stored form, so
//! `rebuild` cannot tell the modes apart.

use serde_json::value::RawValue;

use super::reject::{RejectReason, Rejection};

/// The header that carries the data's media type in binary mode (and the envelope's in
/// structured mode).
pub const CONTENT_TYPE: &str = "content-type";
/// The prefix of a binary-mode attribute header.
pub const ATTRIBUTE_PREFIX: &str = "ce_";

/// How a record carries its CloudEvent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Structured,
    Binary,
}

/// The headers the binding reads: `content-type` and the `ce_` attributes (others are not
/// kept). Names as sent; values as bytes.
pub type Headers = Vec<(String, Vec<u8>)>;

/// Whether a header is one the binding reads.
pub fn is_binding_header(name: &str) -> bool {
    name.eq_ignore_ascii_case(CONTENT_TYPE) || name.starts_with(ATTRIBUTE_PREFIX)
}

fn header<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The content mode of a record with these headers, as the binding says.
pub fn mode(headers: &[(String, Vec<u8>)]) -> Mode {
    const STRUCTURED: &[u8] = b"application/cloudevents";
    let structured_type = header(headers, CONTENT_TYPE)
        .and_then(|v| v.get(..STRUCTURED.len()))
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(STRUCTURED));
    if !structured_type && header(headers, "ce_specversion").is_some() {
        Mode::Binary
    } else {
        Mode::Structured
    }
}

/// Whether a media type is JSON (`application/json`, `text/json`, `…+json`, any parameters).
fn is_json(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// The attributes in the order the canonical envelope lists them; any others follow in
/// name order.
const ORDER: [&str; 8] = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "dataschema",
    "datacontenttype",
];

/// The structured envelope a binary-mode record stands for: its `ce_` headers as attributes,
/// `content-type` as `datacontenttype`, the value as `data` (JSON only: perfect-order's
/// contract is JSON). A header that is not UTF-8 or appears twice, or data that is not JSON,
/// is a rejection.
pub fn to_structured(
    headers: &[(String, Vec<u8>)],
    value: Option<&[u8]>,
) -> Result<Vec<u8>, Rejection> {
    let mut attributes: Vec<(String, String)> = Vec::new();
    for (name, raw) in headers {
        let attribute = if name.eq_ignore_ascii_case(CONTENT_TYPE) {
            "datacontenttype".to_owned()
        } else if let Some(attribute) = name.strip_prefix(ATTRIBUTE_PREFIX) {
            attribute.to_owned()
        } else {
            continue;
        };
        let text = std::str::from_utf8(raw).map_err(|e| {
            Rejection::new(
                RejectReason::NotCloudEvent,
                format!("binary-mode header `{name}` is not UTF-8: {e}"),
            )
        })?;
        if attributes.iter().any(|(a, _)| *a == attribute) {
            return Err(Rejection::new(
                RejectReason::NotCloudEvent,
                format!("binary-mode attribute `{attribute}` comes in more than one header"),
            ));
        }
        attributes.push((attribute, text.to_owned()));
    }
    if let Some((_, media)) = attributes.iter().find(|(a, _)| a == "datacontenttype") {
        if !is_json(media) {
            return Err(Rejection::new(
                RejectReason::BadValue,
                format!(
                    "binary-mode data of content-type `{media}`: perfect-order reads JSON data \
                     (content-type application/json)"
                ),
            ));
        }
    }
    let data: Option<&RawValue> = match value {
        None | Some([]) => None,
        Some(bytes) => Some(serde_json::from_slice(bytes).map_err(|e| {
            Rejection::new(
                RejectReason::NotJson,
                format!("binary-mode record: the value (the event's data) is not JSON: {e}"),
            )
        })?),
    };
    let rank = |name: &str| ORDER.iter().position(|o| *o == name).unwrap_or(ORDER.len());
    attributes.sort_by(|(a, _), (b, _)| (rank(a), a).cmp(&(rank(b), b)));
    let mut out = String::with_capacity(value.map_or(0, <[u8]>::len) + 256);
    out.push('{');
    for (i, (name, text)) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(name));
        out.push(':');
        out.push_str(&json_string(text));
    }
    if let Some(data) = data {
        if !attributes.is_empty() {
            out.push(',');
        }
        out.push_str("\"data\":");
        out.push_str(data.get());
    }
    out.push('}');
    Ok(out.into_bytes())
}

/// The binary-mode record of a structured envelope (what a binary-mode producer sends): each
/// attribute but `data` in a `ce_` header (`datacontenttype` in `content-type`, JSON when
/// absent), the data as the value. `None` for bytes that are not a JSON object (junk stays
/// as it is).
pub fn to_binary(envelope: &[u8]) -> Option<(Headers, Vec<u8>)> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(envelope).ok()?;
    let mut headers: Headers = Vec::with_capacity(object.len());
    let mut content_type = "application/json".to_owned();
    let mut data = Vec::new();
    for (name, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            other if name == "data" => {
                data = other.to_string().into_bytes();
                continue;
            }
            other => other.to_string(),
        };
        match name.as_str() {
            "data" => data = serde_json::Value::String(text).to_string().into_bytes(),
            "datacontenttype" => content_type = text,
            _ => headers.push((format!("{ATTRIBUTE_PREFIX}{name}"), text.into_bytes())),
        }
    }
    headers.push((CONTENT_TYPE.to_owned(), content_type.into_bytes()));
    Some((headers, data))
}

/// A string as a JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_mode_follows_the_content_type_then_ce_specversion() {
        assert_eq!(mode(&[]), Mode::Structured);
        let binary = headers(&[
            ("ce_specversion", "1.0"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(mode(&binary), Mode::Binary);
        let structured = headers(&[
            ("ce_specversion", "1.0"),
            (
                "content-type",
                "application/cloudevents+json; charset=UTF-8",
            ),
        ]);
        assert_eq!(mode(&structured), Mode::Structured);
        assert_eq!(
            mode(&headers(&[("content-type", "application/json")])),
            Mode::Structured
        );
    }

    #[test]
    fn a_binary_record_becomes_the_canonical_envelope_whatever_the_header_order() {
        let a = headers(&[
            ("ce_time", "2026-10-01T09:00:00+03:00"),
            ("content-type", "application/json"),
            ("ce_type", "order.cancelled"),
            ("ce_traceparent", "00-ab"),
            ("ce_id", "e1"),
            ("ce_source", "/shop"),
            ("ce_specversion", "1.0"),
        ]);
        let mut b = a.clone();
        b.reverse();
        let value = br#"{"order_id": "A-1"}"#;
        let doc = to_structured(&a, Some(value)).expect("structured");
        assert_eq!(
            String::from_utf8_lossy(&doc),
            r#"{"specversion":"1.0","id":"e1","source":"/shop","type":"order.cancelled","time":"2026-10-01T09:00:00+03:00","datacontenttype":"application/json","traceparent":"00-ab","data":{"order_id": "A-1"}}"#
        );
        assert_eq!(to_structured(&b, Some(value)).expect("structured"), doc);
    }

    #[test]
    fn a_structured_envelope_sent_in_binary_mode_reads_back_as_the_same_event() {
        let envelope = br#"{"specversion":"1.0","id":"e1","source":"/shop","type":"claim.filed","time":"2026-10-01T09:00:00+03:00","subject":"A-1","data":{"claim_id":"K","order_id":"A-1","category":"quality"}}"#;
        let (headers, value) = to_binary(envelope).expect("an object");
        assert_eq!(mode(&headers), Mode::Binary);
        assert_eq!(
            value,
            br#"{"category":"quality","claim_id":"K","order_id":"A-1"}"#
        );
        let back = to_structured(&headers, Some(&value)).expect("structured");
        let decoded = |bytes: &[u8]| match super::super::decode(bytes) {
            Ok(super::super::Decoded::Known(event)) => event,
            other => panic!("not decoded: {other:?}"),
        };
        assert_eq!(decoded(&back), decoded(envelope));
        assert!(to_binary(b"not json").is_none());
    }

    #[test]
    fn binary_data_that_is_not_json_or_of_another_media_type_is_rejected() {
        let base = [("ce_specversion", "1.0"), ("ce_id", "e1")];
        let not_json = to_structured(&headers(&base), Some(b"{nope"));
        assert_eq!(not_json.map_err(|r| r.reason), Err(RejectReason::NotJson));
        let mut avro = base.to_vec();
        avro.push(("content-type", "application/avro"));
        let other = to_structured(&headers(&avro), Some(b"{}"));
        assert_eq!(other.map_err(|r| r.reason), Err(RejectReason::BadValue));
        let mut twice = base.to_vec();
        twice.push(("ce_id", "e2"));
        let repeated = to_structured(&headers(&twice), Some(b"{}"));
        assert_eq!(
            repeated.map_err(|r| r.reason),
            Err(RejectReason::NotCloudEvent)
        );
        let bad = vec![("ce_id".to_owned(), vec![0xff, 0xfe])];
        assert_eq!(
            to_structured(&bad, Some(b"{}")).map_err(|r| r.reason),
            Err(RejectReason::NotCloudEvent)
        );
    }

    proptest::proptest! {
        /// Whatever a producer puts in the headers and the value, the binding answers an
        /// envelope that is a JSON object, or a rejection; never a panic.
        #[test]
        fn any_headers_and_value_give_a_json_object_or_a_rejection(
            headers in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time",
                        "ce_x", "content-type", "Content-Type", "other",
                    ]),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..12),
                ),
                0..8,
            ),
            value in proptest::option::of(proptest::prop_oneof![
                proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                proptest::sample::select(vec![
                    b"{\"order_id\":\"A-1\"}".to_vec(),
                    b"[1,2]".to_vec(),
                    b"\"text\"".to_vec(),
                    b" 7 ".to_vec(),
                ]),
            ]),
        ) {
            let headers: Headers = headers.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let _ = mode(&headers);
            if let Ok(doc) = to_structured(&headers, value.as_deref()) {
                let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
                    serde_json::from_slice(&doc);
                proptest::prop_assert!(parsed.is_ok(), "{}", String::from_utf8_lossy(&doc));
            }
        }
    }
}
