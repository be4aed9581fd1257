//! Kafka: topic creation, the idempotent producer, the sink's consumer, the message format
//! (`schemas/users_created.v1.schema.json`) and offsets for monitoring.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::{PipelineConfig, PipelineError};
use contract_rl_core::record::{Rejection, UserRecord};

/// Version of the message format; messages of another version are dead-lettered.
pub const SCHEMA_VERSION: u32 = 1;

/// The header of a dead letter that says why it was rejected (at most
/// [`DEAD_LETTER_REASON_LIMIT`] bytes).
pub const DEAD_LETTER_REASON_HEADER: &str = "reason";

/// The header of a dead letter that says where it came from: `<topic>/<partition>@<offset>` for
/// the sink's, `ingest` for documents the ingest rejected.
pub const DEAD_LETTER_ORIGIN_HEADER: &str = "origin";

/// The header of a dead letter with the size of the original payload in bytes.
pub const DEAD_LETTER_BYTES_HEADER: &str = "original_bytes";

/// The header of a dead letter that is `true` when its payload is only the first
/// [`DEAD_LETTER_PAYLOAD_LIMIT`] bytes of the original (which the origin still holds while the
/// topic retains it).
pub const DEAD_LETTER_TRUNCATED_HEADER: &str = "truncated";

/// Longest reason a dead letter carries, in bytes: a reason may quote the bad value.
pub const DEAD_LETTER_REASON_LIMIT: usize = 1024;

/// Most payload bytes a dead letter copies, so that any message fits the dead-letter topic's
/// default 1 MB limit.
pub const DEAD_LETTER_PAYLOAD_LIMIT: usize = 256 * 1024;

/// Largest message the sink decodes as a user record (a real one is about 2 KB); larger ones are
/// dead-lettered unread, and no row near Cassandra's mutation and frame limits is ever written.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// One message of `users_created`: a flat record and the format version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMessage {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// The record; lineage fields are empty until the sink fills them.
    #[serde(flatten)]
    pub record: UserRecord,
    /// Fields the format does not have; a message with any is refused, not silently trimmed.
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub unknown: serde_json::Map<String, serde_json::Value>,
}

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// The JSON payload of a record.
pub fn encode(record: &UserRecord) -> Vec<u8> {
    let message = UserMessage {
        schema_version: SCHEMA_VERSION,
        record: record.clone(),
        unknown: serde_json::Map::new(),
    };
    serde_json::to_vec(&message).expect("records serialise")
}

/// Why a message cannot be written; its text is the dead letter's reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The message has no payload.
    #[error("empty message")]
    Empty,
    /// The payload is larger than any user record may be.
    #[error("message of {0} bytes is larger than the {MAX_MESSAGE_BYTES} bytes a user record may be")]
    TooLarge(usize),
    /// The payload is not a message of the JSON Schema's shape.
    #[error("undecodable message: {0}")]
    Undecodable(#[from] serde_json::Error),
    /// A message format this sink does not read.
    #[error("schema_version {0} is not supported (this sink reads {SCHEMA_VERSION})")]
    SchemaVersion(u32),
    /// Fields the format does not have (kept out of the table rather than dropped unseen).
    #[error("fields not in schema_version {SCHEMA_VERSION}: {}", .0.join(", "))]
    UnknownFields(Vec<String>),
    /// The record fails validation.
    #[error("invalid record: {0}")]
    Invalid(#[from] Rejection),
}

impl DecodeError {
    /// What kind of problem this is, without the values the reason may quote (for logs, which
    /// must not carry personal data).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty => "empty message",
            Self::TooLarge(_) => "message too large",
            Self::Undecodable(_) => "undecodable message",
            Self::SchemaVersion(_) => "unsupported schema_version",
            Self::UnknownFields(_) => "unknown fields",
            Self::Invalid(_) => "invalid record",
        }
    }
}

/// Decodes and validates a payload; the error is the reason to dead-letter it.
pub fn decode(payload: Option<&[u8]>) -> Result<UserRecord, DecodeError> {
    let payload = payload.ok_or(DecodeError::Empty)?;
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge(payload.len()));
    }
    let message: UserMessage = serde_json::from_slice(payload)?;
    if message.schema_version != SCHEMA_VERSION {
        return Err(DecodeError::SchemaVersion(message.schema_version));
    }
    if !message.unknown.is_empty() {
        return Err(DecodeError::UnknownFields(message.unknown.keys().cloned().collect()));
    }
    message.record.validate()?;
    Ok(message.record)
}

/// A mapper of Kafka errors to [`PipelineError::Kafka`] with `context`.
pub(super) fn kafka_error(
    config: &PipelineConfig,
    context: impl Into<String>,
) -> impl FnOnce(KafkaError) -> PipelineError {
    let brokers = config.brokers.clone();
    let context = context.into();
    let anonymous = config.kafka_login.is_none();
    move |source| {
        // A secured broker does not answer a client without a login: it just times out.
        let code = match &source {
            KafkaError::AdminOp(code) => Some(*code),
            other => other.rdkafka_error_code(),
        };
        let unanswered = matches!(
            code,
            Some(RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::AllBrokersDown)
        );
        PipelineError::Kafka {
            brokers,
            context,
            source: Box::new(source),
            hint: if anonymous && unanswered {
                " (if the brokers need a login, set KAFKA_USERNAME and KAFKA_PASSWORD)"
            } else {
                ""
            },
        }
    }
}

/// The settings every client shares: brokers, timeouts and, with a login, SASL.
fn client_config(config: &PipelineConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("socket.timeout.ms", config.request_timeout.as_millis().to_string());
    if let Some(login) = &config.kafka_login {
        c.set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", config.kafka_sasl_mechanism.name())
            .set("sasl.username", &login.user)
            .set("sasl.password", &login.password);
    }
    c
}

/// Creates the topic and its dead-letter topic if they are missing.
pub async fn create_topics(config: &PipelineConfig) -> Result<(), PipelineError> {
    let admin: AdminClient<DefaultClientContext> = client_config(config)
        .create()
        .map_err(kafka_error(config, "creating the admin client"))?;
    let dlq = dead_letter_topic(&config.topic);
    let replication = config.replication_factor as i32;
    let min_insync = config.min_insync_replicas().to_string();
    let topics = [&config.topic, &dlq].map(|name| {
        NewTopic::new(name, config.partitions, TopicReplication::Fixed(replication))
            .set("min.insync.replicas", &min_insync)
    });
    let options = AdminOptions::new().operation_timeout(Some(config.request_timeout));
    let results = admin
        .create_topics(&topics, &options)
        .await
        .map_err(kafka_error(config, "creating topics"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(kafka_error(config, format!("creating topic {topic}"))(
                    KafkaError::AdminOp(code),
                ));
            }
        }
    }
    Ok(())
}

/// Counts deliveries reported by librdkafka, and per topic and partition the offset after the
/// last delivered message.
#[derive(Debug, Default)]
pub struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    ends: Mutex<HashMap<String, BTreeMap<i32, i64>>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let mut ends = self.ends.lock().expect("no panic while holding it");
                let topic = match ends.get_mut(message.topic()) {
                    Some(topic) => topic,
                    None => ends.entry(message.topic().to_owned()).or_default(),
                };
                let end = topic.entry(message.partition()).or_default();
                *end = (*end).max(message.offset() + 1);
                self.delivered.fetch_add(1, Ordering::Relaxed)
            }
            Err((error, _)) => {
                tracing::error!(%error, "message not delivered");
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// The idempotent producer: `acks=all`, retries without duplicates, keyed messages.
pub struct RecordProducer {
    producer: ThreadedProducer<DeliveryCounter>,
    topic: String,
    dead_letters: String,
    sent: u64,
}

/// Builds the producer for `config`'s topics.
pub fn producer(config: &PipelineConfig) -> Result<RecordProducer, PipelineError> {
    let producer = client_config(config)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "10")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "200000")
        .create_with_context(DeliveryCounter::default())
        .map_err(kafka_error(config, "creating the producer"))?;
    Ok(RecordProducer {
        producer,
        topic: config.topic.clone(),
        dead_letters: dead_letter_topic(&config.topic),
        sent: 0,
    })
}

impl RecordProducer {
    /// Queues a record, keyed by its `user_id`.
    pub fn send(&mut self, record: &UserRecord) -> Result<(), KafkaError> {
        let key = record.user_id.to_string();
        let payload = encode(record);
        let record = BaseRecord::to(&self.topic)
            .key(key.as_bytes())
            .payload(payload.as_slice())
            .headers(OwnedHeaders::new());
        enqueue(&self.producer, &mut self.sent, record)
    }

    /// Queues a dead letter: the original payload (its first [`DEAD_LETTER_PAYLOAD_LIMIT`]
    /// bytes when longer) and key, and in headers the reason, where it came from and the
    /// payload's size; the key and the reason are cut to [`DEAD_LETTER_REASON_LIMIT`] bytes.
    pub fn send_dead_letter(
        &mut self,
        key: &[u8],
        payload: &[u8],
        reason: &str,
        origin: &str,
    ) -> Result<(), KafkaError> {
        let truncated = payload.len() > DEAD_LETTER_PAYLOAD_LIMIT;
        let bytes = payload.len().to_string();
        let headers = [
            (DEAD_LETTER_REASON_HEADER, prefix(reason, DEAD_LETTER_REASON_LIMIT)),
            (DEAD_LETTER_ORIGIN_HEADER, origin),
            (DEAD_LETTER_BYTES_HEADER, &bytes),
            (DEAD_LETTER_TRUNCATED_HEADER, if truncated { "true" } else { "false" }),
        ]
        .into_iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        });
        let record = BaseRecord::to(&self.dead_letters)
            .key(&key[..key.len().min(DEAD_LETTER_REASON_LIMIT)])
            .payload(&payload[..payload.len().min(DEAD_LETTER_PAYLOAD_LIMIT)])
            .headers(headers);
        enqueue(&self.producer, &mut self.sent, record)
    }

    /// Per partition of the record topic, the offset after the last message delivered.
    pub fn ends(&self) -> BTreeMap<i32, i64> {
        let ends = self.producer.context().ends.lock().expect("no panic while holding it");
        ends.get(&self.topic).cloned().unwrap_or_default()
    }

    /// Waits until every queued message is delivered or failed; fails if any failed.
    pub fn flush(&self, timeout: Duration) -> Result<u64, PipelineError> {
        let flushed = self.producer.flush(timeout);
        let context = self.producer.context();
        let failed = context.failed.load(Ordering::Relaxed) + self.producer.in_flight_count().max(0) as u64;
        if failed > 0 || flushed.is_err() {
            return Err(PipelineError::Undelivered {
                failed: failed.max(1),
                sent: self.sent,
            });
        }
        Ok(context.delivered.load(Ordering::Relaxed))
    }
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
fn prefix(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Hands `record` to librdkafka, waiting for room while its local queue is full.
fn enqueue(
    producer: &ThreadedProducer<DeliveryCounter>,
    sent: &mut u64,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => {
                *sent += 1;
                return Ok(());
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// Counts the partition revocations the sink's consumer has been through, so that a batch read
/// before one is dropped (it is read again by whoever owns the partition now) instead of written.
#[derive(Debug, Default)]
pub struct Revocations(AtomicU64);

impl Revocations {
    /// Revocations so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl ClientContext for Revocations {}

impl ConsumerContext for Revocations {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance
            && partitions.count() > 0
        {
            self.0.fetch_add(1, Ordering::SeqCst);
            tracing::info!(partitions = partitions.count(), "partitions revoked");
        }
    }
}

/// The sink's consumer.
pub type SinkConsumer = StreamConsumer<Revocations>;

/// The sink's consumer: manual commits, from the earliest offset for a new group.
pub fn consumer(config: &PipelineConfig) -> Result<SinkConsumer, PipelineError> {
    let consumer: SinkConsumer = client_config(config)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A restarted sink gets the partitions of a killed one within seconds.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "50")
        .create_with_context(Revocations::default())
        .map_err(kafka_error(config, "creating the consumer"))?;
    consumer
        .subscribe(&[&config.topic])
        .map_err(kafka_error(config, format!("subscribing to {}", config.topic)))?;
    Ok(consumer)
}

/// Per partition: (partition, low watermark, high watermark, committed offset of `group`).
pub type PartitionOffsets = Vec<(i32, i64, i64, Option<i64>)>;

/// Whether a Kafka error is one a broker failover causes and a later try may not meet.
pub(crate) fn transient(error: &PipelineError) -> bool {
    let PipelineError::Kafka { source, .. } = error else {
        return false;
    };
    matches!(
        source.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
        )
    )
}

/// Watermarks of every partition of `topic` and the committed offsets of `config.group`.
pub fn offsets(config: &PipelineConfig, topic: &str) -> Result<PartitionOffsets, PipelineError> {
    let consumer: rdkafka::consumer::BaseConsumer = client_config(config)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(kafka_error(config, "creating a monitoring client"))?;
    offsets_with(&consumer, config, topic)
}

/// [`offsets`] through an existing consumer of the group.
pub fn offsets_with<X: ConsumerContext, C: Consumer<X>>(
    consumer: &C,
    config: &PipelineConfig,
    topic: &str,
) -> Result<PartitionOffsets, PipelineError> {
    let timeout = config.request_timeout;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka_error(config, format!("reading metadata of {topic}")))?;
    if metadata
        .topics()
        .iter()
        .all(|t| t.error().is_some() || t.partitions().is_empty())
    {
        return Err(PipelineError::Missing {
            what: "topic",
            name: topic.to_owned(),
            hint: "it is created by `ingest` or `sink`",
        });
    }
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut list = TopicPartitionList::new();
    for p in &partitions {
        list.add_partition(topic, *p);
    }
    let committed = consumer
        .committed_offsets(list, timeout)
        .map_err(kafka_error(config, format!("reading committed offsets of {topic}")))?;
    partitions
        .iter()
        .map(|&p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, timeout)
                .map_err(kafka_error(config, format!("reading offsets of {topic}/{p}")))?;
            let done = committed.find_partition(topic, p).and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
            Ok((p, low, high, done))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_rl_core::schema::{COLUMNS, ColumnType};
    use contract_rl_core::source::{Generator, generate_records};

    #[test]
    fn a_record_survives_encoding() {
        let (records, _) = generate_records(&Generator::new("kafka", &[]).unwrap(), 3);
        for r in records {
            assert_eq!(decode(Some(&encode(&r))).unwrap(), r);
        }
    }

    #[test]
    fn the_json_schema_lists_exactly_the_fields_of_a_message() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/users_created.v1.schema.json")).unwrap();
        let mut documented: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        let (records, _) = generate_records(&Generator::new("schema", &[]).unwrap(), 1);
        let message: serde_json::Value = serde_json::from_slice(&encode(&records[0])).unwrap();
        let mut sent: Vec<&String> = message.as_object().unwrap().keys().collect();
        documented.sort();
        sent.sort();
        assert_eq!(documented, sent);
    }

    /// Each column's JSON type, and whether the schema lets it be null or absent.
    #[test]
    fn the_json_schema_types_every_column_as_the_record_schema_does() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/users_created.v1.schema.json")).unwrap();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for column in COLUMNS {
            let property = &schema["properties"][column.name];
            let (json, format) = match column.ty {
                ColumnType::Uuid => ("string", Some("uuid")),
                ColumnType::Text => ("string", None),
                ColumnType::Timestamp => ("string", Some("date-time")),
                ColumnType::Int | ColumnType::BigInt => ("integer", None),
                ColumnType::Double => ("number", None),
            };
            let expected = if column.nullable {
                serde_json::json!([json, "null"])
            } else {
                serde_json::json!(json)
            };
            match property["enum"].as_array() {
                // A closed list of values stands for its type.
                Some(values) => assert!(
                    values.iter().all(|v| v.is_string()) && json == "string",
                    "{}",
                    column.name
                ),
                None => assert_eq!(property["type"], expected, "{}", column.name),
            }
            assert_eq!(property["format"].as_str(), format, "{}", column.name);
            assert_eq!(required.contains(&column.name), !column.nullable, "{}", column.name);
        }
    }

    #[test]
    fn a_prefix_never_splits_a_character() {
        assert_eq!(prefix("añb", 2), "a");
        assert_eq!(prefix("añb", 3), "añ");
        assert_eq!(prefix("ab", 10), "ab");
    }

    #[test]
    fn a_message_larger_than_any_record_is_refused_unread() {
        let huge = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(decode(Some(&huge)), Err(DecodeError::TooLarge(n)) if n == MAX_MESSAGE_BYTES + 1));
    }

    #[test]
    fn bad_payloads_get_a_reason() {
        let reason = |payload: &[u8]| decode(Some(payload)).unwrap_err().to_string();
        assert!(decode(None).unwrap_err().to_string().contains("empty"));
        assert!(reason(b"{not json").contains("undecodable"));
        let (records, _) = generate_records(&Generator::new("kafka", &[]).unwrap(), 1);
        let mut value: serde_json::Value = serde_json::from_slice(&encode(&records[0])).unwrap();
        value.as_object_mut().unwrap().remove("user_id");
        let why = reason(&serde_json::to_vec(&value).unwrap());
        assert!(why.contains("user_id"), "{why}");
        value["user_id"] = records[0].user_id.to_string().into();
        value["latitude"] = 123.0.into();
        let why = reason(&serde_json::to_vec(&value).unwrap());
        assert!(why.contains("latitude 123 is outside"), "{why}");
        value["latitude"] = 1.0.into();
        value["schema_version"] = 2.into();
        assert!(reason(&serde_json::to_vec(&value).unwrap()).contains("schema_version 2"));
        value["schema_version"] = 1.into();
        value["loyalty_tier"] = "gold".into();
        let why = reason(&serde_json::to_vec(&value).unwrap());
        assert!(why.contains("fields not in schema_version 1: loyalty_tier"), "{why}");
    }

    /// 17 significant digits name one double exactly; the decoder must land on it. Each of these
    /// came back one ulp off without correct rounding (`float_roundtrip`).
    #[test]
    fn coordinates_and_far_dates_survive_encoding_exactly() {
        let (records, _) = generate_records(&Generator::new("fidelity", &[]).unwrap(), 1);
        let mut record = records[0].clone();
        for (lat, lon) in [
            (10.938_711_676_632_721, -57.179_661_383_605_676),
            (-52.566_874_043_881_036, 13.346_133_595_589_677),
        ] {
            record.latitude = lat;
            record.longitude = lon;
            record.registered = "9999-12-31T23:59:59.999Z".parse().unwrap();
            let back = decode(Some(&encode(&record))).unwrap();
            assert_eq!(
                (back.latitude.to_bits(), back.longitude.to_bits()),
                (lat.to_bits(), lon.to_bits())
            );
            assert_eq!(back.registered, record.registered);
        }
    }
}
