//! The pure core: no IO, no async, no clock. Everything here is a function of its arguments.

pub mod entities;
pub mod event;
pub mod kpi;
pub mod order;
pub mod storable;

pub use entities::EntityBatch;
pub use event::{decode, Category, Decoded, Event, EventKey, EventKind, RejectReason, Rejection};
pub use kpi::{fold_batch, BatchOutcome, ChangedOrder, DayCounts, KpiDelta};
pub use order::{Assessment, Change, OrderProjection, Rules, Verdict};
pub use storable::{decode_within, Limits};
