//! Settings: built-in defaults < an optional file (`--config`) < `PERFECT_ORDER__*` env vars.
//!
//! Raw values are deserialized by the `config` crate, then [`Settings::load`] validates them
//! into typed values; every error names the key to fix.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, TimeDelta};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::domain::hours::BusinessHours;
use crate::domain::Rules;

/// The prefix of environment overrides: `PERFECT_ORDER__KAFKA__BROKERS=...`.
pub const ENV_PREFIX: &str = "PERFECT_ORDER";

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read configuration: {0}")]
    Read(#[from] config::ConfigError),
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> Error {
    Error::Invalid {
        key,
        problem: problem.into(),
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawSettings {
    kafka: RawKafka,
    database: RawDatabase,
    batch: RawBatch,
    rules: RawRules,
    http: RawHttp,
    watch: RawWatch,
    log: RawLog,
    decode: RawDecode,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct RawKafka {
    brokers: String,
    group_id: String,
    topics: Vec<String>,
    entity_topics: Vec<String>,
    properties: BTreeMap<String, serde_json::Value>,
    drain_timeout: String,
    statistics_interval: String,
    broker_silence: String,
    check_copartitioning: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct RawDatabase {
    url: String,
    max_connections: u32,
    migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct RawBatch {
    max_events: usize,
    max_wait: String,
    projection_cache: usize,
    /// `None`: one lane per core (see [`default_lanes`]).
    lanes: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct RawRules {
    timezone: String,
    confirmation_sla: String,
    delivery_tolerance: String,
    claim_window: String,
    pending_horizon: String,
    smiley_min_rating: i64,
    review_answer_sla: String,
    team_size: u32,
    business_hours: Option<RawBusinessHours>,
}

/// `rules.business_hours`: each weekday's opening hours (`08:00-22:00`, several separated by
/// commas or given as a list; a day left out is closed), directly or under `weekly`, and the
/// closed dates. Days may be named `mon` or `monday`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawBusinessHours {
    #[serde(alias = "closed_dates")]
    closed: Vec<String>,
    /// Every other key: a weekday with its hours, or `weekly` with the weekdays under it
    /// (checked by name in [`Settings::validate_business_hours`]).
    #[serde(flatten)]
    days: BTreeMap<String, DayEntry>,
}

/// A key of `rules.business_hours` besides `closed`: a day's hours, or `weekly`'s days.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DayEntry {
    Hours(DayHours),
    Week(BTreeMap<String, DayHours>),
}

/// One day's hours: `08:00-22:00`, `08:00-13:00,14:00-22:00`, or a list of intervals.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DayHours {
    Text(String),
    List(Vec<String>),
}

impl DayHours {
    fn text(self) -> String {
        match self {
            DayHours::Text(t) => t,
            DayHours::List(l) => l.join(","),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct RawHttp {
    listen: String,
    header_timeout: String,
    max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct RawDecode {
    max_record_bytes: usize,
    earliest_time: String,
    max_future: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct RawWatch {
    interval: String,
    team_labels: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct RawLog {
    format: LogFormat,
    level: String,
}

/// The built-in `database.url`; `demo` uses its own database when this one is in force.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/perfect_order";

impl Default for RawKafka {
    fn default() -> Self {
        RawKafka {
            brokers: "127.0.0.1:9092".into(),
            group_id: "perfect-order".into(),
            topics: vec!["shop.orders".into()],
            entity_topics: Vec::new(),
            properties: BTreeMap::new(),
            drain_timeout: "10s".into(),
            statistics_interval: "5s".into(),
            broker_silence: "30s".into(),
            check_copartitioning: true,
        }
    }
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            url: DEFAULT_DATABASE_URL.into(),
            max_connections: 8,
            migrate_on_start: true,
        }
    }
}

impl Default for RawBatch {
    fn default() -> Self {
        RawBatch {
            max_events: 3500,
            max_wait: "500ms".into(),
            projection_cache: 100_000,
            lanes: None,
        }
    }
}

impl Default for RawRules {
    fn default() -> Self {
        RawRules {
            timezone: "Europe/Moscow".into(),
            confirmation_sla: "30m".into(),
            delivery_tolerance: "0s".into(),
            claim_window: "14d".into(),
            pending_horizon: "24h".into(),
            smiley_min_rating: 4,
            review_answer_sla: "24h".into(),
            team_size: 10,
            business_hours: None,
        }
    }
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: "127.0.0.1:9187".into(),
            header_timeout: "10s".into(),
            max_connections: 512,
        }
    }
}

impl Default for RawDecode {
    fn default() -> Self {
        RawDecode {
            max_record_bytes: 1 << 20,
            earliest_time: "2000-01-01T00:00:00Z".into(),
            max_future: "100years".into(),
        }
    }
}

impl Default for RawWatch {
    fn default() -> Self {
        RawWatch {
            interval: "10s".into(),
            team_labels: 20,
        }
    }
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Kafka consumer settings.
#[derive(Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub group_id: String,
    /// Order-scoped topics; all must be co-partitioned (same count, keyed by order id).
    pub topics: Vec<String>,
    /// Topics of contract-v2 entity events keyed by their own ids (reviews, couriers, spend,
    /// leads): consumed too, exempt from the co-partitioning check.
    pub entity_topics: Vec<String>,
    /// Passed through to librdkafka verbatim (`security.protocol`, `sasl.*`, `ssl.*`, ...).
    pub properties: BTreeMap<String, String>,
    /// How long a revocation or shutdown waits for the batch in flight to commit.
    pub drain_timeout: Duration,
    /// librdkafka statistics interval: how often consumer lag is refreshed.
    pub statistics_interval: Duration,
    /// `/readyz` fails when no broker has answered for this long.
    pub broker_silence: Duration,
    /// Refuse to start when topics differ in partition count.
    pub check_copartitioning: bool,
}

/// PostgreSQL settings.
#[derive(Clone)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/db?sslmode=require`; the password never reaches logs.
    pub url: String,
    pub max_connections: u32,
    pub migrate_on_start: bool,
}

/// Batch bounds: a batch commits at `max_events` or after `max_wait`, whichever comes first.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    pub max_events: usize,
    pub max_wait: Duration,
    /// Unfinished order projections kept in memory between batches (0: off; PostgreSQL).
    pub projection_cache: usize,
    /// Committers working side by side on disjoint partitions (1 on SQLite, which has one
    /// writer).
    pub lanes: usize,
}

/// The commit lanes a database at `url` gets: one on SQLite, which has a single writer;
/// `lanes` otherwise.
fn lanes_for(url: &str, lanes: usize) -> usize {
    if crate::store::Backend::of(url) == Some(crate::store::Backend::Sqlite) {
        1
    } else {
        lanes
    }
}

/// The commit lanes when `batch.lanes` is not set: one per core, at least 2 (so a lane's
/// fold overlaps another's commit) and at most 8. Each lane is a database session doing
/// work on the same machine's cores: more lanes than cores only wait on each other's row
/// locks (measured on 2 cores: 2 lanes ingest 3-6 % more than 4, with a lower p99 commit).
pub fn default_lanes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

/// What a record must keep to be decoded (beyond it, it is rejected with a reason).
#[derive(Debug, Clone)]
pub struct DecodeSettings {
    /// Larger record values are rejected as `too_large`, their bytes kept.
    pub max_record_bytes: usize,
    /// Event times before this are rejected as `bad_time`.
    pub earliest_time: chrono::DateTime<chrono::Utc>,
    /// Event times further than this after the wall clock are rejected as `bad_time`.
    pub max_future: Duration,
}

impl DecodeSettings {
    /// The decoder's bounds at wall-clock `now`.
    pub fn limits(&self, now: chrono::DateTime<chrono::Utc>) -> crate::domain::Limits {
        let latest = TimeDelta::from_std(self.max_future)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        crate::domain::Limits {
            max_record_bytes: self.max_record_bytes,
            earliest: self.earliest_time,
            latest,
        }
    }
}

/// The HTTP server's guards against slow or too many clients.
#[derive(Debug, Clone, Copy)]
pub struct HttpGuards {
    /// A connection that has not sent a complete request head within this is closed.
    pub header_timeout: Duration,
    /// Open connections at most; beyond it the oldest one still sending its head is closed.
    pub max_connections: usize,
}

/// Validated settings of the whole service.
#[derive(Clone)]
pub struct Settings {
    pub decode: DecodeSettings,
    pub http_guards: HttpGuards,
    pub kafka: KafkaSettings,
    pub database: DatabaseSettings,
    pub batch: BatchSettings,
    pub rules: Rules,
    pub http_listen: SocketAddr,
    /// How often the shop-wide gauges (SLA watch, rolling PO ratios) are recomputed.
    pub watch_interval: Duration,
    /// At most this many teams get their own `team` label on the friendliness gauge; the
    /// rest are summed under `other`.
    pub team_labels: usize,
    pub log_format: LogFormat,
    pub log_level: String,
}

fn duration(key: &'static str, raw: &str) -> Result<Duration, Error> {
    humantime::parse_duration(raw.trim()).map_err(|e| {
        invalid(
            key,
            format!("`{raw}` is not a duration ({e}); write it like 30m, 500ms, 24h or 14d"),
        )
    })
}

fn positive(key: &'static str, raw: &str) -> Result<Duration, Error> {
    let d = duration(key, raw)?;
    if d.is_zero() {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(d)
}

/// A positive duration of whole seconds (a figure kept in whole seconds compares against it
/// exactly).
fn whole_seconds(key: &'static str, raw: &str) -> Result<Duration, Error> {
    let d = positive(key, raw)?;
    if d.subsec_nanos() != 0 {
        return Err(invalid(
            key,
            format!("`{raw}` is not a whole number of seconds; write it like 90s, 30m or 24h"),
        ));
    }
    Ok(d)
}

fn delta(key: &'static str, d: Duration) -> Result<TimeDelta, Error> {
    TimeDelta::from_std(d).map_err(|_| invalid(key, "is too large"))
}

/// Flattens nested maps (`{"security": {"protocol": "SSL"}}`, as env vars produce them) to
/// librdkafka's dotted names (`security.protocol`).
fn flatten_properties(
    prefix: &str,
    value: &serde_json::Value,
    out: &mut BTreeMap<String, String>,
) -> Result<(), Error> {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_properties(&key, v, out)?;
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        serde_json::Value::Bool(b) => {
            out.insert(prefix.to_owned(), b.to_string());
        }
        serde_json::Value::Number(n) => {
            out.insert(prefix.to_owned(), n.to_string());
        }
        other => {
            return Err(invalid(
                "kafka.properties",
                format!("`{prefix}` must be a string, number or boolean, not {other}"),
            ))
        }
    }
    Ok(())
}

impl Settings {
    /// Loads defaults, then `file` if given, then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Settings, Error> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (tests pass their own).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, Error> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            builder = builder.add_source(config::File::from(path));
        }
        let vars: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("kafka.topics")
                .with_list_parse_key("kafka.entity_topics")
                .with_list_parse_key("rules.business_hours.closed")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let raw: RawSettings = builder.build()?.try_deserialize()?;
        Self::validate(raw)
    }

    /// Checks every section and builds the settings; each error names its key.
    fn validate(raw: RawSettings) -> Result<Settings, Error> {
        let kafka = Self::validate_kafka(raw.kafka)?;
        let database = Self::validate_database(raw.database)?;
        let batch = Self::validate_batch(raw.batch, &database.url)?;
        let rules = Self::validate_rules(raw.rules)?;
        let (http_listen, http_guards) = Self::validate_http(&raw.http)?;
        if raw.log.level.trim().is_empty() {
            return Err(invalid(
                "log.level",
                "is empty (e.g. info, debug, perfect_order=debug)",
            ));
        }
        let decode = Self::validate_decode(raw.decode)?;
        Ok(Settings {
            decode,
            http_guards,
            kafka,
            database,
            batch,
            rules,
            http_listen,
            watch_interval: positive("watch.interval", &raw.watch.interval)?,
            team_labels: raw.watch.team_labels,
            log_format: raw.log.format,
            log_level: raw.log.level,
        })
    }

    /// `kafka.*`: brokers, group, topics, client properties and the timing settings.
    fn validate_kafka(k: RawKafka) -> Result<KafkaSettings, Error> {
        if k.brokers.trim().is_empty() {
            return Err(invalid(
                "kafka.brokers",
                "is empty: set host:port[,host:port] (env PERFECT_ORDER__KAFKA__BROKERS)",
            ));
        }
        if k.group_id.trim().is_empty() {
            return Err(invalid("kafka.group_id", "is empty"));
        }
        let topics: Vec<String> = k
            .topics
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if topics.is_empty() {
            return Err(invalid(
                "kafka.topics",
                "is empty: name at least one topic (env PERFECT_ORDER__KAFKA__TOPICS=a,b)",
            ));
        }
        let entity_topics: Vec<String> = k
            .entity_topics
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if let Some(both) = entity_topics.iter().find(|t| topics.contains(t)) {
            return Err(invalid(
                "kafka.entity_topics",
                format!("`{both}` is also in kafka.topics; name each topic in one list"),
            ));
        }
        let mut properties = BTreeMap::new();
        for (name, value) in &k.properties {
            flatten_properties(name, value, &mut properties)?;
        }
        for reserved in ["group.id", "bootstrap.servers", "enable.auto.commit"] {
            if properties.contains_key(reserved) {
                return Err(invalid(
                    "kafka.properties",
                    format!("`{reserved}` is managed by perfect-order; use kafka.brokers / kafka.group_id"),
                ));
            }
        }
        let kafka = KafkaSettings {
            brokers: k.brokers.trim().to_owned(),
            group_id: k.group_id.trim().to_owned(),
            topics,
            entity_topics,
            properties,
            drain_timeout: positive("kafka.drain_timeout", &k.drain_timeout)?,
            statistics_interval: positive("kafka.statistics_interval", &k.statistics_interval)?,
            broker_silence: positive("kafka.broker_silence", &k.broker_silence)?,
            check_copartitioning: k.check_copartitioning,
        };
        if kafka.broker_silence < 2 * kafka.statistics_interval {
            return Err(invalid(
                "kafka.broker_silence",
                format!(
                    "must be at least twice kafka.statistics_interval ({:?}): brokers' answers are seen through librdkafka's statistics",
                    kafka.statistics_interval
                ),
            ));
        }
        Ok(kafka)
    }

    /// `database.*`: a URL of a known store and a pool size.
    fn validate_database(d: RawDatabase) -> Result<DatabaseSettings, Error> {
        if crate::store::Backend::of(&d.url).is_none() {
            return Err(invalid(
                "database.url",
                "must be a postgres:// URL (e.g. postgres://user@host:5432/db?sslmode=require) \
                 or a sqlite:// file (e.g. sqlite://./perfect-order.db)",
            ));
        }
        if d.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        Ok(DatabaseSettings {
            url: d.url,
            max_connections: d.max_connections,
            migrate_on_start: d.migrate_on_start,
        })
    }

    /// `batch.*`; SQLite, with its one writer, gets one commit lane.
    fn validate_batch(b: RawBatch, url: &str) -> Result<BatchSettings, Error> {
        if b.max_events == 0 {
            return Err(invalid("batch.max_events", "must be at least 1"));
        }
        let lanes = b.lanes.unwrap_or_else(default_lanes);
        if !(1..=64).contains(&lanes) {
            return Err(invalid("batch.lanes", "must be between 1 and 64"));
        }
        Ok(BatchSettings {
            max_events: b.max_events,
            max_wait: positive("batch.max_wait", &b.max_wait)?,
            projection_cache: b.projection_cache,
            lanes: lanes_for(url, lanes),
        })
    }

    /// `rules.*`: the numbers of the perfect-order rules and the shop's time zone.
    fn validate_rules(r: RawRules) -> Result<Rules, Error> {
        let timezone: Tz = r.timezone.trim().parse().map_err(|_| {
            invalid(
                "rules.timezone",
                format!(
                    "`{}` is not an IANA time zone (e.g. Europe/Moscow, UTC)",
                    r.timezone
                ),
            )
        })?;
        Ok(Rules {
            confirmation_sla: delta(
                "rules.confirmation_sla",
                positive("rules.confirmation_sla", &r.confirmation_sla)?,
            )?,
            delivery_tolerance: delta(
                "rules.delivery_tolerance",
                duration("rules.delivery_tolerance", &r.delivery_tolerance)?,
            )?,
            claim_window: delta(
                "rules.claim_window",
                duration("rules.claim_window", &r.claim_window)?,
            )?,
            pending_horizon: delta(
                "rules.pending_horizon",
                positive("rules.pending_horizon", &r.pending_horizon)?,
            )?,
            timezone,
            smiley_min_rating: match u8::try_from(r.smiley_min_rating) {
                Ok(v @ 1..=5) => v,
                _ => {
                    return Err(invalid(
                        "rules.smiley_min_rating",
                        format!("{} is not a rating 1..5", r.smiley_min_rating),
                    ))
                }
            },
            review_answer_sla: delta(
                "rules.review_answer_sla",
                whole_seconds("rules.review_answer_sla", &r.review_answer_sla)?,
            )?,
            team_size: if r.team_size == 0 {
                return Err(invalid("rules.team_size", "must be at least 1"));
            } else {
                r.team_size
            },
            business_hours: r
                .business_hours
                .map(Self::validate_business_hours)
                .transpose()?,
        })
    }

    /// `rules.business_hours.*`: every weekday's intervals and the closed dates, each error
    /// naming its key.
    fn validate_business_hours(raw: RawBusinessHours) -> Result<BusinessHours, Error> {
        const KEYS: [&str; 7] = [
            "rules.business_hours.mon",
            "rules.business_hours.tue",
            "rules.business_hours.wed",
            "rules.business_hours.thu",
            "rules.business_hours.fri",
            "rules.business_hours.sat",
            "rules.business_hours.sun",
        ];
        // Each weekday once, named short or in full, directly or under `weekly`.
        let mut days: [Option<DayHours>; 7] = Default::default();
        let mut put = |name: &str, hours: DayHours| -> Result<(), Error> {
            let i = crate::domain::hours::weekday(name).ok_or_else(|| {
                invalid(
                    "rules.business_hours",
                    format!(
                        "`{name}` is not a weekday (mon … sun or monday … sunday), `weekly` \
                         or `closed`"
                    ),
                )
            })?;
            if days[i].replace(hours).is_some() {
                return Err(invalid(
                    KEYS[i],
                    "given twice (directly and under `weekly`?)",
                ));
            }
            Ok(())
        };
        for (name, entry) in raw.days {
            match entry {
                DayEntry::Week(week) if name == "weekly" => {
                    for (day, hours) in week {
                        put(&day, hours)?;
                    }
                }
                DayEntry::Hours(hours) => put(&name, hours)?,
                DayEntry::Week(_) => {
                    return Err(invalid(
                        "rules.business_hours",
                        format!(
                            "`{name}` takes hours like 08:00-22:00 (a map goes under `weekly`)"
                        ),
                    ))
                }
            }
        }
        let mut hours = BusinessHours::default();
        for ((slot, key), day) in hours.week.iter_mut().zip(KEYS).zip(days) {
            if let Some(day) = day {
                *slot = BusinessHours::parse_day(&day.text()).map_err(|e| invalid(key, e))?;
            }
        }
        if hours.week.iter().all(Vec::is_empty) {
            return Err(invalid(
                "rules.business_hours",
                "no day has opening hours: give them per weekday (mon: 08:00-22:00, …), or \
                 leave the section out for a shop that is always open",
            ));
        }
        for date in raw.closed {
            let day = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
                invalid(
                    "rules.business_hours.closed",
                    format!("`{date}` is not a date YYYY-MM-DD"),
                )
            })?;
            hours.closed.insert(day);
        }
        Ok(hours)
    }

    /// `http.*`: the listen address and the guards against slow or too many clients.
    fn validate_http(h: &RawHttp) -> Result<(SocketAddr, HttpGuards), Error> {
        let http_listen: SocketAddr = h.listen.trim().parse().map_err(|_| {
            invalid(
                "http.listen",
                format!("`{}` is not an address such as 127.0.0.1:9187", h.listen),
            )
        })?;
        if h.max_connections < 8 {
            return Err(invalid("http.max_connections", "must be at least 8"));
        }
        let http_guards = HttpGuards {
            header_timeout: positive("http.header_timeout", &h.header_timeout)?,
            max_connections: h.max_connections,
        };
        Ok((http_listen, http_guards))
    }

    /// `decode.*`: the decoder's bounds.
    fn validate_decode(dec: RawDecode) -> Result<DecodeSettings, Error> {
        if dec.max_record_bytes < 1024 {
            return Err(invalid(
                "decode.max_record_bytes",
                "must be at least 1024 (a contract event is a few hundred bytes)",
            ));
        }
        Ok(DecodeSettings {
            max_record_bytes: dec.max_record_bytes,
            earliest_time: chrono::DateTime::parse_from_rfc3339(dec.earliest_time.trim())
                .map_err(|e| {
                    invalid(
                        "decode.earliest_time",
                        format!(
                            "`{}` is not an RFC 3339 instant ({e}), e.g. 2000-01-01T00:00:00Z",
                            dec.earliest_time
                        ),
                    )
                })?
                .to_utc(),
            max_future: positive("decode.max_future", &dec.max_future)?,
        })
    }

    /// Points the settings at another database, with what that backend implies (one commit
    /// lane on SQLite, which has a single writer).
    pub fn use_database(&mut self, url: String) {
        self.batch.lanes = lanes_for(&url, self.batch.lanes);
        self.database.url = url;
    }

    /// The database URL with any password replaced, safe for logs.
    pub fn database_url_redacted(&self) -> String {
        crate::store::url::redact_url(&self.database.url)
    }
}

/// Whether a librdkafka property holds a secret (its value never reaches logs).
pub fn is_secret_property(name: &str) -> bool {
    ["password", "secret", "key", "token", "jaas"]
        .iter()
        .any(|s| name.contains(s))
}

impl Settings {
    /// The settings as one readable line of `key=value` pairs, named as in the
    /// configuration file and written as it takes them (durations like `30m`, `1day`), with
    /// the database password and the secret Kafka properties masked: what `run` says at its
    /// start.
    pub fn summary(&self) -> String {
        let time = |d: Duration| humantime::format_duration(d).to_string();
        let delta = |d: TimeDelta| d.to_std().map_or_else(|_| d.to_string(), time);
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                v.join(",")
            }
        };
        let r = &self.rules;
        let mut pairs: Vec<(String, String)> = vec![
            ("kafka.brokers".into(), self.kafka.brokers.clone()),
            ("kafka.group_id".into(), self.kafka.group_id.clone()),
            ("kafka.topics".into(), list(&self.kafka.topics)),
            (
                "kafka.entity_topics".into(),
                list(&self.kafka.entity_topics),
            ),
        ];
        for (k, v) in &self.kafka.properties {
            let shown = if is_secret_property(k) {
                "***"
            } else {
                v.as_str()
            };
            pairs.push((format!("kafka.properties.{k}"), shown.to_owned()));
        }
        pairs.extend([
            ("kafka.drain_timeout".into(), time(self.kafka.drain_timeout)),
            (
                "kafka.broker_silence".into(),
                time(self.kafka.broker_silence),
            ),
            ("database.url".into(), self.database_url_redacted()),
            (
                "database.max_connections".into(),
                self.database.max_connections.to_string(),
            ),
            ("batch.max_events".into(), self.batch.max_events.to_string()),
            ("batch.max_wait".into(), time(self.batch.max_wait)),
            ("batch.lanes".into(), self.batch.lanes.to_string()),
            (
                "batch.projection_cache".into(),
                self.batch.projection_cache.to_string(),
            ),
            ("rules.timezone".into(), r.timezone.name().to_owned()),
            ("rules.confirmation_sla".into(), delta(r.confirmation_sla)),
            (
                "rules.delivery_tolerance".into(),
                delta(r.delivery_tolerance),
            ),
            ("rules.claim_window".into(), delta(r.claim_window)),
            ("rules.pending_horizon".into(), delta(r.pending_horizon)),
            ("rules.review_answer_sla".into(), delta(r.review_answer_sla)),
            (
                "rules.smiley_min_rating".into(),
                r.smiley_min_rating.to_string(),
            ),
            ("rules.team_size".into(), r.team_size.to_string()),
            (
                "rules.business_hours".into(),
                r.business_hours
                    .as_ref()
                    .map_or_else(|| "always open".to_owned(), BusinessHours::describe),
            ),
            ("http.listen".into(), self.http_listen.to_string()),
            (
                "http.header_timeout".into(),
                time(self.http_guards.header_timeout),
            ),
            (
                "http.max_connections".into(),
                self.http_guards.max_connections.to_string(),
            ),
            (
                "decode.max_record_bytes".into(),
                self.decode.max_record_bytes.to_string(),
            ),
            (
                "decode.earliest_time".into(),
                self.decode.earliest_time.to_rfc3339(),
            ),
            ("decode.max_future".into(), time(self.decode.max_future)),
            ("watch.interval".into(), time(self.watch_interval)),
            ("watch.team_labels".into(), self.team_labels.to_string()),
        ]);
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        match Settings::load_from(None, env(pairs)) {
            Ok(_) => panic!("expected a configuration error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_follow_the_domain_rules() {
        let s = Settings::load_from(None, env(&[])).expect("defaults are valid");
        assert_eq!(s.rules, Rules::default());
        assert_eq!(s.http_listen.ip().to_string(), "127.0.0.1");
    }

    #[test]
    fn environment_overrides_nested_keys_and_lists() {
        let s = Settings::load_from(
            None,
            env(&[
                ("PERFECT_ORDER__KAFKA__BROKERS", "k1:9092,k2:9092"),
                ("PERFECT_ORDER__KAFKA__TOPICS", "orders,claims"),
                ("PERFECT_ORDER__RULES__CONFIRMATION_SLA", "45m"),
                ("PERFECT_ORDER__BATCH__MAX_EVENTS", "100"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.kafka.brokers, "k1:9092,k2:9092");
        assert_eq!(s.kafka.topics, vec!["orders", "claims"]);
        assert_eq!(s.rules.confirmation_sla, TimeDelta::minutes(45));
        assert_eq!(s.batch.max_events, 100);
    }

    #[test]
    fn commit_lanes_default_to_one_per_core_and_a_set_value_wins() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let s = Settings::load_from(None, env(&[])).expect("defaults are valid");
        assert_eq!(s.batch.lanes, cores.clamp(2, 8));
        let s =
            Settings::load_from(None, env(&[("PERFECT_ORDER__BATCH__LANES", "5")])).expect("valid");
        assert_eq!(s.batch.lanes, 5);
        let error = error_of(&[("PERFECT_ORDER__BATCH__LANES", "0")]);
        assert!(error.contains("batch.lanes"), "{error}");
    }

    #[test]
    fn a_sqlite_database_set_after_loading_gets_one_commit_lane() {
        let mut s =
            Settings::load_from(None, env(&[("PERFECT_ORDER__BATCH__LANES", "3")])).expect("valid");
        s.use_database("sqlite:///tmp/shop.db".into());
        assert_eq!(s.batch.lanes, 1);
        assert!(s.summary().contains("batch.lanes=1"), "{}", s.summary());
    }

    #[test]
    fn contract_v2_settings_are_read_and_a_bad_one_names_its_key() {
        let s = Settings::load_from(
            None,
            env(&[
                ("PERFECT_ORDER__KAFKA__ENTITY_TOPICS", "reviews,leads"),
                ("PERFECT_ORDER__RULES__SMILEY_MIN_RATING", "5"),
                ("PERFECT_ORDER__RULES__REVIEW_ANSWER_SLA", "12h"),
                ("PERFECT_ORDER__WATCH__TEAM_LABELS", "3"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.kafka.entity_topics, vec!["reviews", "leads"]);
        assert_eq!(s.rules.smiley_min_rating, 5);
        assert_eq!(s.rules.review_answer_sla, TimeDelta::hours(12));
        let e = error_of(&[("PERFECT_ORDER__RULES__REVIEW_ANSWER_SLA", "1500ms")]);
        assert!(
            e.starts_with("rules.review_answer_sla:") && e.contains("whole number of seconds"),
            "{e}"
        );
        assert_eq!(s.team_labels, 3);
        assert!(
            error_of(&[("PERFECT_ORDER__RULES__SMILEY_MIN_RATING", "6")])
                .starts_with("rules.smiley_min_rating:")
        );
        assert!(
            error_of(&[("PERFECT_ORDER__RULES__TEAM_SIZE", "0")]).starts_with("rules.team_size:")
        );
        assert!(error_of(&[
            ("PERFECT_ORDER__KAFKA__TOPICS", "orders"),
            ("PERFECT_ORDER__KAFKA__ENTITY_TOPICS", "orders"),
        ])
        .starts_with("kafka.entity_topics:"));
    }

    #[test]
    fn librdkafka_properties_pass_through_from_the_environment() {
        let s = Settings::load_from(
            None,
            env(&[
                (
                    "PERFECT_ORDER__KAFKA__PROPERTIES__SECURITY__PROTOCOL",
                    "SASL_SSL",
                ),
                (
                    "PERFECT_ORDER__KAFKA__PROPERTIES__SASL__PASSWORD",
                    "hunter2",
                ),
            ]),
        )
        .expect("valid");
        assert_eq!(s.kafka.properties["security.protocol"], "SASL_SSL");
        assert_eq!(s.kafka.properties["sasl.password"], "hunter2");
        assert!(
            !format!("{s:?}").contains("hunter2"),
            "secrets stay out of logs"
        );
    }

    /// The start-up line names each setting as the configuration does and writes its value
    /// as the configuration takes it: durations such as `30m`, not a Rust debug form.
    #[test]
    fn the_start_up_line_reads_as_the_configuration_is_written() {
        let s = Settings::load_from(
            None,
            env(&[
                ("PERFECT_ORDER__RULES__CONFIRMATION_SLA", "45m"),
                ("PERFECT_ORDER__RULES__CLAIM_WINDOW", "14d"),
                ("PERFECT_ORDER__KAFKA__TOPICS", "orders,claims"),
                (
                    "PERFECT_ORDER__KAFKA__PROPERTIES__SASL__PASSWORD",
                    "hunter2",
                ),
            ]),
        )
        .expect("valid");
        let line = s.summary();
        for pair in [
            "rules.confirmation_sla=45m",
            "rules.claim_window=14days",
            "rules.timezone=Europe/Moscow",
            "kafka.topics=orders,claims",
            "kafka.entity_topics=-",
            "kafka.properties.sasl.password=***",
            "batch.max_wait=",
        ] {
            assert!(line.contains(pair), "{pair} in {line}");
        }
        for debug_form in ["TimeDelta", "secs:", "nanos", "{", "hunter2"] {
            assert!(!line.contains(debug_form), "{debug_form} in {line}");
        }
        assert_eq!(format!("{s:?}"), line);
    }

    #[test]
    fn the_robustness_settings_are_read_checked_and_named_in_the_start_up_line() {
        let s = Settings::load_from(
            None,
            env(&[
                ("PERFECT_ORDER__DECODE__MAX_RECORD_BYTES", "65536"),
                (
                    "PERFECT_ORDER__DECODE__EARLIEST_TIME",
                    "2010-01-01T00:00:00Z",
                ),
                ("PERFECT_ORDER__DECODE__MAX_FUTURE", "365d"),
                ("PERFECT_ORDER__KAFKA__BROKER_SILENCE", "1m"),
                ("PERFECT_ORDER__HTTP__HEADER_TIMEOUT", "5s"),
                ("PERFECT_ORDER__HTTP__MAX_CONNECTIONS", "64"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.decode.max_record_bytes, 65536);
        assert_eq!(s.decode.max_future, Duration::from_secs(365 * 86400));
        assert_eq!(s.kafka.broker_silence, Duration::from_secs(60));
        assert_eq!(s.http_guards.max_connections, 64);
        let now = chrono::Utc::now();
        let limits = s.decode.limits(now);
        assert_eq!(limits.earliest.to_rfc3339(), "2010-01-01T00:00:00+00:00");
        assert_eq!(limits.latest - now, TimeDelta::days(365));
        let shown = format!("{s:?}");
        for key in [
            "decode.max_record_bytes",
            "kafka.broker_silence",
            "http.header_timeout",
        ] {
            assert!(shown.contains(key), "{key} in {shown}");
        }
        for (key, value, named) in [
            (
                "PERFECT_ORDER__DECODE__MAX_RECORD_BYTES",
                "10",
                "decode.max_record_bytes:",
            ),
            (
                "PERFECT_ORDER__DECODE__EARLIEST_TIME",
                "last year",
                "decode.earliest_time:",
            ),
            (
                "PERFECT_ORDER__KAFKA__BROKER_SILENCE",
                "1s",
                "kafka.broker_silence:",
            ),
            (
                "PERFECT_ORDER__HTTP__MAX_CONNECTIONS",
                "2",
                "http.max_connections:",
            ),
        ] {
            let e = error_of(&[(key, value)]);
            assert!(e.starts_with(named), "{e}");
        }
    }

    #[test]
    fn business_hours_come_per_weekday_with_closed_dates_and_a_bad_day_names_its_key() {
        let s = Settings::load_from(
            None,
            env(&[
                ("PERFECT_ORDER__RULES__BUSINESS_HOURS__MON", "08:00-22:00"),
                (
                    "PERFECT_ORDER__RULES__BUSINESS_HOURS__SAT",
                    "10:00-14:00,15:00-18:00",
                ),
                (
                    "PERFECT_ORDER__RULES__BUSINESS_HOURS__CLOSED",
                    "2026-12-31,2027-01-01",
                ),
            ]),
        )
        .expect("valid hours");
        let hours = s.rules.business_hours.expect("business hours");
        assert_eq!(
            hours.describe(),
            "mon 08:00-22:00; tue closed; wed closed; thu closed; fri closed; \
             sat 10:00-14:00,15:00-18:00; sun closed; closed 2026-12-31,2027-01-01"
        );
        assert!(Settings::load_from(None, env(&[]))
            .expect("defaults")
            .rules
            .business_hours
            .is_none());
        let e = error_of(&[("PERFECT_ORDER__RULES__BUSINESS_HOURS__TUE", "9-18")]);
        assert!(e.starts_with("rules.business_hours.tue:"), "{e}");
        let e = error_of(&[
            ("PERFECT_ORDER__RULES__BUSINESS_HOURS__MON", "08:00-22:00"),
            ("PERFECT_ORDER__RULES__BUSINESS_HOURS__CLOSED", "31.12.2026"),
        ]);
        assert!(e.starts_with("rules.business_hours.closed:"), "{e}");
    }

    #[test]
    fn business_hours_read_from_a_file_as_lists_full_day_names_or_under_weekly() {
        let dir = tempfile::tempdir().expect("temp dir");
        let load = |yaml: &str| {
            let path = dir.path().join("hours.yaml");
            std::fs::write(&path, yaml).expect("write");
            Settings::load_from(Some(&path), env(&[])).map(|s| s.rules.business_hours)
        };
        let direct = load(
            "rules:\n  business_hours:\n    monday: [\"08:00-13:00\", \"14:00-22:00\"]\n    sat: 10:00-18:00\n    closed: [2026-12-31]\n",
        )
        .expect("valid")
        .expect("hours");
        let weekly = load(
            "rules:\n  business_hours:\n    weekly:\n      mon: 08:00-13:00,14:00-22:00\n      saturday: \"10:00-18:00\"\n    closed_dates: [\"2026-12-31\"]\n",
        )
        .expect("valid")
        .expect("hours");
        assert_eq!(direct, weekly);
        assert!(direct
            .describe()
            .starts_with("mon 08:00-13:00,14:00-22:00; tue closed"));
        let typo = load("rules:\n  business_hours:\n    monady: 08:00-22:00\n");
        assert!(typo.is_err_and(|e| e.to_string().contains("monady")));
    }

    #[test]
    fn a_bad_duration_names_its_key() {
        let e = error_of(&[("PERFECT_ORDER__RULES__CLAIM_WINDOW", "two weeks")]);
        assert!(e.starts_with("rules.claim_window:"), "{e}");
    }

    #[test]
    fn an_unknown_time_zone_names_its_key() {
        let e = error_of(&[("PERFECT_ORDER__RULES__TIMEZONE", "Mars/Olympus")]);
        assert!(e.starts_with("rules.timezone:"), "{e}");
    }

    #[test]
    fn empty_topics_name_their_key() {
        let e = error_of(&[("PERFECT_ORDER__KAFKA__TOPICS", "")]);
        assert!(e.starts_with("kafka.topics:"), "{e}");
    }

    #[test]
    fn a_sqlite_url_is_accepted() {
        let s = Settings::load_from(
            None,
            [(
                "PERFECT_ORDER__DATABASE__URL".to_string(),
                "sqlite://./data/po.db".to_string(),
            )],
        );
        assert_eq!(
            s.map(|s| s.database.url).ok().as_deref(),
            Some("sqlite://./data/po.db")
        );
    }

    #[test]
    fn a_non_postgres_url_names_its_key() {
        let e = error_of(&[("PERFECT_ORDER__DATABASE__URL", "mysql://x")]);
        assert!(e.starts_with("database.url:"), "{e}");
    }
}
