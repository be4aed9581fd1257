//! Experiments on disk: loading an experiment file with its env and snapshot
//! ([`LoadedExperiment`]), and its results folder: `manifest.json`, `episodes.parquet`,
//! `evals.parquet`, `metrics.parquet`, `recommendations.parquet`, `summary.md` and
//! `summary.parquet`.
//!
//! `episodes`, `evals`, `recommendations` and `summary` hold only what the runs computed (no timings, no dates),
//! so the same config gives byte-identical tables; timings and dates go to the manifest, and
//! `metrics.parquet` carries steps per second beside the learners' diagnostics.

use std::path::{Path, PathBuf};

use contract_rl_core::agents::AgentFactory;
use contract_rl_core::env::Split;
use contract_rl_core::experiment::{
    EvalPoint, Experiment, ExperimentConfig, ExperimentError, Results, Trace, acceptance_rate, labels, offer_mix,
};
use contract_rl_core::report::stats::mean;
use contract_rl_core::report::{AgentSummary, Comparison, Summary};
use polars::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::snapshot::{self, SnapshotError, SnapshotManifest};
use crate::table::{self, TableError};

/// Why an experiment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The experiment, its env file or an agent is invalid.
    #[error(transparent)]
    Experiment(#[from] ExperimentError),
    /// The snapshot is missing or corrupted.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Why the results folder could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A Parquet table could not be written.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A text file could not be written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The folder just written could not be read back for its comparison.
    #[error("reading back the results: {0}")]
    Compare(Box<crate::CompareError>),
}

/// The build that ran an experiment, for the manifest.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Build {
    /// The workbench's version.
    pub version: &'static str,
    /// The git commit the binary was built from, when it was built from a checkout.
    pub commit: Option<&'static str>,
}

/// An experiment loaded from its file, with the manifest of the snapshot it replays.
#[derive(Debug)]
pub struct LoadedExperiment {
    pub experiment: Experiment,
    pub snapshot: SnapshotManifest,
}

impl LoadedExperiment {
    /// Reads the experiment file, its env file and its snapshot (or `snapshot` instead), and
    /// checks all of them and every agent (with `factory`) before any work.
    pub fn load(path: &Path, snapshot: Option<&Path>, factory: &dyn AgentFactory) -> Result<Self, LoadError> {
        let (mut config, env): (ExperimentConfig, _) = Experiment::load_config(path).map_err(ExperimentError::from)?;
        if let Some(snapshot) = snapshot {
            config.snapshot = snapshot.to_owned();
        }
        let snap = snapshot::read(&config.snapshot)?;
        let experiment = Experiment::new(path, config, env, &snap.records, factory)?;
        Ok(Self {
            experiment,
            snapshot: snap.manifest,
        })
    }
}

/// `manifest.json`: what was run, on what, by which build, when, and how fast.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    experiment: &'a str,
    /// SHA-256 of the resolved experiment and env configs (as JSON).
    config_sha256: String,
    config: &'a ExperimentConfig,
    env: serde_json::Value,
    /// The evals column the summary and comparisons score runs by.
    score: &'static str,
    /// The references' evals columns with their labels: myopic, best online, bound, then the
    /// env kind's others.
    references: Vec<ReferenceColumn>,
    snapshot: SnapshotRef<'a>,
    build: Build,
    seeds: &'a [u64],
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: chrono::DateTime<chrono::Utc>,
    runs: Vec<RunTiming<'a>>,
}

#[derive(Debug, Serialize)]
struct ReferenceColumn {
    column: String,
    label: &'static str,
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

impl LoadedExperiment {
    /// Writes the results folder at `out` and returns the summary.
    pub fn write_results(&self, out: &Path, results: &Results, build: Build) -> Result<Summary, ResultsError> {
        let summary = self.experiment.summary(results);
        table::write(&out.join("episodes.parquet"), &mut episodes_frame(results))?;
        table::write(&out.join("evals.parquet"), &mut self.evals_frame(results))?;
        table::write(&out.join("metrics.parquet"), &mut metrics_frame(results))?;
        table::write(
            &out.join("recommendations.parquet"),
            &mut self.recommendations_frame(results),
        )?;
        table::write(
            &out.join("summary.parquet"),
            &mut summary_frame(&summary).expect("equal-length columns"),
        )?;
        write_text(
            &out.join("summary.md"),
            &(summary.markdown() + &self.experiment.diagnostics(results)),
        )?;
        let manifest = self.manifest(results, build);
        write_text(
            &out.join("manifest.json"),
            &(serde_json::to_string_pretty(&manifest).expect("manifest serialises") + "\n"),
        )?;
        let comparison = crate::compare(&[out.to_owned()]).map_err(|e| ResultsError::Compare(Box::new(e)))?;
        write_comparison(out, &self.experiment.config().name, &comparison)?;
        Ok(summary)
    }

    /// SHA-256 of the resolved experiment and env configs (as JSON).
    pub fn config_sha256(&self) -> String {
        let resolved =
            serde_json::json!({ "experiment": self.experiment.config(), "env": self.experiment.kind().config_json() });
        table::hex(&Sha256::digest(resolved.to_string().as_bytes()))
    }

    fn manifest<'a>(&'a self, results: &'a Results, build: Build) -> Manifest<'a> {
        let config = self.experiment.config();
        let env = self.experiment.kind().config_json();
        let l = labels(self.experiment.kind());
        let means = self.experiment.references(Split::Test).means();
        Manifest {
            experiment: &config.name,
            config_sha256: self.config_sha256(),
            config,
            env,
            score: l.score.key,
            references: l
                .references(&means)
                .map(|(r, _)| ReferenceColumn {
                    column: format!("{}_{}", r.key, l.score.key),
                    label: r.label,
                })
                .collect(),
            snapshot: SnapshotRef {
                path: config.snapshot.display().to_string(),
                sha256: &self.snapshot.sha256,
                rows: self.snapshot.rows,
            },
            build,
            seeds: &config.seeds,
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

    /// `evals.parquet`: one row per evaluation point of each run.
    fn evals_frame(&self, results: &Results) -> DataFrame {
        let kind = self.experiment.kind();
        let score = self.experiment.score();
        let l = labels(kind);
        let points: Vec<_> = results
            .runs
            .iter()
            .flat_map(|r| r.evals.iter().map(move |e| (r, e)))
            .collect();
        let f64_column = |name: &str, value: &dyn Fn(&EvalPoint) -> f64| {
            Column::new(name.into(), points.iter().map(|(_, e)| value(e)).collect::<Vec<f64>>())
        };
        let reference = |e: &EvalPoint| self.experiment.references(e.split).means();
        let key = |reference: &str| format!("{reference}_{}", l.score.key);
        let (validation, test) = (
            self.experiment.references(Split::Validation).means(),
            self.experiment.references(Split::Test).means(),
        );
        let reference_columns: Vec<Column> = l
            .references(&test)
            .zip(l.references(&validation))
            .map(|((named, test), (_, validation))| {
                f64_column(&key(named.key), &|e| {
                    if e.split == Split::Test { test } else { validation }
                })
            })
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
                "split".into(),
                points.iter().map(|(_, e)| e.split.name()).collect::<Vec<_>>(),
            ),
            Column::new(
                "episode".into(),
                points.iter().map(|(_, e)| e.episode as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "step".into(),
                points.iter().map(|(_, e)| e.step as i64).collect::<Vec<_>>(),
            ),
            f64_column("expected_return", &|e| {
                mean(e.campaigns.iter().map(|c| c.expected_return))
            }),
            f64_column("return", &|e| mean(e.campaigns.iter().map(|c| c.return_))),
        ];
        columns.extend(reference_columns);
        columns.extend([
            f64_column("regret", &|e| reference(e).online - score.mean(&e.campaigns)),
            f64_column("acceptance_rate", &|e| acceptance_rate(&e.campaigns)),
        ]);
        let actions = kind.action_names();
        for (a, action) in actions.iter().enumerate() {
            let name = format!("mix_{action}");
            columns.push(f64_column(&name, &|e| offer_mix(&e.campaigns, actions.len())[a]));
        }
        // Diagnostics: the shared resources left at the end, and each action's share of the
        // decisions in each tenth of the campaign.
        for (k, resource) in kind.resource_names().iter().enumerate() {
            columns.push(f64_column(resource, &|e| {
                mean(e.traces.iter().map(|t| t.resources_left[k]))
            }));
        }
        for (a, action) in actions.iter().enumerate() {
            for decile in 0..DECILES {
                let name = format!("share_{action}_d{}", decile + 1);
                columns.push(f64_column(&name, &|e| decile_share(&e.traces, a, decile)));
            }
        }
        DataFrame::new_infer_height(columns).expect("equal-length columns")
    }
}

impl LoadedExperiment {
    /// `recommendations.parquet`: every decision of the final test evaluation, one row each,
    /// of every run (`role` "agent") and of the myopic and the online reference on the same
    /// campaigns (`role` "myopic", "online"; no seed).
    fn recommendations_frame(&self, results: &Results) -> DataFrame {
        let kind = self.experiment.kind();
        let l = labels(kind);
        let references = &self.experiment.references(Split::Test).traces;
        let mut policies: Vec<(&str, &str, Option<i64>, &[Trace])> = results
            .runs
            .iter()
            .map(|r| {
                (
                    r.agent.as_str(),
                    "agent",
                    Some(r.seed as i64),
                    r.test_eval().traces.as_slice(),
                )
            })
            .collect();
        policies.push((l.myopic.key, "myopic", None, &references[0]));
        policies.push((l.online.key, "online", None, &references[1]));
        let (actions, segments) = (kind.action_names(), kind.segment_names());
        let replays = self.experiment.config().evaluation.replays;
        let mut rows = Recommendations::default();
        for (policy, role, seed, traces) in policies {
            for (entry, trace) in traces.iter().enumerate() {
                let (campaign, replay) = (entry / replays, entry % replays);
                for (decision, ((&user, &action), &expected_reward)) in trace
                    .users
                    .iter()
                    .zip(&trace.actions)
                    .zip(&trace.expected_rewards)
                    .enumerate()
                {
                    rows.policy.push(policy);
                    rows.role.push(role);
                    rows.seed.push(seed);
                    rows.campaign.push(campaign as i64);
                    rows.replay.push(replay as i64);
                    rows.decision.push(decision as i64);
                    rows.user.push(i64::from(user));
                    rows.segment.push(segments[kind.segment(user)].as_str());
                    rows.action.push(actions[usize::from(action)].as_str());
                    rows.expected_reward.push(expected_reward);
                }
            }
        }
        df!(
            "policy" => rows.policy,
            "role" => rows.role,
            "seed" => rows.seed,
            "campaign" => rows.campaign,
            "replay" => rows.replay,
            "decision" => rows.decision,
            "user" => rows.user,
            "segment" => rows.segment,
            "action" => rows.action,
            "expected_reward" => rows.expected_reward,
        )
        .expect("equal-length columns")
    }
}

/// The columns of `recommendations.parquet`.
#[derive(Default)]
struct Recommendations<'a> {
    policy: Vec<&'a str>,
    /// "agent", or the reference the row is of: "myopic" or "online".
    role: Vec<&'a str>,
    seed: Vec<Option<i64>>,
    campaign: Vec<i64>,
    /// The campaign's replay (from 0; contract choice has one).
    replay: Vec<i64>,
    decision: Vec<i64>,
    user: Vec<i64>,
    segment: Vec<&'a str>,
    action: Vec<&'a str>,
    expected_reward: Vec<f64>,
}

/// Tenths of a campaign in the per-decile diagnostics.
const DECILES: usize = 10;

/// Share of the offers made in tenth `decile` of the campaigns that went to contract `a`.
fn decile_share(traces: &[Trace], a: usize, decile: usize) -> f64 {
    let (mut offers, mut of_a) = (0u32, 0u32);
    for trace in traces {
        let len = trace.actions.len();
        for (t, &action) in trace.actions.iter().enumerate() {
            if t * DECILES / len == decile {
                offers += 1;
                of_a += u32::from(usize::from(action) == a);
            }
        }
    }
    f64::from(of_a) / f64::from(offers)
}

/// `episodes.parquet`: one row per training campaign.
fn episodes_frame(results: &Results) -> DataFrame {
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

/// Writes `text` to `path`.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), ResultsError> {
    std::fs::write(path, text).map_err(|source| ResultsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// `summary.parquet`: one row per agent.
fn summary_frame(summary: &Summary) -> PolarsResult<DataFrame> {
    let col = |f: fn(&AgentSummary) -> f64| summary.agents.iter().map(f).collect::<Vec<f64>>();
    let (l, r, n) = (&summary.labels, &summary.references, summary.agents.len());
    let score = l.score.key;
    let mut frame = df!(
        "agent" => summary.agents.iter().map(|a| a.agent.clone()).collect::<Vec<_>>(),
        "runs" => summary.agents.iter().map(|a| a.runs as i64).collect::<Vec<_>>(),
        format!("iqm_{score}") => col(|a| a.iqm),
        "ci95_low" => col(|a| a.ci_low),
        "ci95_high" => col(|a| a.ci_high),
        format!("pct_of_{}", l.online.key) => col(|a| a.pct_of_online),
        format!("diff_vs_{}", l.online.key) => col(|a| a.paired_difference),
        "diff_ci95_low" => col(|a| a.paired_ci.0),
        "diff_ci95_high" => col(|a| a.paired_ci.1),
        format!("pct_of_{}", l.bound.key) => col(|a| a.pct_of_bound),
        format!("pct_of_{}", l.myopic.key) => col(|a| a.pct_of_myopic),
        "iqm_regret" => col(|a| a.iqm_regret),
        "mean_acceptance_rate" => col(|a| a.mean_acceptance_rate),
    )?;
    if let Some(second) = l.second_bound {
        frame.with_column(Column::new(
            format!("pct_of_{}", second.key).into(),
            summary
                .agents
                .iter()
                .map(|a| a.pct_of_second_bound.unwrap_or(f64::NAN))
                .collect::<Vec<f64>>(),
        ))?;
    }
    for (named, value) in l.references(r) {
        frame.with_column(Column::new(format!("{}_{score}", named.key).into(), vec![value; n]))?;
    }
    for (c, name) in summary.actions.iter().enumerate() {
        frame.with_column(Column::new(
            format!("mix_{name}").into(),
            summary.agents.iter().map(|a| a.mix[c]).collect::<Vec<f64>>(),
        ))?;
    }
    Ok(frame)
}

/// `metrics.parquet`: one row per (run, record, metric), with CleanRL's metric names.
fn metrics_frame(results: &Results) -> DataFrame {
    let mut rows: Vec<(&str, u64, u64, &str, f64)> = Vec::new();
    for run in &results.runs {
        for m in &run.metrics {
            let d = &m.diagnostics;
            let prices = d
                .prices
                .map(|[budget, stock]| [("charts/budget_price", budget), ("charts/stock_price", stock)]);
            for (name, value) in [
                ("losses/td_loss", d.td_loss),
                ("losses/q_values", d.q_values),
                ("charts/epsilon", d.epsilon),
                ("charts/SPS", m.steps_per_sec),
            ]
            .into_iter()
            .chain(prices.into_iter().flatten())
            {
                rows.push((&run.agent, run.seed, m.step, name, value));
            }
        }
    }
    df!(
        "agent" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "seed" => rows.iter().map(|r| r.1 as i64).collect::<Vec<_>>(),
        "step" => rows.iter().map(|r| r.2 as i64).collect::<Vec<_>>(),
        "metric" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        "value" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
    )
    .expect("equal-length columns")
}

/// Writes `comparison.md` (titled `title`) and `comparison.parquet` into `out`.
pub fn write_comparison(out: &Path, title: &str, comparison: &Comparison) -> Result<(), ResultsError> {
    std::fs::create_dir_all(out).map_err(|source| ResultsError::Io {
        path: out.to_owned(),
        source,
    })?;
    write_text(&out.join("comparison.md"), &comparison.markdown(title))?;
    table::write(
        &out.join("comparison.parquet"),
        &mut crate::compare::comparison_frame(comparison),
    )?;
    Ok(())
}
