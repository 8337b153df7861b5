//! The pure core: no IO, no async, no clock. Everything here is a function of its arguments.

pub mod contest;
pub mod contract;
pub mod customers;
pub mod entities;
pub mod explain;
pub mod fact;
pub mod figures;
pub mod hours;
pub mod journal;
pub mod kpi;
pub mod leads;
pub mod order;
pub mod response;
pub mod restatement;
pub mod rules;
pub mod storable;

/// The contract under its older name: `domain::event::…` paths stay valid.
pub use contract as event;
pub use customers::{CustomerChange, CustomerOrder, CustomerOrders, OrderDays, RepeatCounts};
pub use entities::EntityBatch;
pub use event::{decode, Category, Decoded, Event, EventKey, EventKind, RejectReason, Rejection};
pub use figures::{FigureDelta, OrderFigures};
pub use journal::{JournalClaim, JournalDelta, StageMark};
pub use kpi::{fold_batch, BatchOutcome, ChangedOrder, DayCounts, KpiDelta};
pub use order::{Assessment, Change, OrderProjection, Verdict};
pub use rules::Rules;
pub use storable::{decode_within, Limits};
