//! The results folder of an experiment: `manifest.json`, `episodes.parquet`,
//! `evals.parquet`, `summary.md` and `summary.parquet`.
//!
//! The Parquet tables hold only what the runs computed (no timings, no dates), so the same
//! config gives byte-identical tables; timings and dates go to the manifest.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Experiment, Results, acceptance_rate, mean, offer_mix};
use crate::report::Summary;
use crate::table::{self, TableError};

/// Why the results folder could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A Parquet table could not be written.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A text file could not be written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// `manifest.json`: what was run, on what, by which build, when, and how fast.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    experiment: &'a str,
    /// SHA-256 of the resolved experiment and env configs (as JSON).
    config_sha256: String,
    config: &'a super::ExperimentConfig,
    env: &'a crate::env::EnvConfig,
    snapshot: SnapshotRef<'a>,
    crate_version: &'static str,
    git_commit: Option<String>,
    seeds: &'a [u64],
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: chrono::DateTime<chrono::Utc>,
    runs: Vec<RunTiming<'a>>,
}

#[derive(Debug, Serialize)]
struct SnapshotRef<'a> {
    path: String,
    sha256: &'a str,
    rows: u64,
}

#[derive(Debug, Serialize)]
struct RunTiming<'a> {
    agent: &'a str,
    seed: u64,
    train_steps: u64,
    seconds: f64,
    /// `train/steps_per_sec`: training env steps per second, evaluation time included.
    train_steps_per_sec: f64,
}

impl Experiment {
    /// Writes the results folder at `out` and returns the summary.
    pub fn write_results(&self, out: &Path, results: &Results) -> Result<Summary, ResultsError> {
        let summary = self.summary(results);
        table::write(&out.join("episodes.parquet"), &mut self.episodes_frame(results))?;
        table::write(&out.join("evals.parquet"), &mut self.evals_frame(results))?;
        table::write(
            &out.join("summary.parquet"),
            &mut summary.frame().expect("equal-length columns"),
        )?;
        write_text(&out.join("summary.md"), &summary.markdown())?;
        let manifest = self.manifest(results);
        write_text(
            &out.join("manifest.json"),
            &(serde_json::to_string_pretty(&manifest).expect("manifest serialises") + "\n"),
        )?;
        Ok(summary)
    }

    fn manifest<'a>(&'a self, results: &'a Results) -> Manifest<'a> {
        let env = self.model.config();
        let resolved = serde_json::json!({ "experiment": &self.config, "env": env });
        Manifest {
            experiment: &self.config.name,
            config_sha256: crate::table::hex(&Sha256::digest(resolved.to_string().as_bytes())),
            config: &self.config,
            env,
            snapshot: SnapshotRef {
                path: self.config.snapshot.display().to_string(),
                sha256: &self.snapshot.sha256,
                rows: self.snapshot.rows,
            },
            crate_version: env!("CARGO_PKG_VERSION"),
            git_commit: git_commit(),
            seeds: &self.config.seeds,
            started_at: results.started_at,
            finished_at: results.finished_at,
            runs: results
                .runs
                .iter()
                .map(|r| RunTiming {
                    agent: &r.agent,
                    seed: r.seed,
                    train_steps: r.train_steps,
                    seconds: r.seconds,
                    train_steps_per_sec: r.train_steps as f64 / r.seconds,
                })
                .collect(),
        }
    }

    /// `episodes.parquet`: one row per training campaign.
    fn episodes_frame(&self, results: &Results) -> DataFrame {
        let mut rows = Vec::new();
        for run in &results.runs {
            let mut step = 0i64;
            for (i, e) in run.episodes.iter().enumerate() {
                step += i64::from(e.length);
                rows.push((run, i as i64 + 1, step, e));
            }
        }
        df!(
            "agent" => rows.iter().map(|(r, ..)| r.agent.clone()).collect::<Vec<_>>(),
            "seed" => rows.iter().map(|(r, ..)| r.seed as i64).collect::<Vec<_>>(),
            "episode" => rows.iter().map(|(_, i, ..)| *i).collect::<Vec<_>>(),
            "step" => rows.iter().map(|(_, _, step, _)| *step).collect::<Vec<_>>(),
            "return" => rows.iter().map(|(.., e)| e.return_).collect::<Vec<_>>(),
            "expected_return" => rows.iter().map(|(.., e)| e.expected_return).collect::<Vec<_>>(),
            "length" => rows.iter().map(|(.., e)| i64::from(e.length)).collect::<Vec<_>>(),
            "acceptance_rate" => rows.iter().map(|(.., e)| f64::from(e.accepted) / f64::from(e.length)).collect::<Vec<_>>(),
        )
        .expect("equal-length columns")
    }

    /// `evals.parquet`: one row per evaluation point of each run.
    fn evals_frame(&self, results: &Results) -> DataFrame {
        let (myopic, hindsight) = self.reference_means();
        let points: Vec<_> = results
            .runs
            .iter()
            .flat_map(|r| r.evals.iter().map(move |e| (r, e)))
            .collect();
        let expected: Vec<f64> = points
            .iter()
            .map(|(_, e)| mean(e.campaigns.iter().map(|c| c.expected_return)))
            .collect();
        let mut columns = vec![
            Column::new(
                "agent".into(),
                points.iter().map(|(r, _)| r.agent.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "seed".into(),
                points.iter().map(|(r, _)| r.seed as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "episode".into(),
                points.iter().map(|(_, e)| e.episode as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "step".into(),
                points.iter().map(|(_, e)| e.step as i64).collect::<Vec<_>>(),
            ),
            Column::new("expected_return".into(), expected.clone()),
            Column::new(
                "return".into(),
                points
                    .iter()
                    .map(|(_, e)| mean(e.campaigns.iter().map(|c| c.return_)))
                    .collect::<Vec<_>>(),
            ),
            Column::new("myopic_oracle_expected_return".into(), vec![myopic; points.len()]),
            Column::new("hindsight_expected_return".into(), vec![hindsight; points.len()]),
            Column::new(
                "regret".into(),
                expected.iter().map(|x| hindsight - x).collect::<Vec<_>>(),
            ),
            Column::new(
                "acceptance_rate".into(),
                points
                    .iter()
                    .map(|(_, e)| acceptance_rate(&e.campaigns))
                    .collect::<Vec<_>>(),
            ),
        ];
        let mixes: Vec<Vec<f64>> = points
            .iter()
            .map(|(_, e)| offer_mix(&e.campaigns, self.model.n_actions()))
            .collect();
        for (a, contract) in self.model.config().contracts.iter().enumerate() {
            let share: Vec<f64> = mixes.iter().map(|m| m[a]).collect();
            columns.push(Column::new(format!("mix_{}", contract.name).into(), share));
        }
        DataFrame::new_infer_height(columns).expect("equal-length columns")
    }
}

fn write_text(path: &Path, text: &str) -> Result<(), ResultsError> {
    std::fs::write(path, text).map_err(|source| ResultsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The commit of the working directory's git checkout, if there is one.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
