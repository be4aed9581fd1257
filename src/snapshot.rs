//! Versioned Parquet snapshots of user records, each with a manifest beside it.
//!
//! `FILE.parquet` holds one row per [`UserRecord`]; `FILE.manifest.json` holds the schema
//! version, the row count, the SHA-256 of the Parquet bytes and what produced it. Reading checks
//! all of these, so a truncated, edited or foreign file is refused with a reason, never
//! half-used. The generator (`generate`) and the Cassandra export (`snapshot`) write the same
//! schema, so the env replays either.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::record::UserRecord;
use crate::table::{self, TableError};

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
    /// Reading or writing the Parquet file failed.
    #[error(transparent)]
    Table(#[from] TableError),
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

/// The manifest path of a snapshot: `x.parquet` → `x.manifest.json`.
pub fn manifest_path(path: &Path) -> PathBuf {
    path.with_extension("manifest.json")
}

/// Writes `records` to `path` and its manifest beside it.
pub fn write(path: &Path, records: &[UserRecord], producer: Producer) -> Result<SnapshotManifest, SnapshotError> {
    let mut frame = to_frame(records).expect("columns of equal length");
    table::write(path, &mut frame)?;
    let manifest = SnapshotManifest {
        schema_version: SCHEMA_VERSION,
        rows: records.len() as u64,
        sha256: table::sha256_file(path)?,
        produced_by: producer,
        created_at: Utc::now(),
    };
    let manifest_file = manifest_path(path);
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    std::fs::write(&manifest_file, json + "\n").map_err(|source| SnapshotError::WriteManifest {
        path: manifest_file,
        source,
    })?;
    Ok(manifest)
}

/// Reads the manifest of the snapshot at `path`.
pub fn read_manifest(path: &Path) -> Result<SnapshotManifest, SnapshotError> {
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
    let manifest = read_manifest(path)?;
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

fn text(name: &str, records: &[UserRecord], f: impl Fn(&UserRecord) -> &str) -> Column {
    Column::new(name.into(), records.iter().map(f).collect::<Vec<_>>())
}

fn int32(name: &str, records: &[UserRecord], f: impl Fn(&UserRecord) -> Option<i32>) -> Column {
    Column::new(name.into(), records.iter().map(f).collect::<Vec<_>>())
}

fn float(name: &str, records: &[UserRecord], f: impl Fn(&UserRecord) -> f64) -> Column {
    Column::new(name.into(), records.iter().map(f).collect::<Vec<_>>())
}

fn time(name: &str, records: &[UserRecord], f: impl Fn(&UserRecord) -> Option<DateTime<Utc>>) -> Column {
    let millis: Vec<Option<i64>> = records.iter().map(|r| f(r).map(|t| t.timestamp_millis())).collect();
    Column::new(name.into(), millis)
        .cast(&table::utc_millis())
        .expect("i64 casts to datetime")
}

/// The snapshot columns, in order.
fn to_frame(records: &[UserRecord]) -> PolarsResult<DataFrame> {
    let user_ids: Vec<String> = records.iter().map(|r| r.user_id.to_string()).collect();
    DataFrame::new_infer_height(vec![
        Column::new("user_id".into(), user_ids),
        text("gender", records, |r| &r.gender),
        text("title", records, |r| &r.title),
        text("first_name", records, |r| &r.first_name),
        text("last_name", records, |r| &r.last_name),
        text("email", records, |r| &r.email),
        text("username", records, |r| &r.username),
        time("dob", records, |r| Some(r.dob)),
        int32("age", records, |r| Some(r.age)),
        time("registered", records, |r| Some(r.registered)),
        int32("seniority_years", records, |r| Some(r.seniority_years)),
        text("phone", records, |r| &r.phone),
        text("cell", records, |r| &r.cell),
        text("street", records, |r| &r.street),
        text("city", records, |r| &r.city),
        text("state", records, |r| &r.state),
        text("country", records, |r| &r.country),
        text("postcode", records, |r| &r.postcode),
        float("latitude", records, |r| r.latitude),
        float("longitude", records, |r| r.longitude),
        int32("tz_offset_minutes", records, |r| Some(r.tz_offset_minutes)),
        text("nat", records, |r| &r.nat),
        text("picture", records, |r| &r.picture),
        text("source", records, |r| &r.source),
        time("ingested_at", records, |r| r.ingested_at),
        int32("kafka_partition", records, |r| r.kafka_partition),
        Column::new(
            "kafka_offset".into(),
            records.iter().map(|r| r.kafka_offset).collect::<Vec<_>>(),
        ),
    ])
}

/// Typed access to the columns of a checked frame, with errors naming row and column.
struct Rows<'a> {
    path: &'a Path,
    frame: &'a DataFrame,
}

impl Rows<'_> {
    fn error(&self, row: usize, column: &'static str, reason: &str) -> SnapshotError {
        SnapshotError::Value {
            path: self.path.to_owned(),
            row,
            column,
            reason: reason.to_owned(),
        }
    }

    fn text(&self, column: &'static str) -> Result<Vec<String>, SnapshotError> {
        let values = self
            .frame
            .column(column)
            .expect("schema checked")
            .str()
            .expect("schema checked");
        values
            .iter()
            .enumerate()
            .map(|(row, v)| v.map(str::to_owned).ok_or_else(|| self.error(row, column, "null")))
            .collect()
    }

    fn opt_i64(&self, column: &'static str) -> Vec<Option<i64>> {
        let cast = self
            .frame
            .column(column)
            .expect("schema checked")
            .cast(&DataType::Int64)
            .expect("integer or datetime");
        cast.i64().expect("cast to i64").iter().collect()
    }

    fn i64(&self, column: &'static str) -> Result<Vec<i64>, SnapshotError> {
        self.opt_i64(column)
            .into_iter()
            .enumerate()
            .map(|(row, v)| v.ok_or_else(|| self.error(row, column, "null")))
            .collect()
    }

    fn time(&self, column: &'static str) -> Result<Vec<DateTime<Utc>>, SnapshotError> {
        self.i64(column)?
            .into_iter()
            .enumerate()
            .map(|(row, ms)| {
                DateTime::from_timestamp_millis(ms).ok_or_else(|| self.error(row, column, "timestamp out of range"))
            })
            .collect()
    }

    fn f64(&self, column: &'static str) -> Result<Vec<f64>, SnapshotError> {
        let values = self
            .frame
            .column(column)
            .expect("schema checked")
            .f64()
            .expect("schema checked");
        values
            .iter()
            .enumerate()
            .map(|(row, v)| v.ok_or_else(|| self.error(row, column, "null")))
            .collect()
    }
}

fn from_frame(path: &Path, frame: &DataFrame) -> Result<Vec<UserRecord>, SnapshotError> {
    let rows = Rows { path, frame };
    let user_ids = rows
        .text("user_id")?
        .iter()
        .enumerate()
        .map(|(row, s)| Uuid::parse_str(s).map_err(|_| rows.error(row, "user_id", &format!("not a UUID: {s:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let gender = rows.text("gender")?;
    let title = rows.text("title")?;
    let first_name = rows.text("first_name")?;
    let last_name = rows.text("last_name")?;
    let email = rows.text("email")?;
    let username = rows.text("username")?;
    let dob = rows.time("dob")?;
    let age = rows.i64("age")?;
    let registered = rows.time("registered")?;
    let seniority = rows.i64("seniority_years")?;
    let phone = rows.text("phone")?;
    let cell = rows.text("cell")?;
    let street = rows.text("street")?;
    let city = rows.text("city")?;
    let state = rows.text("state")?;
    let country = rows.text("country")?;
    let postcode = rows.text("postcode")?;
    let latitude = rows.f64("latitude")?;
    let longitude = rows.f64("longitude")?;
    let tz = rows.i64("tz_offset_minutes")?;
    let nat = rows.text("nat")?;
    let picture = rows.text("picture")?;
    let source = rows.text("source")?;
    let ingested_at = rows.opt_i64("ingested_at");
    let partition = rows.opt_i64("kafka_partition");
    let offset = rows.opt_i64("kafka_offset");
    Ok((0..frame.height())
        .map(|i| UserRecord {
            user_id: user_ids[i],
            gender: gender[i].clone(),
            title: title[i].clone(),
            first_name: first_name[i].clone(),
            last_name: last_name[i].clone(),
            email: email[i].clone(),
            username: username[i].clone(),
            dob: dob[i],
            age: age[i] as i32,
            registered: registered[i],
            seniority_years: seniority[i] as i32,
            phone: phone[i].clone(),
            cell: cell[i].clone(),
            street: street[i].clone(),
            city: city[i].clone(),
            state: state[i].clone(),
            country: country[i].clone(),
            postcode: postcode[i].clone(),
            latitude: latitude[i],
            longitude: longitude[i],
            tz_offset_minutes: tz[i] as i32,
            nat: nat[i].clone(),
            picture: picture[i].clone(),
            source: source[i].clone(),
            ingested_at: ingested_at[i].and_then(DateTime::from_timestamp_millis),
            kafka_partition: partition[i].map(|p| p as i32),
            kafka_offset: offset[i],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Generator, generate_records};

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
