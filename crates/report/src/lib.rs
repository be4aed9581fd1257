//! Plots and pages of a results folder or a comparison, beside its tables. Plots, as SVG and
//! PNG: held-out learning curves with 95% bands and the references as lines, regret to the
//! online reference over training, final performance as intervals, performance profiles with
//! bands, each learner's TD loss and mean Q over training, and each policy's offers per user
//! segment beside the references'. `report.html`: one page that holds the plots, the tables,
//! what each agent and reference knows and the manifest. All are
//! drawn from the folder's own files (`manifest.json`, `evals.parquet`, `metrics.parquet`,
//! `recommendations.parquet`, `comparison.parquet`, `summary.md`, `comparison.md`).

mod data;
mod html;
mod markdown;
mod plots;

use std::path::{Path, PathBuf};

pub use data::{Curve, FolderData, Reference, SegmentMix, Series};
pub use plots::PLOTS;

/// Why plots or the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file of the folder is missing or unreadable.
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    /// A table of the folder is missing, unreadable or lacks a column.
    #[error(transparent)]
    Table(#[from] contract_rl_parquet::table::TableError),
    /// A plot could not be drawn or written.
    #[error("{path}: {message}")]
    Draw { path: PathBuf, message: String },
    /// The report could not be written.
    #[error("{path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
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

/// Writes `dir/report.html` for a results folder (one with a `manifest.json`) or a comparison
/// folder, after its plots; returns its path.
pub fn write_report(dir: &Path) -> Result<PathBuf, ReportError> {
    let path = dir.join("report.html");
    let page = html::page(dir)?;
    std::fs::write(&path, page).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
