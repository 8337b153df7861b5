//! The event contract at the edge, as a folder: ids and money (`ids`), the payloads of
//! contract v1 (`v1`) and v2 (`v2`), the one table of event types (`kinds`), the reasons a
//! record is rejected (`reject`), the envelope decoder (`envelope`) and the Kafka protocol
//! binding's two content modes (`binding`).
//!
//! Everything downstream works on [`Event`]; a record that does not decode becomes a
//! [`Rejection`] with a bounded reason label and a human-readable detail, never a panic.

pub mod binding;
mod envelope;
mod ids;
mod kinds;
mod reject;
mod v1;
mod v2;

pub use envelope::decode;
pub use ids::{EventKey, Id, Money, MAX_ID_LEN};
pub use kinds::{Decoded, Event, EventKind, KNOWN_TYPES, V2_TYPES};
pub use reject::{RejectReason, Rejection};
pub use v1::*;
pub use v2::*;
