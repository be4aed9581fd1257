//! Parquet I/O for contract-rl through polars: versioned user snapshots with their manifests
//! ([`snapshot`]), experiments loaded from files and their results folders ([`results`]), all
//! written by one encoder ([`table`]) so the same data always gives the same bytes.

pub mod results;
pub mod snapshot;
pub mod table;

pub use results::{Build, LoadError, LoadedExperiment, ResultsError};
pub use snapshot::{Producer, Snapshot, SnapshotError, SnapshotManifest};
