//! Versioned Parquet snapshots of user records, each with a manifest beside it.
//!
//! `FILE.parquet` holds one row per [`UserRecord`]; `FILE.manifest.json` holds the schema
//! version, the row count, the SHA-256 of the Parquet bytes and what produced it. Reading checks
//! all of these, so a truncated, edited or foreign file is refused with a reason, never
//! half-used. The generator (`generate`) and the Cassandra export (`snapshot`) write the same
//! schema, so the env replays either.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::table::{self, TableError};
use contract_rl_core::record::UserRecord;
use contract_rl_core::schema::{self, COLUMNS, ColumnType, Field};

/// The version of the column layout below; bump it when a column changes.
pub const SCHEMA_VERSION: u32 = 1;

/// What sits beside a snapshot as `FILE.manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotManifest {
    /// Column layout version ([`SCHEMA_VERSION`] when written by this build).
    pub schema_version: u32,
    /// Number of rows (users).
    pub rows: u64,
    /// SHA-256 of the Parquet file's bytes, lower-case hex.
    pub sha256: String,
    /// What produced the snapshot.
    pub produced_by: Producer,
    /// When the snapshot was written.
    pub created_at: DateTime<Utc>,
}

/// The command and parameters that produced a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// The subcommand, e.g. "generate" or "snapshot".
    pub command: String,
    /// The crate version that wrote it.
    pub version: String,
    /// The subcommand's parameters (seed, users, nat, ...).
    pub params: serde_json::Value,
}

/// A snapshot read back and verified.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub records: Vec<UserRecord>,
    pub manifest: SnapshotManifest,
}

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading the Parquet file failed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// Writing the Parquet file failed.
    #[error(transparent)]
    Write(TableError),
    /// The manifest is absent.
    #[error(
        "{path}: manifest missing; a snapshot is FILE.parquet plus FILE.manifest.json (made by `contract-rl generate` or `contract-rl snapshot`)"
    )]
    MissingManifest { path: PathBuf },
    /// The manifest is not valid JSON of the expected shape.
    #[error("{path}: unreadable manifest: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    /// The manifest could not be written.
    #[error("{path}: {source}")]
    WriteManifest { path: PathBuf, source: std::io::Error },
    /// The written snapshot could not be synced or moved into place.
    #[error("{path}: could not put the new snapshot in place: {source}")]
    Replace { path: PathBuf, source: std::io::Error },
    /// The data changed since the manifest was written.
    #[error("{path}: SHA-256 is {actual} but the manifest says {expected}: the file was modified or truncated")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A schema version this build does not read.
    #[error("{path}: schema_version {found} is not supported; this build reads version {supported}")]
    SchemaVersion { path: PathBuf, found: u32, supported: u32 },
    /// Columns differ from the snapshot schema.
    #[error("{path}: column `{column}`: expected {expected}, found {found}")]
    Schema {
        path: PathBuf,
        column: String,
        expected: String,
        found: String,
    },
    /// A value is null or malformed where the schema forbids it.
    #[error("{path}: row {row}, column `{column}`: {reason}")]
    Value {
        path: PathBuf,
        row: usize,
        column: &'static str,
        reason: String,
    },
    /// The row count differs from the manifest.
    #[error("{path}: {actual} rows but the manifest says {expected}")]
    RowCount { path: PathBuf, expected: u64, actual: u64 },
}

impl SnapshotError {
    /// Whether the snapshot read is the user's input gone wrong (missing, modified, foreign), not
    /// a failure to write one.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Write(_) | Self::WriteManifest { .. } | Self::Replace { .. })
    }
}

/// The manifest path of a snapshot: `x.parquet` → `x.manifest.json`.
pub fn manifest_path(path: &Path) -> PathBuf {
    path.with_extension("manifest.json")
}

/// Writes `records` to `path` and its manifest beside it, atomically: both are written to
/// temporary files in the same folder and synced, then renamed into place under an exclusive lock
/// on `.FILE.lock`. Readers take that lock shared, so neither they nor a concurrent writer ever
/// see a manifest that does not describe its file, and a crash leaves the previous snapshot whole.
pub fn write(path: &Path, records: &[UserRecord], producer: Producer) -> Result<SnapshotManifest, SnapshotError> {
    let staged = Staged::new(path);
    let mut frame = to_frame(records).expect("columns of equal length");
    table::write(&staged.data, &mut frame).map_err(SnapshotError::Write)?;
    sync(&staged.data)?;
    let manifest = SnapshotManifest {
        schema_version: SCHEMA_VERSION,
        rows: records.len() as u64,
        sha256: table::sha256_file(&staged.data)?,
        produced_by: producer,
        created_at: Utc::now(),
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    std::fs::write(&staged.manifest, json + "\n").map_err(|source| SnapshotError::WriteManifest {
        path: manifest_path(path),
        source,
    })?;
    sync(&staged.manifest)?;
    let lock = File::create(lock_path(path)).map_err(replace_error(path))?;
    lock.lock().map_err(replace_error(path))?;
    std::fs::rename(&staged.data, path).map_err(replace_error(path))?;
    std::fs::rename(&staged.manifest, manifest_path(path)).map_err(replace_error(path))?;
    sync(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    Ok(manifest)
}

/// The temporary files of a snapshot being written, removed if it is not renamed into place.
struct Staged {
    data: PathBuf,
    manifest: PathBuf,
}

impl Staged {
    fn new(path: &Path) -> Self {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let stem = format!(".{name}.{}.{nanos}", std::process::id());
        Self {
            data: path.with_file_name(format!("{stem}.tmp")),
            manifest: path.with_file_name(format!("{stem}.manifest.tmp")),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.data);
        let _ = std::fs::remove_file(&self.manifest);
    }
}

/// The lock file of a snapshot: `x.parquet` → `.x.parquet.lock`.
fn lock_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.lock"))
}

/// Flushes a file or folder to disk.
fn sync(path: &Path) -> Result<(), SnapshotError> {
    File::open(path).and_then(|f| f.sync_all()).map_err(replace_error(path))
}

fn replace_error(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.to_owned();
    move |source| SnapshotError::Replace { path, source }
}

/// A shared lock on the snapshot's lock file, if a writer made one (reading creates nothing).
fn read_lock(path: &Path) -> Option<File> {
    let file = File::open(lock_path(path)).ok()?;
    file.lock_shared().ok()?;
    Some(file)
}

/// Reads the manifest of the snapshot at `path`.
pub fn read_manifest(path: &Path) -> Result<SnapshotManifest, SnapshotError> {
    let _lock = read_lock(path);
    read_manifest_unlocked(path)
}

fn read_manifest_unlocked(path: &Path) -> Result<SnapshotManifest, SnapshotError> {
    let manifest_file = manifest_path(path);
    let text = std::fs::read_to_string(&manifest_file).map_err(|_| SnapshotError::MissingManifest {
        path: manifest_file.clone(),
    })?;
    serde_json::from_str(&text).map_err(|e| SnapshotError::BadManifest {
        path: manifest_file,
        reason: e.to_string(),
    })
}

/// Reads and verifies the snapshot at `path`: manifest, hash, schema, row count, values.
pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
    let _lock = read_lock(path);
    let manifest = read_manifest_unlocked(path)?;
    if manifest.schema_version != SCHEMA_VERSION {
        return Err(SnapshotError::SchemaVersion {
            path: manifest_path(path),
            found: manifest.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    let actual = table::sha256_file(path)?;
    if actual != manifest.sha256 {
        return Err(SnapshotError::HashMismatch {
            path: path.to_owned(),
            expected: manifest.sha256.clone(),
            actual,
        });
    }
    let frame = table::read(path)?;
    check_schema(path, &frame)?;
    if frame.height() as u64 != manifest.rows {
        return Err(SnapshotError::RowCount {
            path: path.to_owned(),
            expected: manifest.rows,
            actual: frame.height() as u64,
        });
    }
    let records = from_frame(path, &frame)?;
    Ok(Snapshot { records, manifest })
}

fn check_schema(path: &Path, frame: &DataFrame) -> Result<(), SnapshotError> {
    let expected = to_frame(&[]).expect("empty frame").schema().clone();
    let found = frame.schema();
    for (name, dtype) in expected.iter() {
        match found.get(name) {
            Some(d) if d == dtype => {}
            other => {
                return Err(SnapshotError::Schema {
                    path: path.to_owned(),
                    column: name.to_string(),
                    expected: dtype.to_string(),
                    found: other.map_or("no such column".into(), |d| d.to_string()),
                });
            }
        }
    }
    if let Some(extra) = found.iter_names().find(|n| !expected.contains(n)) {
        return Err(SnapshotError::Schema {
            path: path.to_owned(),
            column: extra.to_string(),
            expected: "no such column".into(),
            found: found.get(extra).expect("listed").to_string(),
        });
    }
    Ok(())
}

/// The snapshot columns: [`COLUMNS`], in order.
fn to_frame(records: &[UserRecord]) -> PolarsResult<DataFrame> {
    let rows: Vec<Vec<Field<'_>>> = records.iter().map(UserRecord::fields).collect();
    let columns = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let name = column.name.into();
            match column.ty {
                ColumnType::Uuid => Column::new(name, values(&rows, i, |f| f.as_uuid().map(|u| u.to_string()))),
                ColumnType::Text => Column::new(name, values(&rows, i, Field::as_text)),
                ColumnType::Timestamp => Column::new(
                    name,
                    values(&rows, i, |f| f.as_timestamp().map(|t| t.timestamp_millis())),
                )
                .cast(&table::utc_millis())
                .expect("i64 casts to datetime"),
                ColumnType::Int => Column::new(name, values(&rows, i, Field::as_int)),
                ColumnType::BigInt => Column::new(name, values(&rows, i, Field::as_big_int)),
                ColumnType::Double => Column::new(name, values(&rows, i, Field::as_double)),
            }
        })
        .collect();
    DataFrame::new_infer_height(columns)
}

/// Column `i` of `rows`, each value picked by `pick` (`None` for a null).
fn values<'r, 'f, T>(
    rows: &'r [Vec<Field<'f>>],
    i: usize,
    pick: impl Fn(&'r Field<'f>) -> Option<T>,
) -> Vec<Option<T>> {
    rows.iter().map(|row| pick(&row[i])).collect()
}

/// The values of one checked column as fields, with errors naming row and column.
fn column_fields(
    path: &Path,
    frame: &DataFrame,
    column: &schema::Column,
) -> Result<Vec<Field<'static>>, SnapshotError> {
    let error = |row: usize, reason: String| SnapshotError::Value {
        path: path.to_owned(),
        row,
        column: column.name,
        reason,
    };
    let values = frame.column(column.name).expect("schema checked");
    match column.ty {
        ColumnType::Uuid | ColumnType::Text => values
            .str()
            .expect("schema checked")
            .iter()
            .enumerate()
            .map(|(row, v)| match (v, column.ty) {
                (None, _) => Ok(Field::Null),
                (Some(s), ColumnType::Uuid) => Uuid::parse_str(s)
                    .map(Field::Uuid)
                    .map_err(|_| error(row, format!("not a UUID: {s:?}"))),
                (Some(s), _) => Ok(Field::Text(s.to_owned().into())),
            })
            .collect(),
        ColumnType::Double => Ok(values
            .f64()
            .expect("schema checked")
            .iter()
            .map(|v| v.map_or(Field::Null, Field::Double))
            .collect()),
        ColumnType::Timestamp | ColumnType::Int | ColumnType::BigInt => values
            .cast(&DataType::Int64)
            .expect("integer or datetime")
            .i64()
            .expect("cast to i64")
            .iter()
            .enumerate()
            .map(|(row, v)| match (v, column.ty) {
                (None, _) => Ok(Field::Null),
                (Some(ms), ColumnType::Timestamp) => DateTime::from_timestamp_millis(ms)
                    .map(Field::Timestamp)
                    .ok_or_else(|| error(row, "timestamp out of range".into())),
                (Some(v), ColumnType::Int) => Ok(Field::Int(v as i32)),
                (Some(v), _) => Ok(Field::BigInt(v)),
            })
            .collect(),
    }
}

fn from_frame(path: &Path, frame: &DataFrame) -> Result<Vec<UserRecord>, SnapshotError> {
    let mut columns = COLUMNS
        .iter()
        .map(|c| column_fields(path, frame, c).map(Vec::into_iter))
        .collect::<Result<Vec<_>, _>>()?;
    (0..frame.height())
        .map(|row| {
            UserRecord::from_fields(columns.iter_mut().map(|c| c.next().expect("one value per row"))).map_err(|e| {
                SnapshotError::Value {
                    path: path.to_owned(),
                    row,
                    column: e.column,
                    reason: format!("expected {}, found {}", e.expected, e.found),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_rl_core::source::{Generator, generate_records};

    fn sample(n: usize) -> Vec<UserRecord> {
        let (records, rejected) = generate_records(&Generator::new("snap", &[]).unwrap(), n);
        assert!(rejected.is_empty());
        records
    }

    fn producer() -> Producer {
        Producer {
            command: "test".into(),
            version: "0".into(),
            params: serde_json::json!({}),
        }
    }

    #[test]
    fn a_snapshot_round_trips_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.parquet");
        let mut records = sample(300);
        records[7].ingested_at = Some(Utc::now().with_timezone(&Utc));
        records[7].ingested_at = DateTime::from_timestamp_millis(records[7].ingested_at.unwrap().timestamp_millis());
        records[7].kafka_partition = Some(2);
        records[7].kafka_offset = Some(12345);
        let manifest = write(&path, &records, producer()).unwrap();
        assert_eq!(manifest.rows, 300);
        let back = read(&path).unwrap();
        assert_eq!(back.records, records);
        assert_eq!(back.manifest, manifest);
    }

    #[test]
    fn the_same_records_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample(100);
        let a = write(&dir.path().join("a.parquet"), &records, producer()).unwrap();
        let b = write(&dir.path().join("b.parquet"), &records, producer()).unwrap();
        assert_eq!(a.sha256, b.sha256);
    }

    #[test]
    fn a_modified_file_is_refused_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.parquet");
        write(&path, &sample(50), producer()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xFF;
        std::fs::write(&path, bytes).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, SnapshotError::HashMismatch { .. }), "{err}");
        assert!(err.to_string().contains("s.parquet"));
    }

    #[test]
    fn a_missing_manifest_or_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.parquet");
        let err = read(&path).unwrap_err();
        assert!(matches!(err, SnapshotError::MissingManifest { .. }));
        assert!(err.to_string().contains("none.manifest.json"));
    }

    #[test]
    fn a_foreign_parquet_file_is_refused_by_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.parquet");
        let mut frame = df!("user_id" => ["x"], "age" => [1.5]).unwrap();
        table::write(&path, &mut frame).unwrap();
        let manifest = SnapshotManifest {
            schema_version: SCHEMA_VERSION,
            rows: 1,
            sha256: table::sha256_file(&path).unwrap(),
            produced_by: producer(),
            created_at: Utc::now(),
        };
        std::fs::write(manifest_path(&path), serde_json::to_string(&manifest).unwrap()).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, SnapshotError::Schema { .. }), "{err}");
    }
}
