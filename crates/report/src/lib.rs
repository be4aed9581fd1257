//! Plots of a results folder or a comparison, as SVG and PNG beside its tables: held-out
//! learning curves with 95% bands and the references as lines, regret to the online reference
//! over training, final performance as intervals, performance profiles with bands, and each
//! learner's TD loss and mean Q over training. They are drawn from the folder's own files
//! (`manifest.json`, `evals.parquet`, `metrics.parquet`, `comparison.parquet`).

mod data;
mod plots;

use std::path::{Path, PathBuf};

pub use data::{Curve, FolderData, Reference, Series};
pub use plots::PLOTS;

/// Why plots could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file of the folder is missing or unreadable.
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    /// A plot could not be drawn or written.
    #[error("{path}: {message}")]
    Draw { path: PathBuf, message: String },
}

/// Plots a results folder written by `run` into `dir/plots/`; returns the files written.
pub fn plot_results(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let data = FolderData::read(dir, true)?;
    plots::write_all(&dir.join("plots"), &data)
}

/// Plots a comparison folder written by `compare` (its `comparison.parquet`) into `dir/plots/`.
pub fn plot_comparison(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let data = FolderData::read(dir, false)?;
    plots::write_all(&dir.join("plots"), &data)
}
