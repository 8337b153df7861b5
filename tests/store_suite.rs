//! One store test-suite, run on both stores: PostgreSQL and SQLite must commit batches with
//! the same effectively-once behaviour and answer every read the same way.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use perfect_order::batch::{prepare, PreparedBatch, Record};
use perfect_order::domain::Rules;
use perfect_order::store::{AnyStore, Store};
use support::events::*;
use support::TestDb;

/// A migrated store of one kind, with what keeps its database alive.
struct Fixture {
    store: AnyStore,
    _pg: Option<TestDb>,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone, Copy)]
enum Kind {
    Postgres,
    Sqlite,
}

async fn fixture(kind: Kind) -> Fixture {
    let (url, pg, dir) = match kind {
        Kind::Postgres => {
            let db = TestDb::create().await;
            (db.url.clone(), Some(db), None)
        }
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("store.db").display());
            (url, None, Some(dir))
        }
    };
    let store = AnyStore::connect(&url, 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    if let AnyStore::Postgres(pg) = &store {
        pg.set_cache_capacity(1000); // as `run` does (batch.projection_cache)
    }
    store
        .write_settings(&Rules::default())
        .await
        .expect("settings");
    Fixture {
        store,
        _pg: pg,
        _dir: dir,
    }
}

/// Runs one query on whichever store, decoding rows as `T` (the SQL must read the same on both).
macro_rules! query_as {
    ($store:expr, $t:ty, $sql:expr) => {
        match &$store {
            AnyStore::Postgres(s) => sqlx::query_as::<_, $t>($sql)
                .fetch_all(s.pool())
                .await
                .expect($sql),
            AnyStore::Sqlite(s) => sqlx::query_as::<_, $t>($sql)
                .fetch_all(s.pool())
                .await
                .expect($sql),
        }
    };
}

async fn count(store: &AnyStore, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    query_as!(store, (i64,), &sql)[0].0
}

type Daily = Vec<(NaiveDate, i64, i64, i64)>;

async fn daily(store: &AnyStore) -> Daily {
    query_as!(
        store,
        (NaiveDate, i64, i64, i64),
        "SELECT day, fulfilled, perfect, cancelled FROM daily_kpi
         WHERE fulfilled <> 0 OR perfect <> 0 OR cancelled <> 0 ORDER BY day"
    )
}

async fn verdicts(store: &AnyStore) -> Vec<(String, String)> {
    query_as!(
        store,
        (String, String),
        "SELECT order_id, verdict FROM orders ORDER BY order_id"
    )
}

/// Records on the topic `orders`, partitioned by key, with consecutive offsets per partition
/// starting at `first[partition]`.
fn records(values: &[(String, Vec<u8>)], first: &mut BTreeMap<i32, i64>) -> Vec<Record> {
    let topic: Arc<str> = Arc::from("orders");
    values
        .iter()
        .map(|(key, value)| {
            let partition = (key.bytes().map(u32::from).sum::<u32>() % 3) as i32;
            let offset = first.entry(partition).or_insert(0);
            let record = Record {
                topic: topic.clone(),
                partition,
                offset: *offset,
                key: Some(key.clone().into_bytes()),
                payload: Some(value.clone()),
                headers: Vec::new(),
            };
            *offset += 1;
            record
        })
        .collect()
}

/// The decoder's default bounds (`decode.*`) now.
fn limits() -> perfect_order::domain::Limits {
    perfect_order::config::Settings::load_from(None, Vec::<(String, String)>::new())
        .expect("the default settings are valid")
        .decode
        .limits(Utc::now())
}

fn batch(values: &[(String, Vec<u8>)], first: &mut BTreeMap<i32, i64>) -> PreparedBatch {
    prepare(records(values, first), &limits())
}

fn keyed_all(order: &str, events: Vec<String>) -> Vec<(String, Vec<u8>)> {
    events
        .into_iter()
        .map(|e| (order.to_owned(), e.into_bytes()))
        .collect()
}

async fn a_replayed_batch_is_fenced_and_changes_nothing(kind: Kind) {
    let f = fixture(kind).await;
    let values = keyed_all("A-1", perfect_lifecycle("A-1", t0()));
    let b = batch(&values, &mut BTreeMap::new());
    let first = f
        .store
        .commit_batch(&b, &Rules::default())
        .await
        .expect("commit");
    assert_eq!(first.fenced, 0);
    assert_eq!(first.orders_changed, 1);
    let before = (daily(&f.store).await, verdicts(&f.store).await);

    let again = f
        .store
        .commit_batch(&b, &Rules::default())
        .await
        .expect("replay");

    assert_eq!(again.fenced, b.len());
    assert_eq!(again.orders_changed, 0);
    assert_eq!((daily(&f.store).await, verdicts(&f.store).await), before);
    assert_eq!(count(&f.store, "events").await, 4);
}

async fn an_event_seen_again_at_a_new_offset_is_a_duplicate_and_not_folded(kind: Kind) {
    let f = fixture(kind).await;
    let values = keyed_all("A-1", perfect_lifecycle("A-1", t0()));
    let mut offsets = BTreeMap::new();
    f.store
        .commit_batch(&batch(&values, &mut offsets), &Rules::default())
        .await
        .expect("commit");

    // The producer retried: the same events again, later in the partition, twice over.
    let mut twice = values.clone();
    twice.extend(values.clone());
    let report = f
        .store
        .commit_batch(&batch(&twice, &mut offsets), &Rules::default())
        .await
        .expect("commit the retries");

    assert_eq!(report.duplicates, 8);
    assert!(report.consumed.is_empty());
    assert_eq!(report.orders_changed, 0);
    assert_eq!(daily(&f.store).await[0].1, 1, "one fulfilled order");
    assert_eq!(count(&f.store, "events").await, 4);
}

async fn a_shuffled_duplicated_stream_in_small_batches_gives_the_expected_daily_kpis(kind: Kind) {
    let f = fixture(kind).await;
    let start = DateTime::parse_from_rfc3339("2026-09-01T00:00:00+03:00")
        .expect("literal")
        .with_timezone(&Utc);
    let shop = support::shop::generate(11, 400, start);
    let values: Vec<(String, Vec<u8>)> = shop
        .records
        .iter()
        .map(|r| (r.key.clone(), r.value.clone()))
        .collect();
    let mut offsets = BTreeMap::new();
    for chunk in values.chunks(97) {
        f.store
            .commit_batch(&batch(chunk, &mut offsets), &Rules::default())
            .await
            .expect("commit");
    }

    let expected: Daily = shop
        .expected
        .iter()
        .filter(|(_, e)| e.fulfilled != 0 || e.perfect != 0 || e.cancelled != 0)
        .map(|(d, e)| (*d, e.fulfilled, e.perfect, e.cancelled))
        .collect();
    assert_eq!(daily(&f.store).await, expected);
    assert_eq!(count(&f.store, "events").await, shop.unique_events as i64);
    assert_eq!(
        count(&f.store, "rejected_events").await,
        shop.junk.len() as i64
    );
}

async fn a_late_claim_retracts_the_perfect_order_from_its_delivery_day(kind: Kind) {
    let f = fixture(kind).await;
    let mut offsets = BTreeMap::new();
    let values = keyed_all("A-1", perfect_lifecycle("A-1", t0()));
    f.store
        .commit_batch(&batch(&values, &mut offsets), &Rules::default())
        .await
        .expect("commit");
    assert_eq!(daily(&f.store).await[0].2, 1, "perfect before the claim");

    let claim = keyed_all(
        "A-1",
        vec![claim("A-1", "K-1", "quality", t0() + TimeDelta::days(3))],
    );
    let report = f
        .store
        .commit_batch(&batch(&claim, &mut offsets), &Rules::default())
        .await
        .expect("commit the claim");

    let day = daily(&f.store).await;
    assert_eq!(day.len(), 1, "the claim's own day gets no row: {day:?}");
    assert_eq!((day[0].1, day[0].2), (1, 0));
    assert_eq!(report.claims_filed.len(), 1);
    let claims = query_as!(
        f.store,
        (String, String, bool),
        "SELECT claim_id, category, counts_for_verdict FROM claims"
    );
    assert_eq!(claims, vec![("K-1".into(), "quality".into(), true)]);
}

async fn rejected_records_are_kept_with_their_reason_and_bytes(kind: Kind) {
    let f = fixture(kind).await;
    let values = vec![
        ("k".to_owned(), b"not json\x00\xff".to_vec()),
        ("k".to_owned(), br#"{"specversion":"1.0"}"#.to_vec()),
    ];
    let report = f
        .store
        .commit_batch(&batch(&values, &mut BTreeMap::new()), &Rules::default())
        .await
        .expect("commit");

    assert_eq!(report.rejected.values().sum::<u64>(), 2);
    let rows = query_as!(
        f.store,
        (String, Vec<u8>, Vec<u8>),
        "SELECT reason, key, raw FROM rejected_events ORDER BY \"offset\""
    );
    assert_eq!(rows[0].0, "not_json");
    assert_eq!(rows[0].1, b"k".to_vec());
    assert_eq!(rows[0].2, b"not json\x00\xff".to_vec());
    assert_eq!(rows[1].0, "missing_field");
}

/// Where the record at `offset` of `orders`/0 ended: `stored`, `duplicate` or its reason.
async fn where_is(store: &AnyStore, offset: i64) -> Vec<String> {
    query_as!(store, (String,), &support::hostile::places_sql(offset))
        .into_iter()
        .map(|(place,)| place)
        .collect()
}

async fn every_hostile_record_ends_in_exactly_one_table_and_the_batch_commits(kind: Kind) {
    use support::hostile::corpus;
    let f = fixture(kind).await;
    let limits = limits();
    let hostile = corpus(limits.max_record_bytes);
    let topic: Arc<str> = Arc::from("orders");
    let records: Vec<Record> = hostile
        .iter()
        .enumerate()
        .map(|(offset, h)| Record {
            topic: topic.clone(),
            partition: 0,
            offset: offset as i64,
            key: Some(h.key.clone().into_bytes()),
            payload: h.value.clone(),
            headers: Vec::new(),
        })
        .collect();

    f.store
        .commit_batch(&prepare(records, &limits), &Rules::default())
        .await
        .expect("a batch of hostile records commits");

    for (offset, h) in hostile.iter().enumerate() {
        assert_eq!(
            where_is(&f.store, offset as i64).await,
            vec![h.expect.place().to_owned()],
            "{}",
            h.name
        );
    }
    let (fulfilled,): (i64,) = query_as!(
        f.store,
        (i64,),
        "SELECT count(*) FROM orders WHERE items_delivered < 0"
    )[0];
    assert_eq!(fulfilled, 0, "no count is stored wrapped");
}

/// Random pieces an attacker splices into a valid event: escapes of any code unit (surrogates
/// and NUL among them), numbers of any size and exponent, deep nesting, any character.
fn hostile_piece() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        any::<u16>().prop_map(|u| format!("\"\\u{u:04x}\"")),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("\"\\u{a:04x}\\u{b:04x}\"")),
        (
            "-?[0-9]{1,80}(\\.[0-9]{0,40})?",
            proptest::option::of(-2000i32..2000)
        )
            .prop_map(|(m, e)| match e {
                Some(e) => format!("{m}e{e}"),
                None => m,
            }),
        (0usize..200).prop_map(|d| format!("{}0{}", "[".repeat(d), "]".repeat(d))),
        any::<String>().prop_map(|t| serde_json::Value::String(t).to_string()),
        "\\PC{0,20}".prop_map(|t| format!("\"{}\"", t.replace(['"', '\\'], ""))),
    ]
}

async fn any_record_the_decoder_accepts_is_stored_and_reads_back_as_the_same_event(kind: Kind) {
    use proptest::strategy::{Strategy, ValueTree};
    let f = fixture(kind).await;
    let limits = limits();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec((hostile_piece(), proptest::bool::ANY), 16);
    let topic: Arc<str> = Arc::from("orders");
    let mut offset = 0i64;
    let mut accepted = 0usize;
    for round in 0..24 {
        let pieces = strategy.new_tree(&mut runner).expect("a sample").current();
        let records: Vec<Record> = pieces
            .iter()
            .enumerate()
            .map(|(i, (piece, in_envelope))| {
                let order = format!("P-{round}-{i}");
                let value = if *in_envelope {
                    let base = created(&order, t0());
                    format!("{{\"x\":{piece},{}", &base[1..]).into_bytes()
                } else {
                    support::hostile::created_with_data_extra(&order, &format!("\"x\":{piece}"))
                };
                offset += 1;
                Record {
                    topic: topic.clone(),
                    partition: 0,
                    offset,
                    key: Some(order.into_bytes()),
                    payload: Some(value),
                    headers: Vec::new(),
                }
            })
            .collect();
        let prepared = prepare(records, &limits);
        accepted += prepared
            .entries
            .iter()
            .filter(|e| !matches!(e, perfect_order::batch::Entry::Rejected { .. }))
            .count();
        if let Err(e) = f.store.commit_batch(&prepared, &Rules::default()).await {
            let texts: Vec<String> = prepared
                .entries
                .iter()
                .filter_map(|e| match e {
                    perfect_order::batch::Entry::Known { payload, .. } => Some(payload.clone()),
                    _ => None,
                })
                .collect();
            panic!("the store refused what the decoder accepted: {e}; records: {texts:?}");
        }
    }
    assert!(
        accepted > 100,
        "the corpus is mostly storable ({accepted} accepted)"
    );
    let stored = query_as!(
        f.store,
        (String, String),
        "SELECT id, CAST(payload AS text) FROM events ORDER BY id"
    );
    assert_eq!(stored.len(), accepted);
    for (id, payload) in stored {
        match perfect_order::domain::decode(payload.as_bytes()) {
            Ok(perfect_order::domain::Decoded::Known(e)) => assert_eq!(e.key.id, id),
            other => panic!("stored event {id} no longer decodes: {other:?}"),
        }
    }
}

/// The rolling windows read at chosen instants (not the wall clock): just after midnight, and
/// on the 25-hour day a DST change makes (Europe/Berlin, 25 Oct 2026).
async fn rolling_windows_follow_the_shop_day_just_after_midnight_and_across_a_dst_change(
    kind: Kind,
) {
    let f = fixture(kind).await;
    let rules = Rules {
        timezone: chrono_tz::Europe::Berlin,
        ..Rules::default()
    };
    f.store.write_settings(&rules).await.expect("settings");
    let berlin = |local: &str| -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(local)
            .expect("an RFC 3339 literal")
            .with_timezone(&Utc)
    };
    // Delivered 23:50 on the 24th, 00:10 on the 25th, and 02:30 twice on the 25th (summer
    // time, then the same wall-clock time again in winter time).
    let deliveries = [
        ("B-1", "2026-10-24T23:50:00+02:00"),
        ("B-2", "2026-10-25T00:10:00+02:00"),
        ("B-3", "2026-10-25T02:30:00+02:00"),
        ("B-4", "2026-10-25T02:30:00+01:00"),
    ];
    let mut offsets = BTreeMap::new();
    let mut deliver = |orders: &[(&str, &str)]| {
        let mut values = Vec::new();
        for (order, delivered_at) in orders {
            let base = berlin(delivered_at) - TimeDelta::hours(3);
            values.extend(keyed_all(order, perfect_lifecycle(order, base)));
        }
        batch(&values, &mut offsets)
    };
    let (before, after) = deliveries.split_at(2);
    let first = deliver(before);
    let second = deliver(after);
    f.store.commit_batch(&first, &rules).await.expect("commit");

    // Fulfilled orders in the 1-day and 7-day windows read at `at`.
    let fulfilled_at = |local: &'static str| {
        let store = f.store.clone();
        let rules = rules.clone();
        async move {
            let figures = store
                .shop_figures(&rules, berlin(local))
                .await
                .expect("figures");
            let window = |label: &str| {
                figures
                    .windows
                    .iter()
                    .find(|w| w.label == label)
                    .map(|w| w.fulfilled)
            };
            (window("1d"), window("7d"))
        }
    };
    assert_eq!(
        fulfilled_at("2026-10-25T00:30:00+02:00").await,
        (Some(1), Some(2)),
        "today began 30 minutes ago"
    );
    f.store.commit_batch(&second, &rules).await.expect("commit");
    assert_eq!(
        fulfilled_at("2026-10-25T23:30:00+01:00").await.0,
        Some(3),
        "all 25 hours are one day"
    );
    assert_eq!(
        fulfilled_at("2026-10-26T00:05:00+01:00").await,
        (Some(0), Some(4))
    );
}

/// A refusal of the data (the batch is split to find the record) is told from a failure that
/// may pass (the batch is retried as it is), on both stores.
async fn a_value_the_database_refuses_is_told_from_a_failure_that_may_pass(kind: Kind) {
    let f = fixture(kind).await;
    let trigger = match &f.store {
        AnyStore::Postgres(s) => sqlx::raw_sql(
            "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.payload -> 'data' ->> 'refuse' = 'true' THEN
                     RAISE EXCEPTION 'refused' USING ERRCODE = '22023';
                   END IF;
                   IF NEW.payload -> 'data' ->> 'conflict' = 'true' THEN
                     RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001';
                   END IF;
                   RETURN NEW;
                 END $$;
                 CREATE TRIGGER refuse_marked BEFORE INSERT ON events
                   FOR EACH ROW EXECUTE FUNCTION refuse_marked();",
        )
        .execute(s.pool())
        .await
        .map(|_| ()),
        AnyStore::Sqlite(s) => sqlx::raw_sql(
            "CREATE TRIGGER refuse_marked BEFORE INSERT ON events
                 WHEN json_extract(NEW.payload, '$.data.refuse') = 1
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .execute(s.pool())
        .await
        .map(|_| ()),
    };
    trigger.expect("install the trigger");
    let marked = |field: &str| {
        vec![(
            "M-1".to_owned(),
            support::hostile::created_with_data_extra("M-1", &format!("\"{field}\":true")),
        )]
    };

    let refused = f
        .store
        .commit_batch(
            &batch(&marked("refuse"), &mut BTreeMap::new()),
            &Rules::default(),
        )
        .await
        .expect_err("the database refuses the marked record");
    assert!(refused.is_refusal(), "{refused}");

    if matches!(kind, Kind::Postgres) {
        let conflict = f
            .store
            .commit_batch(
                &batch(&marked("conflict"), &mut BTreeMap::new()),
                &Rules::default(),
            )
            .await
            .expect_err("a serialization failure");
        assert!(!conflict.is_refusal(), "{conflict}");
    }
    assert_eq!(
        count(&f.store, "events").await,
        0,
        "nothing of a failed batch is stored"
    );
}

/// An event an older version stored (it took any event time) is skipped by a rebuild, which
/// folds what ingest takes today: no KPI day in year 1 survives it.
async fn rebuild_skips_a_stored_event_outside_the_plausible_range(kind: Kind) {
    let f = fixture(kind).await;
    let mut values = keyed_all("A-1", perfect_lifecycle("A-1", t0()));
    let ancient = chrono::DateTime::parse_from_rfc3339("0001-01-02T10:00:00+03:00")
        .expect("literal")
        .with_timezone(&Utc);
    values.extend(keyed_all("OLD", perfect_lifecycle("OLD", ancient)));
    let mut offsets = BTreeMap::new();
    let as_before = prepare(
        records(&values, &mut offsets),
        &perfect_order::domain::Limits::unbounded(),
    );
    f.store
        .commit_batch(&as_before, &Rules::default())
        .await
        .expect("commit as a version without bounds did");
    assert_eq!(
        daily(&f.store).await.len(),
        2,
        "the old version made a day in year 1"
    );

    let report = f
        .store
        .rebuild(&Rules::default(), &limits(), 100, |_, _| {})
        .await
        .expect("rebuild");

    assert_eq!(
        report.undecodable, 4,
        "the four year-1 events are skipped and counted"
    );
    let days = daily(&f.store).await;
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!(days[0].0, day("2026-10-01"));
}

async fn offsets_only_move_forward_and_are_read_back_per_partition(kind: Kind) {
    let f = fixture(kind).await;
    let values = keyed_all("A-1", perfect_lifecycle("A-1", t0()));
    let mut ahead = BTreeMap::from([(0, 100), (1, 100), (2, 100)]);
    let late = batch(&values, &mut ahead);
    f.store
        .commit_batch(&late, &Rules::default())
        .await
        .expect("commit");
    let partition = late.entries[0].at().partition;

    // An older batch of the same partition (another instance's, before a rebalance).
    let old = batch(&values, &mut BTreeMap::new());
    let report = f
        .store
        .commit_batch(&old, &Rules::default())
        .await
        .expect("commit");

    assert_eq!(report.fenced, old.len());
    let stored = f
        .store
        .load_offsets(&[("orders".into(), partition), ("orders".into(), 7)])
        .await
        .expect("offsets");
    assert_eq!(stored.get(&("orders".into(), partition)), Some(&104));
    assert_eq!(stored.get(&("orders".into(), 7)), None);
}

async fn an_order_past_the_sla_is_on_the_late_list_and_in_the_gauges(kind: Kind) {
    let f = fixture(kind).await;
    let now = t0() + TimeDelta::minutes(45);
    let mut values = keyed_all("LATE", vec![created("LATE", t0())]);
    values.extend(keyed_all(
        "FRESH",
        vec![created("FRESH", t0() + TimeDelta::minutes(40))],
    ));
    values.extend(keyed_all(
        "DONE",
        vec![
            created("DONE", t0()),
            confirmed("DONE", t0() + TimeDelta::minutes(5)),
        ],
    ));
    values.extend(keyed_all(
        "OLD",
        vec![created("OLD", t0() - TimeDelta::days(2))],
    ));
    f.store
        .commit_batch(&batch(&values, &mut BTreeMap::new()), &Rules::default())
        .await
        .expect("commit");

    let figures = f
        .store
        .shop_figures(&Rules::default(), now)
        .await
        .expect("figures");
    let late = f
        .store
        .late_orders(&Rules::default(), now, 10)
        .await
        .expect("late");

    assert_eq!(
        figures.awaiting_confirmation, 2,
        "LATE and FRESH; OLD is past the horizon"
    );
    assert_eq!(figures.over_sla, 1);
    assert!((figures.oldest_awaiting_seconds - 45.0 * 60.0).abs() < 1e-6);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].order_id, "LATE");
    assert_eq!(late[0].created_at, t0());
    assert!((late[0].age_seconds - 45.0 * 60.0).abs() < 1e-6);
}

async fn the_dashboard_and_the_monthly_report_read_what_was_committed(kind: Kind) {
    let f = fixture(kind).await;
    let mut values = keyed_all("A-1", perfect_lifecycle("A-1", t0()));
    let mut slow = perfect_lifecycle("A-2", t0());
    slow[1] = confirmed("A-2", t0() + TimeDelta::minutes(50));
    values.extend(keyed_all("A-2", slow));
    values.extend(keyed_all(
        "A-3",
        vec![claim("A-3", "K-3", "delivery", t0() - TimeDelta::days(31))],
    ));
    f.store
        .commit_batch(&batch(&values, &mut BTreeMap::new()), &Rules::default())
        .await
        .expect("commit");
    let now = t0() + TimeDelta::days(1);

    let dashboard = f
        .store
        .dashboard(&Rules::default(), now)
        .await
        .expect("dashboard");
    let report = f.store.monthly_report(12).await.expect("report");

    assert_eq!(dashboard.po_rate.get("7d"), Some(&Some(0.5)));
    assert_eq!(dashboard.po_rate.get("month"), Some(&Some(0.5)));
    assert_eq!(dashboard.po_daily.len(), 60);
    let day = dashboard
        .po_daily
        .iter()
        .find(|d| d.fulfilled > 0)
        .expect("a day");
    assert_eq!(
        (day.day, day.perfect),
        (NaiveDate::from_ymd_opt(2026, 10, 1).expect("date"), 1)
    );
    assert_eq!(dashboard.deviations_30d.get("service"), Some(&1));
    assert_eq!(dashboard.claims_monthly.len(), 1);
    assert_eq!(dashboard.claims_monthly[0].category, "delivery");
    // 10 min and 50 min: one in [10, 15), one in [45, 60).
    let buckets: Vec<i64> = dashboard.confirmation_minutes.iter().map(|b| b.1).collect();
    assert_eq!(buckets, vec![0, 0, 1, 0, 0, 0, 0, 1, 0]);
    assert_eq!(report.len(), 2, "{report:?}");
    assert_eq!(report[0].claims, [0, 0, 1, 0]);
    assert_eq!((report[1].fulfilled, report[1].perfect), (2, 1));
    assert_eq!(report[1].po_rate, Some(0.5));
}

async fn every_view_answers(kind: Kind) {
    let f = fixture(kind).await;
    let values = keyed_all("A-1", perfect_lifecycle("A-1", t0()));
    f.store
        .commit_batch(&batch(&values, &mut BTreeMap::new()), &Rules::default())
        .await
        .expect("commit");
    for view in [
        "po_daily",
        "po_monthly",
        "claims_monthly",
        "confirmation_latency_daily",
        "orders_awaiting_confirmation",
        "late_orders",
        "order_verdicts",
    ] {
        count(&f.store, view).await;
    }
    let verdicts = query_as!(
        f.store,
        (String, Option<String>),
        "SELECT verdict, maturity FROM order_verdicts"
    );
    assert_eq!(verdicts, vec![("perfect".into(), Some("final".into()))]);
    let latency = query_as!(
        f.store,
        (i64, f64, f64),
        "SELECT confirmed, p50_seconds, p95_seconds FROM confirmation_latency_daily"
    );
    assert_eq!(latency, vec![(1, 600.0, 600.0)]);
}

async fn rebuild_reproduces_the_committed_tables_and_follows_a_rule_change(kind: Kind) {
    let f = fixture(kind).await;
    let mut values = keyed_all("A-1", perfect_lifecycle("A-1", t0()));
    let mut late = perfect_lifecycle("A-2", t0());
    late[3] = delivered("A-2", t0() + TimeDelta::minutes(4 * 60 + 15));
    values.extend(keyed_all("A-2", late));
    let mut offsets = BTreeMap::new();
    for chunk in values.chunks(3) {
        f.store
            .commit_batch(&batch(chunk, &mut offsets), &Rules::default())
            .await
            .expect("commit");
    }
    let ingested = (daily(&f.store).await, verdicts(&f.store).await);

    let report = f
        .store
        .rebuild(&Rules::default(), &limits(), 3, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!((report.events, report.orders), (8, 2));
    assert_eq!((daily(&f.store).await, verdicts(&f.store).await), ingested);

    let tolerant = Rules {
        delivery_tolerance: TimeDelta::minutes(20),
        ..Rules::default()
    };
    f.store
        .rebuild(&tolerant, &limits(), 1000, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(
        daily(&f.store).await[0].2,
        2,
        "both perfect with 20 min tolerance"
    );
}

macro_rules! suite {
    ($($rule:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $rule() {
                    super::$rule(super::Kind::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $rule() {
                    super::$rule(super::Kind::Sqlite).await
                }
            )*
        }
    };
}

// ---- contract v2: the seeds' other KPIs, each with its events shuffled and duplicated ----

/// Commits `events` shuffled (deterministically by `seed`) with every third one repeated, in
/// batches of 3: what the views answer must not depend on either.
async fn commit_noisy(f: &Fixture, events: &[String], seed: u64) {
    let mut values: Vec<(String, Vec<u8>)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("k{i}"), e.clone().into_bytes()))
        .collect();
    let repeats: Vec<(String, Vec<u8>)> = values.iter().step_by(3).cloned().collect();
    values.extend(repeats);
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in (1..values.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((state >> 33) % (i as u64 + 1)) as usize;
        values.swap(i, j);
    }
    let mut offsets = BTreeMap::new();
    for chunk in values.chunks(3) {
        f.store
            .commit_batch(&batch(chunk, &mut offsets), &Rules::default())
            .await
            .expect("commit");
    }
}

/// Runs `check` on a fresh store fed `events` in three different shuffles.
macro_rules! for_each_shuffle {
    ($kind:expr, $events:expr, |$f:ident| $check:block) => {
        for seed in [1u64, 2, 3] {
            let $f = fixture($kind).await;
            commit_noisy(&$f, &$events, seed).await;
            $check
        }
    };
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("literal")
}

async fn a_yellow_and_a_red_smiley_for_one_courier_give_index_one_half(kind: Kind) {
    let events = vec![
        rostered("D-1", "T-1", msk("2026-09-20T09:00:00")),
        review_posted("R-1", 5, Some("D-1"), msk("2026-10-03T12:00:00")),
        violation("D-1", "V-1", msk("2026-10-10T12:00:00")),
        // Rated 3: below rules.smiley_min_rating (4), no smiley.
        review_posted("R-2", 3, Some("D-1"), msk("2026-10-11T12:00:00")),
    ];
    for_each_shuffle!(kind, events, |f| {
        let couriers = query_as!(
            f.store,
            (NaiveDate, String, Option<String>, i64, i64, Option<f64>),
            "SELECT month, courier_id, team_id, yellow, red, friendliness_index
             FROM courier_smileys_monthly ORDER BY month, courier_id"
        );
        assert_eq!(
            couriers,
            vec![(
                day("2026-10-01"),
                "D-1".into(),
                Some("T-1".into()),
                1,
                1,
                Some(0.5)
            )]
        );
        let teams = query_as!(
            f.store,
            (String, i64, i64, Option<f64>, bool),
            "SELECT team_id, yellow, red, friendliness_index, winner FROM team_ranking_monthly"
        );
        assert_eq!(teams, vec![("T-1".into(), 1, 1, Some(0.5), true)]);
    });
}

async fn a_team_of_nine_is_flagged_and_a_smiley_counts_for_the_team_at_its_time(kind: Kind) {
    let joined = msk("2026-09-01T09:00:00");
    let mut events: Vec<String> = (0..9)
        .map(|i| rostered(&format!("D-9{i}"), "T-09", joined))
        .chain((0..10).map(|i| rostered(&format!("D-1{i}"), "T-10", joined)))
        .collect();
    // D-90 earns two yellow smileys for T-09, then moves to T-10 on 20 Oct (so T-09 ends the
    // month with 8 and T-10 with 11); its later smiley counts for T-10.
    events.push(review_posted(
        "R-1",
        5,
        Some("D-90"),
        msk("2026-10-02T10:00:00"),
    ));
    events.push(review_posted(
        "R-2",
        4,
        Some("D-90"),
        msk("2026-10-03T10:00:00"),
    ));
    events.push(rostered("D-90", "T-10", msk("2026-10-20T00:00:00")));
    events.push(review_posted(
        "R-3",
        5,
        Some("D-90"),
        msk("2026-10-21T10:00:00"),
    ));
    events.push(violation("D-10", "V-1", msk("2026-10-22T10:00:00")));
    // A team of exactly 10 in November.
    events.push(rostered("D-90", "T-09", msk("2026-11-01T00:00:00")));
    events.push(review_posted(
        "R-4",
        5,
        Some("D-11"),
        msk("2026-11-05T10:00:00"),
    ));
    for_each_shuffle!(kind, events, |f| {
        let teams = query_as!(
            f.store,
            (NaiveDate, String, i64, i64, i64, bool, i64, bool),
            "SELECT month, team_id, yellow, red, team_size, size_flagged, rank, winner
             FROM team_ranking_monthly ORDER BY month, rank"
        );
        assert_eq!(
            teams,
            vec![
                (day("2026-10-01"), "T-09".into(), 2, 0, 8, true, 1, true),
                (day("2026-10-01"), "T-10".into(), 1, 1, 11, true, 2, false),
                (day("2026-11-01"), "T-10".into(), 1, 0, 10, false, 1, true),
                (day("2026-11-01"), "T-09".into(), 0, 0, 9, true, 2, false),
            ]
        );
        // The live figures (the gauges, the console) are this month's rows of the view.
        for (now, month) in [
            (msk("2026-10-31T12:00:00"), day("2026-10-01")),
            (msk("2026-11-20T12:00:00"), day("2026-11-01")),
        ] {
            let live = f
                .store
                .service_figures(&Rules::default(), now)
                .await
                .expect("figures")
                .teams;
            let view: Vec<_> = f
                .store
                .service_months(month)
                .await
                .expect("months")
                .team_ranking
                .into_iter()
                .filter(|t| t.month == month)
                .collect();
            assert_eq!(live, view, "{month}");
        }
    });
}

async fn a_tie_in_yellow_smileys_goes_to_the_lowest_team_id(kind: Kind) {
    let joined = msk("2026-09-01T09:00:00");
    let events = vec![
        rostered("D-1", "T-B", joined),
        rostered("D-2", "T-A", joined),
        review_posted("R-1", 5, Some("D-1"), msk("2026-10-02T10:00:00")),
        review_posted("R-2", 5, Some("D-2"), msk("2026-10-03T10:00:00")),
        violation("D-2", "V-1", msk("2026-10-04T10:00:00")),
    ];
    for_each_shuffle!(kind, events, |f| {
        let winners = query_as!(
            f.store,
            (String,),
            "SELECT team_id FROM team_ranking_monthly WHERE winner"
        );
        assert_eq!(winners, vec![("T-A".into(),)]);
    });
}

/// A row of `review_response_monthly`, every column.
type ReviewMonth = (
    NaiveDate,
    i64,
    i64,
    i64,
    f64,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
);

async fn review_months(store: &AnyStore) -> Vec<ReviewMonth> {
    query_as!(
        store,
        (
            NaiveDate,
            i64,
            i64,
            i64,
            f64,
            Option<i64>,
            Option<i64>,
            i64,
            i64
        ),
        "SELECT month, reviews, answered, answered_within_sla, within_sla_share,
                answer_p50_seconds, answer_p95_seconds, negative, unanswered_negative
         FROM review_response_monthly ORDER BY month"
    )
}

async fn a_review_answered_after_25_hours_misses_the_24_hour_sla(kind: Kind) {
    let posted = msk("2026-10-31T12:00:00");
    let events = vec![
        review_posted("R-1", 5, None, posted),
        // Answered in November: still counts for October, the review's month.
        review_answered("R-1", posted + TimeDelta::hours(25)),
        review_posted("R-2", 4, None, posted),
        // Exactly 24 h: within the SLA (inclusive).
        review_answered("R-2", posted + TimeDelta::hours(24)),
        review_posted("R-3", 1, None, posted),
        review_posted("R-4", 2, None, posted),
        review_answered("R-4", posted + TimeDelta::hours(1)),
    ];
    for_each_shuffle!(kind, events, |f| {
        let months = review_months(&f.store).await;
        assert_eq!(
            months,
            vec![(
                day("2026-10-01"),
                4,
                3,
                2,
                0.5,
                Some(86_400),
                Some(90_000),
                2,
                1
            )]
        );
        let unanswered = query_as!(
            f.store,
            (String, i64),
            "SELECT review_id, CAST(rating AS bigint) FROM unanswered_negative_reviews"
        );
        assert_eq!(unanswered, vec![("R-3".into(), 1)]);
    });
}

async fn a_customers_second_order_in_a_later_month_counts_as_repeat(kind: Kind) {
    let events = vec![
        created_by("A-1", "C-1", "10.00", "web", msk("2026-09-10T10:00:00")),
        created_by("A-2", "C-1", "20.00", "web", msk("2026-10-05T10:00:00")),
        created_by("A-3", "C-1", "30.00", "web", msk("2026-10-06T10:00:00")),
        created_by("A-4", "C-2", "40.00", "web", msk("2026-10-07T10:00:00")),
        // Two orders in one month: not returning within that month.
        created_by("A-5", "C-3", "50.00", "web", msk("2026-10-08T10:00:00")),
        created_by("A-6", "C-3", "60.00", "web", msk("2026-10-09T10:00:00")),
        cancelled("A-1", msk("2026-09-10T11:00:00")),
    ];
    for_each_shuffle!(kind, events, |f| {
        let months = query_as!(
            f.store,
            (NaiveDate, i64, i64, f64, i64, i64, f64),
            "SELECT month, customers, returning_customers, returning_customer_share, orders,
                    returning_orders, returning_order_share
             FROM repeat_customers_monthly ORDER BY month"
        );
        assert_eq!(
            months,
            vec![
                (day("2026-09-01"), 1, 0, 0.0, 1, 0, 0.0),
                (day("2026-10-01"), 3, 1, 1.0 / 3.0, 5, 2, 0.4),
            ]
        );
    });
}

async fn a_spend_from_25_sep_to_4_oct_splits_six_tenths_to_september(kind: Kind) {
    let at = msk("2026-09-25T09:00:00");
    let mut events = vec![
        spend("S-1", "1000.00", "2026-09-25", "2026-10-04", "ads", at),
        // A correction of S-2 (a later event with the same spend_id) replaces it.
        spend("S-2", "999.00", "2026-10-01", "2026-10-31", "ads", at),
        spend(
            "S-2",
            "310.00",
            "2026-10-01",
            "2026-10-31",
            "ads",
            at + TimeDelta::hours(1),
        )
        .replace("marketing.spend-S-2", "marketing.spend-S-2-fix"),
        created_by("A-1", "C-1", "100.00", "ads", msk("2026-09-26T10:00:00")),
        created_by("A-2", "C-2", "300.00", "web", msk("2026-10-02T10:00:00")),
        created_by("A-3", "C-1", "500.00", "ads", msk("2026-10-03T10:00:00")),
    ];
    for order in ["A-1", "A-2"] {
        events.push(delivered(order, msk("2026-10-03T18:00:00")));
    }
    for_each_shuffle!(kind, events, |f| {
        let months = query_as!(
            f.store,
            (
                NaiveDate,
                String,
                f64,
                i64,
                Option<f64>,
                i64,
                f64,
                Option<f64>,
                Option<f64>
            ),
            "SELECT month, channel, CAST(spend AS double precision), new_customers,
                    CAST(cac AS double precision), fulfilled_orders,
                    CAST(revenue AS double precision), CAST(aov AS double precision),
                    CAST(cac_to_aov AS double precision)
             FROM acquisition_monthly ORDER BY month, channel"
        );
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let expected = [
            (
                "2026-09-01",
                "ads",
                600.0,
                1,
                Some(600.0),
                0,
                0.0,
                None,
                None,
            ),
            (
                "2026-09-01",
                "all",
                600.0,
                1,
                Some(600.0),
                0,
                0.0,
                None,
                None,
            ),
            (
                "2026-10-01",
                "ads",
                710.0,
                0,
                None,
                1,
                100.0,
                Some(100.0),
                None,
            ),
            (
                "2026-10-01",
                "all",
                710.0,
                1,
                Some(710.0),
                2,
                400.0,
                Some(200.0),
                Some(3.55),
            ),
        ];
        assert_eq!(months.len(), expected.len(), "{months:?}");
        for (got, want) in months.iter().zip(expected) {
            assert_eq!((got.0, got.1.as_str()), (day(want.0), want.1), "{got:?}");
            assert!(close(got.2, want.2), "spend {got:?}");
            assert_eq!((got.3, got.5), (want.3, want.5), "{got:?}");
            assert!(close(got.6, want.6), "revenue {got:?}");
            for (g, w) in [(got.4, want.4), (got.7, want.7), (got.8, want.8)] {
                assert_eq!(g.is_some(), w.is_some(), "{got:?}");
                assert!(close(g.unwrap_or(0.0), w.unwrap_or(0.0)), "{got:?}");
            }
        }
    });
}

async fn a_lead_captured_cold_and_changed_to_hot_is_hot_at_month_end(kind: Kind) {
    let events = vec![
        lead_captured("L-1", "cold", Some("C-1"), msk("2026-10-02T10:00:00")),
        lead_changed("L-1", "hot", msk("2026-10-20T10:00:00")),
        // After October's end: November's temperature only.
        lead_changed("L-1", "warm", msk("2026-11-01T00:00:00")),
        lead_captured("L-2", "warm", None, msk("2026-10-05T10:00:00")),
        lead_captured("L-3", "cold", Some("C-3"), msk("2026-11-10T10:00:00")),
        // C-1's first order after its capture: L-1 converts in November.
        created_by("A-1", "C-1", "10.00", "web", msk("2026-11-02T10:00:00")),
        // C-3 ordered before being captured: not a conversion.
        created_by("A-3", "C-3", "10.00", "web", msk("2026-10-01T10:00:00")),
    ];
    for_each_shuffle!(kind, events, |f| {
        let months =
            query_as!(
            f.store,
            (NaiveDate, i64, i64, i64, i64, i64, f64, Option<f64>, i64, i64),
            "SELECT month, leads, new_leads, cold, warm, hot, warm_hot_share, growth, converted,
                    new_conversions
             FROM lead_base_monthly ORDER BY month"
        );
        assert_eq!(
            months,
            vec![
                (day("2026-10-01"), 2, 2, 0, 1, 1, 1.0, None, 0, 0),
                (day("2026-11-01"), 3, 1, 1, 2, 0, 2.0 / 3.0, Some(0.5), 1, 1),
            ]
        );
        // The gauge of the leads by temperature now: each lead's latest event.
        let now = msk("2026-11-20T10:00:00");
        let live = f
            .store
            .service_figures(&Rules::default(), now)
            .await
            .expect("live figures");
        assert_eq!(
            live.leads,
            BTreeMap::from([("cold".into(), 1), ("warm".into(), 2), ("hot".into(), 0)])
        );
    });
}

/// The lead base follows a lead's earliest capture and its customer's earliest order, in any
/// order of arrival: an earlier capture moves the lead to its month and to the customer it
/// names (the later capture stays a temperature event); a customer's earlier first order
/// moves a conversion to its month, or undoes it when it falls before the capture; an order
/// of a customer the lead no longer names converts nothing. A rebuild answers the same.
async fn a_lead_follows_its_earliest_capture_and_its_customers_earliest_order(kind: Kind) {
    let events = vec![
        lead_captured("L-4", "warm", Some("C-4"), msk("2026-10-10T10:00:00")),
        with_id(
            lead_captured("L-4", "cold", Some("C-5"), msk("2026-09-20T10:00:00")),
            "L-4-early",
        ),
        created_by("A-5", "C-5", "10.00", "web", msk("2026-10-03T10:00:00")),
        created_by("A-6", "C-5", "10.00", "web", msk("2026-09-10T10:00:00")),
        created_by("A-7", "C-4", "10.00", "web", msk("2026-11-05T10:00:00")),
        lead_captured("L-6", "hot", Some("C-6"), msk("2026-10-01T10:00:00")),
        created_by("A-8", "C-6", "10.00", "web", msk("2026-11-01T10:00:00")),
        created_by("A-9", "C-6", "10.00", "web", msk("2026-10-15T10:00:00")),
        lead_changed("L-6", "cold", msk("2026-11-03T10:00:00")),
    ];
    let read = "SELECT month, leads, new_leads, cold, warm, hot, warm_hot_share, growth, converted,
                       new_conversions
                FROM lead_base_monthly ORDER BY month";
    type Month = (
        NaiveDate,
        i64,
        i64,
        i64,
        i64,
        i64,
        f64,
        Option<f64>,
        i64,
        i64,
    );
    let expected: Vec<Month> = vec![
        (day("2026-09-01"), 1, 1, 1, 0, 0, 0.0, None, 0, 0),
        (day("2026-10-01"), 2, 1, 0, 1, 1, 1.0, Some(1.0), 1, 1),
        (day("2026-11-01"), 2, 0, 1, 1, 0, 0.5, Some(0.0), 1, 0),
    ];
    for_each_shuffle!(kind, events, |f| {
        assert_eq!(query_as!(f.store, Month, read), expected);
        f.store
            .rebuild(&Rules::default(), &limits(), 4, |_, _| {})
            .await
            .expect("rebuild");
        assert_eq!(query_as!(f.store, Month, read), expected, "after a rebuild");
    });
}

/// A posting of `review` with another event id: the same review posted twice.
fn posted_again(review: &str, rating: u8, courier: Option<&str>, at: DateTime<Utc>) -> String {
    review_posted(review, rating, courier, at).replace(
        &format!("review.posted-{review}\""),
        &format!("review.posted-{review}-again\""),
    )
}

/// The review response figures are kept by each batch: an earlier posting moves a review
/// (and its answer) to its own month and rating, a second answer does not count, an answer a
/// millisecond past the SLA misses it, and a changed SLA applies to all history at once.
async fn review_response_follows_the_earliest_posting_and_answer_and_the_sla_of_the_moment(
    kind: Kind,
) {
    let october = msk("2026-10-30T10:00:00");
    let november = msk("2026-11-05T10:00:00");
    let events = vec![
        // R-1 counts in October, rated 1, answered 24 h and 1 ms after that posting.
        review_posted("R-1", 5, None, msk("2026-11-02T10:00:00")),
        posted_again("R-1", 1, None, october),
        review_answered(
            "R-1",
            october + TimeDelta::hours(24) + TimeDelta::milliseconds(1),
        ),
        // R-2: negative and unanswered.
        review_posted("R-2", 2, None, november),
        // R-3: answered after exactly 90 s; a later answer changes nothing.
        review_posted("R-3", 5, None, november),
        review_answered("R-3", november + TimeDelta::seconds(90)),
        review_answered("R-3", november + TimeDelta::hours(2))
            .replace("review.answered-R-3\"", "review.answered-R-3-again\""),
    ];
    for_each_shuffle!(kind, events, |f| {
        let at_24h = vec![
            (
                day("2026-10-01"),
                1,
                1,
                0,
                0.0,
                Some(86_400),
                Some(86_400),
                1,
                0,
            ),
            (day("2026-11-01"), 2, 1, 1, 0.5, Some(90), Some(90), 1, 1),
        ];
        assert_eq!(review_months(&f.store).await, at_24h);
        for (sla, october_within, november_within) in [(90, 0, 1), (89, 0, 0), (86_401, 1, 1)] {
            let rules = Rules {
                review_answer_sla: TimeDelta::seconds(sla),
                ..Rules::default()
            };
            f.store.write_settings(&rules).await.expect("settings");
            let within: Vec<i64> = review_months(&f.store).await.iter().map(|m| m.3).collect();
            assert_eq!(
                within,
                vec![october_within, november_within],
                "an SLA of {sla} s"
            );
        }
        f.store
            .write_settings(&Rules::default())
            .await
            .expect("settings");
        f.store
            .rebuild(&Rules::default(), &limits(), 2, |_, _| {})
            .await
            .expect("rebuild");
        assert_eq!(review_months(&f.store).await, at_24h, "after a rebuild");
    });
}

async fn a_late_rostering_moves_the_smileys_from_its_time_and_an_earlier_posting_moves_its_review(
    kind: Kind,
) {
    let events = vec![
        rostered("D-1", "T-1", msk("2026-09-20T09:00:00")),
        rostered("D-2", "T-2", msk("2026-09-20T09:00:00")),
        review_posted("R-1", 5, Some("D-1"), msk("2026-10-03T12:00:00")),
        review_posted("R-2", 5, Some("D-1"), msk("2026-10-12T12:00:00")),
        violation("D-1", "V-1", msk("2026-10-14T12:00:00")),
        // D-1 moves to T-2 on the 10th: R-2 and V-1 count for T-2, R-1 stays with T-1.
        rostered("D-1", "T-2", msk("2026-10-10T00:00:00")),
        // R-3's earliest posting is rated 2: no smiley, whatever the later one says.
        review_posted("R-3", 5, Some("D-1"), msk("2026-10-20T12:00:00")),
        posted_again("R-3", 2, Some("D-2"), msk("2026-10-05T12:00:00")),
        // R-4's earliest posting names D-1 on the 2nd (team T-1), not D-2 on the 21st.
        review_posted("R-4", 4, Some("D-2"), msk("2026-10-21T12:00:00")),
        posted_again("R-4", 5, Some("D-1"), msk("2026-10-02T12:00:00")),
    ];
    for_each_shuffle!(kind, events, |f| {
        let teams = query_as!(
            f.store,
            (NaiveDate, String, i64, i64, i64, i64),
            "SELECT month, team_id, yellow, red, team_size, rank FROM team_ranking_monthly
             ORDER BY month, team_id"
        );
        assert_eq!(
            teams,
            vec![
                (day("2026-10-01"), "T-1".into(), 2, 0, 0, 1),
                (day("2026-10-01"), "T-2".into(), 1, 1, 2, 2),
            ]
        );
        let couriers = query_as!(
            f.store,
            (NaiveDate, String, Option<String>, i64, i64),
            "SELECT month, courier_id, team_id, yellow, red FROM courier_smileys_monthly
             ORDER BY month, courier_id"
        );
        assert_eq!(
            couriers,
            vec![(day("2026-10-01"), "D-1".into(), Some("T-2".into()), 3, 1)]
        );
        f.store
            .rebuild(&Rules::default(), &limits(), 2, |_, _| {})
            .await
            .expect("rebuild");
        let rebuilt = query_as!(
            f.store,
            (NaiveDate, String, i64, i64, i64, i64),
            "SELECT month, team_id, yellow, red, team_size, rank FROM team_ranking_monthly
             ORDER BY month, team_id"
        );
        assert_eq!(rebuilt, teams);
    });
}

async fn a_claim_resolved_in_stages_gets_its_time_to_resolve_and_open_claims_their_stage(
    kind: Kind,
) {
    let filed = msk("2026-10-10T10:00:00");
    let events = vec![
        claim("A-1", "K-1", "quality", filed),
        claim_updated("A-1", "K-1", "investigating", filed + TimeDelta::hours(1)),
        claim_updated("A-1", "K-1", "action_taken", filed + TimeDelta::hours(2)),
        resolved("A-1", "K-1", filed + TimeDelta::hours(5)),
        // Open at October's end, investigating; resolved in December.
        claim("A-2", "K-2", "quality", filed),
        claim_updated("A-2", "K-2", "investigating", filed + TimeDelta::hours(3)),
        claim_updated("A-2", "K-2", "action_taken", msk("2026-11-15T10:00:00")),
        resolved("A-2", "K-2", msk("2026-12-01T10:00:00")),
        // Open with no update: registered.
        claim("A-3", "K-3", "delivery", filed),
    ];
    for_each_shuffle!(kind, events, |f| {
        let months = query_as!(
            f.store,
            (NaiveDate, String, i64, i64, i64, i64, i64, i64, Option<i64>),
            "SELECT month, category, filed, resolved, open_at_month_end, open_registered,
                    open_investigating, open_action_taken, resolve_p50_seconds
             FROM claims_journal_monthly ORDER BY month, category"
        );
        assert_eq!(
            months,
            vec![
                (day("2026-10-01"), "delivery".into(), 1, 0, 1, 1, 0, 0, None),
                (
                    day("2026-10-01"),
                    "quality".into(),
                    2,
                    1,
                    1,
                    0,
                    1,
                    0,
                    Some(5 * 3600)
                ),
                (day("2026-11-01"), "delivery".into(), 0, 0, 1, 1, 0, 0, None),
                (day("2026-11-01"), "quality".into(), 0, 0, 1, 0, 0, 1, None),
                (day("2026-12-01"), "delivery".into(), 0, 0, 1, 1, 0, 0, None),
                (
                    day("2026-12-01"),
                    "quality".into(),
                    0,
                    1,
                    0,
                    0,
                    0,
                    0,
                    Some(52 * 86400)
                ),
            ]
        );
        let per_category = query_as!(
            f.store,
            (NaiveDate, String, i64, Option<i64>),
            "SELECT month, category, claims, previous_month_claims FROM claims_monthly
             ORDER BY month, category"
        );
        assert_eq!(
            per_category,
            vec![
                (day("2026-10-01"), "delivery".into(), 1, None),
                (day("2026-10-01"), "quality".into(), 2, None),
            ]
        );
        let open = query_as!(
            f.store,
            (String, String, String),
            "SELECT claim_id, category, stage FROM open_claims"
        );
        assert_eq!(
            open,
            vec![("K-3".into(), "delivery".into(), "registered".into())]
        );
    });
}

async fn rebuild_refolds_the_v2_tables_also_from_events_stored_as_unknown_types(kind: Kind) {
    let f = fixture(kind).await;
    let events = vec![
        rostered("D-1", "T-1", msk("2026-09-20T09:00:00")),
        review_posted("R-1", 5, Some("D-1"), msk("2026-10-03T12:00:00")),
        review_answered("R-1", msk("2026-10-03T15:00:00")),
        violation("D-1", "V-1", msk("2026-10-10T12:00:00")),
        spend(
            "S-1",
            "1000.00",
            "2026-09-25",
            "2026-10-04",
            "web",
            msk("2026-09-25T09:00:00"),
        ),
        lead_captured("L-1", "cold", None, msk("2026-10-02T10:00:00")),
        lead_changed("L-1", "hot", msk("2026-10-20T10:00:00")),
        claim("A-1", "K-1", "quality", msk("2026-10-10T10:00:00")),
        claim_updated("A-1", "K-1", "investigating", msk("2026-10-10T11:00:00")),
        claim_updated("A-1", "K-1", "action_taken", msk("2026-11-20T11:00:00")),
        resolved("A-1", "K-1", msk("2026-12-02T10:00:00")),
    ];
    commit_noisy(&f, &events, 4).await;
    type Snapshot = (
        Vec<(NaiveDate, String, i64, i64)>,
        Vec<(NaiveDate, i64, i64)>,
        Vec<(NaiveDate, i64, i64)>,
        Vec<(NaiveDate, String, i64)>,
        Vec<(NaiveDate, i64, i64, i64, Option<i64>)>,
    );
    async fn snapshot(store: &AnyStore) -> Snapshot {
        (
            query_as!(store, (NaiveDate, String, i64, i64), "SELECT month, team_id, yellow, red FROM team_ranking_monthly ORDER BY month, team_id"),
            query_as!(store, (NaiveDate, i64, i64), "SELECT month, reviews, answered_within_sla FROM review_response_monthly ORDER BY month"),
            query_as!(store, (NaiveDate, i64, i64), "SELECT month, leads, hot FROM lead_base_monthly ORDER BY month"),
            query_as!(store, (NaiveDate, String, i64), "SELECT month, channel, CAST(round(spend) AS bigint) FROM acquisition_monthly ORDER BY month, channel"),
            query_as!(store, (NaiveDate, i64, i64, i64, Option<i64>), "SELECT month, open_at_month_end, open_investigating, open_action_taken, resolve_p50_seconds FROM claims_journal_monthly ORDER BY month"),
        )
    }
    let ingested = snapshot(&f.store).await;
    assert_eq!(ingested.0.len(), 1, "{ingested:?}");
    assert_eq!(
        ingested.4,
        vec![
            (day("2026-10-01"), 1, 1, 0, None),
            (day("2026-11-01"), 1, 0, 1, None),
            (day("2026-12-01"), 0, 0, 0, Some(53 * 86400)),
        ]
    );
    let report = f
        .store
        .rebuild(&Rules::default(), &limits(), 2, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(report.v2_events, 9, "every stored v2 event refolded");
    assert_eq!(snapshot(&f.store).await, ingested);

    // A version before v2 kept these events as unknown types and no v2 rows: emptying the
    // v2 tables stands for that. The rebuild folds them.
    for table in [
        "reviews",
        "couriers",
        "courier_rosters",
        "courier_violations",
        "spends",
        "leads",
        "lead_events",
        "claim_stages",
    ] {
        let sql = format!("DELETE FROM {table}");
        match &f.store {
            AnyStore::Postgres(s) => sqlx::query(&sql).execute(s.pool()).await.map(|_| ()),
            AnyStore::Sqlite(s) => sqlx::query(&sql).execute(s.pool()).await.map(|_| ()),
        }
        .expect("empty a v2 table");
    }
    assert_ne!(snapshot(&f.store).await, ingested);
    f.store
        .rebuild(&Rules::default(), &limits(), 1000, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(snapshot(&f.store).await, ingested);
}

async fn order_to_dispatch_is_keyed_on_the_month_of_the_shipment(kind: Kind) {
    let events = vec![
        created("A-1", msk("2026-10-31T23:00:00")),
        shipped("A-1", msk("2026-11-01T01:00:00")),
        created("A-2", msk("2026-11-02T10:00:00")),
        shipped("A-2", msk("2026-11-02T10:30:00")),
    ];
    for_each_shuffle!(kind, events, |f| {
        let months = query_as!(
            f.store,
            (NaiveDate, i64, Option<i64>, Option<i64>),
            "SELECT month, shipped, dispatch_p50_seconds, dispatch_p95_seconds
             FROM order_dispatch_monthly ORDER BY month"
        );
        assert_eq!(months, vec![(day("2026-11-01"), 2, Some(1800), Some(7200))]);
    });
}

/// An earlier `order.shipped` arriving in a later batch replaces the shipment: the maintained
/// distribution retracts the old value from its month and adds the new one, and a corrected
/// confirmation moves the latency percentiles of its day the same way.
async fn a_corrected_shipment_moves_the_order_between_months_of_the_dispatch_distribution(
    kind: Kind,
) {
    let f = fixture(kind).await;
    let at = msk("2026-10-31T23:00:00");
    let first = vec![
        created("A-1", at),
        confirmed("A-1", msk("2026-10-31T23:50:00")),
        shipped("A-1", msk("2026-11-01T01:00:00")),
    ];
    let mut offsets = BTreeMap::new();
    f.store
        .commit_batch(
            &batch(&keyed_all("A-1", first), &mut offsets),
            &Rules::default(),
        )
        .await
        .expect("first batch");
    let months = query_as!(
        f.store,
        (NaiveDate, i64, Option<i64>),
        "SELECT month, shipped, dispatch_p50_seconds FROM order_dispatch_monthly ORDER BY month"
    );
    assert_eq!(months, vec![(day("2026-11-01"), 1, Some(7200))]);

    let earlier = vec![
        with_id(
            shipped("A-1", msk("2026-10-31T23:30:00")),
            "A-1-shipped-early",
        ),
        with_id(
            confirmed("A-1", msk("2026-10-31T23:10:00")),
            "A-1-confirmed-early",
        ),
    ];
    f.store
        .commit_batch(
            &batch(&keyed_all("A-1", earlier), &mut offsets),
            &Rules::default(),
        )
        .await
        .expect("second batch");

    let months = query_as!(
        f.store,
        (NaiveDate, i64, Option<i64>),
        "SELECT month, shipped, dispatch_p50_seconds FROM order_dispatch_monthly ORDER BY month"
    );
    assert_eq!(months, vec![(day("2026-10-01"), 1, Some(1800))]);
    let latency = query_as!(
        f.store,
        (NaiveDate, i64, Option<f64>, Option<f64>, i64),
        "SELECT day, confirmed, p50_seconds, max_seconds, over_sla
         FROM confirmation_latency_daily ORDER BY day"
    );
    assert_eq!(
        latency,
        vec![(day("2026-10-31"), 1, Some(600.0), Some(600.0), 0)]
    );
    let held = query_as!(
        f.store,
        (i64,),
        "SELECT count(*) FROM (SELECT month, seconds FROM dispatch_seconds
                               GROUP BY month, seconds HAVING sum(orders) <> 0) x"
    );
    assert_eq!(
        held,
        vec![(1,)],
        "one value held in all, the retracted one sums to zero"
    );
}

/// The nearest-rank index of percentile `p` (in hundredths) among `n` sorted values.
fn nearest_rank(n: usize, p: usize) -> usize {
    (n * p).div_ceil(100) - 1
}

/// A day's confirmation percentiles are the nearest rank over every order's latency, read by
/// minute bucket: values at and across bucket edges, several in one bucket, the largest hours
/// out; an order confirmed exactly at the SLA is not over it, one a millisecond later is; a
/// second, earlier confirmation moves an order's latency to another bucket. Compared with the
/// same figures computed here from the list of latencies.
async fn a_days_confirmation_percentiles_are_the_nearest_rank_of_its_orders_latencies(kind: Kind) {
    let sla = 30 * 60_000;
    let mut latencies: Vec<i64> = vec![
        59_999,
        60_000,
        60_001,
        119_999,
        120_000,
        120_000,
        300_500,
        301_000,
        302_000,
        599_999,
        sla - 1,
        sla,
        sla,
        sla + 1,
    ];
    latencies.extend((0..25).map(|i| 180_000 + i * 7_001));
    latencies.extend([3 * 3_600_000 + 500, 5 * 3_600_000]);
    let start = msk("2026-10-10T09:00:00");
    let mut events = Vec::new();
    for (i, ms) in latencies.iter().enumerate() {
        let order = format!("A-{i}");
        let at = start + TimeDelta::minutes(i as i64);
        events.push(created(&order, at));
        events.push(confirmed(&order, at + TimeDelta::milliseconds(*ms)));
    }
    // The largest (5 h), confirmed again earlier: its latency is the earlier one.
    let last = latencies.len() - 1;
    let at = start + TimeDelta::minutes(last as i64);
    events.push(with_id(
        confirmed(&format!("A-{last}"), at + TimeDelta::milliseconds(61_500)),
        "earlier",
    ));
    latencies[last] = 61_500;
    latencies.sort_unstable();
    let n = latencies.len();
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let expected = (
        day("2026-10-10"),
        n as i64,
        seconds(latencies[nearest_rank(n, 50)]),
        seconds(latencies[nearest_rank(n, 95)]),
        seconds(latencies[n - 1]),
        latencies.iter().filter(|ms| **ms > sla).count() as i64,
    );
    assert_eq!(
        expected.5, 2,
        "a millisecond over and three hours over; the rest not"
    );
    for_each_shuffle!(kind, events, |f| {
        let days = query_as!(
            f.store,
            (NaiveDate, i64, f64, f64, f64, i64),
            "SELECT day, confirmed, p50_seconds, p95_seconds, max_seconds, over_sla
             FROM confirmation_latency_daily ORDER BY day"
        );
        assert_eq!(days, vec![expected]);
    });
}

/// The console's confirmation-latency histogram counts the orders created on the last 30
/// shop days, today included, as the 30-day rate does: at 23:00 on 30 November an order
/// created at 23:30 on 31 October is out, one created at 00:10 on 1 November is in. A later,
/// earlier confirmation moves the order to its new bucket.
async fn the_confirmation_histogram_counts_the_last_30_shop_days(kind: Kind) {
    let f = fixture(kind).await;
    let mut offsets = BTreeMap::new();
    let out = msk("2026-10-31T23:30:00");
    let inside = msk("2026-11-01T00:10:00");
    let mut values = keyed_all(
        "A-1",
        vec![
            created("A-1", out),
            confirmed("A-1", out + TimeDelta::minutes(7)),
        ],
    );
    values.extend(keyed_all(
        "A-2",
        vec![
            created("A-2", inside),
            confirmed("A-2", inside + TimeDelta::minutes(50)),
        ],
    ));
    f.store
        .commit_batch(&batch(&values, &mut offsets), &Rules::default())
        .await
        .expect("commit");
    let now = msk("2026-11-30T23:00:00");
    let buckets = |d: perfect_order::store::Dashboard| -> Vec<i64> {
        d.confirmation_minutes.iter().map(|b| b.1).collect()
    };
    let dashboard = f
        .store
        .dashboard(&Rules::default(), now)
        .await
        .expect("dashboard");
    assert_eq!(
        buckets(dashboard),
        vec![0, 0, 0, 0, 0, 0, 0, 1, 0],
        "50 min: [45, 60)"
    );

    let earlier = with_id(
        confirmed("A-2", inside + TimeDelta::minutes(12)),
        "A-2-confirmed-early",
    );
    f.store
        .commit_batch(
            &batch(&keyed_all("A-2", vec![earlier]), &mut offsets),
            &Rules::default(),
        )
        .await
        .expect("commit");
    let dashboard = f
        .store
        .dashboard(&Rules::default(), now)
        .await
        .expect("dashboard");
    assert_eq!(
        buckets(dashboard),
        vec![0, 0, 1, 0, 0, 0, 0, 0, 0],
        "12 min: [10, 15)"
    );
}

/// Repeat and new customers per month, and each customer's first order, as the views read them.
async fn customer_months(
    store: &AnyStore,
) -> (Vec<(NaiveDate, i64, i64, i64, i64)>, Vec<(NaiveDate, i64)>) {
    let repeat = query_as!(
        store,
        (NaiveDate, i64, i64, i64, i64),
        "SELECT month, customers, returning_customers, orders, returning_orders
         FROM repeat_customers_monthly ORDER BY month"
    );
    let new = query_as!(
        store,
        (NaiveDate, i64),
        "SELECT month, new_customers FROM acquisition_monthly WHERE channel = 'all' ORDER BY month"
    );
    (repeat, new)
}

/// Records of `events`, each under one key.
fn values(events: &[String]) -> Vec<(String, Vec<u8>)> {
    events
        .iter()
        .map(|e| ("k".to_owned(), e.clone().into_bytes()))
        .collect()
}

/// A fresh store that committed all of `batches`' events in one batch.
async fn in_one_batch(kind: Kind, batches: &[&Vec<String>]) -> Fixture {
    let replay = fixture(kind).await;
    let all: Vec<String> = batches.iter().flat_map(|b| b.iter().cloned()).collect();
    replay
        .store
        .commit_batch(
            &batch(&values(&all), &mut BTreeMap::new()),
            &Rules::default(),
        )
        .await
        .expect("one batch");
    replay
}

/// A customer's first order decides in which months they are new and in which returning. An
/// earlier `order.created` for an order (the earliest wins) that names another customer
/// moves the order away: the first customer's first order becomes their next one (October
/// has no customer left, November gains a new one), the other customer's first order moves
/// to September, and their November order turns returning. Both batches in turn, then the
/// same events replayed in one batch on a fresh store, give the same figures.
async fn a_corrected_order_created_moves_customers_between_new_and_returning(kind: Kind) {
    let first = vec![
        created_by("A-1", "C-1", "10.00", "web", msk("2026-10-05T10:00:00")),
        created_by("A-2", "C-1", "20.00", "app", msk("2026-11-03T10:00:00")),
        created_by("A-3", "C-2", "30.00", "web", msk("2026-11-04T10:00:00")),
    ];
    let correction = vec![with_id(
        created_by("A-1", "C-2", "10.00", "web", msk("2026-09-20T10:00:00")),
        "A-1-created-earlier",
    )];
    let f = fixture(kind).await;
    let mut offsets = BTreeMap::new();
    f.store
        .commit_batch(&batch(&values(&first), &mut offsets), &Rules::default())
        .await
        .expect("first batch");
    assert_eq!(
        customer_months(&f.store).await,
        (
            vec![
                (day("2026-10-01"), 1, 0, 1, 0),
                (day("2026-11-01"), 2, 1, 2, 1),
            ],
            vec![(day("2026-10-01"), 1), (day("2026-11-01"), 1)],
        )
    );
    f.store
        .commit_batch(
            &batch(&values(&correction), &mut offsets),
            &Rules::default(),
        )
        .await
        .expect("correction");
    let expected = (
        vec![
            (day("2026-09-01"), 1, 0, 1, 0),
            (day("2026-11-01"), 2, 1, 2, 1),
        ],
        vec![(day("2026-09-01"), 1), (day("2026-11-01"), 1)],
    );
    assert_eq!(customer_months(&f.store).await, expected);
    let firsts = query_as!(
        f.store,
        (String, String, NaiveDate, Option<String>),
        "SELECT customer_id, first_order_id, first_month, first_channel FROM customers
         ORDER BY customer_id"
    );
    assert_eq!(
        firsts,
        vec![
            (
                "C-1".into(),
                "A-2".into(),
                day("2026-11-01"),
                Some("app".into())
            ),
            (
                "C-2".into(),
                "A-1".into(),
                day("2026-09-01"),
                Some("web".into())
            ),
        ]
    );

    let replay = in_one_batch(kind, &[&first, &correction]).await;
    assert_eq!(customer_months(&replay.store).await, expected);
}

/// The 30-day repeat-customer ratio (a live gauge): the customers with an order created in
/// the last 30 shop days, each once, and those of them who had ordered before the window. A
/// corrected `order.created` that moves an order earlier turns its customer returning; one
/// that moves an order to another customer takes the first customer out of the window.
/// Batch by batch and replayed in one batch, the same figures.
async fn the_30_day_repeat_ratio_counts_each_customer_once_and_returning_when_they_ordered_before(
    kind: Kind,
) {
    let now = msk("2026-11-30T12:00:00");
    let first = vec![
        created_by("R-1", "C-1", "10.00", "web", msk("2026-10-05T10:00:00")),
        created_by("R-2", "C-1", "10.00", "web", msk("2026-11-20T10:00:00")),
        created_by("R-3", "C-2", "10.00", "web", msk("2026-11-10T10:00:00")),
        created_by("R-4", "C-2", "10.00", "web", msk("2026-11-25T10:00:00")),
        created_by("R-5", "C-2", "10.00", "web", msk("2026-11-25T18:00:00")),
        created_by("R-6", "C-3", "10.00", "web", msk("2026-10-20T10:00:00")),
        created_by("R-7", "C-4", "10.00", "web", msk("2026-11-28T10:00:00")),
    ];
    let earlier = vec![with_id(
        created_by("R-3", "C-2", "10.00", "web", msk("2026-10-15T10:00:00")),
        "R-3-created-earlier",
    )];
    let moved = vec![with_id(
        created_by("R-7", "C-3", "10.00", "web", msk("2026-11-27T10:00:00")),
        "R-7-created-earlier",
    )];
    let f = fixture(kind).await;
    let mut offsets = BTreeMap::new();
    // C-1 (returning: 5 October), C-2 (new: both days in the window), C-4 (new); C-3's only
    // order is before the window.
    for (events, expected) in [(&first, (3, 1)), (&earlier, (3, 2)), (&moved, (3, 3))] {
        f.store
            .commit_batch(&batch(&values(events), &mut offsets), &Rules::default())
            .await
            .expect("batch");
        assert_eq!(ratio_30d(&f.store, now).await, expected);
    }
    // (5 Oct, 4 Nov]: C-2 and C-3, both new in it (C-1's 5 October is not inside).
    assert_eq!(
        ratio_30d(&f.store, msk("2026-11-04T12:00:00")).await,
        (2, 0)
    );

    let replay = in_one_batch(kind, &[&first, &earlier, &moved]).await;
    assert_eq!(ratio_30d(&replay.store, now).await, (3, 3));
}

/// `(month, channel, fulfilled orders, revenue)` of `acquisition_monthly`.
async fn sales(store: &AnyStore) -> Vec<(NaiveDate, String, i64, f64)> {
    query_as!(
        store,
        (NaiveDate, String, i64, f64),
        "SELECT month, channel, fulfilled_orders, CAST(revenue AS double precision)
         FROM acquisition_monthly ORDER BY month, channel"
    )
}

/// `(customers, returning customers)` of the 30 shop days up to `now`.
async fn ratio_30d(store: &AnyStore, now: DateTime<Utc>) -> (i64, i64) {
    let f = store
        .service_figures(&Rules::default(), now)
        .await
        .expect("figures");
    (f.customers_30d, f.returning_customers_30d)
}

/// A fulfilled order's sale counts for its month of delivery and the channel and total of
/// its `order.created`; a channel is reported when it has spends and orders name it. A
/// corrected `order.created` (an earlier one naming another channel and total) moves the
/// sale: the old channel, named by no order any more, leaves the report although it has a
/// spend; the new one joins it with the order and its total. Batch by batch and replayed in
/// one batch, the same months.
async fn a_corrected_order_created_moves_its_sale_to_the_new_channel_and_total(kind: Kind) {
    let first = vec![
        spend(
            "S-1",
            "100.00",
            "2026-10-01",
            "2026-10-31",
            "ads",
            msk("2026-10-01T09:00:00"),
        ),
        spend(
            "S-2",
            "100.00",
            "2026-10-01",
            "2026-10-31",
            "web",
            msk("2026-10-01T09:00:00"),
        ),
        created_by("M-1", "C-1", "100.00", "ads", msk("2026-10-05T10:00:00")),
        delivered("M-1", msk("2026-10-06T10:00:00")),
    ];
    let correction = vec![with_id(
        created_by("M-1", "C-1", "250.50", "web", msk("2026-10-05T09:00:00")),
        "M-1-created-earlier",
    )];
    let october = day("2026-10-01");
    let f = fixture(kind).await;
    let mut offsets = BTreeMap::new();
    f.store
        .commit_batch(&batch(&values(&first), &mut offsets), &Rules::default())
        .await
        .expect("first batch");
    assert_eq!(
        sales(&f.store).await,
        vec![
            (october, "ads".into(), 1, 100.0),
            (october, "all".into(), 1, 100.0),
        ]
    );
    f.store
        .commit_batch(
            &batch(&values(&correction), &mut offsets),
            &Rules::default(),
        )
        .await
        .expect("correction");
    let expected = vec![
        (october, "all".to_owned(), 1, 250.5),
        (october, "web".to_owned(), 1, 250.5),
    ];
    assert_eq!(sales(&f.store).await, expected);

    let replay = in_one_batch(kind, &[&first, &correction]).await;
    assert_eq!(sales(&replay.store).await, expected);
}

// ---- explaining one order (issue 15) ----

fn criterion<'s>(
    story: &'s perfect_order::store::OrderStory,
    name: &str,
) -> &'s perfect_order::domain::explain::Criterion {
    story
        .explanation
        .criteria
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("criterion {name}"))
}

/// An order page names the confirmation event that broke the SLA, where it was read, and
/// the order's timeline with the duplicates dropped; an unknown id is not an order.
async fn an_order_explains_the_confirmation_that_broke_the_sla_and_where_it_was_read(kind: Kind) {
    use perfect_order::domain::explain::{Maturity, Outcome};
    let f = fixture(kind).await;
    let t = t0();
    let late = confirmed("A-7", t + minutes(41));
    let values = keyed_all(
        "A-7",
        vec![
            created("A-7", t),
            late.clone(),
            shipped("A-7", t + minutes(90)),
            delivered("A-7", t + minutes(180)),
        ],
    );
    let mut offsets = BTreeMap::new();
    f.store
        .commit_batch(&batch(&values, &mut offsets), &Rules::default())
        .await
        .expect("commit");
    // The confirmation again, later in the partition: a duplicate, dropped.
    let again = keyed_all("A-7", vec![late]);
    f.store
        .commit_batch(&batch(&again, &mut offsets), &Rules::default())
        .await
        .expect("commit the copy");

    let rules = Rules::default();
    let now = t + TimeDelta::days(30);
    let story = perfect_order::store::order_story(&f.store, &rules, "A-7", now)
        .await
        .expect("read")
        .expect("a stored order");
    assert_eq!(story.explanation.verdict.as_str(), "imperfect");
    assert_eq!(story.explanation.maturity, Maturity::Final);
    assert_eq!(
        story.explanation.counts_for_day,
        Some(rules.day_of(t + minutes(180)))
    );
    let confirmation = criterion(&story, "confirmation");
    assert_eq!(confirmation.outcome, Outcome::Fail);
    assert_eq!(confirmation.measured, "confirmed after 41 min");
    assert_eq!(confirmation.rule, "SLA 30 min");
    let deciding = confirmation.deciding.as_ref().expect("the deciding event");
    assert_eq!(deciding.event_type, "order.confirmed");
    assert_eq!(deciding.time, t + minutes(41));
    let read = deciding.read.as_ref().expect("where it was read");
    assert_eq!((read.topic.as_str(), read.offset), ("orders", 1));
    for passed in ["on_time", "in_full", "claims", "cancelled"] {
        assert_eq!(criterion(&story, passed).outcome, Outcome::Pass, "{passed}");
    }
    let timeline: Vec<(&str, i64)> = story
        .timeline
        .iter()
        .map(|e| (e.event_type.as_str(), e.duplicates))
        .collect();
    assert_eq!(
        timeline,
        [
            ("order.created", 0),
            ("order.confirmed", 1),
            ("order.shipped", 0),
            ("order.delivered", 0)
        ]
    );

    // Within the claim window the verdict is provisional, until the window's end.
    let early = perfect_order::store::order_story(&f.store, &rules, "A-7", t + minutes(400))
        .await
        .expect("read")
        .expect("a stored order");
    assert_eq!(
        early.explanation.maturity,
        Maturity::Provisional {
            until: t + minutes(180) + rules.claim_window
        }
    );
    let unknown = perfect_order::store::order_story(&f.store, &rules, "a-7", now)
        .await
        .expect("read");
    assert!(unknown.is_none(), "order ids are case-sensitive");
}

/// The explanation is a function of the stored facts: three shuffled, duplicated replays
/// explain the order the same way (where each event was read aside).
async fn the_same_facts_in_any_order_with_duplicates_explain_an_order_the_same_way(kind: Kind) {
    let t = t0();
    let events = vec![
        created("B-1", t),
        confirmed("B-1", t + minutes(12)),
        shipped("B-1", t + minutes(60)),
        delivered_items("B-1", t + minutes(200), 1),
        claim("B-1", "C-1", "quality", t + TimeDelta::days(2)),
        claim("B-1", "C-2", "delivery", t + TimeDelta::days(20)),
    ];
    let mut seen = Vec::new();
    for_each_shuffle!(kind, events, |f| {
        let mut story = perfect_order::store::order_story(
            &f.store,
            &Rules::default(),
            "B-1",
            t + TimeDelta::days(40),
        )
        .await
        .expect("read")
        .expect("a stored order");
        for c in &mut story.explanation.criteria {
            if let Some(d) = c.deciding.as_mut() {
                d.read = None;
            }
        }
        let claims = criterion(&story, "claims");
        assert_eq!(
            claims.deciding.as_ref().map(|d| d.id.as_str()),
            Some("C-1-filed"),
            "the claim in the window decides; the one after it is journalled, not counted"
        );
        seen.push(serde_json::to_string(&story.explanation).expect("json"));
    });
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:#?}");
}

/// A day's figure leads to its orders: the imperfect orders of a day with a delivery
/// deviation are exactly those the day's delivery deviations count, in order id order.
async fn a_days_imperfect_orders_of_a_category_are_the_ones_its_figure_counts(kind: Kind) {
    use perfect_order::domain::{Category, Verdict};
    use perfect_order::store::service::OrderFilter;
    let t = t0();
    let mut events = Vec::new();
    for (order, late) in [("D-3", true), ("D-1", true), ("D-2", false), ("D-4", false)] {
        events.push(created(order, t));
        events.push(confirmed(order, t + minutes(10)));
        // The promised window ends 4 h after the creation.
        let at = if late {
            t + minutes(300)
        } else {
            t + minutes(180)
        };
        events.push(delivered(order, at));
    }
    events.push(claim("D-4", "Q-4", "quality", t + TimeDelta::days(1)));
    for_each_shuffle!(kind, events, |f| {
        let day = Rules::default().day_of(t + minutes(180));
        let list = |verdict, category| {
            let filter = OrderFilter {
                from: day,
                to: day,
                verdict,
                category,
                after: None,
                limit: 100,
            };
            let store = f.store.clone();
            async move {
                store
                    .listed_orders(&filter)
                    .await
                    .expect("list")
                    .into_iter()
                    .map(|o| o.order_id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            list(Some(Verdict::Imperfect), Some(Category::Delivery)).await,
            ["D-1", "D-3"]
        );
        assert_eq!(
            list(Some(Verdict::Imperfect), None).await,
            ["D-1", "D-3", "D-4"]
        );
        assert_eq!(list(Some(Verdict::Perfect), None).await, ["D-2"]);
        assert_eq!(list(None, None).await.len(), 4);
        let page = OrderFilter {
            from: day,
            to: day,
            verdict: None,
            category: None,
            after: Some((day, "D-2".into())),
            limit: 1,
        };
        let next: Vec<String> = f
            .store
            .listed_orders(&page)
            .await
            .expect("list")
            .into_iter()
            .map(|o| o.order_id)
            .collect();
        assert_eq!(next, ["D-3"], "the page after D-2");
        let sql = format!(
            "SELECT CAST(deviation_delivery AS bigint), CAST(fulfilled - perfect AS bigint)
             FROM daily_kpi WHERE day = '{day}'"
        );
        assert_eq!(
            query_as!(f.store, (i64, i64), &sql),
            [(2, 3)],
            "the day's figures count the orders listed"
        );
    });
}

// ---- the perfect-order components and the multiplicative index (issue 15, item 4) ----

/// Five orders delivered on one day: one perfect, one confirmed late, one delivered late, one
/// delivered short, one confirmed late with a quality claim in the window.
fn component_day() -> Vec<String> {
    let t = t0();
    let mut events = Vec::new();
    for (order, confirm, deliver, items) in [
        ("P-1", 10, 180, 2),
        ("P-2", 41, 180, 2),
        ("P-3", 10, 300, 2),
        ("P-4", 10, 180, 1),
        ("P-5", 45, 180, 2),
    ] {
        events.push(created(order, t));
        events.push(confirmed(order, t + minutes(confirm)));
        events.push(delivered_items(order, t + minutes(deliver), items));
    }
    events.push(claim("P-5", "Q-5", "quality", t + TimeDelta::days(1)));
    events
}

type ComponentRow = (i64, i64, f64, f64, f64, f64, f64, f64);

async fn day_components(store: &AnyStore) -> Vec<ComponentRow> {
    query_as!(
        store,
        ComponentRow,
        "SELECT CAST(fulfilled AS bigint), CAST(perfect AS bigint), po_rate,
                confirmed_in_sla_rate, on_time_rate, in_full_rate, claim_free_rate, po_index
         FROM po_daily"
    )
}

/// Each component's rate counts the orders missing it; the multiplicative index is their
/// product, a different figure from the perfect-order rate (the share with no deviation).
async fn a_days_components_count_the_orders_missing_each_and_the_index_multiplies_them(kind: Kind) {
    for_each_shuffle!(kind, component_day(), |f| {
        let rows = day_components(&f.store).await;
        assert_eq!(rows.len(), 1);
        let (fulfilled, perfect, po_rate, confirmed, on_time, in_full, claim_free, index) = rows[0];
        assert_eq!((fulfilled, perfect), (5, 1));
        assert!((po_rate - 0.2).abs() < 1e-12);
        for (rate, expected) in [
            (confirmed, 0.6),
            (on_time, 0.8),
            (in_full, 0.8),
            (claim_free, 0.8),
        ] {
            assert!((rate - expected).abs() < 1e-12, "{rate} against {expected}");
        }
        assert!((index - 0.6 * 0.8 * 0.8 * 0.8).abs() < 1e-12, "{index}");
        let month = query_as!(
            f.store,
            (f64, f64),
            "SELECT confirmed_in_sla_rate, po_index FROM po_monthly"
        );
        assert_eq!(month.len(), 1);
        assert!((month[0].0 - 0.6).abs() < 1e-12 && (month[0].1 - index).abs() < 1e-12);
    });
}

/// What the component migration fills for history (from the stored orders) is what the batch
/// transaction keeps for the same facts.
async fn the_component_migration_fills_history_as_the_batches_keep_it(kind: Kind) {
    let f = fixture(kind).await;
    commit_noisy(&f, &component_day(), 7).await;
    let kept = day_components(&f.store).await;
    let file = match kind {
        Kind::Postgres => "migrations/0028_perfect_order_components.sql",
        Kind::Sqlite => "migrations/sqlite/0024_perfect_order_components.sql",
    };
    let zero = "UPDATE daily_kpi_shards SET confirmed_late = 0, delivered_late = 0,
                delivered_short = 0, claimed = 0";
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .expect("the migration");
    let start = text
        .find("INSERT INTO daily_kpi_shards")
        .expect("the backfill");
    let end = start
        + text[start..]
            .find("claimed = excluded.claimed;")
            .expect("its end")
        + "claimed = excluded.claimed;".len();
    let backfill = &text[start..end];
    macro_rules! run {
        ($sql:expr) => {
            match &f.store {
                AnyStore::Postgres(s) => sqlx::raw_sql($sql).execute(s.pool()).await.map(drop),
                AnyStore::Sqlite(s) => sqlx::raw_sql($sql).execute(s.pool()).await.map(drop),
            }
            .expect($sql)
        };
    }
    run!(zero);
    assert_ne!(day_components(&f.store).await, kept);
    run!(backfill);
    assert_eq!(day_components(&f.store).await, kept);
}

// ---- business hours: the confirmation clock runs in working time only (issue 16) ----

/// `rules` with the shop open every day for `hours` (e.g. `08:00-22:00`).
fn open_daily(hours: &str, rules: Rules) -> Rules {
    use perfect_order::domain::hours::BusinessHours;
    let day = BusinessHours::parse_day(hours).expect("valid hours");
    Rules {
        business_hours: Some(BusinessHours {
            week: std::array::from_fn(|_| day.clone()),
            closed: Default::default(),
        }),
        ..rules
    }
}

/// The late orders at `now`: id and minutes waited.
async fn late_at(f: &Fixture, rules: &Rules, now: DateTime<Utc>) -> Vec<(String, f64)> {
    f.store
        .late_orders(rules, now, 10)
        .await
        .expect("late orders")
        .into_iter()
        .map(|o| (o.order_id, o.age_seconds / 60.0))
        .collect()
}

/// A shop open 08:00-22:00: an order placed at 21:55 has waited 25 minutes at 08:20 the next
/// morning and is not late; at 08:30 it has waited 35 and is; one placed at 23:30, while
/// closed, has waited exactly the SLA at 08:30 (on time). The verdict's clock is the same.
async fn the_sla_watch_and_the_late_list_count_working_time_only(kind: Kind) {
    let f = fixture(kind).await;
    let rules = open_daily("08:00-22:00", Rules::default());
    let mut values = Vec::new();
    for (order, local) in [
        ("L-1", "2026-12-01T21:55:00"),
        ("L-2", "2026-12-01T21:00:00"),
        ("L-3", "2026-12-01T23:30:00"),
    ] {
        values.extend(keyed_all(order, vec![created(order, msk(local))]));
    }
    values.extend(keyed_all(
        "C-1",
        vec![
            created("C-1", msk("2026-12-01T21:55:00")),
            confirmed("C-1", msk("2026-12-02T08:20:00")),
        ],
    ));
    f.store
        .commit_batch(&batch(&values, &mut BTreeMap::new()), &rules)
        .await
        .expect("commit");

    let at_0820 = msk("2026-12-02T08:20:00");
    assert_eq!(
        late_at(&f, &rules, at_0820).await,
        [("L-2".to_owned(), 80.0)]
    );
    let figures = f
        .store
        .shop_figures(&rules, at_0820)
        .await
        .expect("figures");
    assert_eq!((figures.awaiting_confirmation, figures.over_sla), (3, 1));
    assert!((figures.oldest_awaiting_seconds - 80.0 * 60.0).abs() < 1e-6);

    let at_0830 = msk("2026-12-02T08:30:00");
    assert_eq!(
        late_at(&f, &rules, at_0830).await,
        [("L-2".to_owned(), 90.0), ("L-1".to_owned(), 35.0)],
        "L-3 waited exactly the SLA"
    );
    let figures = f
        .store
        .shop_figures(&rules, at_0830)
        .await
        .expect("figures");
    assert_eq!(figures.over_sla, 2);

    let confirmation = query_as!(
        f.store,
        (f64,),
        "SELECT confirmation_seconds FROM orders WHERE order_id = 'C-1'"
    );
    assert_eq!(confirmation, [(1500.0,)], "25 minutes of working time");
}

/// A shop open on weekdays only: an order placed on Friday at 21:55 is still watched on
/// Monday morning (the horizon counts working time too) and late at 08:30, 35 minutes later.
async fn an_order_placed_on_friday_night_is_late_on_monday_morning_after_a_closed_weekend(
    kind: Kind,
) {
    use perfect_order::domain::hours::BusinessHours;
    let f = fixture(kind).await;
    let weekday = BusinessHours::parse_day("08:00-22:00").expect("valid hours");
    let rules = Rules {
        business_hours: Some(BusinessHours {
            week: std::array::from_fn(|d| if d < 5 { weekday.clone() } else { Vec::new() }),
            closed: Default::default(),
        }),
        ..Rules::default()
    };
    // 4 December 2026 is a Friday.
    let values = keyed_all("W-1", vec![created("W-1", msk("2026-12-04T21:55:00"))]);
    f.store
        .commit_batch(&batch(&values, &mut BTreeMap::new()), &rules)
        .await
        .expect("commit");
    let monday = msk("2026-12-07T08:30:00");
    assert_eq!(
        late_at(&f, &rules, monday).await,
        [("W-1".to_owned(), 35.0)]
    );
    let figures = f.store.shop_figures(&rules, monday).await.expect("figures");
    assert_eq!((figures.awaiting_confirmation, figures.over_sla), (1, 1));
    let sunday = msk("2026-12-06T20:00:00");
    assert!(
        late_at(&f, &rules, sunday).await.is_empty(),
        "5 minutes by Sunday"
    );
}

/// On the night clocks go forward in Berlin, a night shift 00:00-06:00: an order placed at
/// 01:50 CET and confirmed at 03:20 CEST waited 30 real minutes (on time), and one still
/// waiting at 03:25 CEST has waited 35 and is late.
async fn on_the_dst_night_the_confirmation_clock_counts_real_working_minutes(kind: Kind) {
    let f = fixture(kind).await;
    let berlin = Rules {
        timezone: chrono_tz::Europe::Berlin,
        ..Rules::default()
    };
    let rules = open_daily("00:00-06:00", berlin);
    let placed = |s: &str| DateTime::parse_from_rfc3339(s).expect("literal").to_utc();
    let mut values = keyed_all(
        "N-1",
        vec![
            created("N-1", placed("2026-03-29T01:50:00+01:00")),
            confirmed("N-1", placed("2026-03-29T03:20:00+02:00")),
        ],
    );
    values.extend(keyed_all(
        "N-2",
        vec![created("N-2", placed("2026-03-29T01:50:00+01:00"))],
    ));
    f.store
        .commit_batch(&batch(&values, &mut BTreeMap::new()), &rules)
        .await
        .expect("commit");
    let confirmation = query_as!(
        f.store,
        (f64,),
        "SELECT confirmation_seconds FROM orders WHERE order_id = 'N-1'"
    );
    assert_eq!(confirmation, [(1800.0,)]);
    let now = placed("2026-03-29T03:25:00+02:00");
    assert_eq!(late_at(&f, &rules, now).await, [("N-2".to_owned(), 35.0)]);
}

// ---- CloudEvents binary content mode (issue 16) ----

/// An order's events half in binary mode, half structured, with each event also sent again in
/// the other mode: stored once each, in the structured form, and judged as the same order.
async fn an_event_sent_in_both_content_modes_is_stored_once_and_judged_alike(kind: Kind) {
    use perfect_order::domain::contract::binding::to_binary;
    let f = fixture(kind).await;
    let events = perfect_lifecycle("B-1", t0());
    let mut offsets = BTreeMap::new();
    let mut stream = records(&keyed_all("B-1", events.clone()), &mut offsets);
    stream.extend(records(&keyed_all("B-1", events.clone()), &mut offsets));
    for (i, record) in stream.iter_mut().enumerate() {
        // The first copy of the 1st and 3rd events and the second copy of the others go in
        // binary mode.
        if [0, 2, 5, 7].contains(&i) {
            let (headers, value) =
                to_binary(record.payload.as_deref().unwrap_or_default()).expect("an envelope");
            (record.headers, record.payload) = (headers, Some(value));
        }
    }
    let binary = stream.iter().filter(|r| !r.headers.is_empty()).count();
    assert!(binary > 0 && binary < stream.len(), "both modes: {binary}");
    let report = f
        .store
        .commit_batch(&prepare(stream, &limits()), &Rules::default())
        .await
        .expect("commit");
    assert_eq!(report.duplicates, 4, "the second copies");
    assert_eq!(count(&f.store, "events").await, 4);
    assert_eq!(count(&f.store, "rejected_events").await, 0);
    assert_eq!(
        verdicts(&f.store).await,
        [("B-1".to_owned(), "perfect".to_owned())]
    );
    let payloads = query_as!(
        f.store,
        (String,),
        "SELECT CAST(payload AS text) FROM events ORDER BY id"
    );
    for (payload,) in payloads {
        let v: serde_json::Value = serde_json::from_str(&payload).expect("JSON");
        assert!(
            v["specversion"] == "1.0" && v["data"].is_object(),
            "{payload}"
        );
    }
    // Rebuild reads the stored form back: the same order, the same verdict.
    let rebuilt = f
        .store
        .rebuild(&Rules::default(), &limits(), 3, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!((rebuilt.events, rebuilt.undecodable), (4, 0));
    assert_eq!(
        verdicts(&f.store).await,
        [("B-1".to_owned(), "perfect".to_owned())]
    );
}

// ---- restatements (issue 15) ----

/// October's orders: three perfect, one (R-4, delivered on the 12th) with a claim filed on
/// the 20th, inside the month; R-1, delivered on the 30th, gets a claim filed on 3 November.
fn october_with_a_late_claim() -> Vec<String> {
    let mut events = Vec::new();
    for (order, local) in [
        ("R-1", "2026-10-30T10:00:00"),
        ("R-2", "2026-10-30T11:00:00"),
        ("R-3", "2026-10-10T10:00:00"),
        ("R-4", "2026-10-12T10:00:00"),
    ] {
        events.extend(perfect_lifecycle(order, msk(local)));
    }
    events.push(claim("R-4", "K-4", "quality", msk("2026-10-20T09:00:00")));
    events.push(claim("R-1", "K-1", "delivery", msk("2026-11-03T09:00:00")));
    events
}

/// The month's restatement with its causes' read locations left out (arrival decides them).
async fn october(store: &AnyStore) -> perfect_order::store::MonthRestatement {
    let mut r = perfect_order::store::month_restatement(store, day("2026-10-01"), "", 100)
        .await
        .expect("read the restatement");
    for o in &mut r.orders {
        (o.topic, o.partition, o.offset) = (None, None, None);
    }
    r
}

/// A claim filed after the month ended restates the month with the claim as the cause and
/// the figures before and after it; a duplicate of it and the arrival order change nothing;
/// a claim filed inside the month restates only its delivery day.
async fn a_claim_filed_after_the_month_ended_restates_the_month_with_the_claim_as_cause(
    kind: Kind,
) {
    let mut events = october_with_a_late_claim();
    events.push(claim("R-1", "K-1", "delivery", msk("2026-11-03T09:00:00")));
    let mut seen = Vec::new();
    for_each_shuffle!(kind, events, |f| {
        let r = october(&f.store).await;
        let figure = |f: perfect_order::store::Figure| (f.perfect, f.fulfilled);
        assert_eq!(
            figure(r.at_month_end),
            (3, 4),
            "R-4's claim was known at month end"
        );
        assert_eq!(figure(r.now), (2, 4));
        assert_eq!(r.restated_orders, 1);
        assert_eq!(
            r.summary,
            "October 2026: 75.0 % at month end → 50.0 % now (-25.0 pp); 1 order, \
             1 claim filed in November 2026"
        );
        let orders: Vec<(&str, &str, &str, &str, &str)> = r
            .orders
            .iter()
            .map(|o| {
                let cause = (o.cause_type.as_str(), o.cause_id.as_str());
                (
                    o.order_id.as_str(),
                    o.first_verdict.as_str(),
                    o.now_verdict.as_str(),
                    cause.0,
                    cause.1,
                )
            })
            .collect();
        assert_eq!(
            orders,
            [("R-1", "perfect", "imperfect", "claim.filed", "K-1-filed")],
            "the claim inside the month restates no month figure"
        );
        assert_eq!(r.orders[0].cause_time, msk("2026-11-03T09:00:00"));
        let days: Vec<(NaiveDate, i64, i64, i64)> = r
            .days
            .iter()
            .map(|d| (d.period, d.restated_orders, d.perfect_first, d.perfect_now))
            .collect();
        assert_eq!(
            days,
            [(day("2026-10-12"), 1, 1, 0), (day("2026-10-30"), 1, 2, 1)],
            "each claim restates its order's delivery day"
        );
        let changes = perfect_order::store::restatement_changes(
            &f.store,
            &Rules::default(),
            msk("2026-11-15T12:00:00"),
        )
        .await
        .expect("the gauges' figures");
        let previous = changes
            .iter()
            .find(|(m, _)| *m == "previous")
            .expect("last month")
            .1;
        assert_eq!(previous.restated_orders, 1);
        assert_eq!(previous.points().map(|p| p.round()), Some(-25.0));
        seen.push(serde_json::to_string(&r).expect("json"));
    });
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:#?}");
}

/// A month with no fact after its end is not restated: its figure at month end is today's.
async fn a_month_without_later_facts_reads_the_same_at_month_end_and_now(kind: Kind) {
    let f = fixture(kind).await;
    let events: Vec<String> = october_with_a_late_claim()
        .into_iter()
        .filter(|e| !e.contains("\"claim_id\":\"K-1\""))
        .collect();
    commit_noisy(&f, &events, 7).await;
    let r = october(&f.store).await;
    assert_eq!(r.restated_orders, 0);
    assert_eq!(r.at_month_end, r.now);
    assert!(r.orders.is_empty());
    assert_eq!(
        r.summary,
        "October 2026: 75.0 % at month end and now; no order restated"
    );
}

/// `rebuild` and the one-time backfill after the migration give the restatements the
/// batches kept.
async fn rebuild_and_the_backfill_give_the_restatements_the_batches_kept(kind: Kind) {
    let f = fixture(kind).await;
    let mut events = october_with_a_late_claim();
    // A cancellation after the month: counted then, not now.
    events.extend(perfect_lifecycle("R-5", msk("2026-10-31T10:00:00")));
    events.push(cancelled("R-5", msk("2026-11-02T10:00:00")));
    commit_noisy(&f, &events, 5).await;
    let rows = |store: AnyStore| async move {
        query_as!(
            store,
            (String, String, String, String, String, String),
            "SELECT order_id, period_kind, first_verdict, now_verdict, cause_type, cause_id
             FROM restated_orders ORDER BY order_id, period_kind"
        )
    };
    let kept = rows(f.store.clone()).await;
    assert!(
        kept.contains(&(
            "R-5".into(),
            "month".into(),
            "perfect".into(),
            "cancelled".into(),
            "order.cancelled".into(),
            "R-5-cancelled".into()
        )),
        "{kept:?}"
    );

    f.store
        .rebuild(&Rules::default(), &limits(), 4, |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(rows(f.store.clone()).await, kept, "after rebuild");

    // As a database migrated from before the table: empty, with the backfill pending.
    for sql in [
        "DELETE FROM restated_orders",
        "INSERT INTO pending_backfills (name) VALUES ('restated_orders')",
    ] {
        match &f.store {
            AnyStore::Postgres(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
            AnyStore::Sqlite(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
        }
        .expect(sql);
    }
    let read = f
        .store
        .backfill(&Rules::default(), |_| {})
        .await
        .expect("backfill");
    assert_eq!(read, 5, "the delivered orders");
    assert_eq!(rows(f.store.clone()).await, kept, "after the backfill");
    assert_eq!(
        f.store
            .backfill(&Rules::default(), |_| {})
            .await
            .expect("again"),
        0,
        "once"
    );
}

suite!(
    an_order_placed_on_friday_night_is_late_on_monday_morning_after_a_closed_weekend,
    the_sla_watch_and_the_late_list_count_working_time_only,
    on_the_dst_night_the_confirmation_clock_counts_real_working_minutes,
    an_event_sent_in_both_content_modes_is_stored_once_and_judged_alike,
    a_claim_filed_after_the_month_ended_restates_the_month_with_the_claim_as_cause,
    a_month_without_later_facts_reads_the_same_at_month_end_and_now,
    rebuild_and_the_backfill_give_the_restatements_the_batches_kept,
    a_days_components_count_the_orders_missing_each_and_the_index_multiplies_them,
    the_component_migration_fills_history_as_the_batches_keep_it,
    a_days_imperfect_orders_of_a_category_are_the_ones_its_figure_counts,
    an_order_explains_the_confirmation_that_broke_the_sla_and_where_it_was_read,
    the_same_facts_in_any_order_with_duplicates_explain_an_order_the_same_way,
    a_days_confirmation_percentiles_are_the_nearest_rank_of_its_orders_latencies,
    a_corrected_order_created_moves_its_sale_to_the_new_channel_and_total,
    the_30_day_repeat_ratio_counts_each_customer_once_and_returning_when_they_ordered_before,
    a_corrected_order_created_moves_customers_between_new_and_returning,
    the_confirmation_histogram_counts_the_last_30_shop_days,
    a_corrected_shipment_moves_the_order_between_months_of_the_dispatch_distribution,
    a_yellow_and_a_red_smiley_for_one_courier_give_index_one_half,
    a_late_rostering_moves_the_smileys_from_its_time_and_an_earlier_posting_moves_its_review,
    review_response_follows_the_earliest_posting_and_answer_and_the_sla_of_the_moment,
    a_team_of_nine_is_flagged_and_a_smiley_counts_for_the_team_at_its_time,
    a_tie_in_yellow_smileys_goes_to_the_lowest_team_id,
    a_review_answered_after_25_hours_misses_the_24_hour_sla,
    a_customers_second_order_in_a_later_month_counts_as_repeat,
    a_spend_from_25_sep_to_4_oct_splits_six_tenths_to_september,
    a_lead_captured_cold_and_changed_to_hot_is_hot_at_month_end,
    a_lead_follows_its_earliest_capture_and_its_customers_earliest_order,
    a_claim_resolved_in_stages_gets_its_time_to_resolve_and_open_claims_their_stage,
    order_to_dispatch_is_keyed_on_the_month_of_the_shipment,
    rebuild_refolds_the_v2_tables_also_from_events_stored_as_unknown_types,
    a_replayed_batch_is_fenced_and_changes_nothing,
    an_event_seen_again_at_a_new_offset_is_a_duplicate_and_not_folded,
    a_shuffled_duplicated_stream_in_small_batches_gives_the_expected_daily_kpis,
    a_late_claim_retracts_the_perfect_order_from_its_delivery_day,
    rejected_records_are_kept_with_their_reason_and_bytes,
    every_hostile_record_ends_in_exactly_one_table_and_the_batch_commits,
    a_value_the_database_refuses_is_told_from_a_failure_that_may_pass,
    rebuild_skips_a_stored_event_outside_the_plausible_range,
    rolling_windows_follow_the_shop_day_just_after_midnight_and_across_a_dst_change,
    any_record_the_decoder_accepts_is_stored_and_reads_back_as_the_same_event,
    offsets_only_move_forward_and_are_read_back_per_partition,
    an_order_past_the_sla_is_on_the_late_list_and_in_the_gauges,
    the_dashboard_and_the_monthly_report_read_what_was_committed,
    every_view_answers,
    rebuild_reproduces_the_committed_tables_and_follows_a_rule_change,
);

/// Two instances on one PostgreSQL database, each with its projection cache: an order written
/// by the other instance (and then rewritten by a rebuild) since this one cached it is read
/// again, not folded from stale facts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_projection_overwritten_by_another_instance_is_read_again() {
    let f = fixture(Kind::Postgres).await;
    let AnyStore::Postgres(a) = &f.store else {
        unreachable!("a PostgreSQL fixture")
    };
    let url = a.pool().connect_options().get_database().map(str::to_owned);
    let b = AnyStore::connect(
        &format!("{}/{}", support::pg_server(), url.expect("database name")),
        2,
    )
    .await
    .expect("second instance");
    if let AnyStore::Postgres(b) = &b {
        b.set_cache_capacity(1000);
    }
    let lifecycle = perfect_lifecycle("X", t0());
    let mut offsets = BTreeMap::new();
    let step = |i: usize| keyed_all("X", vec![lifecycle[i].clone()]);

    // A caches X after its creation; B (after a rebalance) adds the confirmation; A gets the
    // partition back and folds the rest.
    f.store
        .commit_batch(&batch(&step(0), &mut offsets), &Rules::default())
        .await
        .expect("A: created");
    b.commit_batch(&batch(&step(1), &mut offsets), &Rules::default())
        .await
        .expect("B: confirmed");
    // A rebuild rewrites every row (a rule change), then A goes on.
    b.rebuild(&Rules::default(), &limits(), 100, |_, _| {})
        .await
        .expect("rebuild");
    for i in 2..4 {
        f.store
            .commit_batch(&batch(&step(i), &mut offsets), &Rules::default())
            .await
            .expect("A: shipped, delivered");
    }

    assert_eq!(
        verdicts(&f.store).await,
        vec![("X".into(), "perfect".into())]
    );
    let confirmed = query_as!(
        f.store,
        (Option<f64>, i64),
        "SELECT confirmation_seconds, version FROM orders"
    );
    assert_eq!(confirmed[0].0, Some(600.0), "B's confirmation is kept");
    assert!(
        confirmed[0].1 > 1000,
        "the rebuilt row got a fresh version: {confirmed:?}"
    );
}

/// The same stream through both stores gives the same dashboard, report and late list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_answer_every_read_identically() {
    let pg = fixture(Kind::Postgres).await;
    let lite = fixture(Kind::Sqlite).await;
    let start = DateTime::parse_from_rfc3339("2026-09-01T00:00:00+03:00")
        .expect("literal")
        .with_timezone(&Utc);
    let shop = support::shop::generate(5, 300, start);
    let values: Vec<(String, Vec<u8>)> = shop
        .records
        .iter()
        .map(|r| (r.key.clone(), r.value.clone()))
        .collect();
    for store in [&pg.store, &lite.store] {
        let mut offsets = BTreeMap::new();
        for chunk in values.chunks(250) {
            store
                .commit_batch(&batch(chunk, &mut offsets), &Rules::default())
                .await
                .expect("commit");
        }
    }
    let rules = Rules::default();
    for now in [start + TimeDelta::days(10), start + TimeDelta::days(25)] {
        let a = pg.store.dashboard(&rules, now).await.expect("pg dashboard");
        let b = lite
            .store
            .dashboard(&rules, now)
            .await
            .expect("sqlite dashboard");
        assert_eq!(a, b, "dashboards at {now}");
        let a = pg
            .store
            .late_orders(&rules, now, 50)
            .await
            .expect("pg late");
        let b = lite
            .store
            .late_orders(&rules, now, 50)
            .await
            .expect("sqlite late");
        assert_eq!(a, b, "late lists at {now}");
    }
    let a = pg.store.monthly_report(12).await.expect("pg report");
    let b = lite.store.monthly_report(12).await.expect("sqlite report");
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_eq!(daily(&pg.store).await, daily(&lite.store).await);
}

/// Two lanes commit the partitions of one shop at the same time on PostgreSQL. Their
/// batches deliver orders on the same days, so they add to the same days' counts: each adds
/// under a shard of its own (no lane waits on the other's row lock), and the sums equal those
/// of the same stream committed one batch at a time (on SQLite). The same holds for the
/// customer figures, though customers place orders on both lanes' partitions: a customer is
/// changed by one batch at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lanes_add_one_days_counts_under_shards_of_their_own_and_the_sums_stay_exact() {
    let pg = fixture(Kind::Postgres).await;
    let lite = fixture(Kind::Sqlite).await;
    let start = DateTime::parse_from_rfc3339("2026-09-20T00:00:00+03:00")
        .expect("literal")
        .with_timezone(&Utc);
    let shop = support::shop::generate(7, 400, start);
    let values: Vec<(String, Vec<u8>)> = shop
        .records
        .iter()
        .map(|r| (r.key.clone(), r.value.clone()))
        .collect();
    let partition = |key: &str| key.bytes().map(u32::from).sum::<u32>() % 3;
    let (lane_a, lane_b): (Vec<_>, Vec<_>) =
        values.iter().cloned().partition(|(k, _)| partition(k) == 0);
    let commit_all = |store: AnyStore, values: Vec<(String, Vec<u8>)>| async move {
        let mut offsets = BTreeMap::new();
        for chunk in values.chunks(40) {
            store
                .commit_batch(&batch(chunk, &mut offsets), &Rules::default())
                .await
                .expect("commit");
        }
    };
    let lane_of_customer = |lane: &[(String, Vec<u8>)]| -> std::collections::BTreeSet<String> {
        lane.iter()
            .filter_map(|(_, v)| serde_json::from_slice::<serde_json::Value>(v).ok())
            .filter(|e| e["type"] == "order.created")
            .filter_map(|e| e["data"]["customer_id"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        !lane_of_customer(&lane_a).is_disjoint(&lane_of_customer(&lane_b)),
        "some customer has orders in both lanes"
    );
    tokio::join!(
        commit_all(pg.store.clone(), lane_a),
        commit_all(pg.store.clone(), lane_b)
    );
    commit_all(lite.store.clone(), values).await;

    let days = daily(&pg.store).await;
    assert!(!days.is_empty());
    assert_eq!(days, daily(&lite.store).await);
    let dispatch = "SELECT month, shipped, dispatch_p50_seconds, dispatch_p95_seconds
                    FROM order_dispatch_monthly ORDER BY month";
    assert_eq!(
        query_as!(
            pg.store,
            (NaiveDate, i64, Option<i64>, Option<i64>),
            dispatch
        ),
        query_as!(
            lite.store,
            (NaiveDate, i64, Option<i64>, Option<i64>),
            dispatch
        )
    );
    let (repeat, new) = customer_months(&pg.store).await;
    assert!(repeat.iter().any(|m| m.2 > 0), "some customer returned");
    assert_eq!((repeat, new), customer_months(&lite.store).await);
    let shared_days = query_as!(
        pg.store,
        (i64,),
        "SELECT count(*) FROM (SELECT day FROM daily_kpi_shards GROUP BY day
                               HAVING count(DISTINCT shard) >= 2) d"
    );
    assert!(
        shared_days[0].0 > 0,
        "both lanes added to some day, each under its own shard"
    );
}
