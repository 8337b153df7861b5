//! Micro-benchmarks of the pure core: decoding, the fold, the KPI delta computation.
//!
//! Each has a baseline measured in the same run, so results read as ratios:
//! - decode vs parsing the same bytes into a generic `serde_json::Value`;
//! - fold vs only grouping the same events by order id in a `HashMap`.
//!
//! `cargo bench --bench domain` (criterion prints medians; see BENCHMARKS.md).

use std::collections::HashMap;
use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use perfect_order::domain::{decode, fold_batch, Decoded, Event, KpiDelta, OrderProjection, Rules};
use perfect_order::simulate::{Generator, Shop};

/// A realistic mix: 2 days of a shop at 20 orders/minute, clean (no junk, no duplicates).
fn records() -> Vec<Vec<u8>> {
    let end: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-10-01T00:00:00+03:00")
        .expect("literal")
        .with_timezone(&Utc);
    let shop = Shop {
        orders_per_minute: 20.0,
        junk_rate: 0.0,
        duplicate_rate: 0.0,
        ..Shop::default()
    };
    Generator::new(shop, end - TimeDelta::days(2), end)
        .expect("valid shop")
        .map(|r| r.value)
        .collect()
}

fn events(records: &[Vec<u8>]) -> Vec<Event> {
    records
        .iter()
        .filter_map(|r| match decode(r) {
            Ok(Decoded::Known(e)) => Some(e),
            _ => None,
        })
        .collect()
}

fn decoding(c: &mut Criterion) {
    let records = records();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("baseline_serde_value", |b| {
        b.iter(|| {
            for r in &records {
                black_box(serde_json::from_slice::<serde_json::Value>(r).ok());
            }
        })
    });
    group.bench_function("decode_typed", |b| {
        b.iter(|| {
            for r in &records {
                black_box(decode(r).ok());
            }
        })
    });
    // The edge of ingest: the storability screen, decode and the plausible time range.
    let limits = perfect_order::domain::Limits {
        max_record_bytes: 1 << 20,
        earliest: chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default(),
        latest: chrono::DateTime::from_timestamp(7_258_118_400, 0).unwrap_or_default(),
    };
    group.bench_function("decode_within_limits", |b| {
        b.iter(|| {
            for r in &records {
                black_box(perfect_order::domain::decode_within(r, &limits).ok());
            }
        })
    });
    group.finish();
}

fn folding(c: &mut Criterion) {
    let events = events(&records());
    let rules = Rules::default();
    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("baseline_group_by_order", |b| {
        b.iter(|| {
            let mut by_order: HashMap<&str, Vec<&Event>> = HashMap::new();
            for e in &events {
                by_order
                    .entry(e.kind.order_id().map_or("", |id| id.as_str()))
                    .or_default()
                    .push(e);
            }
            black_box(by_order.len())
        })
    });
    // The events are cloned outside the timed part: ingest owns them already.
    group.bench_function("apply_only", |b| {
        b.iter_batched(
            || events.clone(),
            |owned| {
                let mut projections: HashMap<String, OrderProjection> = HashMap::new();
                for e in owned {
                    let id = e.kind.order_id().map_or("", |id| id.as_str());
                    match projections.get_mut(id) {
                        Some(p) => {
                            black_box(p.apply_owned(e));
                        }
                        None => {
                            let id = id.to_owned();
                            let mut p = OrderProjection::new(&id);
                            black_box(p.apply_owned(e));
                            projections.insert(id, p);
                        }
                    }
                }
                black_box(projections.len())
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("fold_batch_with_kpi_deltas", |b| {
        b.iter_batched(
            || events.clone(),
            |owned| black_box(fold_batch(HashMap::new(), owned, &rules).kpi.is_empty()),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    // KPI delta of already folded orders: assess each (old and new) and sum contributions.
    let outcome = fold_batch(HashMap::new(), events.clone(), &rules);
    let projections: Vec<OrderProjection> =
        outcome.changed.into_iter().map(|c| c.projection).collect();
    let mut group = c.benchmark_group("kpi_delta");
    group.throughput(Throughput::Elements(projections.len() as u64));
    group.bench_function("assess_and_retract_add", |b| {
        b.iter_batched(
            KpiDelta::default,
            |mut delta| {
                for p in &projections {
                    let a = p.assess(&rules);
                    delta.add(&a, -1);
                    delta.add(&a, 1);
                }
                delta
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, decoding, folding);
criterion_main!(benches);
