//! Prometheus metrics: one registry, typed `record_*` functions that log and count together.
//!
//! Two kinds of figures (docs/reference.md, "Several instances"):
//! - pipeline figures (consumed, duplicates, rejected, batches, lag) are per instance: sum them;
//! - shop-wide figures (rolling perfect-order ratios, the SLA watch) are computed from the
//!   database on a timer, so every instance reports the same value: aggregate them with `max`.
//!
//! No label ever carries an order, customer or courier id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing::{debug, info, warn};

use crate::domain::event::Temperature;
use crate::domain::event::KNOWN_TYPES;
use crate::domain::{Category, RejectReason};
use crate::store::service::ServiceFigures;
use crate::store::{BatchReport, ShopFigures};

const PREFIX: &str = "perfect_order";

/// Latency buckets from 1 minute to 2 days (confirmation, dispatch, lateness).
const LATENCY_BUCKETS: [f64; 16] = [
    60.0, 300.0, 600.0, 900.0, 1200.0, 1500.0, 1800.0, 2700.0, 3600.0, 7200.0, 14400.0, 28800.0,
    43200.0, 86400.0, 172800.0, 345600.0,
];

/// Claim resolution buckets: 1 hour to 60 days.
const CLAIM_BUCKETS: [f64; 12] = [
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86400.0,
    2.0 * 86400.0,
    3.0 * 86400.0,
    7.0 * 86400.0,
    14.0 * 86400.0,
    21.0 * 86400.0,
    30.0 * 86400.0,
    45.0 * 86400.0,
    60.0 * 86400.0,
];

/// All metrics of the service.
pub struct Metrics {
    registry: Registry,
    events_consumed: IntCounterVec,
    duplicates: IntCounter,
    unknown_types: IntCounter,
    rejected: IntCounterVec,
    fenced: IntCounter,
    batch_events: Histogram,
    batch_commit_seconds: Histogram,
    batch_failures: IntCounter,
    last_commit: Gauge,
    broker_answered: Gauge,
    kafka_errors: IntCounter,
    assigned_partitions: IntGauge,
    consumer_lag: IntGaugeVec,
    confirmation_seconds: Histogram,
    confirmed_to_shipped_seconds: Histogram,
    delivery_lateness_seconds: Histogram,
    claims_filed: IntCounterVec,
    po_ratio: GaugeVec,
    component_ratio: GaugeVec,
    po_index: GaugeVec,
    restatement_points: GaugeVec,
    restated_orders: IntGaugeVec,
    fulfilled_orders: IntGaugeVec,
    perfect_orders: IntGaugeVec,
    deviation_orders: IntGaugeVec,
    awaiting: IntGauge,
    over_sla: IntGauge,
    oldest_awaiting: Gauge,
    watch_failures: IntCounter,
    watch_last_success: Gauge,
    claim_resolution_seconds: Histogram,
    review_answer_seconds: Histogram,
    open_claims: IntGaugeVec,
    unanswered_negative_reviews: IntGauge,
    team_friendliness: GaugeVec,
    team_labels: usize,
    leads: IntGaugeVec,
    repeat_customer_ratio: Gauge,
    build_info: IntGaugeVec,
    ready: IntGauge,
    ready_checks: IntGaugeVec,
    lag: Mutex<LagState>,
}

/// High watermarks (from librdkafka statistics) and our committed next offsets, per partition.
#[derive(Default)]
struct LagState {
    assigned: HashSet<(String, i32)>,
    high: HashMap<(String, i32), i64>,
    next: HashMap<(String, i32), i64>,
}

impl LagState {
    /// Lag of every assigned partition whose high watermark is known.
    fn lags(&self) -> impl Iterator<Item = (&(String, i32), i64)> + '_ {
        self.assigned.iter().filter_map(|p| {
            let high = self.high.get(p)?;
            Some((p, (high - self.next.get(p).copied().unwrap_or(0)).max(0)))
        })
    }
}

fn name(short: &str) -> String {
    format!("{PREFIX}_{short}")
}

/// Makes each metric with its prefixed name and registers it, in one call.
struct Registering(Registry);

impl Registering {
    fn add<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        metric: M,
    ) -> Result<M, prometheus::Error> {
        self.0.register(Box::new(metric.clone()))?;
        Ok(metric)
    }

    fn counter(&self, short: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
        self.add(IntCounter::new(name(short), help)?)
    }

    fn int_gauge(&self, short: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
        self.add(IntGauge::new(name(short), help)?)
    }

    fn gauge(&self, short: &str, help: &str) -> Result<Gauge, prometheus::Error> {
        self.add(Gauge::new(name(short), help)?)
    }

    fn counters(
        &self,
        short: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, prometheus::Error> {
        self.add(IntCounterVec::new(Opts::new(name(short), help), labels)?)
    }

    fn int_gauges(
        &self,
        short: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, prometheus::Error> {
        self.add(IntGaugeVec::new(Opts::new(name(short), help), labels)?)
    }

    fn gauges(
        &self,
        short: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<GaugeVec, prometheus::Error> {
        self.add(GaugeVec::new(Opts::new(name(short), help), labels)?)
    }

    fn histogram(
        &self,
        short: &str,
        help: &str,
        buckets: Vec<f64>,
    ) -> Result<Histogram, prometheus::Error> {
        self.add(Histogram::with_opts(
            HistogramOpts::new(name(short), help).buckets(buckets),
        )?)
    }
}

impl Metrics {
    /// Builds and registers every metric, with at most `team_labels` teams named on the
    /// friendliness gauge (the rest are summed under `team="other"`; `watch.team_labels`).
    /// Label sets with bounded values are pre-created at 0 so dashboards and alerts see the
    /// series before the first event.
    pub fn new(team_labels: usize) -> Result<Arc<Metrics>, prometheus::Error> {
        let r = Registering(Registry::new());
        let metrics = Metrics {
            events_consumed: r.counters("events_consumed_total", "New events applied, by CloudEvents type (duplicates excluded).", &["type"])?,
            duplicates: r.counter("duplicate_events_total", "Events already seen (same source and id), ignored.")?,
            unknown_types: r.counter("unknown_type_events_total", "Valid CloudEvents of a type this version does not know, stored and skipped.")?,
            rejected: r.counters("rejected_events_total", "Records that could not be read, kept in rejected_events, by reason.", &["reason"])?,
            fenced: r.counter("fenced_records_total", "Records skipped because their offset was already committed (replay after a crash or rebalance).")?,
            batch_events: r.histogram("batch_records", "Records per committed batch.", prometheus::exponential_buckets(1.0, 4.0, 9)?)?,
            batch_commit_seconds: r.histogram("batch_commit_seconds", "Time to commit one batch transaction.", prometheus::exponential_buckets(0.001, 2.0, 14)?)?,
            batch_failures: r.counter("batch_failures_total", "Batch transactions that failed and were retried.")?,
            last_commit: r.gauge("last_batch_commit_timestamp_seconds", "Unix time of the last committed batch (0 before the first).")?,
            broker_answered: r.gauge("kafka_last_answer_timestamp_seconds", "Unix time a Kafka broker last answered this instance (0 before the first): consumer_lag_records is as of then.")?,
            kafka_errors: r.counter("kafka_errors_total", "Errors reported by the Kafka consumer.")?,
            assigned_partitions: r.int_gauge("assigned_partitions", "Partitions assigned to this instance.")?,
            consumer_lag: r.int_gauges("consumer_lag_records", "High watermark minus the next offset committed to the database, per assigned partition.", &["topic", "partition"])?,
            confirmation_seconds: r.histogram("confirmation_latency_seconds", "Order created to confirmed (event time), observed once per order.", LATENCY_BUCKETS.to_vec())?,
            confirmed_to_shipped_seconds: r.histogram("confirmed_to_shipped_seconds", "Order confirmed to shipped (event time), observed once per order.", LATENCY_BUCKETS.to_vec())?,
            delivery_lateness_seconds: r.histogram("delivery_lateness_seconds", "Delivery after the promised slot end, 0 when on time, observed once per order.", {
                let mut b = vec![0.0];
                b.extend_from_slice(&LATENCY_BUCKETS);
                b
            })?,
            claims_filed: r.counters("claims_filed_total", "Claims first seen, by category.", &["category"])?,
            po_ratio: r.gauges("perfect_order_ratio", "Perfect / fulfilled orders over the last 1, 7 or 30 shop-zone days by delivery day (absent when nothing was fulfilled). Shop-wide: aggregate with max.", &["window"])?,
            component_ratio: r.gauges("component_ratio", "Share of fulfilled orders meeting each perfect-order component over the last 1, 7 or 30 shop-zone days by delivery day: confirmed_in_sla, on_time, in_full, claim_free (absent when nothing was fulfilled).", &["component", "window"])?,
            po_index: r.gauges("index", "The product of the four component ratios over the window (the multiplicative index of APQC/SCOR-style reports; not perfect_order_ratio, the share of orders with no deviation).", &["window"])?,
            restatement_points: r.gauges("restatement_points", "Today's perfect-order rate minus the rate as first complete, in percentage points (negative: late facts lowered it): month=\"previous\" since last month ended, month=\"current\" over this month's delivery days since each day ended (absent without a rate).", &["month"])?,
            restated_orders: r.int_gauges("restated_orders", "Orders counted differently today than when their period was first complete: month=\"previous\" (last month, since it ended), month=\"current\" (this month's delivery days, since each ended). The orders: GET /api/restatements.", &["month"])?,
            fulfilled_orders: r.int_gauges("fulfilled_orders", "Fulfilled orders over the window by delivery day. Shop-wide: aggregate with max.", &["window"])?,
            perfect_orders: r.int_gauges("perfect_orders", "Perfect orders over the window by delivery day. Shop-wide: aggregate with max.", &["window"])?,
            deviation_orders: r.int_gauges("deviation_orders", "Fulfilled orders with a deviation of the category over the window. Shop-wide: aggregate with max.", &["window", "category"])?,
            awaiting: r.int_gauge("orders_awaiting_confirmation", "Orders created within the pending horizon, neither confirmed nor cancelled. Shop-wide: aggregate with max.")?,
            over_sla: r.int_gauge("orders_over_confirmation_sla", "Orders awaiting confirmation for longer than the SLA. Shop-wide: aggregate with max.")?,
            oldest_awaiting: r.gauge("oldest_awaiting_confirmation_seconds", "Age of the oldest order awaiting confirmation (0 when none). Shop-wide: aggregate with max.")?,
            watch_failures: r.counter("watch_refresh_failures_total", "Failed refreshes of the shop-wide gauges.")?,
            watch_last_success: r.gauge("watch_last_refresh_timestamp_seconds", "Unix time of the last successful refresh of the shop-wide gauges.")?,
            claim_resolution_seconds: r.histogram("claim_resolution_seconds", "Claim filed to resolved (event time), observed once per claim when both are known.", CLAIM_BUCKETS.to_vec())?,
            review_answer_seconds: r.histogram("review_answer_seconds", "Review posted to its first answer (event time), observed once per review when both are known.", LATENCY_BUCKETS.to_vec())?,
            open_claims: r.int_gauges("open_claims", "Claims filed and not resolved, by category. Shop-wide: aggregate with max.", &["category"])?,
            unanswered_negative_reviews: r.int_gauge("unanswered_negative_reviews", "Reviews rated 2 or lower with no answer yet (the list: /api/service/lists). Shop-wide: aggregate with max.")?,
            team_friendliness: r.gauges("team_friendliness_index", "Friendly-driver contest this shop-zone month: yellow / (yellow + red) smileys per team; at most watch.team_labels teams by rank, the rest summed as team=\"other\". Absent without smileys. Shop-wide: aggregate with max.", &["team"])?,
            team_labels,
            leads: r.int_gauges("leads", "Leads captured so far, by their temperature now. Shop-wide: aggregate with max.", &["temperature"])?,
            repeat_customer_ratio: r.gauge("repeat_customer_ratio", "Of the customers with an order created in the last 30 shop-zone days, the share who had ordered before them (0 without customers). Shop-wide: aggregate with max.")?,
            build_info: r.int_gauges("build_info", "Always 1; the version label says which build runs.", &["version"])?,
            ready: r.int_gauge("ready", "1 when every readiness check holds (the database answers, a broker answered within kafka.broker_silence, the consumer joined its group), else 0 (as /readyz).")?,
            ready_checks: r.int_gauges("ready_check", "Each readiness check: 1 when it holds, 0 when it is the reason the instance is not ready (check: database, broker, assignment).", &["check"])?,
            lag: Mutex::new(LagState::default()),
            registry: r.0,
        };
        metrics.prime();
        Ok(Arc::new(metrics))
    }

    /// Pre-creates the bounded label sets at 0, so dashboards and alerts see every series
    /// before its first event.
    fn prime(&self) {
        for t in KNOWN_TYPES {
            self.events_consumed.with_label_values(&[t]);
        }
        for r in RejectReason::ALL {
            self.rejected.with_label_values(&[r.as_str()]);
        }
        for c in Category::ALL {
            self.claims_filed.with_label_values(&[c.as_str()]);
            self.open_claims.with_label_values(&[c.as_str()]);
        }
        for t in Temperature::ALL {
            self.leads.with_label_values(&[t.as_str()]);
        }
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Records a committed batch: counters, histograms, lag, and one log line.
    pub fn record_batch(&self, report: &BatchReport, took: Duration) {
        for (t, n) in &report.consumed {
            self.events_consumed.with_label_values(&[t]).inc_by(*n);
        }
        self.duplicates.inc_by(report.duplicates);
        self.unknown_types.inc_by(report.unknown);
        for (reason, n) in &report.rejected {
            self.rejected
                .with_label_values(&[reason.as_str()])
                .inc_by(*n);
        }
        self.fenced.inc_by(report.fenced as u64);
        self.batch_events.observe(report.records as f64);
        self.batch_commit_seconds.observe(took.as_secs_f64());
        self.last_commit.set(unix_now());
        for v in &report.confirmation_seconds {
            self.confirmation_seconds.observe(*v);
        }
        for v in &report.confirmed_to_shipped_seconds {
            self.confirmed_to_shipped_seconds.observe(*v);
        }
        for v in &report.delivery_lateness_seconds {
            self.delivery_lateness_seconds.observe(v.max(0.0));
        }
        for v in &report.claim_resolution_seconds {
            self.claim_resolution_seconds.observe(v.max(0.0));
        }
        for v in &report.review_answer_seconds {
            self.review_answer_seconds.observe(v.max(0.0));
        }
        for (c, n) in &report.claims_filed {
            self.claims_filed
                .with_label_values(&[c.as_str()])
                .inc_by(*n);
        }
        {
            let mut lag = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
            for ((topic, partition), next) in &report.next_offsets {
                let key = (topic.to_string(), *partition);
                let slot = lag.next.entry(key).or_insert(0);
                *slot = (*slot).max(*next);
            }
            self.refresh_lag(&lag);
        }
        let rejected: u64 = report.rejected.values().sum();
        info!(
            records = report.records,
            consumed = report.consumed.values().sum::<u64>(),
            duplicates = report.duplicates,
            rejected,
            unknown = report.unknown,
            fenced = report.fenced,
            orders_changed = report.orders_changed,
            commit_ms = took.as_millis() as u64,
            "batch committed"
        );
    }

    /// Records committed so far by this instance (each consumed offset once: stored events,
    /// duplicates and rejected records alike): the demo's progress.
    pub fn records_committed(&self) -> u64 {
        self.batch_events.get_sample_sum() as u64
    }

    /// Records behind the high watermarks over every assigned partition whose watermark is
    /// known (`None` before the first statistics).
    pub fn lag_records(&self) -> Option<i64> {
        let lag = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lags = lag.lags().peekable();
        lags.peek()?;
        Some(lags.map(|(_, records)| records).sum())
    }

    /// Records a failed batch attempt (it will be retried).
    pub fn record_batch_failure(&self, error: &dyn std::fmt::Display, attempt: u32) {
        self.batch_failures.inc();
        warn!(error = %error, attempt, "batch commit failed; retrying");
    }

    /// A batch the database refused for its data: counted as a failed attempt; it is split
    /// next to find the refused records.
    pub fn record_batch_refused(&self, error: &dyn std::fmt::Display, records: usize) {
        self.batch_failures.inc();
        warn!(error = %error, records, "the database refused the batch; splitting it to find the refused records");
    }

    /// Records a Kafka consumer error.
    pub fn record_kafka_error(&self, error: &dyn std::fmt::Display) {
        self.kafka_errors.inc();
        warn!(error = %error, "kafka consumer error");
    }

    /// Partitions were assigned, with the next offsets the database holds for them.
    pub fn record_assigned(
        &self,
        partitions: &[(String, i32)],
        next: &HashMap<(String, i32), i64>,
    ) {
        let mut lag = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        for p in partitions {
            lag.assigned.insert(p.clone());
            if let Some(n) = next.get(p) {
                lag.next.insert(p.clone(), *n);
            }
        }
        self.assigned_partitions.set(lag.assigned.len() as i64);
        self.refresh_lag(&lag);
        info!(
            partitions = partitions.len(),
            assigned = lag.assigned.len(),
            "partitions assigned"
        );
        debug!(partitions = ?partitions, "partitions assigned");
    }

    /// Partitions were revoked: this instance stops reporting their lag.
    pub fn record_revoked(&self, partitions: &[(String, i32)]) {
        let mut lag = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        for p in partitions {
            lag.assigned.remove(p);
            lag.next.remove(p);
            lag.high.remove(p);
            let _ = self
                .consumer_lag
                .remove_label_values(&[&p.0, &p.1.to_string()]);
        }
        self.assigned_partitions.set(lag.assigned.len() as i64);
        info!(
            partitions = partitions.len(),
            assigned = lag.assigned.len(),
            "partitions revoked"
        );
        debug!(partitions = ?partitions, "partitions revoked");
    }

    /// New high watermarks from librdkafka statistics.
    /// A broker answered (its count of responses grew) at `at`.
    pub fn record_broker_answered(&self, at: chrono::DateTime<chrono::Utc>) {
        self.broker_answered
            .set(at.timestamp_millis() as f64 / 1000.0);
    }

    pub fn record_high_watermarks(&self, high: Vec<((String, i32), i64)>) {
        let mut lag = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        for (k, v) in high {
            if v >= 0 {
                lag.high.insert(k, v);
            }
        }
        self.refresh_lag(&lag);
    }

    fn refresh_lag(&self, lag: &LagState) {
        for (p, records) in lag.lags() {
            self.consumer_lag
                .with_label_values(&[&p.0, &p.1.to_string()])
                .set(records);
        }
    }

    /// Sets the shop-wide gauges from figures read from the database.
    pub fn record_shop_figures(&self, figures: &ShopFigures) {
        self.awaiting.set(figures.awaiting_confirmation);
        self.over_sla.set(figures.over_sla);
        self.oldest_awaiting.set(figures.oldest_awaiting_seconds);
        for w in &figures.windows {
            self.fulfilled_orders
                .with_label_values(&[w.label])
                .set(w.fulfilled);
            self.perfect_orders
                .with_label_values(&[w.label])
                .set(w.perfect);
            for (c, n) in &w.deviations {
                self.deviation_orders
                    .with_label_values(&[w.label, c.as_str()])
                    .set(*n);
            }
            if w.fulfilled > 0 {
                self.po_ratio
                    .with_label_values(&[w.label])
                    .set(w.perfect as f64 / w.fulfilled as f64);
            } else {
                let _ = self.po_ratio.remove_label_values(&[w.label]);
            }
            match w.component_rates() {
                Some(rates) => {
                    for (component, rate) in crate::store::COMPONENTS.iter().zip(rates) {
                        self.component_ratio
                            .with_label_values(&[component, w.label])
                            .set(rate);
                    }
                    self.po_index
                        .with_label_values(&[w.label])
                        .set(rates.iter().product());
                }
                None => {
                    for component in crate::store::COMPONENTS {
                        let _ = self
                            .component_ratio
                            .remove_label_values(&[component, w.label]);
                    }
                    let _ = self.po_index.remove_label_values(&[w.label]);
                }
            }
        }
        self.watch_last_success.set(unix_now());
    }

    /// Sets the contract-v2 gauges from figures read from the database.
    /// How this month's and last month's rates moved since first complete.
    pub fn record_restatements(&self, changes: &[(&'static str, crate::store::RestatementChange)]) {
        for (month, change) in changes {
            self.restated_orders
                .with_label_values(&[month])
                .set(change.restated_orders);
            match change.points() {
                Some(points) => self
                    .restatement_points
                    .with_label_values(&[month])
                    .set(points),
                None => {
                    let _ = self.restatement_points.remove_label_values(&[month]);
                }
            }
        }
    }

    pub fn record_service_figures(&self, figures: &ServiceFigures) {
        for c in Category::ALL {
            self.open_claims
                .with_label_values(&[c.as_str()])
                .set(figures.open_claims.get(c.as_str()).copied().unwrap_or(0));
        }
        self.unanswered_negative_reviews
            .set(figures.unanswered_negative_reviews);
        for t in Temperature::ALL {
            self.leads
                .with_label_values(&[t.as_str()])
                .set(figures.leads.get(t.as_str()).copied().unwrap_or(0));
        }
        self.repeat_customer_ratio
            .set(figures.repeat_customer_ratio_30d().unwrap_or(0.0));
        // Teams come and go: the labels are rebuilt on every refresh.
        self.team_friendliness.reset();
        let (named, rest) = figures
            .teams
            .split_at(self.team_labels.min(figures.teams.len()));
        for team in named {
            if let Some(index) = team.friendliness_index {
                self.team_friendliness
                    .with_label_values(&[team.team_id.as_str()])
                    .set(index);
            }
        }
        let (yellow, red) = rest
            .iter()
            .fold((0, 0), |(y, r), t| (y + t.yellow, r + t.red));
        if yellow + red > 0 {
            self.team_friendliness
                .with_label_values(&["other"])
                .set(yellow as f64 / (yellow + red) as f64);
        }
    }

    /// Records readiness as the probes see it, for alerting.
    /// Readiness and each of its checks as `(check label, holds)`.
    pub fn record_ready(&self, ready: bool, checks: &[(&'static str, bool)]) {
        self.ready.set(i64::from(ready));
        for (check, holds) in checks {
            self.ready_checks
                .with_label_values(&[check])
                .set(i64::from(*holds));
        }
    }

    /// Records a failed refresh of the shop-wide gauges.
    pub fn record_watch_failure(&self, error: &dyn std::fmt::Display) {
        self.watch_failures.inc();
        warn!(error = %error, "refreshing the shop-wide gauges failed");
    }

    /// Current lag per partition (for tests and the log).
    pub fn lag_snapshot(&self) -> BTreeMap<(String, i32), i64> {
        let lag = self.lag.lock().unwrap_or_else(PoisonError::into_inner);
        lag.lags()
            .map(|(p, records)| (p.clone(), records))
            .collect()
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use crate::store::{Figure, RestatementChange};

    fn figure(perfect: i64, fulfilled: i64) -> Figure {
        Figure::of(perfect, fulfilled)
    }

    #[test]
    fn the_restatement_gauges_show_each_months_change_in_points_and_its_restated_orders() {
        let metrics = super::Metrics::new(3).expect("metrics");
        let previous = RestatementChange {
            first: figure(3, 4),
            now: figure(2, 4),
            restated_orders: 1,
        };
        let current = RestatementChange {
            first: figure(0, 0),
            now: figure(0, 0),
            restated_orders: 0,
        };
        metrics.record_restatements(&[("current", current), ("previous", previous)]);
        let text = metrics.render();
        for line in [
            "perfect_order_restatement_points{month=\"previous\"} -25",
            "perfect_order_restated_orders{month=\"previous\"} 1",
            "perfect_order_restated_orders{month=\"current\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        assert!(
            !text.contains("perfect_order_restatement_points{month=\"current\"}"),
            "no rate, no change: {text}"
        );
    }
}
