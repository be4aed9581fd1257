//! The sink: a consumer group that writes `users_created` into Cassandra.
//!
//! Each batch: decode and validate every message (invalid or oversized → dead-letter topic with
//! the reason), upsert the valid records with bounded concurrency (a write Cassandra refuses for
//! what the record holds is dead-lettered too; other failures are retried with backoff, then
//! stop the sink uncommitted), wait until the dead letters are delivered, and only then commit
//! the batch's offsets. A crash at any point leaves the batch uncommitted, so it is read again
//! and upserted again: nothing is lost and nothing is duplicated. Rows are written with the message's [`write_timestamp`], so
//! the newest version of a user stays whichever sink writes last, and a batch read before its
//! partitions were revoked is dropped, not written. From the command line, SIGINT and SIGTERM
//! stop it between batches.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use crate::cassandra::{Schema, Store, refused, retried};
use crate::kafka::{self, RecordProducer, SinkConsumer, create_topics, decode, kafka_error};
use crate::{PipelineConfig, PipelineError, Progress};
use contract_rl_core::record::UserRecord;

/// How the sink runs.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Exit once the group's committed offsets reach the end of every partition.
    pub until_caught_up: bool,
    /// With `until_caught_up`: where an ingest that runs at the same time ended (see
    /// [`crate::ingest_and_sink`]); catching up means reaching these offsets once they are
    /// set. Without it, catching up means reaching the end of every partition.
    pub ingest_end: Option<Arc<OnceLock<BTreeMap<i32, i64>>>>,
    /// Most messages per batch.
    pub batch_size: usize,
    /// Longest wait for a batch to fill.
    pub batch_wait: Duration,
    /// Attempts per Cassandra write before the sink gives up (without committing).
    pub write_attempts: u32,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            until_caught_up: false,
            ingest_end: None,
            batch_size: 5000,
            batch_wait: Duration::from_millis(200),
            write_attempts: 6,
        }
    }
}

/// What a sink run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkReport {
    /// The topic read (dead letters went to `<topic>.dlq`).
    pub topic: String,
    /// The keyspace of the `users` table written.
    pub keyspace: String,
    /// The signal that stopped the sink before it caught up, if one did.
    pub stopped_by: Option<i32>,
    /// Records upserted into Cassandra.
    pub written: u64,
    /// Messages sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Batches committed.
    pub batches: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl std::fmt::Display for SinkReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrote {} users to {}.users and {} messages to {}.dlq in {} batches, {:.1}s",
            self.written, self.keyspace, self.dead_lettered, self.topic, self.batches, self.seconds
        )?;
        match self.stopped_by {
            Some(signal) => write!(
                f,
                "; stopped by signal {signal}, committed up to the last written batch"
            ),
            None => Ok(()),
        }
    }
}

/// Runs the sink until `stop` resolves with a signal number (e.g. [`shutdown_signal`]) or, with
/// `until_caught_up`, until there is no lag. The batch in progress when `stop` resolves is
/// dropped uncommitted; the report says which signal stopped it.
pub async fn run_sink(
    config: &PipelineConfig,
    options: &SinkOptions,
    progress: &Progress,
    stop: impl Future<Output = i32>,
) -> Result<SinkReport, PipelineError> {
    let start = Instant::now();
    create_topics(config).await?;
    let store = Store::connect(config, Schema::Create).await?;
    let consumer = kafka::consumer(config)?;
    let mut dead_letters = kafka::producer(config)?;
    let mut report = SinkReport {
        topic: config.topic.clone(),
        keyspace: config.keyspace.clone(),
        ..SinkReport::default()
    };
    tokio::pin!(stop);
    // The next batch is gathered while the current one is written, so Kafka reads overlap
    // Cassandra writes; commits still follow the writes, batch after batch.
    let mut next = Ok(next_batch(&consumer, options).await);
    loop {
        let batch = match next {
            Ok(batch) => batch,
            Err(signal) => {
                report.stopped_by = Some(signal);
                break;
            }
        };
        let revoked = batch.revocations != consumer.context().count();
        if batch.messages.is_empty() || revoked {
            if revoked {
                tracing::info!(
                    messages = batch.messages.len(),
                    "dropped a batch read before a rebalance; its partitions are read again from their commits"
                );
            } else if options.until_caught_up
                && let ends = options.ingest_end.as_ref().map(|end| end.get())
                && ends.is_none_or(|set| set.is_some())
                && caught_up(&consumer, config, ends.flatten())?
            {
                break;
            }
            next = tokio::select! {
                batch = next_batch(&consumer, options) => Ok(batch),
                signal = &mut stop => Err(signal),
            };
            continue;
        }
        let ingested_at = now_millis();
        // The newest message of each user in the batch: later offsets of a user (one partition)
        // win within a batch as their write timestamps make them win across batches.
        let mut records: HashMap<uuid::Uuid, (UserRecord, &OwnedMessage)> =
            HashMap::with_capacity(batch.messages.len());
        let mut dead = 0;
        for message in &batch.messages {
            match decode(message.payload()) {
                Ok(mut record) => {
                    record.kafka_partition = Some(message.partition());
                    record.kafka_offset = Some(message.offset());
                    record.ingested_at = Some(ingested_at);
                    records.insert(record.user_id, (record, message));
                }
                Err(reason) => {
                    dead_letter(&mut dead_letters, config, message, &reason.to_string(), reason.kind())?;
                    dead += 1;
                }
            }
        }
        let store = &store;
        let retries = &AtomicU64::new(0);
        let writes = stream::iter(records.values())
            .map(|(record, message)| async move {
                let timestamp = write_timestamp(*message);
                let written = upsert_with_retry(store, record, timestamp, options.write_attempts, retries).await;
                match written {
                    Err(error) if refused(&error) => Ok(Some((*message, error))),
                    other => other.map(|()| None),
                }
            })
            .buffer_unordered(config.concurrency)
            .try_collect::<Vec<_>>();
        let gather = async {
            tokio::select! {
                batch = next_batch(&consumer, options) => Ok(batch),
                signal = &mut stop => Err(signal),
            }
        };
        let (written, gathered) = tokio::join!(writes, gather);
        let refusals: Vec<_> = written?.into_iter().flatten().collect();
        let retried = retries.load(Ordering::Relaxed);
        if retried > 1 {
            tracing::warn!(retried, "the batch is written after retrying failed writes");
        }
        for (message, error) in &refusals {
            let reason = format!("Cassandra refused the write: {error}");
            dead_letter(&mut dead_letters, config, message, &reason, "refused by Cassandra")?;
        }
        dead += refusals.len() as u64;
        if dead > 0 {
            tokio::task::block_in_place(|| dead_letters.flush(config.request_timeout))?;
        }
        // Partitions revoked during the writes belong to another member now: committing there
        // could move its offsets back; the rows written stay (their timestamps keep newer ones).
        if batch.revocations == consumer.context().count() {
            commit(&consumer, config, &batch.messages);
        }
        report.written += (records.len() - refusals.len()) as u64;
        report.dead_lettered += dead;
        report.batches += 1;
        progress(batch.messages.len() as u64);
        next = gathered;
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Messages read together under one assignment, and the consumer's revocation count then.
struct Batch {
    messages: Vec<OwnedMessage>,
    revocations: u64,
}

/// The write time of a message's row, in microseconds: the message's Kafka timestamp (ms) × 1000
/// plus its offset modulo 1000 (the current time if the message has none).
///
/// Messages are keyed by `user_id`, so all versions of a user are in one partition in offset
/// order; the later version has the later write time, and Cassandra keeps it whichever sink
/// writes last: a stale sink cannot put an older version back. The rule needs producers whose
/// clocks agree to within the time between two versions of a user; two versions produced within
/// the same millisecond are ordered by offset unless they straddle a multiple of 1000.
pub fn write_timestamp(message: &impl Message) -> i64 {
    let millis = message
        .timestamp()
        .to_millis()
        .unwrap_or_else(|| Utc::now().timestamp_millis());
    millis * 1000 + message.offset().rem_euclid(1000)
}

/// Queues a dead letter for `message`, naming its topic, partition and offset as its origin.
/// The log names only the `kind` of problem: the reason may quote personal data.
fn dead_letter(
    producer: &mut RecordProducer,
    config: &PipelineConfig,
    message: &OwnedMessage,
    reason: &str,
    kind: &'static str,
) -> Result<(), PipelineError> {
    let origin = format!("{}/{}@{}", message.topic(), message.partition(), message.offset());
    tracing::warn!(%origin, kind, "dead-lettered; the reason is in the dead letter's header");
    producer
        .send_dead_letter(
            message.key().unwrap_or_default(),
            message.payload().unwrap_or_default(),
            reason,
            &origin,
        )
        .map_err(kafka_error(config, "queueing a dead letter"))
}

/// Up to `batch_size` messages, waiting at most `batch_wait`.
///
/// A rebalance runs inside the `recv` that returns the first message of the new assignment,
/// which librdkafka fetched from the group's commits. Messages read before it are dropped (they
/// are read again from those commits); the ones after it are kept: dropping them too would lose
/// them, since librdkafka has moved past them (a CI run of the cluster test lost 132 this way).
async fn next_batch(consumer: &SinkConsumer, options: &SinkOptions) -> Batch {
    let mut revocations = consumer.context().count();
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + options.batch_wait;
    while messages.len() < options.batch_size {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => {
                let now = consumer.context().count();
                if now != revocations {
                    tracing::info!(
                        dropped = messages.len(),
                        "a rebalance while reading: what was read before it is read again from the commits"
                    );
                    messages.clear();
                    revocations = now;
                }
                messages.push(message.detach());
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "consumer error");
                break;
            }
            Err(_) => break,
        }
    }
    Batch { messages, revocations }
}

/// Upserts with up to `attempts` tries, counting retries in `retries`; only the batch's first
/// retry is logged as a warning (a node going down fails every write in flight at once).
async fn upsert_with_retry(
    store: &Store,
    record: &UserRecord,
    timestamp: i64,
    attempts: u32,
    retries: &AtomicU64,
) -> Result<(), PipelineError> {
    let log = |error: &PipelineError, attempt: u32| {
        if retries.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(%error, "a write failed; retrying the batch's failed writes");
        } else {
            tracing::debug!(%error, attempt, "write failed; retrying");
        }
    };
    retried(attempts, log, || store.upsert(record, timestamp)).await
}

/// Commits, per partition, the offset after the batch's last message. A failed commit (e.g. a
/// rebalance) only means the batch is read again and upserted again.
fn commit(consumer: &SinkConsumer, config: &PipelineConfig, batch: &[OwnedMessage]) {
    let mut next: HashMap<i32, i64> = HashMap::new();
    for m in batch {
        let entry = next.entry(m.partition()).or_insert(0);
        *entry = (*entry).max(m.offset() + 1);
    }
    let mut list = TopicPartitionList::new();
    for (partition, offset) in next {
        list.add_partition_offset(&config.topic, partition, Offset::Offset(offset))
            .expect("a valid offset");
    }
    if let Err(error) = tokio::task::block_in_place(|| consumer.commit(&list, CommitMode::Sync)) {
        tracing::warn!(%error, "commit failed; the batch will be read again");
    }
}

/// Whether the group's committed offsets reached `ends`, or without them the end of every
/// partition (a high watermark read during a leader's failover can lag behind what was
/// acknowledged, so an ingest's own delivery offsets are the sure end). Errors a broker
/// failover causes (the group's coordinator or a partition leader moving) are retried 6 times
/// with doubling backoff from 100 ms.
fn caught_up(
    consumer: &SinkConsumer,
    config: &PipelineConfig,
    ends: Option<&BTreeMap<i32, i64>>,
) -> Result<bool, PipelineError> {
    let mut backoff = Duration::from_millis(100);
    let offsets = tokio::task::block_in_place(|| {
        for _ in 1..6 {
            match kafka::offsets_with(consumer, config, &config.topic) {
                Err(error) if kafka::transient(&error) => {
                    tracing::warn!(%error, "reading offsets failed; retrying");
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                result => return result,
            }
        }
        kafka::offsets_with(consumer, config, &config.topic)
    })?;
    Ok(match ends {
        Some(ends) => ends.iter().all(|(partition, end)| {
            offsets
                .iter()
                .any(|(p, _, _, committed)| p == partition && committed.is_some_and(|c| c >= *end))
        }),
        None => offsets
            .iter()
            .all(|(_, low, high, committed)| high == low || committed.is_some_and(|c| c >= *high)),
    })
}

/// Now, at the millisecond precision Cassandra stores.
fn now_millis() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is in range")
}

/// Resolves on SIGINT or SIGTERM, with the signal's number (2 or 15).
pub async fn shutdown_signal() -> i32 {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => SIGINT,
        _ = terminate.recv() => SIGTERM,
    }
}

/// The number of SIGINT.
pub const SIGINT: i32 = 2;
/// The number of SIGTERM.
pub const SIGTERM: i32 = 15;
