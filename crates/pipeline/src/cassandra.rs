//! Cassandra: the `users` table, idempotent upserts by `user_id`, and parallel scans over
//! token ranges (for snapshots and row counts). Every query is a prepared statement.

use std::path::Path;

use chrono::DateTime;
use contract_rl_core::record::UserRecord;
use contract_rl_core::schema::{COLUMNS, ColumnType, Field, FieldError};
use futures::{StreamExt, TryStreamExt, stream};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::cluster::metadata::ColumnType as CqlType;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::serialize::SerializationError;
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::{CellWriter, WrittenCellProof};
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};

use crate::{PipelineConfig, PipelineError};
use contract_rl_parquet::snapshot::{self, Producer, SnapshotManifest};

/// The CQL type of a schema column.
fn cql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Uuid => "uuid",
        ColumnType::Text => "text",
        ColumnType::Timestamp => "timestamp",
        ColumnType::Int => "int",
        ColumnType::BigInt => "bigint",
        ColumnType::Double => "double",
    }
}

/// One value of a record, bound to a prepared statement as its column's CQL type.
struct Cell<'a>(Field<'a>);

impl SerializeValue for Cell<'_> {
    fn serialize<'b>(&self, typ: &CqlType, writer: CellWriter<'b>) -> Result<WrittenCellProof<'b>, SerializationError> {
        match &self.0 {
            Field::Uuid(v) => v.serialize(typ, writer),
            Field::Text(v) => v.as_ref().serialize(typ, writer),
            Field::Timestamp(v) => v.serialize(typ, writer),
            Field::Int(v) => v.serialize(typ, writer),
            Field::BigInt(v) => v.serialize(typ, writer),
            Field::Double(v) => v.serialize(typ, writer),
            Field::Null => Ok(writer.set_null()),
        }
    }
}

/// A row read back, as a record (a value of another CQL type fails as the text of it).
fn record_of(row: Row) -> Result<UserRecord, FieldError> {
    let fields = row.columns.into_iter().map(|value| match value {
        None => Field::Null,
        Some(CqlValue::Uuid(v)) => Field::Uuid(v),
        Some(CqlValue::Text(v)) => Field::Text(v.into()),
        Some(CqlValue::Timestamp(v)) => DateTime::from_timestamp_millis(v.0).map_or(Field::Null, Field::Timestamp),
        Some(CqlValue::Int(v)) => Field::Int(v),
        Some(CqlValue::BigInt(v)) => Field::BigInt(v),
        Some(CqlValue::Double(v)) => Field::Double(v),
        Some(other) => Field::Text(format!("{other:?}").into()),
    });
    UserRecord::from_fields(fields)
}

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

/// Whether connecting may create what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Create the keyspace and table if missing (`ingest`, `sink`, `pipeline`).
    Create,
    /// Use them as they are; a missing keyspace or table is an error and nothing is created.
    Existing,
}

impl Store {
    /// Connects (with the config's Cassandra login, if any),
    /// creates the keyspace and table if missing and `schema` allows it, and prepares the
    /// statements.
    pub async fn connect(config: &PipelineConfig, schema: Schema) -> Result<Self, PipelineError> {
        config.validate()?;
        let nodes = config.cassandra_nodes.join(",");
        let error = |context: &'static str| {
            let nodes = nodes.clone();
            move |e: Box<dyn std::error::Error + Send + Sync>| PipelineError::Cassandra {
                nodes: nodes.clone(),
                context,
                source: e,
            }
        };
        // QUORUM reads and writes: with replication factor 3 an acknowledged write is on two
        // nodes, and a snapshot sees it with one node down. With factor 1 it is simply ONE.
        let profile = ExecutionProfile::builder().consistency(Consistency::Quorum).build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&config.cassandra_nodes)
            .connection_timeout(config.request_timeout)
            .default_execution_profile_handle(profile.into_handle());
        if let Some(login) = &config.cassandra_login {
            builder = builder.user(&login.user, &login.password);
        }
        let session = builder.build().await.map_err(|e| error("connecting")(e.into()))?;
        let ks = &config.keyspace;
        match schema {
            Schema::Create => {
                let ddl = [
                    format!(
                        "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                        config.replication_factor
                    ),
                    format!(
                        "CREATE TABLE IF NOT EXISTS {ks}.users ({}, PRIMARY KEY (user_id))",
                        COLUMNS
                            .iter()
                            .map(|c| format!("{} {}", c.name, cql_type(c.ty)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ];
                for statement in ddl {
                    // Schema statements carry no data: the only interpolated names are validated
                    // identifiers.
                    session
                        .query_unpaged(statement, ())
                        .await
                        .map_err(|e| error("creating the schema")(e.into()))?;
                }
            }
            Schema::Existing => {
                let exists = |cql: &'static str, values: Vec<String>| {
                    let session = &session;
                    let error = error("reading the schema");
                    async move {
                        let result = session.query_unpaged(cql, values).await.map_err(|e| error(e.into()))?;
                        let rows = result.into_rows_result().map_err(|e| error(e.into()))?;
                        Ok::<_, PipelineError>(rows.rows_num() > 0)
                    }
                };
                let missing = |what: &'static str, name: String| PipelineError::Missing {
                    what,
                    name,
                    hint: "it is created by `ingest`, `sink` or `pipeline`",
                };
                if !exists(
                    "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
                    vec![ks.clone()],
                )
                .await?
                {
                    return Err(missing("keyspace", ks.clone()));
                }
                if !exists(
                    "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?",
                    vec![ks.clone(), "users".into()],
                )
                .await?
                {
                    return Err(missing("table", format!("{ks}.users")));
                }
            }
        }
        let list = COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
        // Every statement is idempotent (upserts with an explicit write time, reads), so the
        // driver may retry it on another replica when a node dies mid-request.
        let prepare = |cql: String| {
            let session = &session;
            let error = error("preparing statements");
            async move {
                let mut statement = session.prepare(cql).await.map_err(|e| error(e.into()))?;
                statement.set_is_idempotent(true);
                Ok::<_, PipelineError>(statement)
            }
        };
        let insert = prepare(format!(
            "INSERT INTO {ks}.users ({list}) VALUES ({}) USING TIMESTAMP ?",
            vec!["?"; COLUMNS.len()].join(", ")
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

    fn error(&self, context: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> PipelineError {
        PipelineError::Cassandra {
            nodes: self.nodes.clone(),
            context,
            source: Box::new(e),
        }
    }

    /// Upserts one record by `user_id` with the write time `timestamp` (microseconds; see
    /// [`crate::write_timestamp`]). Writing it twice leaves one row, and a write with an
    /// older timestamp than the row's leaves the row as it is.
    pub async fn upsert(&self, record: &UserRecord, timestamp: i64) -> Result<(), PipelineError> {
        let mut values: Vec<Cell> = record.fields().into_iter().map(Cell).collect();
        values.push(Cell(Field::BigInt(timestamp)));
        self.session
            .execute_unpaged(&self.insert, values)
            .await
            .map(|_| ())
            .map_err(|e| self.error("inserting a user", e))
    }

    /// Every row, read in parallel over token ranges, ordered by (kafka_partition,
    /// kafka_offset, user_id).
    pub async fn scan(&self) -> Result<Vec<UserRecord>, PipelineError> {
        let parts: Vec<Vec<UserRecord>> = stream::iter(token_ranges())
            .map(|range| retried(READ_ATTEMPTS, |_, _| {}, move || self.scan_range(range)))
            .buffer_unordered(SCAN_PARALLELISM)
            .try_collect()
            .await?;
        let mut records: Vec<UserRecord> = parts.into_iter().flatten().collect();
        records.sort_by_key(|r| (r.kafka_partition, r.kafka_offset, r.user_id));
        Ok(records)
    }

    async fn scan_range(&self, range: (i64, i64)) -> Result<Vec<UserRecord>, PipelineError> {
        let pager = self
            .session
            .execute_iter(self.scan.clone(), range)
            .await
            .map_err(|e| self.error("scanning users", e))?;
        let rows = pager
            .rows_stream::<Row>()
            .map_err(|e| self.error("reading users", e))?
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| self.error("reading users", e))?;
        rows.into_iter()
            .map(|row| record_of(row).map_err(|e| self.error("reading users", e)))
            .collect()
    }

    /// Number of rows, counted in parallel over token ranges.
    pub async fn count(&self) -> Result<u64, PipelineError> {
        let counts: Vec<i64> = stream::iter(token_ranges())
            .map(|range| retried(READ_ATTEMPTS, |_, _| {}, move || self.count_range(range)))
            .buffer_unordered(SCAN_PARALLELISM)
            .try_collect()
            .await?;
        Ok(counts.iter().sum::<i64>() as u64)
    }

    async fn count_range(&self, range: (i64, i64)) -> Result<i64, PipelineError> {
        let result = self
            .session
            .execute_unpaged(&self.count, range)
            .await
            .map_err(|e| self.error("counting users", e))?;
        let rows = result.into_rows_result().map_err(|e| self.error("counting users", e))?;
        let (n,): (i64,) = rows.single_row().map_err(|e| self.error("counting users", e))?;
        Ok(n)
    }
}

/// Tries of each read of a token range: a node that died but is not yet known to be down can
/// time a quorum read out, and the next try goes to replicas that answer.
const READ_ATTEMPTS: u32 = 6;

/// Runs `request` until it succeeds, is [`refused`], or `attempts` tries are spent, waiting
/// 100 ms before the second try and twice as long before each next one (3.1 s in all for 6
/// tries). `on_retry` sees each error that is retried and its attempt number.
pub(crate) async fn retried<T, F, Fut>(
    attempts: u32,
    mut on_retry: impl FnMut(&PipelineError, u32),
    mut request: F,
) -> Result<T, PipelineError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PipelineError>>,
{
    let mut backoff = std::time::Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match request().await {
            Err(error) if attempt < attempts && !refused(&error) => {
                on_retry(&error, attempt);
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Whether Cassandra (or the driver, before sending) refused a write for what the record holds,
/// so that retrying it cannot succeed. Everything else (timeouts, unavailable replicas, lost
/// connections, missing permissions) may pass and is retried.
pub(crate) fn refused(error: &PipelineError) -> bool {
    let PipelineError::Cassandra { source, .. } = error else {
        return false;
    };
    matches!(
        source.downcast_ref::<ExecutionError>(),
        Some(ExecutionError::BadQuery(_))
            | Some(ExecutionError::LastAttemptError(RequestAttemptError::DbError(
                DbError::Invalid,
                _
            )))
    )
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
    let store = Store::connect(config, Schema::Existing).await?;
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
    fn only_errors_about_the_record_count_as_refusals() {
        let cassandra = |source: ExecutionError| PipelineError::Cassandra {
            nodes: "n".into(),
            context: "inserting a user",
            source: Box::new(source),
        };
        let db = |error: DbError| {
            cassandra(ExecutionError::LastAttemptError(RequestAttemptError::DbError(
                error,
                "m".into(),
            )))
        };
        assert!(refused(&db(DbError::Invalid)));
        assert!(!refused(&db(DbError::Overloaded)));
        assert!(!refused(&db(DbError::Unauthorized)));
        assert!(!refused(&cassandra(ExecutionError::RequestTimeout(
            std::time::Duration::from_secs(1)
        ))));
        assert!(!refused(&cassandra(ExecutionError::EmptyPlan)));
    }

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
