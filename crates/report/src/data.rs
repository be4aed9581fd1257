//! What the plots draw, read from a folder's files.

use std::path::{Path, PathBuf};

use contract_rl_core::experiment::labels_of;
use contract_rl_core::report::Estimate;
use contract_rl_core::report::stats::{iqm, iqm_interval, mean, seed_for};
use contract_rl_parquet::table;
use polars::prelude::*;

use crate::ReportError;

/// A reference's value on the validation campaigns.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub label: String,
    pub value: f64,
}

/// A learner's curve: per evaluation point (training campaigns done), the IQM over seeds with
/// its 95% bootstrap interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub agent: String,
    pub points: Vec<(f64, Estimate)>,
}

/// Everything the plots of one folder need.
#[derive(Debug, Clone, Default)]
pub struct FolderData {
    /// What the scores are, e.g. "expected return".
    pub score: String,
    /// Learning curves on the validation campaigns (results folders only).
    pub curves: Vec<Curve>,
    /// The learners' regret against the online reference on the validation campaigns, as
    /// curves (results folders only).
    pub regrets: Vec<Curve>,
    /// The references on the validation campaigns (results folders only).
    pub references: Vec<Reference>,
    /// The label of the online reference regret is measured against (results folders only).
    pub online: String,
    /// Per agent, the final test IQM (from `comparison.parquet`).
    pub finals: Vec<(String, Estimate)>,
    /// Per agent, the performance profile: (threshold, share above, band).
    pub profiles: Vec<(String, Vec<(f64, Estimate)>)>,
    /// Per learner and metric (`losses/td_loss`, `losses/q_values`).
    pub diagnostics: Vec<Series>,
}

/// A learner's metric over training: (mean step, mean over seeds) at each record.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub agent: String,
    pub metric: &'static str,
    pub points: Vec<(f64, f64)>,
}

fn read_error(path: &Path, message: impl ToString) -> ReportError {
    ReportError::Read {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// A table of the folder, or an error naming it.
fn read(dir: &Path, name: &str) -> Result<(PathBuf, DataFrame), ReportError> {
    let path = dir.join(name);
    let frame = table::read(&path).map_err(|e| read_error(&path, e))?;
    Ok((path, frame))
}

fn strings(path: &Path, frame: &DataFrame, name: &str) -> Result<Vec<String>, ReportError> {
    let column = frame
        .column(name)
        .and_then(|c| c.str().cloned())
        .map_err(|e| read_error(path, e))?;
    Ok(column.iter().map(|v| v.unwrap_or_default().to_owned()).collect())
}

fn floats(path: &Path, frame: &DataFrame, name: &str) -> Result<Vec<f64>, ReportError> {
    let column = frame
        .column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(|e| read_error(path, e))?;
    let column = column.f64().map_err(|e| read_error(path, e))?;
    Ok(column.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// The folder's `manifest.json` (results folders only).
pub(crate) fn read_manifest(dir: &Path) -> Result<serde_json::Value, ReportError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
    serde_json::from_str(&text).map_err(|e| read_error(&path, e))
}

/// The env kind a manifest's `env` config is of: an env file names its kind unless it is
/// contract choice (as `EnvFile::load` reads it).
pub(crate) fn env_kind(manifest: &serde_json::Value) -> &str {
    manifest["env"]["kind"].as_str().unwrap_or("contract-choice")
}

/// `agent`'s curve of `values` over its `rows`: at each evaluation point, the IQM over seeds
/// with its 95% bootstrap interval (seeded from the agent's name and `what`).
fn curve(agent: &str, rows: &[usize], episode: &[f64], values: &[f64], what: &str) -> Curve {
    let mut episodes: Vec<f64> = rows.iter().map(|&i| episode[i]).collect();
    episodes.sort_by(f64::total_cmp);
    episodes.dedup();
    let points = episodes
        .iter()
        .map(|&e| {
            let at: Vec<f64> = rows.iter().filter(|&&i| episode[i] == e).map(|&i| values[i]).collect();
            let (ci_low, ci_high) = iqm_interval(&at, seed_for(&[agent, what]));
            (
                e,
                Estimate {
                    value: iqm(&at),
                    ci_low,
                    ci_high,
                },
            )
        })
        .collect();
    Curve {
        agent: agent.to_owned(),
        points,
    }
}

impl FolderData {
    /// Reads `dir`: its comparison, and for a results folder (`results`) its learning curves,
    /// references and learners' diagnostics too.
    pub fn read(dir: &Path, results: bool) -> Result<Self, ReportError> {
        let mut data = Self::default();
        data.read_comparison(dir)?;
        if results {
            data.read_evals(dir)?;
            data.read_metrics(dir)?;
        }
        Ok(data)
    }

    fn read_comparison(&mut self, dir: &Path) -> Result<(), ReportError> {
        let (path, frame) = read(dir, "comparison.parquet")?;
        let statistic = strings(&path, &frame, "statistic")?;
        let agent = strings(&path, &frame, "agent")?;
        let [threshold, value, low, high] =
            ["threshold", "value", "ci95_low", "ci95_high"].map(|c| floats(&path, &frame, c));
        let (threshold, value, low, high) = (threshold?, value?, low?, high?);
        self.score = strings(&path, &frame, "score")?.first().cloned().unwrap_or_default();
        for i in 0..frame.height() {
            let estimate = Estimate {
                value: value[i],
                ci_low: low[i],
                ci_high: high[i],
            };
            match statistic[i].as_str() {
                "iqm" => self.finals.push((agent[i].clone(), estimate)),
                "fraction_above" => match self.profiles.iter_mut().find(|(a, _)| *a == agent[i]) {
                    Some((_, points)) => points.push((threshold[i], estimate)),
                    None => self.profiles.push((agent[i].clone(), vec![(threshold[i], estimate)])),
                },
                _ => {}
            }
        }
        Ok(())
    }

    fn read_evals(&mut self, dir: &Path) -> Result<(), ReportError> {
        let manifest = read_manifest(dir)?;
        let score = manifest["score"].as_str().unwrap_or("expected_return").to_owned();
        self.online = labels_of(env_kind(&manifest))
            .map_or("online reference", |l| l.online.label)
            .to_owned();
        let (path, frame) = read(dir, "evals.parquet")?;
        let (agent, split) = (strings(&path, &frame, "agent")?, strings(&path, &frame, "split")?);
        let episode = floats(&path, &frame, "episode")?;
        let validation: Vec<usize> = (0..frame.height()).filter(|&i| split[i] == "validation").collect();
        for reference in manifest["references"].as_array().into_iter().flatten() {
            let (Some(column), Some(label)) = (reference["column"].as_str(), reference["label"].as_str()) else {
                continue;
            };
            let column = floats(&path, &frame, column)?;
            if let Some(&i) = validation.first() {
                self.references.push(Reference {
                    label: label.to_owned(),
                    value: column[i],
                });
            }
        }
        // The learners (agents evaluated after some training), each with its validation rows.
        let mut learners: Vec<(&str, Vec<usize>)> = Vec::new();
        for &i in &validation {
            if episode[i] > 0.0 && !learners.iter().any(|(a, _)| *a == agent[i]) {
                let rows = validation.iter().copied().filter(|&j| agent[j] == agent[i]).collect();
                learners.push((&agent[i], rows));
            }
        }
        let curves = |values: &[f64], what: &str| -> Vec<Curve> {
            learners
                .iter()
                .map(|(a, rows)| curve(a, rows, &episode, values, what))
                .collect()
        };
        self.curves = curves(&floats(&path, &frame, &score)?, "curve");
        self.regrets = curves(&floats(&path, &frame, "regret")?, "regret");
        Ok(())
    }

    fn read_metrics(&mut self, dir: &Path) -> Result<(), ReportError> {
        let (path, frame) = read(dir, "metrics.parquet")?;
        let (agent, seed, metric) = (
            strings(&path, &frame, "agent")?,
            floats(&path, &frame, "seed")?,
            strings(&path, &frame, "metric")?,
        );
        let (step, value) = (floats(&path, &frame, "step")?, floats(&path, &frame, "value")?);
        let mut learners: Vec<&str> = Vec::new();
        for a in &agent {
            if !learners.contains(&a.as_str()) {
                learners.push(a);
            }
        }
        for learner in learners {
            for name in ["losses/td_loss", "losses/q_values"] {
                // Each seed's records in order; the k-th records of all seeds make one point.
                let mut by_seed: Vec<(f64, Vec<(f64, f64)>)> = Vec::new();
                for i in (0..frame.height()).filter(|&i| agent[i] == learner && metric[i] == name) {
                    match by_seed.iter_mut().find(|(s, _)| *s == seed[i]) {
                        Some((_, records)) => records.push((step[i], value[i])),
                        None => by_seed.push((seed[i], vec![(step[i], value[i])])),
                    }
                }
                let records = by_seed.iter().map(|(_, r)| r.len()).min().unwrap_or(0);
                let points = (0..records)
                    .map(|k| {
                        let at = by_seed.iter().map(|(_, r)| r[k]);
                        (
                            mean(at.clone().map(|p| p.0)),
                            mean(at.map(|p| p.1).filter(|v| v.is_finite())),
                        )
                    })
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                self.diagnostics.push(Series {
                    agent: learner.to_owned(),
                    metric: name,
                    points,
                });
            }
        }
        Ok(())
    }
}
