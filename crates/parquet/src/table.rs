//! Parquet files through polars, written the same way everywhere: Snappy compression (read by
//! Power BI, Spark and pandas alike), single-threaded encoding so that the same frame always
//! gives the same bytes, and errors that name the file.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use sha2::{Digest, Sha256};

/// Error from reading or writing a Parquet file.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be opened, created or hashed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// polars could not encode or decode the file.
    #[error("{path}: not a readable Parquet file: {source}")]
    Parquet { path: PathBuf, source: PolarsError },
}

/// Writes `frame` to `path` (creating parent folders) and returns the file's size in bytes.
pub fn write(path: &Path, frame: &mut DataFrame) -> Result<u64, TableError> {
    let io = |source| TableError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let file = File::create(path).map_err(io)?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Snappy)
        .set_parallel(false)
        .finish(frame)
        .map_err(|source| TableError::Parquet {
            path: path.to_owned(),
            source,
        })
}

/// Reads the whole file at `path`.
pub fn read(path: &Path) -> Result<DataFrame, TableError> {
    let file = File::open(path).map_err(|source| TableError::Io {
        path: path.to_owned(),
        source,
    })?;
    ParquetReader::new(file).finish().map_err(|source| TableError::Parquet {
        path: path.to_owned(),
        source,
    })
}

/// The SHA-256 of a file's bytes, as lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String, TableError> {
    let bytes = std::fs::read(path).map_err(|source| TableError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// Lower-case hex of a byte slice.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The polars type of a UTC timestamp in milliseconds, the one Power BI reads as datetimezone.
pub fn utc_millis() -> DataType {
    DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
}
