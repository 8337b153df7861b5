//! A batch of Kafka records on its way to the store: raw records in, decoded entries out.
//!
//! Decoding happens here, before any transaction opens, so the transaction only does IO.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::domain::{decode_within, Decoded, Event, EventKey, Limits, RejectReason, Rejection};

/// One Kafka record, owned (copied out of librdkafka's buffer once).
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// The headers the CloudEvents Kafka binding reads (`content-type`, `ce_*`): empty for a
    /// structured-mode record without headers.
    pub headers: crate::domain::contract::binding::Headers,
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

/// Decodes one record within `limits`. Pure.
pub fn prepare_record(record: Record, limits: &Limits) -> Entry {
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
    // A binary-mode record becomes the structured envelope it stands for; from here on both
    // modes are read, validated and stored alike.
    use crate::domain::contract::binding;
    let payload = match binding::mode(&record.headers) {
        binding::Mode::Structured => record.payload,
        binding::Mode::Binary => {
            match binding::to_structured(&record.headers, record.payload.as_deref()) {
                Ok(envelope) => Some(envelope),
                Err(rejection) => return reject(rejection, record.key, record.payload),
            }
        }
    };
    let Some(payload) = payload else {
        return reject(
            Rejection {
                reason: RejectReason::NotJson,
                detail: "record has no value (tombstone)".into(),
            },
            record.key,
            None,
        );
    };
    match decode_within(&payload, limits) {
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

/// Decodes a batch of records within `limits` and notes the next offset of every partition
/// in it.
pub fn prepare(records: Vec<Record>, limits: &Limits) -> PreparedBatch {
    PreparedBatch::of_entries(
        records
            .into_iter()
            .map(|record| prepare_record(record, limits))
            .collect(),
    )
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

impl PreparedBatch {
    /// Builds a batch from entries in arrival order; each partition's next offset is the one
    /// after its last entry here.
    fn of_entries(entries: Vec<Entry>) -> PreparedBatch {
        let mut next_offsets = BTreeMap::new();
        for entry in &entries {
            let at = entry.at();
            let next = next_offsets
                .entry((at.topic.clone(), at.partition))
                .or_insert(0);
            *next = (*next).max(at.offset + 1);
        }
        PreparedBatch {
            entries,
            next_offsets,
        }
    }

    /// Splits the batch in two halves in arrival order, each with the next offsets of its own
    /// records, so that committing the first and then the second stores exactly what the
    /// whole batch would. Used to find the records a database refuses.
    pub fn bisect(mut self) -> (PreparedBatch, PreparedBatch) {
        let second = self.entries.split_off(self.entries.len() / 2);
        (
            PreparedBatch::of_entries(self.entries),
            PreparedBatch::of_entries(second),
        )
    }

    /// The batch with every record turned into a `store_refused` rejection that keeps its
    /// bytes and the database's message, so it is stored in `rejected_events` and its offset
    /// can pass.
    pub fn refused(self, message: &str) -> PreparedBatch {
        let detail: String = format!("the database refused to store it: {message}")
            .chars()
            .take(2000)
            .collect();
        let entries = self
            .entries
            .into_iter()
            .map(|entry| {
                let (at, key, raw) = match entry {
                    Entry::Known { at, payload, .. } | Entry::Unknown { at, payload, .. } => {
                        (at, None, Some(payload.into_bytes()))
                    }
                    Entry::Rejected { at, key, raw, .. } => (at, key, raw),
                };
                Entry::Rejected {
                    at,
                    rejection: Rejection {
                        reason: RejectReason::StoreRefused,
                        detail: detail.clone(),
                    },
                    key,
                    raw,
                }
            })
            .collect();
        PreparedBatch::of_entries(entries)
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
            headers: Vec::new(),
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
        let lanes = prepare(records, &Limits::unbounded()).split(3);
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

    #[test]
    fn the_halves_of_a_bisected_batch_store_offsets_only_up_to_their_own_records() {
        let batch = prepare(
            vec![record(0, 5), record(1, 7), record(0, 6), record(1, 8)],
            &Limits::unbounded(),
        );
        let (first, second) = batch.bisect();
        let offsets = |b: &PreparedBatch| -> Vec<((String, i32), i64)> {
            b.next_offsets
                .iter()
                .map(|((t, p), n)| ((t.to_string(), *p), *n))
                .collect()
        };
        let key = |p: i32, n: i64| (("orders".to_owned(), p), n);
        assert_eq!(offsets(&first), vec![key(0, 6), key(1, 8)]);
        assert_eq!(offsets(&second), vec![key(0, 7), key(1, 9)]);
    }

    #[test]
    fn a_refused_record_becomes_a_store_refused_rejection_that_keeps_its_bytes() {
        let batch = prepare(vec![record(2, 9)], &Limits::unbounded()).refused("boom");
        let Some(Entry::Rejected {
            rejection, raw, at, ..
        }) = batch.entries.first()
        else {
            panic!("a rejection")
        };
        assert_eq!(rejection.reason, RejectReason::StoreRefused);
        assert!(rejection.detail.contains("boom"));
        assert_eq!(raw.as_deref(), Some(&b"junk"[..]));
        assert_eq!(at.offset, 9);
        assert_eq!(
            batch.next_offsets.values().copied().collect::<Vec<_>>(),
            vec![10]
        );
    }

    fn binary(headers: &[(&str, &str)], value: &[u8]) -> Record {
        Record {
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            payload: Some(value.to_vec()),
            ..record(1, 4)
        }
    }

    const ATTRIBUTES: [(&str, &str); 6] = [
        ("ce_specversion", "1.0"),
        ("ce_id", "e-9"),
        ("ce_source", "/shop/orders"),
        ("ce_type", "order.cancelled"),
        ("ce_time", "2026-10-01T09:00:00+03:00"),
        ("content-type", "application/json"),
    ];

    #[test]
    fn a_binary_mode_record_is_read_and_stored_as_its_structured_envelope() {
        let batch = prepare(
            vec![binary(
                &ATTRIBUTES,
                br#"{"order_id":"A-1","reason":"customer"}"#,
            )],
            &Limits::unbounded(),
        );
        let Some(Entry::Known { event, payload, .. }) = batch.entries.first() else {
            panic!("decoded: {:?}", batch.entries)
        };
        assert_eq!(event.key.id, "e-9");
        assert_eq!(
            payload,
            r#"{"specversion":"1.0","id":"e-9","source":"/shop/orders","type":"order.cancelled","time":"2026-10-01T09:00:00+03:00","datacontenttype":"application/json","data":{"order_id":"A-1","reason":"customer"}}"#
        );
        // What rebuild reads back from the store decodes to the same event.
        let again = crate::domain::decode(payload.as_bytes());
        assert!(matches!(again, Ok(crate::domain::Decoded::Known(e)) if e == *event));
    }

    #[test]
    fn a_binary_mode_record_is_rejected_for_the_reasons_a_structured_one_is() {
        let mut no_time = ATTRIBUTES.to_vec();
        no_time.retain(|(k, _)| *k != "ce_time");
        let cases = [
            (binary(&ATTRIBUTES, b"{not json"), RejectReason::NotJson),
            (
                binary(&no_time, br#"{"order_id":"A-1"}"#),
                RejectReason::MissingField,
            ),
            (
                binary(&ATTRIBUTES, br#"{"order_id":""}"#),
                RejectReason::BadValue,
            ),
        ];
        for (record, reason) in cases {
            let batch = prepare(vec![record], &Limits::unbounded());
            let Some(Entry::Rejected { rejection, raw, .. }) = batch.entries.first() else {
                panic!("rejected: {:?}", batch.entries)
            };
            assert_eq!(rejection.reason, reason, "{}", rejection.detail);
            assert!(raw.is_some(), "the bytes are kept");
        }
    }
}
