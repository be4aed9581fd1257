//! The experiment file (`experiments/*.toml`): which env and snapshot, which agents with which
//! hyperparameters, which seeds, how long to train and how to evaluate. Paths are relative to
//! the experiment file's folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agents::AgentConfig;
use crate::config::{ConfigError, load_toml};
use crate::env::Campaigns;

/// A whole experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name; the default results folder is `results/<name>/`.
    pub name: String,
    /// The env file.
    pub env: PathBuf,
    /// The snapshot to replay (`FILE.parquet` with `FILE.manifest.json` beside it).
    pub snapshot: PathBuf,
    /// One run per (agent, seed); 10 seeds is a sensible default for reporting.
    pub seeds: Vec<u64>,
    /// Training length.
    pub budget: Budget,
    /// Held-out evaluation schedule.
    pub evaluation: Evaluation,
    /// When learners' diagnostics are recorded (optional section).
    #[serde(default)]
    pub diagnostics: DiagnosticsSchedule,
    /// The agents to compare.
    pub agents: Vec<AgentConfig>,
}

/// When learners' diagnostics (`metrics.parquet`) are recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiagnosticsSchedule {
    /// Training env steps between two records (and one at the end of training).
    pub every_steps: u64,
}

impl Default for DiagnosticsSchedule {
    fn default() -> Self {
        Self { every_steps: 10_000 }
    }
}

/// How long each learning agent trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Training campaigns (episodes) per run.
    pub train_episodes: u64,
}

/// When and on what the greedy policy is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// Evaluate before training and after every this many training episodes (and at the end).
    pub every_episodes: u64,
    /// Held-out campaigns per evaluation (customer lifetime: fixed, disjoint cohorts, at most
    /// as many as the split holds).
    pub episodes: usize,
    /// Seed of the held-out campaigns: every agent and seed is evaluated on the same ones.
    pub seed: u64,
    /// Replays of each held-out campaign, each with its own seed (customer lifetime: other
    /// latents, answers and churn draws, the same for every agent and reference); a campaign's
    /// score is the mean over its replays. Contract choice is scored by expected return, which
    /// replays would not change: 1 there.
    #[serde(default = "one")]
    pub replays: usize,
}

fn one() -> usize {
    1
}

impl Evaluation {
    /// The campaigns every evaluation of a split plays.
    pub fn campaigns(&self) -> Campaigns {
        Campaigns {
            campaigns: self.episodes,
            replays: self.replays,
            seed: self.seed,
        }
    }
}

impl ExperimentConfig {
    /// Reads and validates the experiment file at `path`; its relative paths are resolved
    /// against the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = load_toml(path)?;
        config.validate(path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.env = base.join(&config.env);
        config.snapshot = base.join(&config.snapshot);
        for agent in &mut config.agents {
            let dqn = match agent {
                AgentConfig::Dqn(dqn) => Some(dqn),
                AgentConfig::LagrangianDqn(c) => Some(&mut c.dqn),
                _ => None,
            };
            if let Some(checkpoint) = dqn.and_then(|d| d.checkpoint.as_mut()) {
                *checkpoint = base.join(&*checkpoint);
            }
        }
        Ok(config)
    }

    fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, message: &str| Err(ConfigError::invalid(file, field, message));
        if self.seeds.is_empty() {
            return bad("seeds", "at least one seed is needed (10 is a sensible default)");
        }
        if self.seeds.iter().collect::<BTreeSet<_>>().len() != self.seeds.len() {
            return bad("seeds", "seeds must be distinct");
        }
        if self.evaluation.every_episodes == 0 {
            return bad("evaluation.every_episodes", "must be at least 1");
        }
        if self.evaluation.episodes == 0 {
            return bad("evaluation.episodes", "must be at least 1");
        }
        if self.evaluation.replays == 0 {
            return bad(
                "evaluation.replays",
                "must be at least 1 (5 or more on the customer-lifetime env)",
            );
        }
        if self.diagnostics.every_steps == 0 {
            return bad("diagnostics.every_steps", "must be at least 1");
        }
        if self.agents.is_empty() {
            return bad("agents", "at least one [[agents]] entry is needed");
        }
        let mut names = BTreeSet::new();
        for (i, agent) in self.agents.iter().enumerate() {
            if !names.insert(agent.name()) {
                return Err(ConfigError::invalid(
                    file,
                    format!("agents[{i}].name"),
                    format!("{:?} is used twice; give each agent a distinct `name`", agent.name()),
                ));
            }
            agent
                .validate()
                .map_err(|e| ConfigError::invalid(file, format!("agents[{i}].{}", e.field), e.message))?;
        }
        Ok(())
    }
}
