//! The ingest pipeline on real services: source (the generator or a randomuser-compatible HTTP
//! API) → Kafka topic `users_created` → sink → Cassandra `workbench.users` → Parquet snapshot,
//! plus monitoring and the ingest bench.
//!
//! Delivery guarantees: the producer is idempotent with `acks=all` and is flushed before exit;
//! messages are keyed by `user_id`; the sink commits offsets only after Cassandra acknowledged
//! every write of a batch and every dead letter was delivered; writes are upserts by `user_id`.
//! So a crash anywhere loses nothing and duplicates nothing. Queries are prepared statements;
//! credentials come from the environment (`KAFKA_USERNAME`, `KAFKA_PASSWORD`,
//! `CASSANDRA_USERNAME`, `CASSANDRA_PASSWORD`) and are never logged.

mod bench;
mod cassandra;
mod http;
mod ingest;
mod kafka;
mod login;
mod monitor;
mod sink;
mod source;
mod workflow;

use std::sync::Arc;
use std::time::Duration;

pub use bench::{IngestBench, bench_ingest};
pub use cassandra::{Schema, Store, export_snapshot};
pub use http::{ApiClient, DEFAULT_MAX_RETRY_AFTER, HttpError, redact};
pub use ingest::{IngestReport, ingest};
pub use kafka::{
    DEAD_LETTER_BYTES_HEADER, DEAD_LETTER_ORIGIN_HEADER, DEAD_LETTER_PAYLOAD_LIMIT, DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_REASON_LIMIT, DEAD_LETTER_TRUNCATED_HEADER, MAX_MESSAGE_BYTES, SCHEMA_VERSION, UserMessage,
    create_topics, dead_letter_topic, decode, encode, offsets_with, producer,
};
pub use login::{Login, SaslMechanism};
pub use monitor::{Status, status};
pub use sink::{SIGINT, SIGTERM, SinkOptions, SinkReport, run_sink, shutdown_signal, write_timestamp};
pub use source::Source;
pub use workflow::{PipelineReport, ingest_and_sink, pipeline};

/// Called with the number of messages or users just handled (e.g. to advance a progress bar).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Where the services are and how the pipeline uses them. Defaults match `scripts/services`.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Kafka bootstrap servers, comma-separated.
    pub brokers: String,
    /// The topic of user records; dead letters go to `<topic>.dlq`.
    pub topic: String,
    /// Partitions of the topics when they are created.
    pub partitions: i32,
    /// The sink's consumer group.
    pub group: String,
    /// Cassandra contact points, `host:port`.
    pub cassandra_nodes: Vec<String>,
    /// Keyspace of the `users` table.
    pub keyspace: String,
    /// Replication factor of the topics and the keyspace when they are created. Topics get
    /// `min.insync.replicas` of a majority, and Cassandra reads and writes are at QUORUM, so
    /// one node of three may die without losing an acknowledged write or blocking the pipeline.
    pub replication_factor: u32,
    /// Kafka SASL login (`KAFKA_USERNAME`, `KAFKA_PASSWORD`); without one, plaintext and anonymous.
    pub kafka_login: Option<Login>,
    /// The SASL mechanism used with `kafka_login`.
    pub kafka_sasl_mechanism: SaslMechanism,
    /// Cassandra login (`CASSANDRA_USERNAME`, `CASSANDRA_PASSWORD`).
    pub cassandra_login: Option<Login>,
    /// Cassandra writes in flight at once in the sink.
    pub concurrency: usize,
    /// Timeout of each Kafka or Cassandra request.
    pub request_timeout: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "users_created".into(),
            partitions: 3,
            group: "contract-rl-sink".into(),
            cassandra_nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "workbench".into(),
            replication_factor: 1,
            kafka_login: None,
            kafka_sasl_mechanism: SaslMechanism::default(),
            cassandra_login: None,
            concurrency: 256,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl PipelineConfig {
    /// Both logins from their environment variables.
    pub fn with_logins_from_env(mut self) -> Result<Self, PipelineError> {
        self.kafka_login = Login::from_env("KAFKA_USERNAME", "KAFKA_PASSWORD")?;
        self.cassandra_login = Login::from_env("CASSANDRA_USERNAME", "CASSANDRA_PASSWORD")?;
        Ok(self)
    }

    /// The majority of the replicas: Kafka's `min.insync.replicas` for new topics.
    pub fn min_insync_replicas(&self) -> u32 {
        self.replication_factor / 2 + 1
    }

    /// Checks names and sizes before connecting to anything.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad = |field: &'static str, message: String| Err(PipelineError::Config { field, message });
        let identifier = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && s.len() <= 48
        };
        if !identifier(&self.keyspace) {
            return bad(
                "keyspace",
                format!(
                    "{:?} must be lower-case letters, digits and _ (at most 48), starting with a letter",
                    self.keyspace
                ),
            );
        }
        if self.topic.is_empty()
            || !self
                .topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return bad(
                "topic",
                format!("{:?} must be letters, digits, '.', '_' or '-'", self.topic),
            );
        }
        if self.partitions < 1 {
            return bad("partitions", format!("must be at least 1, got {}", self.partitions));
        }
        if self.replication_factor < 1 {
            return bad("replication_factor", "must be at least 1".into());
        }
        if self.concurrency < 1 {
            return bad("concurrency", "must be at least 1".into());
        }
        if self.cassandra_nodes.is_empty() {
            return bad("cassandra_nodes", "at least one contact point is needed".into());
        }
        Ok(())
    }
}

/// Errors of the pipeline; per-record problems are dead-lettered, not errors.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A setting is not usable.
    #[error("{field}: {message}")]
    Config { field: &'static str, message: String },
    /// Kafka refused or failed an operation.
    #[error("kafka ({brokers}): {context}: {source}{hint}")]
    Kafka {
        brokers: String,
        context: String,
        source: Box<rdkafka::error::KafkaError>,
        /// What to check when it is not obvious from `source`.
        hint: &'static str,
    },
    /// Messages could not be delivered to Kafka.
    #[error("kafka: {failed} of {sent} messages were not delivered; nothing was committed for them")]
    Undelivered { failed: u64, sent: u64 },
    /// Cassandra refused or failed an operation.
    #[error("cassandra ({nodes}): {context}: {source}")]
    Cassandra {
        nodes: String,
        context: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// SIGINT or SIGTERM stopped the work before it was done; what was already sent was
    /// delivered and committed, and nothing was written after.
    #[error("interrupted by signal {signal} before the work was done; what was already sent is delivered")]
    Interrupted { signal: i32 },
    /// The source served a user it had already served: it ignores `page` or repeats users.
    /// Nothing of that page was produced.
    #[error(
        "page {page} repeats user {user_id} of an earlier page: the source ignores `page` or serves users twice; nothing of this page was produced"
    )]
    RepeatedUsers { page: u32, user_id: uuid::Uuid },
    /// A read-only command found no keyspace, table or topic of that name (nothing was created).
    #[error("{what} {name:?} does not exist; {hint}")]
    Missing {
        what: &'static str,
        name: String,
        hint: &'static str,
    },
    /// The HTTP source failed.
    #[error(transparent)]
    Source(Box<crate::http::HttpError>),
    /// Writing the snapshot failed.
    #[error(transparent)]
    Snapshot(Box<contract_rl_parquet::SnapshotError>),
}

impl PipelineError {
    /// Whether the error is the user's input (a setting, a name that does not exist, a
    /// certificate file), not a failure while working.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Config { .. } | Self::Missing { .. } => true,
            Self::Source(e) => matches!(**e, crate::http::HttpError::Certificate(_)),
            _ => false,
        }
    }
}

impl From<crate::http::HttpError> for PipelineError {
    fn from(error: crate::http::HttpError) -> Self {
        Self::Source(Box::new(error))
    }
}

impl From<contract_rl_parquet::SnapshotError> for PipelineError {
    fn from(error: contract_rl_parquet::SnapshotError) -> Self {
        Self::Snapshot(Box::new(error))
    }
}
