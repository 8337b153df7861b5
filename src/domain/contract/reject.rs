//! Why a record cannot be read: the bounded reason label and a detail for the rejected table.

use std::fmt;

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
    pub(crate) fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
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
