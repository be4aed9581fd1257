//! What the plots draw, read from a folder's files.

use std::path::Path;

use contract_rl_core::env::bands;
use contract_rl_core::experiment::labels_of;
use contract_rl_core::report::Estimate;
use contract_rl_core::report::stats::{iqm, iqm_interval, mean, seed_for};
use contract_rl_parquet::table::Table;

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
    /// The env's actions, in its order (results folders only).
    pub actions: Vec<String>,
    /// Per segment, each policy's offers (results folders only).
    pub mix: Vec<SegmentMix>,
}

/// What each policy offered the users of one segment on the test campaigns.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMix {
    pub segment: String,
    /// Per policy (the agents, all seeds pooled, then the myopic and the online reference): the
    /// share of its decisions about this segment's users that took each action.
    pub policies: Vec<(String, Vec<f64>)>,
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

/// A table of the folder.
fn read(dir: &Path, name: &str) -> Result<Table, ReportError> {
    Ok(Table::read(&dir.join(name))?)
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
            let manifest = read_manifest(dir)?;
            data.read_evals(dir, &manifest)?;
            data.read_metrics(dir)?;
            data.read_recommendations(dir, &manifest)?;
        }
        Ok(data)
    }

    fn read_comparison(&mut self, dir: &Path) -> Result<(), ReportError> {
        let t = read(dir, "comparison.parquet")?;
        let statistic = t.strings("statistic")?;
        let agent = t.strings("agent")?;
        let [threshold, value, low, high] = ["threshold", "value", "ci95_low", "ci95_high"].map(|c| t.floats(c));
        let (threshold, value, low, high) = (threshold?, value?, low?, high?);
        self.score = t.strings("score")?.first().cloned().unwrap_or_default();
        for i in 0..t.frame.height() {
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

    fn read_evals(&mut self, dir: &Path, manifest: &serde_json::Value) -> Result<(), ReportError> {
        let score = manifest["score"].as_str().unwrap_or("expected_return").to_owned();
        self.online = labels_of(env_kind(manifest))
            .map_or("online reference", |l| l.online.label)
            .to_owned();
        let t = read(dir, "evals.parquet")?;
        let (agent, split) = (t.strings("agent")?, t.strings("split")?);
        let episode = t.floats("episode")?;
        self.actions = t
            .frame
            .get_column_names()
            .iter()
            .filter_map(|c| c.strip_prefix("mix_").map(str::to_owned))
            .collect();
        let validation: Vec<usize> = (0..t.frame.height()).filter(|&i| split[i] == "validation").collect();
        for reference in manifest["references"].as_array().into_iter().flatten() {
            let (Some(column), Some(label)) = (reference["column"].as_str(), reference["label"].as_str()) else {
                continue;
            };
            let column = t.floats(column)?;
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
        self.curves = curves(&t.floats(&score)?, "curve");
        self.regrets = curves(&t.floats("regret")?, "regret");
        Ok(())
    }

    fn read_metrics(&mut self, dir: &Path) -> Result<(), ReportError> {
        let t = read(dir, "metrics.parquet")?;
        let (agent, seed, metric) = (t.strings("agent")?, t.floats("seed")?, t.strings("metric")?);
        let (step, value) = (t.floats("step")?, t.floats("value")?);
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
                for i in (0..t.frame.height()).filter(|&i| agent[i] == learner && metric[i] == name) {
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

    /// Each policy's offers per segment, from `recommendations.parquet`; segments in the order
    /// of the env's age bands.
    fn read_recommendations(&mut self, dir: &Path, manifest: &serde_json::Value) -> Result<(), ReportError> {
        let edges: Vec<f64> = manifest["env"]["state"]["age_edges_years"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        let label = |k: usize| {
            let reference = manifest["references"][k]["label"].as_str().unwrap_or("reference");
            format!("{reference} (reference)")
        };
        let t = read(dir, "recommendations.parquet")?;
        let (policy, role) = (t.strings("policy")?, t.strings("role")?);
        let (segment, action) = (t.strings("segment")?, t.strings("action")?);
        let name = |i: usize| match role[i].as_str() {
            "myopic" => label(0),
            "online" => label(1),
            _ => policy[i].clone(),
        };
        let mut policies: Vec<String> = Vec::new();
        for i in 0..t.frame.height() {
            if i == 0 || policy[i] != policy[i - 1] {
                let name = name(i);
                if !policies.contains(&name) {
                    policies.push(name);
                }
            }
        }
        let n = self.actions.len();
        self.mix = bands("age", &edges)
            .into_iter()
            .map(|band| {
                let mut counts = vec![vec![0.0; n]; policies.len()];
                for i in (0..t.frame.height()).filter(|&i| segment[i] == band) {
                    let p = policies.iter().position(|p| *p == name(i)).expect("listed above");
                    if let Some(a) = self.actions.iter().position(|a| *a == action[i]) {
                        counts[p][a] += 1.0;
                    }
                }
                let policies = policies
                    .iter()
                    .zip(counts)
                    .map(|(p, c)| {
                        let total: f64 = c.iter().sum();
                        (p.clone(), c.iter().map(|x| x / total.max(1.0)).collect())
                    })
                    .collect();
                SegmentMix {
                    segment: band,
                    policies,
                }
            })
            .collect();
        Ok(())
    }
}
