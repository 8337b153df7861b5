//! Kafka ingest: a poll thread that owns the consumer, a batcher task and a committer task, in
//! a pipeline.
//!
//! - The poll thread copies records out of librdkafka and sends them in chunks to the batcher.
//! - The batcher cuts batches at `batch.max_events` or `batch.max_wait` and decodes them while
//!   the committers write the previous batch (one batch waits between them).
//! - `batch.lanes` committers each own the partitions `p` with `p % lanes` equal to their
//!   number, and commit their part of each batch in one database transaction (see `store`), in
//!   order, retrying on failure. Lanes touch disjoint partitions, hence disjoint orders
//!   (co-partitioning), so their transactions run side by side.
//! - On assignment, partitions start at the next offsets stored in the database (the truth);
//!   Kafka-committed offsets only let lag tools see progress.
//! - On revocation and at shutdown, the poll thread sends a drain marker and waits (bounded by
//!   `kafka.drain_timeout`) until the committer has committed everything read before it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::batch::{prepare, PreparedBatch, Record};
use crate::config::{KafkaSettings, Settings};
use crate::domain::Rules;
use crate::metrics::Metrics;
use crate::store::{self, Store};

/// An ingest failure, naming the topic or setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the Kafka consumer: {0} (check kafka.brokers and kafka.properties)")]
    Create(KafkaError),
    #[error("cannot read metadata of topic {topic} from {brokers}: {source}")]
    Metadata {
        topic: String,
        brokers: String,
        source: Box<KafkaError>,
    },
    #[error("topic {0} does not exist (kafka.topics); create it, keyed by order id")]
    MissingTopic(String),
    #[error("kafka.topics are not co-partitioned: {0}; every order-scoped topic must have the same partition count and be keyed by order id; topics of contract-v2 entity events keyed by their own ids (reviews, couriers, spend, leads) go in kafka.entity_topics instead")]
    NotCoPartitioned(String),
    #[error("cannot subscribe to {topics:?}: {source}")]
    Subscribe {
        topics: Vec<String>,
        source: Box<KafkaError>,
    },
}

enum Item {
    Records(Vec<Record>),
    /// Commit everything before this marker, then acknowledge.
    Drain(std_mpsc::Sender<()>),
}

type OffsetLoader =
    dyn Fn(Vec<(String, i32)>) -> Result<HashMap<(String, i32), i64>, store::Error> + Send + Sync;

/// Whether this instance has received its first assignment (readiness).
#[derive(Default)]
pub struct Readiness {
    assigned: AtomicBool,
}

impl Readiness {
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Acquire)
    }
}

/// The consumer context: rebalance handling and statistics.
pub struct IngestContext {
    items: mpsc::Sender<Item>,
    load_offsets: Box<OffsetLoader>,
    drain_timeout: Duration,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

impl IngestContext {
    fn drain(&self, why: &str) {
        let (ack_tx, ack_rx) = std_mpsc::channel();
        let deadline = Instant::now() + self.drain_timeout;
        let mut marker = Item::Drain(ack_tx);
        // The channel may be full while the committer retries a failing batch: wait for room
        // no longer than the drain timeout.
        loop {
            match self.items.try_send(marker) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => return, // committer gone: nothing in flight
                Err(mpsc::error::TrySendError::Full(back)) if Instant::now() < deadline => {
                    marker = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(
                        why,
                        "the committer is stuck; not waiting for the batch in flight"
                    );
                    return;
                }
            }
        }
        match ack_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) => debug!(why, "batch in flight committed"),
            Err(_) => warn!(
                why,
                timeout_ms = self.drain_timeout.as_millis() as u64,
                "the batch in flight did not commit within kafka.drain_timeout; its records will be read again (and fenced if they commit later)"
            ),
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        let mut high = Vec::new();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.hi_offset >= 0 {
                    high.push(((topic.clone(), *partition), p.hi_offset));
                }
            }
        }
        self.metrics.record_high_watermarks(high);
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions = partitions_of(tpl);
                let stored = self.load_stored_offsets(&partitions);
                for (topic, partition) in &partitions {
                    if let Some(next) = stored.get(&(topic.clone(), *partition)) {
                        if let Err(e) =
                            tpl.set_partition_offset(topic, *partition, Offset::Offset(*next))
                        {
                            error!(topic, partition, error = %e, "cannot set the start offset");
                        }
                    }
                }
                let result = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = result {
                    self.metrics.record_kafka_error(&e);
                }
                self.metrics.record_assigned(&partitions, &stored);
                self.readiness.assigned.store(true, Ordering::Release);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.drain("revocation");
                let partitions = partitions_of(tpl);
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    self.metrics.record_kafka_error(&e);
                }
                self.metrics.record_revoked(&partitions);
            }
            other => {
                error!(error = ?other, "rebalance failed; dropping the assignment");
                self.drain("failed rebalance");
                if let Err(e) = consumer.unassign() {
                    self.metrics.record_kafka_error(&e);
                }
            }
        }
    }
}

impl IngestContext {
    fn load_stored_offsets(&self, partitions: &[(String, i32)]) -> HashMap<(String, i32), i64> {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=5 {
            match (self.load_offsets)(partitions.to_vec()) {
                Ok(map) => return map,
                Err(e) => {
                    warn!(error = %e, attempt, "cannot read consumer_offsets on assignment; retrying");
                    std::thread::sleep(delay);
                    delay *= 2;
                }
            }
        }
        // Starting from Kafka's committed offsets is still safe: the batch transaction fences
        // every record below the offset stored in the database.
        error!("consumer_offsets unreadable; starting from Kafka-committed offsets (replays are fenced)");
        HashMap::new()
    }
}

/// Builds the librdkafka configuration: our fixed settings, then `kafka.properties`.
pub fn client_config(kafka: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set(
            "statistics.interval.ms",
            kafka.statistics_interval.as_millis().to_string(),
        );
    for (k, v) in &kafka.properties {
        config.set(k, v);
    }
    config
}

/// Checks that every topic exists and all have the same partition count.
pub fn check_topics<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    kafka: &KafkaSettings,
) -> Result<(), Error> {
    let mut counts = Vec::new();
    for topic in kafka.topics.iter().chain(&kafka.entity_topics) {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|source| Error::Metadata {
                topic: topic.clone(),
                brokers: kafka.brokers.clone(),
                source: Box::new(source),
            })?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .filter(|t| t.error().is_none() && !t.partitions().is_empty());
        match found {
            Some(t) => counts.push((topic.clone(), t.partitions().len())),
            None => return Err(Error::MissingTopic(topic.clone())),
        }
    }
    // Entity topics (contract v2) are merged in SQL and need not be co-partitioned.
    counts.truncate(kafka.topics.len());
    let first = counts.first().map(|(_, n)| *n);
    if kafka.check_copartitioning && counts.iter().any(|(_, n)| Some(*n) != first) {
        let list = counts
            .iter()
            .map(|(t, n)| format!("{t} has {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::NotCoPartitioned(list));
    }
    Ok(())
}

/// A running consumer: the poll thread, the batcher and the committer.
pub struct Ingest {
    shutdown: Arc<AtomicBool>,
    poll_thread: Option<std::thread::JoinHandle<()>>,
    batcher: tokio::task::JoinHandle<()>,
    committers: Vec<tokio::task::JoinHandle<()>>,
}

impl Ingest {
    /// Creates the consumer, checks the topics, subscribes, and starts both halves.
    pub async fn start<S: Store + Clone>(
        settings: &Settings,
        store: S,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
    ) -> Result<Ingest, Error> {
        let (items_tx, items_rx) = mpsc::channel::<Item>(64);
        let runtime = tokio::runtime::Handle::current();
        let loader_store = store.clone();
        let load_offsets: Box<OffsetLoader> =
            Box::new(move |partitions| runtime.block_on(loader_store.load_offsets(&partitions)));
        let context = IngestContext {
            items: items_tx.clone(),
            load_offsets,
            drain_timeout: settings.kafka.drain_timeout,
            metrics: metrics.clone(),
            readiness,
        };
        let consumer: BaseConsumer<IngestContext> = client_config(&settings.kafka)
            .create_with_context(context)
            .map_err(Error::Create)?;
        let kafka = settings.kafka.clone();
        let consumer = tokio::task::spawn_blocking(move || {
            check_topics(&consumer, &kafka)?;
            let topics: Vec<&str> = kafka
                .topics
                .iter()
                .chain(&kafka.entity_topics)
                .map(String::as_str)
                .collect();
            consumer
                .subscribe(&topics)
                .map_err(|source| Error::Subscribe {
                    topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                    source: Box::new(source),
                })?;
            Ok::<_, Error>(consumer)
        })
        .await
        .map_err(|e| Error::Create(KafkaError::Subscription(e.to_string())))??;
        info!(topics = ?settings.kafka.topics, entity_topics = ?settings.kafka.entity_topics, group = %settings.kafka.group_id, "subscribed");

        let (commits_tx, commits_rx) = std_mpsc::channel::<Vec<((String, i32), i64)>>();
        let shutdown = Arc::new(AtomicBool::new(false));
        let poll_shutdown = shutdown.clone();
        let poll_metrics = metrics.clone();
        let poll_thread = std::thread::Builder::new()
            .name("kafka-poll".into())
            .spawn(move || poll_loop(consumer, items_tx, commits_rx, poll_shutdown, poll_metrics))
            .map_err(|e| Error::Create(KafkaError::Subscription(e.to_string())))?;
        let mut lanes = Vec::with_capacity(settings.batch.lanes);
        let mut committers = Vec::with_capacity(settings.batch.lanes);
        for _ in 0..settings.batch.lanes.max(1) {
            let (stages_tx, stages_rx) = mpsc::channel::<Stage>(1);
            lanes.push(stages_tx);
            committers.push(tokio::spawn(commit_loop(
                stages_rx,
                store.clone(),
                settings.rules.clone(),
                metrics.clone(),
                commits_tx.clone(),
                shutdown.clone(),
            )));
        }
        let batcher = tokio::spawn(batch_loop(items_rx, settings.batch.clone(), lanes));
        Ok(Ingest {
            shutdown,
            poll_thread: Some(poll_thread),
            batcher,
            committers,
        })
    }

    /// Stops polling, commits the batch in flight, leaves the group.
    pub async fn stop(mut self) {
        self.shutdown.store(true, Ordering::Release);
        if let Some(thread) = self.poll_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let _ = self.batcher.await;
        for committer in self.committers {
            let _ = committer.await;
        }
    }
}

/// Records are sent to the committer in chunks of at most this many.
const CHUNK: usize = 512;

fn poll_loop(
    consumer: BaseConsumer<IngestContext>,
    items: mpsc::Sender<Item>,
    commits: std_mpsc::Receiver<Vec<((String, i32), i64)>>,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    let mut topics: Vec<Arc<str>> = Vec::new();
    let mut chunk: Vec<Record> = Vec::with_capacity(CHUNK);
    while !shutdown.load(Ordering::Acquire) {
        while let Ok(offsets) = commits.try_recv() {
            commit_to_kafka(&consumer, &offsets);
        }
        let timeout = if chunk.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::ZERO
        };
        match consumer.poll(timeout) {
            Some(Ok(m)) => {
                let topic = match topics.iter().find(|t| t.as_ref() == m.topic()) {
                    Some(t) => t.clone(),
                    None => {
                        let t: Arc<str> = Arc::from(m.topic());
                        topics.push(t.clone());
                        t
                    }
                };
                chunk.push(Record {
                    topic,
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().map(<[u8]>::to_vec),
                });
                if chunk.len() >= CHUNK && send(&items, &mut chunk).is_err() {
                    break;
                }
            }
            Some(Err(e)) => metrics.record_kafka_error(&e),
            None => {
                if !chunk.is_empty() && send(&items, &mut chunk).is_err() {
                    break;
                }
            }
        }
    }
    if !chunk.is_empty() {
        let _ = send(&items, &mut chunk);
    }
    consumer.context().drain("shutdown");
    while let Ok(offsets) = commits.try_recv() {
        commit_to_kafka(&consumer, &offsets);
    }
    consumer.unsubscribe();
    info!("consumer stopped");
    // Dropping the consumer leaves the group; the context's sender goes with it.
}

fn send(items: &mpsc::Sender<Item>, chunk: &mut Vec<Record>) -> Result<(), ()> {
    let full = std::mem::replace(chunk, Vec::with_capacity(CHUNK));
    items.blocking_send(Item::Records(full)).map_err(|_| ())
}

/// Lets lag tools see progress; the database stays the truth, so failures only log.
fn commit_to_kafka(consumer: &BaseConsumer<IngestContext>, offsets: &[((String, i32), i64)]) {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in offsets {
        if tpl
            .add_partition_offset(topic, *partition, Offset::Offset(*next))
            .is_err()
        {
            return;
        }
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        // RebalanceInProgress and friends: harmless, the next batch commits again.
        debug!(error = %e, "kafka offset commit skipped");
    }
}

/// What the batcher hands the committer: decoded batches, and drain markers in between.
enum Stage {
    Batch(PreparedBatch),
    /// Everything before this marker is committed: acknowledge.
    Drain(std_mpsc::Sender<()>),
}

/// Forms batches (`batch.max_events` or `batch.max_wait`), decodes them and splits them over
/// the commit lanes by partition. It runs as a task of its own, so the next batch is read and
/// decoded while the lanes write the previous one (each lane's channel holds one batch ahead).
async fn batch_loop(
    mut items: mpsc::Receiver<Item>,
    batch: crate::config::BatchSettings,
    lanes: Vec<mpsc::Sender<Stage>>,
) {
    let stages = Lanes(lanes);
    let mut records: Vec<Record> = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let item = match deadline {
            Some(at) => tokio::select! {
                biased;
                item = items.recv() => item,
                _ = tokio::time::sleep_until(at) => {
                    hand_over(&mut records, &stages).await;
                    deadline = None;
                    continue;
                }
            },
            None => items.recv().await,
        };
        match item {
            None => {
                hand_over(&mut records, &stages).await;
                break;
            }
            Some(Item::Records(chunk)) => {
                if records.is_empty() {
                    deadline = Some(tokio::time::Instant::now() + batch.max_wait);
                }
                records.extend(chunk);
                if records.len() >= batch.max_events {
                    hand_over(&mut records, &stages).await;
                    deadline = None;
                }
            }
            Some(Item::Drain(ack)) => {
                hand_over(&mut records, &stages).await;
                deadline = None;
                stages.drain().await;
                let _ = ack.send(());
            }
        }
    }
}

/// The commit lanes: partition `p` is committed by lane `p % lanes`, so a partition's batches
/// stay in order while lanes of different partitions commit at the same time.
struct Lanes(Vec<mpsc::Sender<Stage>>);

impl Lanes {
    /// Waits until every lane has committed what it was handed before.
    async fn drain(&self) {
        let mut acks = Vec::with_capacity(self.0.len());
        for lane in &self.0 {
            let (tx, rx) = std_mpsc::channel();
            if lane.send(Stage::Drain(tx)).await.is_ok() {
                acks.push(rx);
            }
        }
        let _ = tokio::task::spawn_blocking(move || {
            for ack in acks {
                let _ = ack.recv();
            }
        })
        .await;
    }
}

/// Decodes the records and queues them for the lanes.
async fn hand_over(records: &mut Vec<Record>, lanes: &Lanes) {
    if records.is_empty() {
        return;
    }
    let prepared = prepare(std::mem::take(records));
    for (lane, part) in lanes.0.iter().zip(prepared.split(lanes.0.len())) {
        if part.is_empty() {
            continue;
        }
        if lane.send(Stage::Batch(part)).await.is_err() {
            warn!("a commit lane stopped; its records will be read again at the next start");
        }
    }
}

/// Commits the decoded batches one at a time, in order.
async fn commit_loop<S: Store>(
    mut stages: mpsc::Receiver<Stage>,
    store: S,
    rules: Rules,
    metrics: Arc<Metrics>,
    commits: std_mpsc::Sender<Vec<((String, i32), i64)>>,
    stop: Arc<AtomicBool>,
) {
    while let Some(stage) = stages.recv().await {
        match stage {
            Stage::Batch(prepared) => {
                commit(&prepared, &store, &rules, &metrics, &commits, &stop).await;
            }
            Stage::Drain(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

async fn commit<S: Store>(
    prepared: &PreparedBatch,
    store: &S,
    rules: &Rules,
    metrics: &Metrics,
    commits: &std_mpsc::Sender<Vec<((String, i32), i64)>>,
    stop: &AtomicBool,
) {
    let offsets: Vec<String> = prepared
        .next_offsets
        .iter()
        .map(|((t, p), n)| format!("{t}/{p}@{n}"))
        .collect();
    let span = info_span!("batch", records = prepared.len(), next_offsets = ?offsets);
    let mut attempt = 0u32;
    let mut delay = Duration::from_millis(100);
    async {
        loop {
            attempt += 1;
            let started = Instant::now();
            match store.commit_batch(prepared, rules).await {
                Ok(report) => {
                    metrics.record_batch(&report, started.elapsed());
                    let next = report
                        .next_offsets
                        .iter()
                        .map(|((t, p), n)| ((t.to_string(), *p), *n))
                        .collect();
                    let _ = commits.send(next);
                    return;
                }
                Err(e) => {
                    metrics.record_batch_failure(&e, attempt);
                    if stop.load(Ordering::Acquire) {
                        error!(error = %e, "giving up on the batch at shutdown; it will be read again at the next start");
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
    .instrument(span)
    .await
}
