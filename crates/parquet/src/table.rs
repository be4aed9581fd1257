//! Parquet files through polars, written the same way everywhere: Snappy compression (read by
//! Power BI, Spark and pandas alike), single-threaded encoding so that the same frame always
//! gives the same bytes, text declared as plain UTF-8 in the embedded Arrow schema, and errors
//! that name the file.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::datatypes::ArrowDataType;
use polars::prelude::*;
use polars_parquet::arrow::write::schema_to_metadata_key;
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
    /// A column is missing or of another type.
    #[error("{path}: column `{column}`: {source}")]
    Column {
        path: PathBuf,
        column: String,
        source: PolarsError,
    },
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
        .with_key_value_metadata(Some(KeyValueMetadata::Static(vec![schema_to_metadata_key(
            &plain_arrow_schema(frame.schema()),
        )])))
        .with_compression(ParquetCompression::Snappy)
        .set_parallel(false)
        .finish(frame)
        .map_err(|source| TableError::Parquet {
            path: path.to_owned(),
            source,
        })
}

/// The Arrow schema other readers should see: polars embeds its own newest types (text as
/// `string_view`), which pyarrow reads back as view types and older readers cannot read; this
/// one declares text as `string` (UTF-8, 32-bit offsets) and keeps every other type.
fn plain_arrow_schema(schema: &Schema) -> ArrowSchema {
    schema
        .to_arrow(CompatLevel::oldest())
        .into_iter()
        .map(|(name, mut field)| {
            if field.dtype == ArrowDataType::LargeUtf8 {
                field.dtype = ArrowDataType::Utf8;
            }
            (name, field)
        })
        .collect()
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

/// A table read from a file, whose column accessors name the file and column in errors.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its rows.
    pub frame: DataFrame,
}

impl Table {
    /// Reads the whole file at `path`.
    pub fn read(path: &Path) -> Result<Self, TableError> {
        Ok(Self {
            path: path.to_owned(),
            frame: read(path)?,
        })
    }

    fn error(&self, column: &str) -> impl FnOnce(PolarsError) -> TableError {
        let (path, column) = (self.path.clone(), column.to_owned());
        move |source| TableError::Column { path, column, source }
    }

    /// The column `name`.
    pub fn column(&self, name: &str) -> Result<&Column, TableError> {
        self.frame.column(name).map_err(self.error(name))
    }

    /// Text column `name` (nulls as "").
    pub fn strings(&self, name: &str) -> Result<Vec<String>, TableError> {
        let column = self.column(name)?.str().map_err(self.error(name))?;
        Ok(column.iter().map(|v| v.unwrap_or_default().to_owned()).collect())
    }

    /// Integer column `name`.
    pub fn ints(&self, name: &str) -> Result<Vec<Option<i64>>, TableError> {
        let column = self.column(name)?.cast(&DataType::Int64).map_err(self.error(name))?;
        Ok(column.i64().map_err(self.error(name))?.iter().collect())
    }

    /// Number column `name` (nulls as NaN).
    pub fn floats(&self, name: &str) -> Result<Vec<f64>, TableError> {
        let column = self.column(name)?.cast(&DataType::Float64).map_err(self.error(name))?;
        let column = column.f64().map_err(self.error(name))?;
        Ok(column.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
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
