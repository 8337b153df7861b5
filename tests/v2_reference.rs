//! Every monthly contract-v2 view, after a simulated shop's events went through a real broker
//! (the mock cluster) into the running service on PostgreSQL, shuffled and duplicated, equals
//! an answer computed here independently from the raw records (plain Rust over the decoded
//! events, not the service's fold or SQL).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use perfect_order::domain::event::EventKind;
use perfect_order::domain::{decode, Decoded, Event};
use perfect_order::simulate::{Family, Generator, Shop, SimRecord};
use perfect_order::store::AnyStore;
use rdkafka::mocking::MockCluster;
use support::*;

const TZ: chrono_tz::Tz = chrono_tz::Europe::Moscow;

fn month(t: DateTime<Utc>) -> NaiveDate {
    let d = t.with_timezone(&TZ).date_naive();
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("valid")
}

fn next_month(m: NaiveDate) -> NaiveDate {
    m.checked_add_months(chrono::Months::new(1)).expect("valid")
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().div_euclid(1000)
}

/// Nearest rank (as PostgreSQL's percentile_disc): the value at rank ceil(p * n).
fn pct(values: &mut [i64], p: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

type Stamp = (DateTime<Utc>, String, String);
/// reviews, answered, within the SLA, answer seconds, negative, unanswered negative.
type ReviewTally = (i64, i64, i64, Vec<i64>, i64, i64);
/// spend, new customers, fulfilled orders, revenue.
type Acquired = (f64, i64, i64, f64);
type AcquisitionRow = (
    NaiveDate,
    String,
    f64,
    i64,
    Option<f64>,
    i64,
    f64,
    Option<f64>,
    Option<f64>,
);
type LeadRow = (
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

fn stamp(e: &Event) -> Stamp {
    (e.time, e.key.source.clone(), e.key.id.clone())
}

/// The earliest (or latest) event per key.
fn pick<'e>(
    events: &[&'e Event],
    key: impl Fn(&Event) -> Option<String>,
    latest: bool,
) -> BTreeMap<String, &'e Event> {
    let mut out: BTreeMap<String, &Event> = BTreeMap::new();
    for e in events {
        let Some(k) = key(e) else { continue };
        let better = out
            .get(&k)
            .is_none_or(|cur| (stamp(e) > stamp(cur)) == latest && stamp(e) != stamp(cur));
        if better {
            out.insert(k, e);
        }
    }
    out
}

macro_rules! data {
    ($e:expr, $variant:ident) => {
        match &$e.kind {
            EventKind::$variant(d) => d,
            _ => unreachable!(),
        }
    };
}

fn of_type<'e>(events: &'e [Event], type_name: &str) -> Vec<&'e Event> {
    events
        .iter()
        .filter(|e| e.kind.type_name() == type_name)
        .collect()
}

/// 70 days of a small shop from 1 Aug (Moscow), with more duplicates and late records than
/// usual, shuffled as a whole; and its valid events, once each.
fn stream(days: i64, orders_per_minute: f64) -> (Vec<SimRecord>, Vec<Event>) {
    let start = DateTime::parse_from_rfc3339("2026-08-01T00:00:00+03:00")
        .expect("literal")
        .with_timezone(&Utc);
    let shop = Shop {
        seed: 7,
        orders_per_minute,
        duplicate_rate: 0.1,
        out_of_order_rate: 0.2,
        review_rate: 0.3,
        violation_rate: 0.05,
        leads_per_hour: 1.0,
        claim_rate: 0.08,
        ..Shop::default()
    };
    let mut records: Vec<_> = Generator::new(shop, start, start + TimeDelta::days(days))
        .expect("generator")
        .collect();
    let mut state = 99u64;
    for i in (1..records.len()).rev() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        records.swap(i, ((state >> 33) % (i as u64 + 1)) as usize);
    }
    let mut seen = HashSet::new();
    let events: Vec<Event> = records
        .iter()
        .filter_map(|r| match decode(&r.value) {
            Ok(Decoded::Known(e)) => Some(e),
            _ => None,
        })
        .filter(|e| seen.insert(e.key.clone()))
        .collect();
    (records, events)
}

/// Produces the records: order and claim events to `orders`, the rest to `entities`.
fn produce_all(brokers: &str, records: &[SimRecord]) {
    let p = producer(brokers);
    for entities in [false, true] {
        let part: Vec<(String, Vec<u8>)> = records
            .iter()
            .filter(|r| (r.family == Family::Entities) == entities)
            .map(|r| (r.key.clone(), r.value.clone()))
            .collect();
        produce(&p, if entities { "entities" } else { "orders" }, &part);
    }
}

/// Runs one query on whichever store, decoding rows as the binding's type.
macro_rules! rows {
    ($store:expr, $sql:expr) => {
        match $store {
            AnyStore::Postgres(s) => sqlx::query_as($sql).fetch_all(s.pool()).await.expect($sql),
            AnyStore::Sqlite(s) => sqlx::query_as($sql).fetch_all(s.pool()).await.expect($sql),
        }
    };
}

/// Records committed so far (the sum of the next offsets; 0 before the tables exist).
async fn committed(store: &AnyStore) -> i64 {
    const SQL: &str = "SELECT CAST(sum(next_offset) AS bigint) FROM consumer_offsets";
    let sum: Result<Option<i64>, sqlx::Error> = match store {
        AnyStore::Postgres(s) => sqlx::query_scalar(SQL).fetch_one(s.pool()).await,
        AnyStore::Sqlite(s) => sqlx::query_scalar(SQL).fetch_one(s.pool()).await,
    };
    sum.ok().flatten().unwrap_or(0)
}

/// Consumes the stream through the mock cluster into the service on the store at `db_url`.
async fn through_the_mock_cluster(db_url: &str, records: &[SimRecord]) -> AnyStore {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 4, 1).expect("topic");
    cluster.create_topic("entities", 3, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    produce_all(&brokers, records);
    let service = perfect_order::Service::start(settings(
        &brokers,
        &["orders"],
        db_url,
        &[("PERFECT_ORDER__KAFKA__ENTITY_TOPICS", "entities")],
    ))
    .await
    .expect("service starts");
    let store = AnyStore::connect(db_url, 2).await.expect("connect");
    let total = records.len() as i64;
    eventually("every record committed", Duration::from_secs(300), || {
        let store = store.clone();
        async move { (committed(&store).await == total).then_some(()) }
    })
    .await;
    service.stop().await;
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_monthly_v2_view_on_postgres_equals_an_independent_computation_from_the_raw_events() {
    let (records, events) = stream(70, 0.08);
    let db = TestDb::create().await;
    let store = through_the_mock_cluster(&db.url, &records).await;
    check_views(&store, &events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_monthly_v2_view_on_sqlite_equals_an_independent_computation_from_the_raw_events() {
    let (records, events) = stream(70, 0.08);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("v2.db").display());
    let store = through_the_mock_cluster(&url, &records).await;
    check_views(&store, &events).await;
}

/// The real binary's `run` on a real broker in its own process (tansu, one record per batch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_monthly_v2_view_after_tansu_and_the_real_binary_equals_the_independent_answer() {
    let (records, events) = stream(70, 0.03);
    let (_broker_guard, broker) = tansu();
    create_topic(&broker, "orders", 3);
    create_topic(&broker, "entities", 2);
    let db = TestDb::create().await;
    produce_all(&broker, &records);
    let logs = tempfile::tempdir().expect("temp dir");
    let log = std::fs::File::create(logs.path().join("run.log")).expect("log file");
    let _service = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_perfect-order"))
            .arg("run")
            .env("PERFECT_ORDER__KAFKA__BROKERS", &broker)
            .env("PERFECT_ORDER__KAFKA__TOPICS", "orders")
            .env("PERFECT_ORDER__KAFKA__ENTITY_TOPICS", "entities")
            .env("PERFECT_ORDER__KAFKA__GROUP_ID", "v2-reference")
            .env("PERFECT_ORDER__DATABASE__URL", &db.url)
            .env("PERFECT_ORDER__HTTP__LISTEN", "127.0.0.1:0")
            .env("PERFECT_ORDER__BATCH__MAX_WAIT", "200ms")
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start perfect-order"),
    );
    let store = AnyStore::connect(&db.url, 2).await.expect("connect");
    let total = records.len() as i64;
    eventually("every record committed", Duration::from_secs(300), || {
        let store = store.clone();
        async move { (committed(&store).await == total).then_some(()) }
    })
    .await;
    check_views(&store, &events).await;
}

/// Every monthly v2 view of `store` against the answer computed here from `events`.
async fn check_views(store: &AnyStore, events: &[Event]) {
    // The independent answers.
    let created = pick(
        &of_type(events, "order.created"),
        |e| Some(data!(e, OrderCreated).order_id.to_string()),
        false,
    );
    let shipped = pick(
        &of_type(events, "order.shipped"),
        |e| Some(data!(e, OrderShipped).order_id.to_string()),
        false,
    );
    let delivered = pick(
        &of_type(events, "order.delivered"),
        |e| Some(data!(e, OrderDelivered).order_id.to_string()),
        false,
    );
    let cancelled: HashSet<String> = of_type(events, "order.cancelled")
        .iter()
        .map(|e| data!(e, OrderCancelled).order_id.to_string())
        .collect();

    // Claims journal.
    let filed = pick(
        &of_type(events, "claim.filed"),
        |e| Some(data!(e, ClaimFiled).claim_id.to_string()),
        false,
    );
    let resolved = pick(
        &of_type(events, "claim.resolved"),
        |e| Some(data!(e, ClaimResolved).claim_id.to_string()),
        false,
    );
    let stages: Vec<&Event> = of_type(events, "claim.updated");
    let mut journal: BTreeMap<(NaiveDate, String), [i64; 6]> = BTreeMap::new();
    let mut resolve_secs: BTreeMap<(NaiveDate, String), Vec<i64>> = BTreeMap::new();
    let lo = filed.values().map(|e| month(e.time)).min().expect("claims");
    let hi = filed
        .iter()
        .map(|(id, e)| {
            resolved
                .get(id)
                .map_or(month(e.time), |r| month(r.time).max(month(e.time)))
        })
        .max()
        .expect("claims");
    for (id, f) in &filed {
        let category = data!(f, ClaimFiled).category.as_str().to_owned();
        let fm = month(f.time);
        journal.entry((fm, category.clone())).or_default()[0] += 1;
        let rm = resolved.get(id).map(|r| month(r.time));
        if let Some(r) = resolved.get(id) {
            journal
                .entry((month(r.time), category.clone()))
                .or_default()[1] += 1;
            resolve_secs
                .entry((month(r.time), category.clone()))
                .or_default()
                .push(secs(f.time, r.time));
        }
        let mut m = fm;
        while m <= hi {
            if rm.is_none_or(|rm| rm > m) {
                let end = next_month(m);
                let stage = stages
                    .iter()
                    .filter(|s| {
                        data!(s, ClaimUpdated).claim_id.as_str() == id && month(s.time) < end
                    })
                    .max_by_key(|s| stamp(s))
                    .map_or("registered", |s| data!(s, ClaimUpdated).stage.as_str());
                let slot = journal.entry((m, category.clone())).or_default();
                slot[2] += 1;
                slot[3 + ["registered", "investigating", "action_taken"]
                    .iter()
                    .position(|s| *s == stage)
                    .expect("stage")] += 1;
            }
            m = next_month(m);
        }
    }
    assert!(lo < hi, "the journal spans months");
    type JournalRow = (
        NaiveDate,
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
    );
    let expected: Vec<JournalRow> = journal
        .into_iter()
        .map(|((m, c), n)| {
            let mut v = resolve_secs.remove(&(m, c.clone())).unwrap_or_default();
            let (p50, p95) = (pct(&mut v, 0.5), pct(&mut v, 0.95));
            (m, c, n[0], n[1], n[2], n[3], n[4], n[5], p50, p95)
        })
        .collect();
    let got: Vec<JournalRow> = rows!(
        store,
        "SELECT month, category, filed, resolved, open_at_month_end, open_registered,
                open_investigating, open_action_taken, resolve_p50_seconds, resolve_p95_seconds
         FROM claims_journal_monthly ORDER BY month, category"
    );
    assert_eq!(got, expected, "claims_journal_monthly");
    assert!(
        got.len() >= 3,
        "claims_journal_monthly has rows in every month: {got:?}"
    );

    // Reviews.
    let posted = pick(
        &of_type(events, "review.posted"),
        |e| Some(data!(e, ReviewPosted).review_id.to_string()),
        false,
    );
    let answered = pick(
        &of_type(events, "review.answered"),
        |e| Some(data!(e, ReviewAnswered).review_id.to_string()),
        false,
    );
    let mut reviews: BTreeMap<NaiveDate, ReviewTally> = BTreeMap::new();
    for (id, p) in &posted {
        let r = reviews.entry(month(p.time)).or_default();
        let rating = data!(p, ReviewPosted).rating.get();
        r.0 += 1;
        if let Some(a) = answered.get(id) {
            r.1 += 1;
            if a.time - p.time <= TimeDelta::hours(24) {
                r.2 += 1;
            }
            r.3.push(secs(p.time, a.time));
        }
        if rating <= 2 {
            r.4 += 1;
            if !answered.contains_key(id) {
                r.5 += 1;
            }
        }
    }
    type ReviewRow = (
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
    let expected: Vec<ReviewRow> = reviews
        .into_iter()
        .map(|(m, mut r)| {
            let share = r.2 as f64 / r.0 as f64;
            (
                m,
                r.0,
                r.1,
                r.2,
                share,
                pct(&mut r.3, 0.5),
                pct(&mut r.3, 0.95),
                r.4,
                r.5,
            )
        })
        .collect();
    let got: Vec<ReviewRow> = rows!(
        store,
        "SELECT month, reviews, answered, answered_within_sla, within_sla_share,
                answer_p50_seconds, answer_p95_seconds, negative, unanswered_negative
         FROM review_response_monthly ORDER BY month"
    );
    assert_eq!(got, expected, "review_response_monthly");
    assert!(
        got.len() >= 3,
        "review_response_monthly has rows in every month: {got:?}"
    );

    // Friendly-driver contest.
    let rosters = of_type(events, "courier.rostered");
    // The team of the latest rostering at an instant, or before a month's end.
    let team_when = |courier: &str, keep: &dyn Fn(&Event) -> bool| -> Option<String> {
        rosters
            .iter()
            .filter(|r| data!(r, CourierRostered).courier_id.as_str() == courier && keep(r))
            .max_by_key(|r| stamp(r))
            .map(|r| data!(r, CourierRostered).team_id.to_string())
    };
    let team_at = |courier: &str, t: DateTime<Utc>| team_when(courier, &|r| r.time <= t);
    let team_at_month_end =
        |courier: &str, m: NaiveDate| team_when(courier, &|r| month(r.time) <= m);
    let mut smileys: Vec<(NaiveDate, String, Option<String>, bool)> = Vec::new();
    for p in posted.values() {
        let d = data!(p, ReviewPosted);
        if let (Some(courier), true) = (&d.courier_id, d.rating.get() >= 4) {
            smileys.push((
                month(p.time),
                courier.to_string(),
                team_at(courier.as_str(), p.time),
                true,
            ));
        }
    }
    for v in of_type(events, "courier.violation") {
        let courier = data!(v, CourierViolation).courier_id.to_string();
        smileys.push((
            month(v.time),
            courier.clone(),
            team_at(&courier, v.time),
            false,
        ));
    }
    let mut teams: BTreeMap<(NaiveDate, String), (i64, i64)> = BTreeMap::new();
    let mut couriers: BTreeMap<(NaiveDate, String), (i64, i64)> = BTreeMap::new();
    for (m, courier, team, yellow) in &smileys {
        let c = couriers.entry((*m, courier.clone())).or_default();
        if *yellow {
            c.0 += 1
        } else {
            c.1 += 1
        }
        if let Some(team) = team {
            let t = teams.entry((*m, team.clone())).or_default();
            if *yellow {
                t.0 += 1
            } else {
                t.1 += 1
            }
        }
    }
    let index = |y: i64, r: i64| (y + r > 0).then(|| y as f64 / (y + r) as f64);
    type CourierRow = (NaiveDate, String, Option<String>, i64, i64, Option<f64>);
    let expected: Vec<CourierRow> = couriers
        .iter()
        .map(|((m, c), (y, r))| {
            (
                *m,
                c.clone(),
                team_at_month_end(c, *m),
                *y,
                *r,
                index(*y, *r),
            )
        })
        .collect();
    let got: Vec<CourierRow> = rows!(
        store,
        "SELECT month, courier_id, team_id, yellow, red, friendliness_index
         FROM courier_smileys_monthly ORDER BY month, courier_id"
    );
    assert_eq!(got, expected, "courier_smileys_monthly");
    assert!(
        got.len() >= 3,
        "courier_smileys_monthly has rows in every month: {got:?}"
    );
    let months: BTreeSet<NaiveDate> = smileys.iter().map(|s| s.0).collect();
    let all_couriers: BTreeSet<String> = rosters
        .iter()
        .map(|r| data!(r, CourierRostered).courier_id.to_string())
        .collect();
    type TeamRow = (
        NaiveDate,
        String,
        i64,
        i64,
        Option<f64>,
        i64,
        bool,
        i64,
        bool,
    );
    let mut expected: Vec<TeamRow> = Vec::new();
    for m in months {
        let mut sizes: BTreeMap<String, i64> = BTreeMap::new();
        for c in &all_couriers {
            if let Some(team) = team_at_month_end(c, m) {
                *sizes.entry(team).or_default() += 1;
            }
        }
        let mut names: BTreeSet<String> = sizes.keys().cloned().collect();
        names.extend(
            teams
                .keys()
                .filter(|(tm, _)| *tm == m)
                .map(|(_, t)| t.clone()),
        );
        let mut rows: Vec<(String, i64, i64, i64)> = names
            .into_iter()
            .map(|t| {
                let (y, r) = teams.get(&(m, t.clone())).copied().unwrap_or((0, 0));
                let size = sizes.get(&t).copied().unwrap_or(0);
                (t, y, r, size)
            })
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (rank, (t, y, r, size)) in rows.into_iter().enumerate() {
            let rank = rank as i64 + 1;
            expected.push((m, t, y, r, index(y, r), size, size != 10, rank, rank == 1));
        }
    }
    let got: Vec<TeamRow> = rows!(
        store,
        "SELECT month, team_id, yellow, red, friendliness_index, team_size, size_flagged, rank,
                winner
         FROM team_ranking_monthly ORDER BY month, rank"
    );
    assert_eq!(got, expected, "team_ranking_monthly");
    assert!(
        got.len() >= 3,
        "team_ranking_monthly has rows in every month: {got:?}"
    );

    // Repeat customers and order to dispatch.
    let customer = |e: &Event| data!(e, OrderCreated).customer_id.to_string();
    let mut first_month: HashMap<String, NaiveDate> = HashMap::new();
    for e in created.values() {
        let m = month(e.time);
        first_month
            .entry(customer(e))
            .and_modify(|f| *f = (*f).min(m))
            .or_insert(m);
    }
    let mut per: BTreeMap<NaiveDate, BTreeMap<String, i64>> = BTreeMap::new();
    for e in created.values() {
        *per.entry(month(e.time))
            .or_default()
            .entry(customer(e))
            .or_default() += 1;
    }
    type RepeatRow = (NaiveDate, i64, i64, f64, i64, i64, f64);
    let expected: Vec<RepeatRow> = per
        .into_iter()
        .map(|(m, customers)| {
            let returning: Vec<(&String, &i64)> = customers
                .iter()
                .filter(|(c, _)| first_month[*c] < m)
                .collect();
            let orders: i64 = customers.values().sum();
            let returning_orders: i64 = returning.iter().map(|(_, n)| **n).sum();
            let n = customers.len() as i64;
            let r = returning.len() as i64;
            (
                m,
                n,
                r,
                r as f64 / n as f64,
                orders,
                returning_orders,
                returning_orders as f64 / orders as f64,
            )
        })
        .collect();
    let got: Vec<RepeatRow> = rows!(
        store,
        "SELECT month, customers, returning_customers, returning_customer_share, orders,
                returning_orders, returning_order_share
         FROM repeat_customers_monthly ORDER BY month"
    );
    assert_eq!(got, expected, "repeat_customers_monthly");
    assert!(
        got.len() >= 3,
        "repeat_customers_monthly has rows in every month: {got:?}"
    );
    let mut dispatch: BTreeMap<NaiveDate, Vec<i64>> = BTreeMap::new();
    for (id, s) in &shipped {
        if let Some(c) = created.get(id) {
            dispatch
                .entry(month(s.time))
                .or_default()
                .push(secs(c.time, s.time));
        }
    }
    let expected: Vec<(NaiveDate, i64, Option<i64>, Option<i64>)> = dispatch
        .into_iter()
        .map(|(m, mut v)| (m, v.len() as i64, pct(&mut v, 0.5), pct(&mut v, 0.95)))
        .collect();
    let got: Vec<(NaiveDate, i64, Option<i64>, Option<i64>)> = rows!(
        store,
        "SELECT month, shipped, dispatch_p50_seconds, dispatch_p95_seconds
         FROM order_dispatch_monthly ORDER BY month"
    );
    assert_eq!(got, expected, "order_dispatch_monthly");
    assert!(
        got.len() >= 3,
        "order_dispatch_monthly has rows in every month: {got:?}"
    );

    // Acquisition: spend pro rata by days, new customers, AOV; 'all' and shared channels.
    let spends = pick(
        &of_type(events, "marketing.spend"),
        |e| Some(data!(e, MarketingSpend).spend_id.to_string()),
        true,
    );
    let mut acq: BTreeMap<(NaiveDate, String), Acquired> = BTreeMap::new();
    let sales_channels: BTreeSet<String> = created
        .values()
        .filter_map(|e| data!(e, OrderCreated).sales_channel.clone())
        .collect();
    let spend_channels: BTreeSet<String> = spends
        .values()
        .filter_map(|e| data!(e, MarketingSpend).channel.clone())
        .collect();
    let shared: BTreeSet<&String> = sales_channels.intersection(&spend_channels).collect();
    let mut add = |m: NaiveDate, channel: Option<&String>, f: &dyn Fn(&mut Acquired)| {
        f(acq.entry((m, "all".into())).or_default());
        if let Some(c) = channel.filter(|c| shared.contains(c)) {
            f(acq.entry((m, c.clone())).or_default());
        }
    };
    for s in spends.values() {
        let d = data!(s, MarketingSpend);
        let amount: f64 = d.amount.as_str().parse().expect("amount");
        let total = (d.to - d.from).num_days() + 1;
        let mut day = d.from;
        while day <= d.to {
            let m = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).expect("valid");
            add(m, d.channel.as_ref(), &|r| r.0 += amount / total as f64);
            day = day.succ_opt().expect("valid");
        }
    }
    let mut firsts: BTreeMap<String, &Event> = BTreeMap::new();
    for e in created.values() {
        let c = customer(e);
        let earlier = firsts.get(&c).is_none_or(|f| {
            (e.time, data!(e, OrderCreated).order_id.as_str())
                < (f.time, data!(f, OrderCreated).order_id.as_str())
        });
        if earlier {
            firsts.insert(c, e);
        }
    }
    for f in firsts.values() {
        add(
            month(f.time),
            data!(f, OrderCreated).sales_channel.as_ref(),
            &|r| r.1 += 1,
        );
    }
    for (id, d) in &delivered {
        let Some(c) = created.get(id).filter(|_| !cancelled.contains(id)) else {
            continue;
        };
        let order = data!(c, OrderCreated);
        if let Some(total) = &order.total {
            let total: f64 = total.as_str().parse().expect("total");
            add(month(d.time), order.sales_channel.as_ref(), &|r| {
                r.2 += 1;
                r.3 += total;
            });
        }
    }
    let got: Vec<AcquisitionRow> = rows!(store, "SELECT month, channel, CAST(spend AS double precision), new_customers, CAST(cac AS double precision), fulfilled_orders,
                    CAST(revenue AS double precision), CAST(aov AS double precision), CAST(cac_to_aov AS double precision)
             FROM acquisition_monthly ORDER BY month, channel");
    let keys: Vec<(NaiveDate, String)> = got.iter().map(|r| (r.0, r.1.clone())).collect();
    assert!(
        keys.len() >= 6,
        "acquisition_monthly has 'all' and channel rows: {keys:?}"
    );
    assert_eq!(
        keys,
        acq.keys().cloned().collect::<Vec<_>>(),
        "acquisition_monthly rows"
    );
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
        (a, b) => a.is_none() && b.is_none(),
    };
    for row in &got {
        let (spend, new, fulfilled, revenue) = acq[&(row.0, row.1.clone())];
        let cac = (new > 0).then(|| spend / new as f64);
        let aov = (fulfilled > 0).then(|| revenue / fulfilled as f64);
        let ratio = match (cac, aov) {
            (Some(c), Some(a)) if a > 0.0 => Some(c / a),
            _ => None,
        };
        assert!(close(Some(row.2), Some(spend)), "spend {row:?} vs {spend}");
        assert_eq!((row.3, row.5), (new, fulfilled), "{row:?}");
        assert!(close(Some(row.6), Some(revenue)), "revenue {row:?}");
        assert!(
            close(row.4, cac) && close(row.7, aov) && close(row.8, ratio),
            "{row:?}"
        );
    }

    // Lead base.
    let captured = pick(
        &of_type(events, "lead.captured"),
        |e| Some(data!(e, LeadCaptured).lead_id.to_string()),
        false,
    );
    let lead_events: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::LeadCaptured(_) | EventKind::LeadChanged(_)
            )
        })
        .collect();
    let lead_of = |e: &Event| match &e.kind {
        EventKind::LeadCaptured(d) => (d.lead_id.to_string(), d.temperature.as_str()),
        EventKind::LeadChanged(d) => (d.lead_id.to_string(), d.temperature.as_str()),
        _ => unreachable!(),
    };
    let first_order: HashMap<String, DateTime<Utc>> =
        firsts.iter().map(|(c, e)| (c.clone(), e.time)).collect();
    let lo = captured
        .values()
        .map(|e| month(e.time))
        .min()
        .expect("leads");
    let hi = lead_events
        .iter()
        .map(|e| month(e.time))
        .max()
        .expect("leads");
    let mut expected: Vec<LeadRow> = Vec::new();
    let mut m = lo;
    let mut previous: Option<i64> = None;
    while m <= hi {
        let (mut leads, mut new, mut t, mut converted, mut new_conv) = (0, 0, [0i64; 3], 0, 0);
        for (id, c) in &captured {
            if month(c.time) > m {
                continue;
            }
            leads += 1;
            new += i64::from(month(c.time) == m);
            let temperature = lead_events
                .iter()
                .filter(|e| lead_of(e).0 == *id && month(e.time) <= m)
                .max_by_key(|e| stamp(e))
                .map(|e| lead_of(e).1)
                .expect("the capture at least");
            t[["cold", "warm", "hot"]
                .iter()
                .position(|x| *x == temperature)
                .expect("temperature")] += 1;
            let conversion = data!(c, LeadCaptured)
                .customer_id
                .as_ref()
                .and_then(|cust| first_order.get(cust.as_str()))
                .filter(|first| **first >= c.time)
                .map(|first| month(*first));
            converted += i64::from(conversion.is_some_and(|cm| cm <= m));
            new_conv += i64::from(conversion == Some(m));
        }
        let growth = previous
            .filter(|p| *p > 0)
            .map(|p| (leads - p) as f64 / p as f64);
        expected.push((
            m,
            leads,
            new,
            t[0],
            t[1],
            t[2],
            (t[1] + t[2]) as f64 / leads as f64,
            growth,
            converted,
            new_conv,
        ));
        previous = Some(leads);
        m = next_month(m);
    }
    let got: Vec<LeadRow> = rows!(
        store,
        "SELECT month, leads, new_leads, cold, warm, hot, warm_hot_share, growth, converted,
                new_conversions
         FROM lead_base_monthly ORDER BY month"
    );
    assert_eq!(got, expected, "lead_base_monthly");
    assert!(
        got.len() >= 3,
        "lead_base_monthly has rows in every month: {got:?}"
    );
}
