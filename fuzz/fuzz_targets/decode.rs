//! Fuzzes the edge of ingest: `decode_within` (the storability screen, the decoder, the
//! plausible time range). It must never panic, and whatever it accepts must be JSON that a
//! strict parser reads whole: no lone surrogate, no NUL, numbers within a double, nesting
//! within serde_json's limit. (`tests/store_suite.rs` stores such records in both databases.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfect_order::domain::{decode_within, Limits};

fuzz_target!(|bytes: &[u8]| {
    let limits = Limits {
        max_record_bytes: 1 << 20,
        earliest: chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default(),
        latest: chrono::DateTime::from_timestamp(7_258_118_400, 0).unwrap_or_default(),
    };
    if decode_within(bytes, &limits).is_ok() {
        let value: Result<serde_json::Value, _> = serde_json::from_slice(bytes);
        assert!(value.is_ok(), "accepted but not strict JSON: {value:?}");
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        assert!(!value.map(|v| v.to_string()).unwrap_or_default().contains('\0'), "NUL in {text}");
    }
});
