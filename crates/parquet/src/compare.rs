//! Comparing results folders: the final test scores of every run in one or more folders of the
//! same env, snapshot and evaluation campaigns (or, for tuning, the last validation scores),
//! and the long table of `comparison.parquet` ([`crate::results`] writes the files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use contract_rl_core::env::Split;
use contract_rl_core::report::{AgentRuns, Comparison, Estimate};
use polars::prelude::*;

use crate::table::{self, TableError};

/// Why results folders cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A folder lacks a file or holds one this version cannot read.
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    /// Two folders are about different envs, snapshots or evaluation campaigns.
    #[error(
        "{first} and {other} differ in {what}: their scores are not comparable; compare results of the same env file, snapshot and test campaigns ([evaluation] episodes and seed) only"
    )]
    Mismatch {
        first: PathBuf,
        other: PathBuf,
        what: &'static str,
    },
    /// The same folder was given twice.
    #[error("{0} is given twice")]
    GivenTwice(PathBuf),
    /// A folder has no evaluations on the campaigns asked for.
    #[error("{0}: evals.parquet has no {1} evaluations")]
    NoRuns(PathBuf, &'static str),
}

/// What makes two folders' scores comparable, from their manifests.
#[derive(Debug, PartialEq)]
struct Campaigns {
    env: serde_json::Value,
    snapshot: serde_json::Value,
    evaluation: serde_json::Value,
    score: String,
}

/// Reads the test scores of every run in `dirs` and compares the agents. An agent name found in
/// several folders is labelled `<folder path>/<agent>` in each (its bootstraps stay seeded from
/// its own name).
pub fn compare(dirs: &[PathBuf]) -> Result<Comparison, CompareError> {
    compare_on(dirs, Split::Test)
}

/// As [`compare`], on the final scores of `split`'s campaigns: the test evaluation, or each
/// run's last validation evaluation (what tuning reads).
pub fn compare_on(dirs: &[PathBuf], split: Split) -> Result<Comparison, CompareError> {
    let mut first: Option<(&PathBuf, Campaigns)> = None;
    let mut folders = Vec::new();
    if let Some(dir) = repeated(dirs) {
        return Err(CompareError::GivenTwice(dir.clone()));
    }
    for dir in dirs {
        let campaigns = campaigns(dir)?;
        if let Some((first_dir, expected)) = &first {
            for (what, same) in [
                ("env", expected.env == campaigns.env),
                ("snapshot", expected.snapshot == campaigns.snapshot),
                ("evaluation", expected.evaluation == campaigns.evaluation),
            ] {
                if !same {
                    return Err(CompareError::Mismatch {
                        first: (*first_dir).clone(),
                        other: dir.clone(),
                        what,
                    });
                }
            }
        }
        folders.push((dir, final_scores(dir, &campaigns.score, split)?));
        first.get_or_insert((dir, campaigns));
    }
    let (_, campaigns) = first.expect("at least one folder");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, runs) in &folders {
        for r in runs {
            *seen.entry(r.agent.as_str()).or_default() += 1;
        }
    }
    let shared: Vec<String> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(a, _)| a.to_owned())
        .collect();
    let runs: Vec<AgentRuns> = folders
        .into_iter()
        .flat_map(|(dir, runs)| {
            let shared = &shared;
            runs.into_iter().map(move |mut r| {
                if shared.contains(&r.agent) {
                    r.agent = format!("{}/{}", dir.display(), r.agent);
                }
                r
            })
        })
        .collect();
    let mut comparison = Comparison::new(&campaigns.score.replace('_', " "), &runs);
    comparison.campaigns = split.name().into();
    Ok(comparison)
}

/// The first folder of `dirs` that an earlier one names too (`results`, `results/` and
/// `./results` are one folder).
pub(crate) fn repeated(dirs: &[PathBuf]) -> Option<&PathBuf> {
    let canonical: Vec<PathBuf> = dirs
        .iter()
        .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()))
        .collect();
    (0..dirs.len())
        .find(|&i| canonical[..i].contains(&canonical[i]))
        .map(|i| &dirs[i])
}

fn unreadable(path: &Path, message: impl ToString) -> CompareError {
    CompareError::Unreadable {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn campaigns(dir: &Path) -> Result<Campaigns, CompareError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
    let manifest: serde_json::Value = serde_json::from_str(&text).map_err(|e| unreadable(&path, e))?;
    let field = |name: &str| {
        manifest
            .get(name)
            .cloned()
            .ok_or_else(|| unreadable(&path, format!("no `{name}`: is this a results folder of `run`?")))
    };
    let snapshot = field("snapshot")?;
    Ok(Campaigns {
        env: field("env")?,
        snapshot: snapshot.get("sha256").cloned().unwrap_or_default(),
        // The test campaigns: how many and from which seed (not how often validation ran).
        evaluation: {
            let evaluation = field("config")?.get("evaluation").cloned().unwrap_or_default();
            serde_json::json!([evaluation.get("episodes"), evaluation.get("seed")])
        },
        // Folders written before the lifetime env scored expected returns.
        score: manifest
            .get("score")
            .and_then(|s| s.as_str())
            .unwrap_or("expected_return")
            .to_owned(),
    })
}

/// Each agent's final score on `split`'s campaigns per seed, in the folder's order: the test
/// evaluation, or the last validation evaluation of each run.
fn final_scores(dir: &Path, score: &str, split: Split) -> Result<Vec<AgentRuns>, CompareError> {
    let path = dir.join("evals.parquet");
    let frame = table::read(&path).map_err(|e: TableError| unreadable(&path, e))?;
    let column = |name: &str| {
        frame
            .column(name)
            .and_then(|c| c.str().cloned())
            .map_err(|e| unreadable(&path, e))
    };
    let integers = |name: &str| {
        frame
            .column(name)
            .and_then(|c| c.i64().cloned())
            .map_err(|e| unreadable(&path, e))
    };
    let (splits, agents, seeds, episodes) = (
        column("split")?,
        column("agent")?,
        integers("seed")?,
        integers("episode")?,
    );
    let scores = frame
        .column(score)
        .and_then(|c| c.f64().cloned())
        .map_err(|e| unreadable(&path, e))?;
    // (agent, seed) → (episode, score) of the latest evaluation, in first-seen order.
    let mut last: Vec<((String, i64), (i64, f64))> = Vec::new();
    let rows = splits
        .iter()
        .zip(agents.iter())
        .zip(seeds.iter().zip(episodes.iter()))
        .zip(scores.iter());
    for (((_, agent), (seed, episode)), value) in rows.filter(|(((s, _), _), _)| *s == Some(split.name())) {
        let (Some(agent), Some(seed), Some(episode), Some(value)) = (agent, seed, episode, value) else {
            return Err(unreadable(
                &path,
                "an evaluation row without agent, seed, episode or score",
            ));
        };
        match last.iter_mut().find(|(key, _)| key.0 == agent && key.1 == seed) {
            Some((_, latest)) if episode >= latest.0 => *latest = (episode, value),
            Some(_) => {}
            None => last.push(((agent.to_owned(), seed), (episode, value))),
        }
    }
    let mut runs: Vec<AgentRuns> = Vec::new();
    for ((agent, _), (_, value)) in last {
        match runs.iter_mut().find(|r| r.agent == agent) {
            Some(r) => r.scores.push(value),
            None => runs.push(AgentRuns {
                name: agent.clone(),
                agent,
                scores: vec![value],
            }),
        }
    }
    if runs.is_empty() {
        return Err(CompareError::NoRuns(dir.to_owned(), split.name()));
    }
    Ok(runs)
}

/// A row of `comparison.parquet`: statistic, agent, other agent, threshold, estimate, runs.
type Row<'a> = (&'a str, &'a str, Option<&'a str>, Option<f64>, Estimate, i64);

/// `comparison.parquet`, long: one row per (statistic, agent[, other agent or threshold]).
pub(crate) fn comparison_frame(c: &Comparison) -> DataFrame {
    let mut rows: Vec<Row> = Vec::new();
    for (i, a) in c.agents.iter().enumerate() {
        let runs = a.runs as i64;
        for (statistic, e) in [("iqm", a.iqm), ("median", a.median), ("mean", a.mean)] {
            rows.push((statistic, &a.agent, None, None, e, runs));
        }
        for (other, e) in c.agents.iter().zip(&c.improvement[i]) {
            rows.push(("p_improvement", &a.agent, Some(&other.agent), None, *e, runs));
        }
        for (t, e) in c.thresholds.iter().zip(&c.profiles[i]) {
            rows.push(("fraction_above", &a.agent, None, Some(*t), *e, runs));
        }
    }
    df!(
        "statistic" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "agent" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "other_agent" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "threshold" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        "value" => rows.iter().map(|r| r.4.value).collect::<Vec<_>>(),
        "ci95_low" => rows.iter().map(|r| r.4.ci_low).collect::<Vec<_>>(),
        "ci95_high" => rows.iter().map(|r| r.4.ci_high).collect::<Vec<_>>(),
        "runs" => rows.iter().map(|r| r.5).collect::<Vec<_>>(),
        "score" => vec![c.score.as_str(); rows.len()],
    )
    .expect("equal-length columns")
}
