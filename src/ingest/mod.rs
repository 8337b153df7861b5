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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
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
    #[error("cannot start the {what}: {source} (the machine is out of threads or memory)")]
    Spawn {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the task that checks the topics and subscribes ended abnormally: {0}")]
    SubscribeTask(String),
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

/// What readiness knows from Kafka: whether this instance has joined its group (received a
/// first assignment) and when a broker last answered it.
pub struct Readiness {
    /// `kafka.broker_silence`: how long no broker may answer before the instance is not ready.
    broker_silence: Duration,
    assigned: AtomicBool,
    /// Milliseconds since the Unix epoch when a broker's count of responses last grew (0:
    /// never). librdkafka's statistics report it every `kafka.statistics_interval`.
    broker_answered_ms: AtomicI64,
    /// The responses counted by the previous statistics.
    responses: AtomicU64,
}

/// The three conditions of readiness, each true when it holds (`/readyz` and the
/// `perfect_order_ready_check` gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyChecks {
    /// The database answered a ping within a second.
    pub database: bool,
    /// A broker answered within `kafka.broker_silence`.
    pub broker: bool,
    /// The consumer has joined its group (received its first assignment).
    pub assignment: bool,
}

impl ReadyChecks {
    pub fn ready(&self) -> bool {
        self.database && self.broker && self.assignment
    }

    /// `(check label, holds)` for the gauge.
    pub fn labelled(&self) -> [(&'static str, bool); 3] {
        [
            ("database", self.database),
            ("broker", self.broker),
            ("assignment", self.assignment),
        ]
    }
}

impl Readiness {
    pub fn new(broker_silence: Duration) -> Readiness {
        Readiness {
            broker_silence,
            assigned: AtomicBool::new(false),
            broker_answered_ms: AtomicI64::new(0),
            responses: AtomicU64::new(0),
        }
    }

    /// The readiness checks at `now`, given whether the database answered.
    pub fn checks(&self, database: bool, now: chrono::DateTime<chrono::Utc>) -> ReadyChecks {
        ReadyChecks {
            database,
            broker: self.broker_answered_within(self.broker_silence, now),
            assignment: self.is_assigned(),
        }
    }

    /// `kafka.broker_silence`.
    pub fn broker_silence(&self) -> Duration {
        self.broker_silence
    }

    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Acquire)
    }

    /// Whether a broker has answered within `silence` before `now`.
    pub fn broker_answered_within(
        &self,
        silence: Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let at = self.broker_answered_ms.load(Ordering::Acquire);
        at > 0 && now.timestamp_millis() - at <= silence.as_millis() as i64
    }

    /// Notes the brokers' total count of responses; a count that grew means a broker
    /// answered (requests go out all the time: fetches, heartbeats, metadata). Answers
    /// whether one did.
    pub fn note_broker_responses(&self, total: u64, now: chrono::DateTime<chrono::Utc>) -> bool {
        let before = self.responses.swap(total, Ordering::AcqRel);
        let answered = total > before;
        if answered {
            self.broker_answered_ms
                .store(now.timestamp_millis(), Ordering::Release);
        }
        answered
    }

    /// Marks the consumer as having joined its group (tests and the first assignment).
    pub fn mark_assigned(&self) {
        self.assigned.store(true, Ordering::Release);
    }
}

/// The consumer context: rebalance handling and statistics.
pub struct IngestContext {
    items: mpsc::Sender<Item>,
    load_offsets: Box<OffsetLoader>,
    drain_timeout: Duration,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    /// Set when shutdown starts: no drain waits beyond it.
    stop_deadline: std::sync::OnceLock<Instant>,
}

impl IngestContext {
    fn drain(&self, why: &str) {
        let (ack_tx, ack_rx) = std_mpsc::channel();
        // At shutdown every drain (the shutdown's own, then the revocation that leaving the
        // group brings) shares one deadline: shutdown waits for the batch in flight once.
        let own = Instant::now() + self.drain_timeout;
        let deadline = self.stop_deadline.get().map_or(own, |stop| own.min(*stop));
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
        let responses = statistics.brokers.values().map(|b| b.rx).sum();
        let now = chrono::Utc::now();
        if self.readiness.note_broker_responses(responses, now) {
            self.metrics.record_broker_answered(now);
        }
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
                self.readiness.mark_assigned();
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

/// The consumer, with its context, once the topics are checked and subscribed to (on a
/// blocking thread: both calls wait on the broker).
async fn subscribed_consumer<S: Store + Clone>(
    settings: &Settings,
    store: S,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    items_tx: &mpsc::Sender<Item>,
) -> Result<BaseConsumer<IngestContext>, Error> {
    let runtime = tokio::runtime::Handle::current();
    let load_offsets: Box<OffsetLoader> =
        Box::new(move |partitions| runtime.block_on(store.load_offsets(&partitions)));
    let context = IngestContext {
        items: items_tx.clone(),
        load_offsets,
        drain_timeout: settings.kafka.drain_timeout,
        metrics,
        readiness,
        stop_deadline: std::sync::OnceLock::new(),
    };
    let consumer: BaseConsumer<IngestContext> = client_config(&settings.kafka)
        .create_with_context(context)
        .map_err(Error::Create)?;
    let kafka = settings.kafka.clone();
    tokio::task::spawn_blocking(move || {
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
    .map_err(|e| Error::SubscribeTask(e.to_string()))?
}

/// `lanes` commit lanes (at least one), each a task with its own clone of `lane`: the senders
/// the batcher feeds them through, and their tasks.
fn spawn_lanes<S: Store + Clone>(
    lanes: usize,
    lane: &Lane<S>,
) -> (Vec<mpsc::Sender<Stage>>, Vec<tokio::task::JoinHandle<()>>) {
    (0..lanes.max(1))
        .map(|_| {
            let (stages_tx, stages_rx) = mpsc::channel::<Stage>(1);
            (
                stages_tx,
                tokio::spawn(commit_loop(stages_rx, lane.clone())),
            )
        })
        .unzip()
}

/// A running consumer: the poll thread, the batcher and the committer.
pub struct Ingest {
    shutdown: Arc<AtomicBool>,
    drain_timeout: Duration,
    /// Tells the commit lanes when to abandon a batch still waiting at shutdown.
    abandon: watch::Sender<Option<tokio::time::Instant>>,
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
        let consumer = subscribed_consumer(
            settings,
            store.clone(),
            metrics.clone(),
            readiness,
            &items_tx,
        )
        .await?;
        info!(topics = ?settings.kafka.topics, entity_topics = ?settings.kafka.entity_topics, group = %settings.kafka.group_id, "subscribed");

        let (commits_tx, commits_rx) = std_mpsc::channel::<Vec<((String, i32), i64)>>();
        let shutdown = Arc::new(AtomicBool::new(false));
        let poll_shutdown = shutdown.clone();
        let poll_metrics = metrics.clone();
        let poll_thread = std::thread::Builder::new()
            .name("kafka-poll".into())
            .spawn(move || poll_loop(consumer, items_tx, commits_rx, poll_shutdown, poll_metrics))
            .map_err(|source| Error::Spawn {
                what: "Kafka poll thread (kafka-poll)",
                source,
            })?;
        let (abandon, abandon_rx) = watch::channel(None);
        let lane = Lane {
            store,
            rules: settings.rules.clone(),
            metrics,
            commits: commits_tx,
            stop: shutdown.clone(),
            abandon: abandon_rx,
        };
        let (lanes, committers) = spawn_lanes(settings.batch.lanes, &lane);
        let batcher = tokio::spawn(batch_loop(
            items_rx,
            settings.batch.clone(),
            settings.decode.clone(),
            lanes,
        ));
        Ok(Ingest {
            shutdown,
            drain_timeout: settings.kafka.drain_timeout,
            abandon,
            poll_thread: Some(poll_thread),
            batcher,
            committers,
        })
    }

    /// Stops polling, commits the batch in flight, leaves the group; within
    /// `kafka.drain_timeout` + [`SHUTDOWN_GRACE`]. A batch that has not committed when
    /// `kafka.drain_timeout` is over is abandoned (its transaction rolls back; its records are
    /// read again at the next start), and a consumer that cannot leave its group within the
    /// grace (a frozen broker) is left behind.
    pub async fn stop(mut self) {
        let started = tokio::time::Instant::now();
        let abandon_at = started + self.drain_timeout;
        let _ = self.abandon.send(Some(abandon_at));
        self.shutdown.store(true, Ordering::Release);
        let deadline = abandon_at + SHUTDOWN_GRACE;
        if let Some(thread) = self.poll_thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join());
            if tokio::time::timeout_at(deadline, joined).await.is_err() {
                warn!("the Kafka consumer did not close in time (is the broker answering?); stopping without it");
            }
        }
        let _ = tokio::time::timeout_at(deadline, &mut self.batcher).await;
        for committer in &mut self.committers {
            if tokio::time::timeout_at(deadline, committer).await.is_err() {
                warn!("a commit lane did not stop in time; its batch is rolled back");
            }
        }
        self.batcher.abort();
        for committer in &self.committers {
            committer.abort();
        }
        debug!(
            took_ms = started.elapsed().as_millis() as u64,
            "ingest stopped"
        );
    }
}

/// What shutdown may take beyond `kafka.drain_timeout`: closing the consumer and leaving the
/// group after the last batch.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

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
                    headers: binding_headers(&m),
                });
                if chunk.len() >= CHUNK && send(&items, &mut chunk, &shutdown).is_err() {
                    break;
                }
            }
            Some(Err(e)) => metrics.record_kafka_error(&e),
            None => {
                if !chunk.is_empty() && send(&items, &mut chunk, &shutdown).is_err() {
                    break;
                }
            }
        }
    }
    let context = consumer.context();
    let _ = context
        .stop_deadline
        .set(Instant::now() + context.drain_timeout);
    if !chunk.is_empty() {
        let _ = send(&items, &mut chunk, &shutdown);
    }
    context.drain("shutdown");
    while let Ok(offsets) = commits.try_recv() {
        commit_to_kafka(&consumer, &offsets);
    }
    consumer.unsubscribe();
    info!("consumer stopped");
    // Dropping the consumer leaves the group; the context's sender goes with it.
}

/// Hands a chunk to the batcher, waiting while its queue is full; at shutdown the chunk is
/// dropped instead (its offsets were never stored, so it is read again at the next start).
fn send(
    items: &mpsc::Sender<Item>,
    chunk: &mut Vec<Record>,
    shutdown: &AtomicBool,
) -> Result<(), ()> {
    let mut item = Item::Records(std::mem::replace(chunk, Vec::with_capacity(CHUNK)));
    loop {
        match items.try_send(item) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(()),
            Err(mpsc::error::TrySendError::Full(back)) => {
                if shutdown.load(Ordering::Acquire) {
                    return Err(());
                }
                item = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
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
    decode: crate::config::DecodeSettings,
    lanes: Vec<mpsc::Sender<Stage>>,
) {
    let stages = Lanes { lanes, decode };
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
struct Lanes {
    lanes: Vec<mpsc::Sender<Stage>>,
    decode: crate::config::DecodeSettings,
}

impl Lanes {
    /// Waits until every lane has committed what it was handed before.
    async fn drain(&self) {
        let mut acks = Vec::with_capacity(self.lanes.len());
        for lane in &self.lanes {
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
    // The plausible time range moves with the wall clock (`decode.max_future`); it is fixed
    // once per batch.
    let limits = lanes.decode.limits(chrono::Utc::now());
    let prepared = prepare(std::mem::take(records), &limits);
    for (lane, part) in lanes.lanes.iter().zip(prepared.split(lanes.lanes.len())) {
        if part.is_empty() {
            continue;
        }
        if lane.send(Stage::Batch(part)).await.is_err() {
            debug!("a commit lane stopped at shutdown; its records will be read again at the next start");
        }
    }
}

/// Commits the decoded batches one at a time, in order. A batch given up (at shutdown) ends
/// the lane: a later batch of the same partitions must never commit before it, or its offsets
/// would pass records that are neither stored nor rejected.
async fn commit_loop<S: Store>(mut stages: mpsc::Receiver<Stage>, lane: Lane<S>) {
    while let Some(stage) = stages.recv().await {
        match stage {
            Stage::Batch(prepared) => {
                if let Err(GaveUp) = lane.commit(prepared).await {
                    // Dropping the receiver refuses every later batch of this lane's
                    // partitions; they are read again at the next start.
                    return;
                }
            }
            Stage::Drain(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

/// A batch was given up at shutdown: nothing of it, and nothing after it, was stored.
struct GaveUp;

/// What a commit lane needs to commit its batches.
#[derive(Clone)]
struct Lane<S> {
    store: S,
    rules: Rules,
    metrics: Arc<Metrics>,
    commits: std_mpsc::Sender<Vec<((String, i32), i64)>>,
    stop: Arc<AtomicBool>,
    /// Set at shutdown to the instant after which a batch still waiting is abandoned.
    abandon: watch::Receiver<Option<tokio::time::Instant>>,
}

impl<S: Store> Lane<S> {
    /// Commits a batch. When the database refuses the data itself, the batch is split in
    /// halves, and the halves again, until the refused records are alone; each is then kept
    /// in `rejected_events` as `store_refused` and the rest commits, in offset order.
    /// Other failures are retried with backoff, offsets untouched, until shutdown.
    async fn commit(&self, prepared: PreparedBatch) -> Result<(), GaveUp> {
        let mut pending = std::collections::VecDeque::from([prepared]);
        while let Some(piece) = pending.pop_front() {
            match self.commit_retrying(&piece).await? {
                Ok(()) => {}
                Err(_) if piece.len() > 1 => {
                    let (first, second) = piece.bisect();
                    pending.push_front(second);
                    pending.push_front(first);
                }
                Err(refusal) => {
                    let message = refusal.to_string();
                    for entry in &piece.entries {
                        let at = entry.at();
                        warn!(topic = %at.topic, partition = at.partition, offset = at.offset, error = %message,
                            "the database refused a record; it is kept in rejected_events as store_refused");
                    }
                    let refused = piece.refused(&message);
                    match self.commit_retrying(&refused).await? {
                        Ok(()) => {}
                        // Not even the rejection can be stored: a failure of the database, not
                        // of this record. Retry it like any other until shutdown.
                        Err(e) => {
                            error!(error = %e, "cannot store a refused record in rejected_events; retrying");
                            pending.push_front(refused);
                            self.pause(Duration::from_secs(5)).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Commits one batch, retrying failures that may pass; answers a refusal of the data.
    async fn commit_retrying(
        &self,
        prepared: &PreparedBatch,
    ) -> Result<Result<(), store::Error>, GaveUp> {
        let span = info_span!("batch", records = prepared.len());
        let mut attempt = 0u32;
        let mut delay = Duration::from_millis(100);
        async {
            loop {
                attempt += 1;
                let started = Instant::now();
                let result = tokio::select! {
                    result = self.store.commit_batch(prepared, &self.rules) => result,
                    () = abandoned(self.abandon.clone()) => {
                        warn!(next_offsets = %offsets_text(prepared), "shutdown: abandoning the batch still waiting for the database; its records will be read again at the next start");
                        return Err(GaveUp);
                    }
                };
                match result {
                    Ok(report) => {
                        self.metrics.record_batch(&report, started.elapsed());
                        debug!(next_offsets = %offsets_text(prepared), "batch offsets");
                        let next = report
                            .next_offsets
                            .iter()
                            .map(|((t, p), n)| ((t.to_string(), *p), *n))
                            .collect();
                        let _ = self.commits.send(next);
                        return Ok(Ok(()));
                    }
                    Err(e) if e.is_refusal() => {
                        self.metrics.record_batch_refused(&e, prepared.len());
                        return Ok(Err(e));
                    }
                    Err(e) => {
                        self.metrics.record_batch_failure(&e, attempt);
                        if self.stop.load(Ordering::Acquire) {
                            error!(error = %e, next_offsets = %offsets_text(prepared), "giving up on the batch at shutdown; it and the batches after it will be read again at the next start");
                            return Err(GaveUp);
                        }
                        self.pause(delay).await?;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Sleeps, unless shutdown abandons the lane first.
    async fn pause(&self, delay: Duration) -> Result<(), GaveUp> {
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            () = abandoned(self.abandon.clone()) => Err(GaveUp),
        }
    }
}

/// Resolves once shutdown has set an abandon instant and it has passed.
async fn abandoned(mut abandon: watch::Receiver<Option<tokio::time::Instant>>) {
    let at = match abandon.wait_for(Option::is_some).await {
        Ok(at) => *at,
        // Dropped without `stop`: nothing abandons the lane.
        Err(_) => None,
    };
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `topic/partition@next_offset` of every partition in a batch, for logs.
fn offsets_text(prepared: &PreparedBatch) -> String {
    prepared
        .next_offsets
        .iter()
        .map(|((t, p), n)| format!("{t}/{p}@{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The headers of a message the CloudEvents Kafka binding reads (`content-type`, `ce_*`);
/// none for a structured-mode record without headers (no allocation).
fn binding_headers(
    m: &rdkafka::message::BorrowedMessage<'_>,
) -> crate::domain::contract::binding::Headers {
    use crate::domain::contract::binding::is_binding_header;
    use rdkafka::message::Headers as _;
    let Some(headers) = m.headers() else {
        return Vec::new();
    };
    headers
        .iter()
        .filter(|h| is_binding_header(h.key))
        .map(|h| {
            (
                h.key.to_owned(),
                h.value.map(<[u8]>::to_vec).unwrap_or_default(),
            )
        })
        .collect()
}
