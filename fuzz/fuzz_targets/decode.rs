//! Fuzzes the edge of ingest: `decode_within` (the storability screen, the decoder, the
//! plausible time range). It must never panic, and whatever it accepts must be JSON that a
//! strict parser reads whole (no lone surrogate, numbers within a double, nesting within
//! serde_json's limit) and whose text holds no NUL character, which PostgreSQL cannot store.
//! (`tests/store_suite.rs` stores such records in both databases.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfect_order::domain::{decode_within, Limits};
use serde_json::Value;

/// Whether any string or key of `value` holds a NUL character.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fuzz_target!(|bytes: &[u8]| {
    let limits = Limits {
        max_record_bytes: 1 << 20,
        earliest: chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default(),
        latest: chrono::DateTime::from_timestamp(7_258_118_400, 0).unwrap_or_default(),
    };
    if decode_within(bytes, &limits).is_ok() {
        let value: Result<Value, _> = serde_json::from_slice(bytes);
        assert!(value.is_ok(), "accepted but not strict JSON: {value:?}");
        if let Ok(value) = value {
            assert!(!has_nul(&value), "accepted text with a NUL character");
        }
    }
});
