//! Following the directory topic (docs/protocol.md §12): every process whose
//! hub pins governors reads the topic's one partition from its first record,
//! checks each version against the chain of trust ([`Chain`]), and puts the
//! newest valid version in force in its [`LiveDirectory`] once its
//! `effective_at` has come. Every verifier reads that directory for each
//! record, so a revocation applies without a restart.
//!
//! At start, [`follow`] returns only once the topic has been read to its end:
//! a process never checks a record against an older directory than the one
//! the topic already holds. A refused version changes nothing; it is logged
//! with its reason and counted in `concord_directory_refused_total{reason}`.
//!
//! Every accepted version is also kept in a local state file next to the
//! service's database. At start its versions are offered first (re-checked
//! from the pinned governors, so the file cannot add trust, and a topic that
//! lost versions cannot take the process back); when the topic's end cannot
//! be read within [`LOCAL_FALLBACK`], the process starts on them, says so in
//! `/readyz` ([`Status`]), and catches up with the topic once it can.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord_kafka::{KafkaSettings, ReadError, ReadOptions, Reader};
use concord_protocol::governance::{Chain, Governors, LiveDirectory, SignedVersion, VersionRefused};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::identity::Identity;
use crate::metrics::{Labels, Metrics};

/// Why the directory topic cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The governors file does not load.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The consumer cannot be made or assigned.
    #[error("directory topic {topic}: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What the reader said.
        #[source]
        source: ReadError,
    },
}

/// How long one attempt waits for the broker to tell the topic's end, or for a record before the end.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request for the topic's end may block.
const WATERMARK_ATTEMPT: Duration = Duration::from_secs(2);
/// How long a start with local state waits for the topic before working on that state.
pub const LOCAL_FALLBACK: Duration = Duration::from_secs(10);

/// What the directory in force is and where it came from, for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<String>>);

impl Status {
    fn set(&self, text: String) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = text;
    }

    /// One line, e.g. `directory: version 3, the topic read to its end`.
    pub fn get(&self) -> String {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The local state of accepted versions: a JSON array of the record values
/// (strings), in the order they were accepted.
#[derive(Debug, Clone)]
pub struct LocalState(PathBuf);

impl LocalState {
    /// The state kept beside a service's `database` file (`<database>.directory.json`).
    pub fn beside(database: &Path) -> Self {
        let mut name = database.as_os_str().to_owned();
        name.push(".directory.json");
        LocalState(PathBuf::from(name))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The values kept; none when there is no file. An unreadable file is
    /// logged and ignored: the topic is the source, this only a floor.
    pub fn load(&self) -> Vec<Vec<u8>> {
        let text = match std::fs::read_to_string(&self.0) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                warn!(path = %self.0.display(), error = %e, "Directory state unreadable; ignored.");
                return Vec::new();
            }
        };
        match serde_json::from_str::<Vec<String>>(&text) {
            Ok(values) => values.into_iter().map(String::into_bytes).collect(),
            Err(e) => {
                warn!(path = %self.0.display(), error = %e, "Directory state is not a JSON array of versions; ignored.");
                Vec::new()
            }
        }
    }

    /// Replaces the file with `values` (write, fsync, rename). A failure is
    /// logged: the process keeps working, only a later start loses the floor.
    fn store(&self, values: &[Vec<u8>]) {
        let texts: Vec<String> = values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect();
        let tmp = self.0.with_extension("json.tmp");
        let written = serde_json::to_vec(&texts).map_err(std::io::Error::other).and_then(|bytes| {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.0)
        });
        if let Err(e) = written {
            warn!(path = %self.0.display(), error = %e, "Directory state not written.");
        }
    }
}

struct Follower {
    consumer: Reader,
    chain: Chain,
    live: LiveDirectory,
    topic: String,
    version: Gauge,
    refused: Family<Labels, Counter>,
    /// Accepted values, as the local state keeps them.
    accepted: Vec<Vec<u8>>,
    /// Values accepted from the local state that the topic has not shown yet.
    known: HashSet<Vec<u8>>,
    state: Option<LocalState>,
    status: Status,
    /// This process's topic model version, and accepted versions naming another.
    model: u32,
    other_model: Counter,
    /// The local state's file while the process runs on it (the topic not read to its end yet).
    local_start: Option<String>,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Follower {
    /// Offers a topic record; `true` if it was accepted.
    fn offer(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, offset: i64) -> bool {
        let value = value.unwrap_or_default();
        if self.known.remove(value) {
            return false; // accepted from the local state already
        }
        match self.chain.offer(value) {
            Ok((version, effective_at)) => {
                info!(topic = %self.topic, offset, version, effective_at, "Directory version accepted.");
                self.check_model(value, version);
                self.accepted.push(value.to_vec());
                true
            }
            Err(refused) => {
                self.refused.get_or_create(&vec![("reason".to_owned(), refused.code().to_owned())]).inc();
                let key = key.map(String::from_utf8_lossy).unwrap_or_default();
                warn!(topic = %self.topic, offset, %key, reason = refused.code(), detail = %refused,
                    "Directory version refused; the version in force stays.");
                false
            }
        }
    }

    /// A version for another topic model is applied (its keys and agencies
    /// are the governors' word) but alarmed: this process's topics and rules
    /// are not the ones the version was made for.
    fn check_model(&self, value: &[u8], version: u64) {
        let Ok(signed) = serde_json::from_slice::<SignedVersion>(value) else { return };
        if signed.version.topic_model != self.model {
            self.other_model.inc();
            warn!(
                version,
                topic_model = signed.version.topic_model,
                this_model = self.model,
                "Directory version made for another topic model than this process runs; update config/topics.toml."
            );
        }
    }

    /// Offers the local state's values: accepted ones are remembered so that
    /// the topic's copies of them are not offered again (and refused as rollbacks).
    fn offer_local(&mut self, values: Vec<Vec<u8>>) {
        for value in values {
            match self.chain.offer(&value) {
                Ok(_) => {
                    self.known.insert(value.clone());
                    self.accepted.push(value);
                }
                Err(refused) => {
                    warn!(reason = refused.code(), detail = %refused, "A version in the local directory state is refused; ignored.")
                }
            }
        }
    }

    fn keep(&self) {
        if let Some(state) = &self.state {
            state.store(&self.accepted);
        }
    }

    fn apply_due(&mut self) {
        if let Some((version, directory)) = self.chain.due(now_ms()) {
            let agencies = directory.agencies().count();
            self.live.install(directory, version);
            self.version.set(version as i64);
            self.say();
            info!(version, agencies, "Directory version in force.");
        }
    }

    /// `/readyz`'s line: the version in force now and where it came from.
    fn say(&self) {
        self.status.set(match &self.local_start {
            None => format!("directory: version {}, the topic read to its end", self.live.version()),
            Some(path) => format!(
                "directory: version {} from the local state {path}; the directory topic was not reachable at start",
                self.live.version()
            ),
        });
    }

    /// Until the next record or the next waiting version's time, whichever first.
    async fn step(&mut self, shutdown: &CancellationToken) -> bool {
        let wait = match self.chain.next_due() {
            Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(wait) => {}
            message = self.consumer.next() => match message {
                Ok(m) => {
                    if self.offer(m.key.as_deref(), m.value.as_deref(), m.offset) {
                        self.keep();
                    }
                }
                Err(e) => warn!(topic = %self.topic, error = %e, "Directory consumer error; continuing."),
            },
        }
        self.apply_due();
        true
    }
}

/// A reader of the directory topic's one partition from its first record:
/// no offsets are committed, every start replays the whole chain.
fn consumer(settings: &KafkaSettings, group: &str, topic: &str) -> Result<Reader, FollowError> {
    Reader::from_beginning(settings, group, topic, 0, ReadOptions { committed_only: false, fetch_wait_ms: Some(100) })
        .map_err(|source| FollowError::Kafka { topic: topic.to_owned(), source })
}

/// Hands every record up to the topic's end at the time of the call to
/// `each` (key, value, offset). `false` if `shutdown` came first.
async fn read_to_end(
    consumer: &Reader,
    topic: &str,
    shutdown: &CancellationToken,
    mut each: impl FnMut(Option<&[u8]>, Option<&[u8]>, i64),
) -> Result<bool, FollowError> {
    // Blocks this thread briefly (one attempt at a time, so that a caller's
    // timeout can end the wait) before any work starts; a broker still coming
    // up (or slow under load) is waited for, as every consumer waits.
    let asking = std::time::Instant::now();
    let mut warned = std::time::Instant::now();
    let end = loop {
        match consumer.end_of(topic, 0, WATERMARK_ATTEMPT) {
            Ok(end) => break end,
            Err(e) if warned.elapsed() >= START_TIMEOUT => {
                warn!(topic, error = %e, waited_s = asking.elapsed().as_secs(), "Cannot learn the directory topic's end yet; retrying.");
                warned = std::time::Instant::now();
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let mut next = 0;
    while next < end {
        let message = tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            m = tokio::time::timeout(START_TIMEOUT, consumer.next()) => m,
        };
        match message {
            Ok(Ok(m)) => {
                next = m.offset + 1;
                each(m.key.as_deref(), m.value.as_deref(), m.offset);
            }
            Ok(Err(e)) => warn!(topic, error = %e, "Directory consumer error; continuing."),
            Err(_) => warn!(topic, next, end, "Still reading the directory topic to its end."),
        }
    }
    Ok(true)
}

/// One record of the directory topic and what the chain made of it.
#[derive(Debug)]
pub struct Entry {
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: String,
    /// The signed version, if the value is one.
    pub signed: Option<SignedVersion>,
    /// Accepted (number, effective_at ms) or refused, in the order of the topic.
    pub verdict: Result<(u64, i64), VersionRefused>,
}

/// Every record on `topic` with its verdict, and the chain after them: what
/// `concord directory show` prints and `publish` checks a draft against.
pub async fn history(settings: &KafkaSettings, group: &str, topic: &str, pinned: Governors) -> Result<(Chain, Vec<Entry>), FollowError> {
    let consumer = consumer(settings, group, topic)?;
    let mut chain = Chain::new(pinned);
    let mut entries = Vec::new();
    read_to_end(&consumer, topic, &CancellationToken::new(), |key, value, offset| {
        let value = value.unwrap_or_default();
        entries.push(Entry {
            offset,
            key: key.map(String::from_utf8_lossy).unwrap_or_default().into_owned(),
            signed: serde_json::from_slice(value).ok(),
            verdict: chain.offer(value),
        });
    })
    .await?;
    Ok((chain, entries))
}

/// Every record value on `topic` up to its end, in order: what a replay
/// judges the history it reads against.
pub async fn values(settings: &KafkaSettings, group: &str, topic: &str) -> Result<Vec<Vec<u8>>, FollowError> {
    let consumer = consumer(settings, group, topic)?;
    let mut values = Vec::new();
    read_to_end(&consumer, topic, &CancellationToken::new(), |_, value, _| values.push(value.unwrap_or_default().to_vec())).await?;
    Ok(values)
}

/// Reads the directory topic to its end, applies what is in effect, and keeps
/// following it until `shutdown`. With `state`, the versions kept there are
/// offered first, and when the topic's end cannot be read within
/// [`LOCAL_FALLBACK`] the process starts on them and catches up later.
/// `None` when the hub pins no governors (the directory file is all this
/// process trusts) or `shutdown` came first.
pub async fn follow(
    identity: &Identity,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    state: Option<LocalState>,
    status: &Status,
) -> Result<Option<JoinHandle<()>>, FollowError> {
    let Some(governors) = identity.hub.load_governors()? else {
        status.set("directory: the directory file (no governors pinned)".into());
        return Ok(None);
    };
    let topic = identity.topics.directory();
    let mut follower = Follower {
        consumer: consumer(&identity.kafka, &identity.group("directory"), &topic)?,
        chain: Chain::new(governors),
        live: identity.directory.clone(),
        topic: topic.clone(),
        version: metrics.gauge("concord_directory_version", "The directory version in force (0: the directory file)."),
        refused: metrics.counters("concord_directory_refused", "Directory versions refused, by reason."),
        accepted: Vec::new(),
        known: HashSet::new(),
        state: state.clone(),
        status: status.clone(),
        model: identity.topics.model_version(),
        other_model: metrics.counter(
            "concord_directory_other_topic_model",
            "Accepted directory versions made for another topic model than this process runs.",
        ),
        local_start: None,
    };
    let local = state.as_ref().map(LocalState::load).unwrap_or_default();
    let has_local = !local.is_empty();
    follower.offer_local(local);
    let mut records = Vec::new();
    let read = read_to_end(&follower.consumer, &topic, shutdown, |k, v, o| records.push((k.map(<[u8]>::to_vec), v.map(<[u8]>::to_vec), o)));
    let caught_up = if has_local {
        match tokio::time::timeout(LOCAL_FALLBACK, read).await {
            Ok(done) => Some(done?),
            Err(_) => None,
        }
    } else {
        Some(read.await?)
    };
    match caught_up {
        Some(false) => return Ok(None),
        Some(true) => {
            for (key, value, offset) in &records {
                follower.offer(key.as_deref(), value.as_deref(), *offset);
            }
            follower.apply_due();
            follower.keep();
            follower.say();
            info!(topic = %topic, version = identity.directory.version(), records = records.len(), "Directory topic read to its end; following it.");
        }
        None => {
            let path = state.as_ref().map(|s| s.path().display().to_string()).unwrap_or_default();
            follower.local_start = Some(path.clone());
            follower.apply_due();
            follower.say();
            warn!(topic = %topic, version = identity.directory.version(), %path,
                "Directory topic not read to its end in time; starting on the local state and catching up when it answers.");
            // The consumer's position is past whatever was read: start it over.
            follower.consumer.rewind(&topic, 0).map_err(|source| FollowError::Kafka { topic: topic.clone(), source })?;
        }
    }
    let shutdown = shutdown.clone();
    let from_local = caught_up.is_none();
    Ok(Some(tokio::spawn(async move {
        if from_local {
            let mut records = Vec::new();
            match read_to_end(&follower.consumer, &follower.topic.clone(), &shutdown, |k, v, o| {
                records.push((k.map(<[u8]>::to_vec), v.map(<[u8]>::to_vec), o))
            })
            .await
            {
                Ok(true) => {
                    let mut changed = false;
                    for (key, value, offset) in &records {
                        changed |= follower.offer(key.as_deref(), value.as_deref(), *offset);
                    }
                    if changed {
                        follower.keep();
                    }
                    follower.local_start = None;
                    follower.apply_due();
                    follower.say();
                    info!(topic = %follower.topic, version = follower.live.version(), "Directory topic caught up after a start on the local state.");
                }
                Ok(false) => return,
                Err(e) => warn!(error = %e, "Directory topic not caught up; following it from here."),
            }
        }
        while follower.step(&shutdown).await {}
    })))
}
