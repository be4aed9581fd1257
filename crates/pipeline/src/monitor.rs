//! Monitoring, our stand-in for a Kafka control center: end offsets and consumer lag per
//! partition, dead-letter count, and the Cassandra row count.

use std::fmt;

use crate::cassandra::{Schema, Store};
use crate::kafka::{self, PartitionOffsets, dead_letter_topic};
use crate::{PipelineConfig, PipelineError};

/// A reading of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The topic read.
    pub topic: String,
    /// The consumer group whose lag is shown.
    pub group: String,
    /// Per partition of the topic: (partition, low, high, committed offset of the group).
    pub partitions: PartitionOffsets,
    /// Messages held by the dead-letter topic.
    pub dead_letters: i64,
    /// Keyspace of the `users` table.
    pub keyspace: String,
    /// Rows of the Cassandra table.
    pub rows: u64,
}

/// Messages of one partition not yet committed by the group.
fn partition_lag(low: i64, high: i64, committed: Option<i64>) -> i64 {
    high - committed.unwrap_or(low).max(low)
}

impl Status {
    /// Messages of the topic not yet committed by the group.
    pub fn lag(&self) -> i64 {
        self.partitions
            .iter()
            .map(|(_, low, high, done)| partition_lag(*low, *high, *done))
            .sum()
    }

    /// Messages the topic holds.
    pub fn messages(&self) -> i64 {
        self.partitions.iter().map(|(_, low, high, _)| high - low).sum()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "topic {} (group {}):", self.topic, self.group)?;
        writeln!(f, "  partition  end offset  committed  lag")?;
        for (p, low, high, done) in &self.partitions {
            let committed = done.map_or("-".to_owned(), |c| c.to_string());
            writeln!(
                f,
                "  {p:>9}  {high:>10}  {committed:>9}  {}",
                partition_lag(*low, *high, *done)
            )?;
        }
        writeln!(f, "  messages {}, lag {}", self.messages(), self.lag())?;
        writeln!(
            f,
            "dead letters ({}): {}",
            dead_letter_topic(&self.topic),
            self.dead_letters
        )?;
        write!(f, "cassandra {}.users: {} rows", self.keyspace, self.rows)
    }
}

/// Reads offsets, lag, dead letters and the row count; creates nothing (a missing topic,
/// keyspace or table is [`PipelineError::Missing`]).
pub async fn status(config: &PipelineConfig) -> Result<Status, PipelineError> {
    // In flow order: the topics first, then the table.
    let (partitions, dead) = tokio::task::block_in_place(|| {
        Ok::<_, PipelineError>((
            kafka::offsets(config, &config.topic)?,
            kafka::offsets(config, &dead_letter_topic(&config.topic))?,
        ))
    })?;
    let store = Store::connect(config, Schema::Existing).await?;
    let rows = store.count().await?;
    Ok(Status {
        topic: config.topic.clone(),
        group: config.group.clone(),
        partitions,
        dead_letters: dead.iter().map(|(_, low, high, _)| high - low).sum(),
        keyspace: config.keyspace.clone(),
        rows,
    })
}
