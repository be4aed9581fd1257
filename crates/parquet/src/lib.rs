//! Parquet I/O for contract-rl through polars: versioned user snapshots with their manifests
//! ([`snapshot`]), experiments loaded from files and their results folders ([`results`]),
//! sharded runs and their merge ([`shards`]), comparisons across results folders ([`compare`]), the Power BI star schema ([`powerbi`]), all
//! written by one encoder ([`table`]) so the same data always gives the same bytes.

pub mod compare;
pub mod powerbi;
pub mod results;
pub mod shards;
pub mod snapshot;
pub mod table;

pub use compare::{CompareError, compare, compare_on};
pub use powerbi::{Bands, ExportError, export_powerbi};
pub use results::{Build, LoadError, LoadedExperiment, ResultsError, write_comparison};
pub use shards::{ShardError, merge, write_shard};
pub use snapshot::{Producer, Snapshot, SnapshotError, SnapshotManifest};
