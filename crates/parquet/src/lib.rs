//! Parquet I/O for contract-rl through polars: versioned user snapshots with their manifests
//! ([`snapshot`]), experiments loaded from files and their results folders ([`results`]),
//! comparisons across results folders ([`compare`]), all
//! written by one encoder ([`table`]) so the same data always gives the same bytes.

pub mod compare;
pub mod results;
pub mod snapshot;
pub mod table;

pub use compare::{CompareError, compare, write_comparison};
pub use results::{Build, LoadError, LoadedExperiment, ResultsError};
pub use snapshot::{Producer, Snapshot, SnapshotError, SnapshotManifest};
