//! Cassandra: the `users` table, idempotent upserts by `user_id`, and parallel scans over
//! token ranges (for snapshots and row counts). Every query is a prepared statement.

use std::path::Path;

use futures::{StreamExt, TryStreamExt, stream};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::prepared::PreparedStatement;

use super::{PipelineConfig, PipelineError};
use crate::record::UserRecord;
use crate::snapshot::{self, Producer, SnapshotManifest};

/// Columns of the `users` table, in the order of [`UserRecord`]'s fields.
const COLUMNS: [(&str, &str); 27] = [
    ("user_id", "uuid"),
    ("gender", "text"),
    ("title", "text"),
    ("first_name", "text"),
    ("last_name", "text"),
    ("email", "text"),
    ("username", "text"),
    ("dob", "timestamp"),
    ("age", "int"),
    ("registered", "timestamp"),
    ("seniority_years", "int"),
    ("phone", "text"),
    ("cell", "text"),
    ("street", "text"),
    ("city", "text"),
    ("state", "text"),
    ("country", "text"),
    ("postcode", "text"),
    ("latitude", "double"),
    ("longitude", "double"),
    ("tz_offset_minutes", "int"),
    ("nat", "text"),
    ("picture", "text"),
    ("source", "text"),
    ("ingested_at", "timestamp"),
    ("kafka_partition", "int"),
    ("kafka_offset", "bigint"),
];

/// Token ranges a scan is split into.
const SCAN_RANGES: i64 = 32;

/// Token ranges scanned at once.
const SCAN_PARALLELISM: usize = 4;

/// A connection to the `users` table with its prepared statements.
pub struct Store {
    session: Session,
    nodes: String,
    insert: PreparedStatement,
    scan: PreparedStatement,
    count: PreparedStatement,
}

impl Store {
    /// Connects (with `CASSANDRA_USERNAME`/`CASSANDRA_PASSWORD` from the environment if set),
    /// creates the keyspace and table if missing, and prepares the statements.
    pub async fn connect(config: &PipelineConfig) -> Result<Self, PipelineError> {
        config.validate()?;
        let nodes = config.cassandra_nodes.join(",");
        let error = |context: &str| {
            let nodes = nodes.clone();
            let context = context.to_owned();
            move |e: &dyn std::fmt::Display| PipelineError::Cassandra {
                nodes,
                context,
                message: e.to_string(),
            }
        };
        let mut builder = SessionBuilder::new()
            .known_nodes(&config.cassandra_nodes)
            .connection_timeout(config.request_timeout);
        if let (Ok(user), Ok(password)) = (std::env::var("CASSANDRA_USERNAME"), std::env::var("CASSANDRA_PASSWORD")) {
            builder = builder.user(user, password);
        }
        let session = builder.build().await.map_err(|e| error("connecting")(&e))?;
        let ks = &config.keyspace;
        let ddl = [
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                config.replication_factor
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.users ({}, PRIMARY KEY (user_id))",
                COLUMNS
                    .iter()
                    .map(|(c, t)| format!("{c} {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ];
        for statement in ddl {
            // Schema statements carry no data: the only interpolated names are validated identifiers.
            session
                .query_unpaged(statement, ())
                .await
                .map_err(|e| error("creating the schema")(&e))?;
        }
        let names: Vec<&str> = COLUMNS.iter().map(|(c, _)| *c).collect();
        let list = names.join(", ");
        let prepare = |cql: String| {
            let session = &session;
            let error = error("preparing statements");
            async move { session.prepare(cql).await.map_err(|e| error(&e)) }
        };
        let insert = prepare(format!(
            "INSERT INTO {ks}.users ({list}) VALUES ({})",
            vec!["?"; names.len()].join(", ")
        ))
        .await?;
        let mut scan = prepare(format!(
            "SELECT {list} FROM {ks}.users WHERE token(user_id) >= ? AND token(user_id) <= ?"
        ))
        .await?;
        scan.set_page_size(5000);
        let count = prepare(format!(
            "SELECT COUNT(*) FROM {ks}.users WHERE token(user_id) >= ? AND token(user_id) <= ?"
        ))
        .await?;
        Ok(Self {
            session,
            nodes,
            insert,
            scan,
            count,
        })
    }

    fn error(&self, context: &str, e: impl std::fmt::Display) -> PipelineError {
        PipelineError::Cassandra {
            nodes: self.nodes.clone(),
            context: context.to_owned(),
            message: e.to_string(),
        }
    }

    /// Upserts one record by `user_id` (writing it twice leaves one row).
    pub async fn upsert(&self, record: &UserRecord) -> Result<(), PipelineError> {
        self.session
            .execute_unpaged(&self.insert, record)
            .await
            .map(|_| ())
            .map_err(|e| self.error("inserting a user", e))
    }

    /// Every row, read in parallel over token ranges, ordered by (kafka_partition,
    /// kafka_offset, user_id).
    pub async fn scan(&self) -> Result<Vec<UserRecord>, PipelineError> {
        let parts: Vec<Vec<UserRecord>> = stream::iter(token_ranges())
            .map(|range| async move {
                let pager = self
                    .session
                    .execute_iter(self.scan.clone(), range)
                    .await
                    .map_err(|e| self.error("scanning users", e))?;
                pager
                    .rows_stream::<UserRecord>()
                    .map_err(|e| self.error("reading users", e))?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(|e| self.error("reading users", e))
            })
            .buffer_unordered(SCAN_PARALLELISM)
            .try_collect()
            .await?;
        let mut records: Vec<UserRecord> = parts.into_iter().flatten().collect();
        records.sort_by_key(|r| (r.kafka_partition, r.kafka_offset, r.user_id));
        Ok(records)
    }

    /// Number of rows, counted in parallel over token ranges.
    pub async fn count(&self) -> Result<u64, PipelineError> {
        let counts: Vec<i64> = stream::iter(token_ranges())
            .map(|range| async move {
                let result = self
                    .session
                    .execute_unpaged(&self.count, range)
                    .await
                    .map_err(|e| self.error("counting users", e))?;
                let rows = result.into_rows_result().map_err(|e| self.error("counting users", e))?;
                let (n,): (i64,) = rows.single_row().map_err(|e| self.error("counting users", e))?;
                Ok::<_, PipelineError>(n)
            })
            .buffer_unordered(SCAN_PARALLELISM)
            .try_collect()
            .await?;
        Ok(counts.iter().sum::<i64>() as u64)
    }
}

/// The Murmur3 token ring split into [`SCAN_RANGES`] inclusive ranges that cover it exactly.
fn token_ranges() -> Vec<(i64, i64)> {
    let width = (u64::MAX / SCAN_RANGES as u64) as i128;
    (0..SCAN_RANGES as i128)
        .map(|i| {
            let start = i64::MIN as i128 + i * width;
            let end = if i == SCAN_RANGES as i128 - 1 {
                i64::MAX as i128
            } else {
                start + width - 1
            };
            (start as i64, end as i64)
        })
        .collect()
}

/// Reads the whole table into a snapshot at `out`, with its manifest.
pub async fn export_snapshot(config: &PipelineConfig, out: &Path) -> Result<SnapshotManifest, PipelineError> {
    let store = Store::connect(config).await?;
    let records = store.scan().await?;
    let producer = Producer {
        command: "snapshot".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        params: serde_json::json!({ "keyspace": config.keyspace, "table": "users" }),
    };
    Ok(snapshot::write(out, &records, producer)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ranges_cover_the_ring_without_gaps_or_overlaps() {
        let ranges = token_ranges();
        assert_eq!(ranges.first().unwrap().0, i64::MIN);
        assert_eq!(ranges.last().unwrap().1, i64::MAX);
        for w in ranges.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
    }
}
