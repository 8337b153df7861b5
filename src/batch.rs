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

impl PreparedBatch {
    /// Splits the batch into `lanes` batches by partition number (`partition % lanes`), so
    /// that each partition always goes to the same lane and keeps its order there. Empty
    /// lanes get an empty batch.
    pub fn split(self, lanes: usize) -> Vec<PreparedBatch> {
        let lanes = lanes.max(1);
        if lanes == 1 {
            return vec![self];
        }
        let lane = |partition: i32| partition.rem_euclid(lanes as i32) as usize;
        let mut out: Vec<PreparedBatch> = (0..lanes).map(|_| PreparedBatch::default()).collect();
        for entry in self.entries {
            out[lane(entry.at().partition)].entries.push(entry);
        }
        for (key, next) in self.next_offsets {
            out[lane(key.1)].next_offsets.insert(key, next);
        }
        out
    }
}

#[cfg(test)]
mod lane_tests {
    use super::*;

    fn record(partition: i32, offset: i64) -> Record {
        Record {
            topic: Arc::from("orders"),
            partition,
            offset,
            key: None,
            payload: Some(b"junk".to_vec()),
        }
    }

    #[test]
    fn a_partition_always_goes_to_the_same_lane_with_its_records_in_order_and_its_offset() {
        let records = vec![
            record(0, 5),
            record(3, 1),
            record(1, 7),
            record(3, 2),
            record(4, 0),
        ];
        let lanes = prepare(records).split(3);
        assert_eq!(lanes.len(), 3);
        let coordinates = |b: &PreparedBatch| -> Vec<(i32, i64)> {
            b.entries
                .iter()
                .map(|e| (e.at().partition, e.at().offset))
                .collect()
        };
        assert_eq!(coordinates(&lanes[0]), vec![(0, 5), (3, 1), (3, 2)]);
        assert_eq!(coordinates(&lanes[1]), vec![(1, 7), (4, 0)]);
        assert!(lanes[2].is_empty());
        let offsets: Vec<i64> = lanes[0].next_offsets.values().copied().collect();
        assert_eq!(offsets, vec![6, 3]);
        assert_eq!(lanes[1].next_offsets.len(), 2);
    }
}
