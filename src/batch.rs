//! A batch of Kafka records on its way to the store: raw records in, decoded entries out.
//!
//! Decoding happens here, before any transaction opens, so the transaction only does IO.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::domain::{decode, Decoded, Event, EventKey, RejectReason, Rejection};

/// One Kafka record, owned (copied out of librdkafka's buffer once).
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

/// Where a record sits in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coordinates {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// A decoded record ready for the store.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A contract-v1 event.
    Known {
        at: Coordinates,
        event: Event,
        payload: String,
    },
    /// A valid CloudEvent of a type this version does not know: stored, skipped by the fold.
    Unknown {
        at: Coordinates,
        key: EventKey,
        time: chrono::DateTime<chrono::Utc>,
        type_name: String,
        payload: String,
    },
    /// An unreadable record, kept with its reason.
    Rejected {
        at: Coordinates,
        rejection: Rejection,
        key: Option<Vec<u8>>,
        raw: Option<Vec<u8>>,
    },
}

impl Entry {
    pub fn at(&self) -> &Coordinates {
        match self {
            Entry::Known { at, .. } | Entry::Unknown { at, .. } | Entry::Rejected { at, .. } => at,
        }
    }
}

/// A batch after decoding: entries in arrival order plus the next offset per partition.
#[derive(Debug, Clone, Default)]
pub struct PreparedBatch {
    pub entries: Vec<Entry>,
    /// `(topic, partition) -> next offset` after this batch.
    pub next_offsets: BTreeMap<(Arc<str>, i32), i64>,
}

impl PreparedBatch {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The partition numbers in the batch (order-scoped topics are co-partitioned, so one
    /// order's events always share a partition number).
    pub fn partition_numbers(&self) -> Vec<i32> {
        let set: HashSet<i32> = self.next_offsets.keys().map(|(_, p)| *p).collect();
        let mut v: Vec<i32> = set.into_iter().collect();
        v.sort_unstable();
        v
    }
}

/// PostgreSQL's `jsonb` cannot hold the NUL character; such a record is rejected up front
/// rather than failing (and so stalling) its whole batch.
fn has_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

/// Decodes one record. Pure.
pub fn prepare_record(record: Record) -> Entry {
    let at = Coordinates {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
    };
    let reject =
        |rejection: Rejection, key: Option<Vec<u8>>, raw: Option<Vec<u8>>| Entry::Rejected {
            at: at.clone(),
            rejection,
            key,
            raw,
        };
    let Some(payload) = record.payload else {
        return reject(
            Rejection {
                reason: RejectReason::NotJson,
                detail: "record has no value (tombstone)".into(),
            },
            record.key,
            None,
        );
    };
    if has_nul_escape(&payload) {
        return reject(
            Rejection {
                reason: RejectReason::BadValue,
                detail: "contains the \\u0000 character, which cannot be stored".into(),
            },
            record.key,
            Some(payload),
        );
    }
    match decode(&payload) {
        Err(rejection) => reject(rejection, record.key, Some(payload)),
        Ok(decoded) => {
            // Valid JSON is valid UTF-8, so this never fails once decode succeeded.
            let text = match String::from_utf8(payload) {
                Ok(t) => t,
                Err(e) => {
                    return reject(
                        Rejection {
                            reason: RejectReason::NotJson,
                            detail: format!("not UTF-8: {e}"),
                        },
                        record.key,
                        Some(e.into_bytes()),
                    )
                }
            };
            match decoded {
                Decoded::Known(event) => Entry::Known {
                    at,
                    event,
                    payload: text,
                },
                Decoded::Unknown {
                    key,
                    time,
                    type_name,
                } => Entry::Unknown {
                    at,
                    key,
                    time,
                    type_name,
                    payload: text,
                },
            }
        }
    }
}

/// Decodes a batch of records and notes the next offset of every partition in it.
pub fn prepare(records: Vec<Record>) -> PreparedBatch {
    let mut batch = PreparedBatch {
        entries: Vec::with_capacity(records.len()),
        next_offsets: BTreeMap::new(),
    };
    for record in records {
        let next = batch
            .next_offsets
            .entry((record.topic.clone(), record.partition))
            .or_insert(0);
        *next = (*next).max(record.offset + 1);
        batch.entries.push(prepare_record(record));
    }
    batch
}
