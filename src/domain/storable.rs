//! What the decoder accepts, both stores must be able to store: the screen every record passes
//! before it is decoded.
//!
//! PostgreSQL's `jsonb` refuses text it cannot represent (a NUL character, a lone UTF-16
//! surrogate, a number beyond `numeric`, nesting deeper than its stack), and SQLite's JSON
//! functions stop at 1000 levels. A refusal inside the batch transaction would fail the whole
//! batch, so such a record is rejected here, with its reason, before any transaction opens.
//! The screen reads the bytes once, left to right, without recursion, so no input can make it
//! slow or deep.

use chrono::{DateTime, NaiveDate, Utc};

use super::event::{decode, Decoded, EventKind, RejectReason, Rejection};
use super::Event;

/// Deepest nesting of arrays and objects accepted (the contract needs 4).
pub const MAX_DEPTH: usize = 64;

/// Longest number token accepted, in bytes (the contract's numbers are small counts).
pub const MAX_NUMBER_LEN: usize = 64;

/// The bounds a record must keep to be decoded, set by the `decode.*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Larger record values are rejected as `too_large` (their bytes are kept).
    pub max_record_bytes: usize,
    /// Event times (and the dates an event names) before this are rejected as `bad_time`.
    pub earliest: DateTime<Utc>,
    /// Event times (and the dates an event names) after this are rejected as `bad_time`.
    pub latest: DateTime<Utc>,
}

impl Limits {
    /// Bounds that accept every time chrono can read (for reading stored events back).
    pub fn unbounded() -> Limits {
        Limits {
            max_record_bytes: usize::MAX,
            earliest: DateTime::<Utc>::MIN_UTC,
            latest: DateTime::<Utc>::MAX_UTC,
        }
    }

    /// Rejects an instant outside the plausible range, naming it `what`.
    fn check_instant(&self, what: &str, t: DateTime<Utc>) -> Result<(), Rejection> {
        if self.earliest <= t && t <= self.latest {
            return Ok(());
        }
        refuse(
            RejectReason::BadTime,
            format!(
                "{what} {} is outside the plausible range {} .. {} (decode.earliest_time, decode.max_future)",
                t.to_rfc3339(),
                self.earliest.to_rfc3339(),
                self.latest.to_rfc3339()
            ),
        )
    }

    /// Rejects an event whose time, or any instant or date its data names, is outside the
    /// plausible range: a year-1 or year-9999 event would create KPI days no one can read,
    /// and a spend over millennia would spread over thousands of months.
    pub fn check_times(&self, event: &Event) -> Result<(), Rejection> {
        self.check_instant("time", event.time)?;
        let date = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
        match &event.kind {
            EventKind::OrderCreated(d) => {
                if let Some(w) = &d.promised_delivery {
                    self.check_instant("promised_delivery.from", w.from.to_utc())?;
                    self.check_instant("promised_delivery.to", w.to.to_utc())?;
                }
            }
            EventKind::MarketingSpend(d) => {
                self.check_instant("from", date(d.from))?;
                self.check_instant("to", date(d.to))?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Decodes one Kafka record value at the edge of ingest: the storability screen (size, depth,
/// characters and numbers both stores can hold), then [`decode`], then the plausible time
/// range. Whatever this accepts, both stores can store.
pub fn decode_within(bytes: &[u8], limits: &Limits) -> Result<Decoded, Rejection> {
    screen(bytes, limits.max_record_bytes)?;
    let decoded = decode(bytes)?;
    match &decoded {
        Decoded::Known(event) => limits.check_times(event)?,
        Decoded::Unknown { time, .. } => limits.check_instant("time", *time)?,
    }
    Ok(decoded)
}

fn refuse<T>(reason: RejectReason, detail: String) -> Result<T, Rejection> {
    Err(Rejection { reason, detail })
}

/// Checks that `bytes` is small enough and, if it is JSON at all, that both stores can hold it:
/// valid UTF-8, nesting at most [`MAX_DEPTH`], no `\u0000` escape, no lone surrogate escape,
/// numbers of at most [`MAX_NUMBER_LEN`] bytes that are finite (and not rounded to zero) as
/// 64-bit floats. Malformed JSON passes the screen: the decoder names what is wrong with it.
pub fn screen(bytes: &[u8], max_record_bytes: usize) -> Result<(), Rejection> {
    if bytes.len() > max_record_bytes {
        return refuse(
            RejectReason::TooLarge,
            format!(
                "the record value has {} bytes, more than decode.max_record_bytes = {max_record_bytes}",
                bytes.len()
            ),
        );
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.as_bytes(),
        Err(e) => {
            return refuse(
                RejectReason::NotJson,
                format!("not UTF-8 at byte {}", e.valid_up_to()),
            )
        }
    };
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < text.len() {
        match text[i] {
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return refuse(
                        RejectReason::BadValue,
                        format!("nested deeper than {MAX_DEPTH} levels at byte {i}"),
                    );
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' => i = string_end(text, i + 1)?,
            b'-' | b'0'..=b'9' => i = number_end(text, i)?,
            _ => i += 1,
        }
    }
    Ok(())
}

fn lone_surrogate(unit: u32, at: usize) -> String {
    format!("a lone UTF-16 surrogate \\u{unit:04x} at byte {at}, which is not a character")
}

fn hex4(text: &[u8], at: usize) -> Option<u32> {
    let digits = text.get(at..at + 4)?;
    let s = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// Scans a string from just after its opening quote; returns the index after its closing one.
fn string_end(text: &[u8], mut i: usize) -> Result<usize, Rejection> {
    while i < text.len() {
        // Plain text up to the next quote or escape is skipped in one step.
        match memchr::memchr2(b'"', b'\\', &text[i..]) {
            Some(n) => i += n,
            None => return Ok(text.len()),
        }
        if text[i] == b'"' {
            return Ok(i + 1);
        }
        // A backslash: an escape.
        match text.get(i + 1) {
            Some(b'u') => {
                let Some(unit) = hex4(text, i + 2) else {
                    // Malformed: the decoder reports it.
                    return Ok(text.len());
                };
                match unit {
                    0 => {
                        return refuse(
                            RejectReason::BadValue,
                            format!(
                                "contains the \\u0000 character at byte {i}, which cannot be stored"
                            ),
                        )
                    }
                    0xD800..=0xDBFF => {
                        let low = (text.get(i + 6..i + 8) == Some(b"\\u"))
                            .then(|| hex4(text, i + 8))
                            .flatten();
                        if !matches!(low, Some(0xDC00..=0xDFFF)) {
                            return refuse(RejectReason::BadValue, lone_surrogate(unit, i));
                        }
                        i += 12;
                    }
                    0xDC00..=0xDFFF => {
                        return refuse(RejectReason::BadValue, lone_surrogate(unit, i))
                    }
                    _ => i += 6,
                }
            }
            // Any other escape (including `\\`) is two bytes: a backslash followed by `u0000`
            // is text, not a NUL.
            Some(_) => i += 2,
            None => return Ok(text.len()),
        }
    }
    Ok(text.len())
}

/// Scans a number token; returns the index after it.
fn number_end(text: &[u8], start: usize) -> Result<usize, Rejection> {
    let mut i = start;
    while i < text.len() && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
        i += 1;
    }
    let token = &text[start..i];
    if token.len() > MAX_NUMBER_LEN {
        return refuse(
            RejectReason::BadValue,
            format!(
                "a number of {} characters at byte {start} (at most {MAX_NUMBER_LEN})",
                token.len()
            ),
        );
    }
    // Plain integers of up to 15 digits (every count the contract carries) are in range.
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    if digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        return Ok(i);
    }
    // The token is ASCII by construction.
    let s = std::str::from_utf8(token).unwrap_or_default();
    if let Ok(value) = s.parse::<f64>() {
        let mantissa = s.split(['e', 'E']).next().unwrap_or_default();
        let nonzero = mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
        if !value.is_finite() || (value == 0.0 && nonzero) {
            return refuse(
                RejectReason::BadValue,
                format!("the number {s} at byte {start} is out of range"),
            );
        }
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(bytes: &[u8]) -> Option<RejectReason> {
        screen(bytes, 1 << 20).err().map(|r| r.reason)
    }

    #[test]
    fn deep_nesting_is_a_bad_value_and_reasonable_nesting_passes() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(reason(deep.as_bytes()), Some(RejectReason::BadValue));
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(reason(fine.as_bytes()), None);
    }

    #[test]
    fn a_lone_surrogate_is_a_bad_value_and_a_pair_passes() {
        assert_eq!(reason(br#"{"a":"\ud800"}"#), Some(RejectReason::BadValue));
        assert_eq!(reason(br#"{"a":"\udc00x"}"#), Some(RejectReason::BadValue));
        assert_eq!(
            reason(br#"{"a":"\ud800\u0041"}"#),
            Some(RejectReason::BadValue)
        );
        assert_eq!(reason(br#"{"a":"\ud83d\ude00"}"#), None);
    }

    #[test]
    fn a_nul_escape_is_a_bad_value_but_an_escaped_backslash_before_u0000_is_text() {
        assert_eq!(reason(br#"{"a":"x\u0000"}"#), Some(RejectReason::BadValue));
        assert_eq!(reason(br#"{"a":"x\\u0000"}"#), None);
        assert_eq!(
            reason(br#"{"a":"x\\\u0000"}"#),
            Some(RejectReason::BadValue)
        );
    }

    #[test]
    fn numbers_beyond_a_double_are_bad_values() {
        for n in ["1e1000000", "-1e309", "1e-400", &"9".repeat(65)] {
            let doc = format!(r#"{{"a":{n}}}"#);
            assert_eq!(reason(doc.as_bytes()), Some(RejectReason::BadValue), "{n}");
        }
        for n in [
            "0",
            "-0.0",
            "0e5",
            "1.5e300",
            "18446744073709551615",
            "1e-300",
        ] {
            let doc = format!(r#"{{"a":{n}}}"#);
            assert_eq!(reason(doc.as_bytes()), None, "{n}");
        }
    }

    #[test]
    fn a_record_over_the_size_limit_is_too_large() {
        assert_eq!(
            screen(&[b' '; 11], 10).err().map(|r| r.reason),
            Some(RejectReason::TooLarge)
        );
        assert_eq!(screen(&[b' '; 10], 10), Ok(()));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_not_json() {
        assert_eq!(reason(b"{\"a\":\"\xff\"}"), Some(RejectReason::NotJson));
    }

    fn limits() -> Limits {
        Limits {
            max_record_bytes: 1 << 20,
            earliest: DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
                .map(|t| t.to_utc())
                .unwrap_or_default(),
            latest: DateTime::parse_from_rfc3339("2126-12-01T00:00:00Z")
                .map(|t| t.to_utc())
                .unwrap_or_default(),
        }
    }

    fn event(type_name: &str, time: &str, data: &str) -> String {
        format!(
            r#"{{"specversion":"1.0","id":"e","source":"/s","type":"{type_name}","time":"{time}","data":{data}}}"#
        )
    }

    fn decoded_reason(raw: &str) -> Option<RejectReason> {
        decode_within(raw.as_bytes(), &limits())
            .err()
            .map(|r| r.reason)
    }

    #[test]
    fn instants_outside_the_plausible_range_are_bad_times_wherever_the_event_names_them() {
        let now = "2026-10-01T10:00:00+03:00";
        let cancelled = r#"{"order_id":"A"}"#;
        assert_eq!(
            decoded_reason(&event("order.cancelled", now, cancelled)),
            None
        );
        for time in [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "1999-12-31T23:59:59Z",
        ] {
            assert_eq!(
                decoded_reason(&event("order.cancelled", time, cancelled)),
                Some(RejectReason::BadTime),
                "{time}"
            );
            assert_eq!(
                decoded_reason(&event("x.unknown", time, "{}")),
                Some(RejectReason::BadTime),
                "{time}"
            );
        }
        let promised = r#"{"order_id":"A","customer_id":"C","items":[],"promised_delivery":{"from":"2026-10-01T14:00:00+03:00","to":"9999-01-01T00:00:00Z"}}"#;
        assert_eq!(
            decoded_reason(&event("order.created", now, promised)),
            Some(RejectReason::BadTime)
        );
        let spend = r#"{"spend_id":"S","amount":"1","currency":"RUB","from":"0001-01-01","to":"2026-10-01"}"#;
        assert_eq!(
            decoded_reason(&event("marketing.spend", now, spend)),
            Some(RejectReason::BadTime)
        );
    }

    #[test]
    fn digits_inside_strings_are_not_numbers() {
        let long = format!(r#"{{"a":"{}"}}"#, "9".repeat(1000));
        assert_eq!(reason(long.as_bytes()), None);
    }
}
