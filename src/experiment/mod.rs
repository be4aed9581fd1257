//! Experiments: load and validate an experiment file with its env and snapshot, run every
//! (agent, seed) in parallel, evaluate on held-out users, and write the results folder.
//!
//! The runner owns seeding and I/O. Each run's randomness is derived only from (agent name,
//! seed), never from scheduling, so the same config gives the same tables bit for bit.

mod config;
mod results;
mod rollout;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

pub use config::{Budget, Evaluation, ExperimentConfig};
pub use results::ResultsError;
pub use rollout::{EpisodeStats, Mode, evaluate, play_episode};

use crate::agents::{AgentConfig, AgentRng, HindsightOracle, MyopicOracle};
use crate::config::ConfigError;
use crate::env::{ContractChoiceEnv, EnvConfig, EnvError, EnvModel, Split};
use crate::report::{FinalEval, Summary};
use crate::snapshot::{self, SnapshotError, SnapshotManifest};

/// Why an experiment cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The experiment or env file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The snapshot is missing or corrupted.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The env cannot be built on this snapshot.
    #[error("{path}: {source}")]
    Env { path: String, source: EnvError },
    /// A trained agent could not be saved.
    #[error("saving a checkpoint: {0}")]
    Checkpoint(String),
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show a progress bar.
    pub progress: bool,
    /// Save each learning run's agent here as `<agent>-seed<seed>.bpk` (agents that can).
    pub checkpoints: Option<std::path::PathBuf>,
}

/// One evaluation point of a run: the greedy policy on the held-out campaigns.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPoint {
    /// Training episodes done before this evaluation.
    pub episode: u64,
    /// Training env steps done before this evaluation.
    pub step: u64,
    /// One entry per held-out campaign.
    pub campaigns: Vec<EpisodeStats>,
}

/// Everything one (agent, seed) run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Agent name.
    pub agent: String,
    /// Seed.
    pub seed: u64,
    /// Training campaigns, in order.
    pub episodes: Vec<EpisodeStats>,
    /// Evaluations, in order.
    pub evals: Vec<EvalPoint>,
    /// Training env steps.
    pub train_steps: u64,
    /// Wall-clock seconds of training and evaluation.
    pub seconds: f64,
}

/// All runs of an experiment, in (agent, seed) order of the config.
#[derive(Debug, Clone)]
pub struct Results {
    pub runs: Vec<RunResult>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// A loaded, validated experiment, ready to run.
#[derive(Debug)]
pub struct Experiment {
    config: ExperimentConfig,
    model: Arc<EnvModel>,
    snapshot: SnapshotManifest,
    /// Expected returns of the myopic oracle and the hindsight optimum on each held-out campaign.
    reference: (Vec<f64>, Vec<f64>),
}

impl Experiment {
    /// Reads the experiment file, its env file and its snapshot (or `snapshot` instead), and
    /// validates all of them before any work.
    pub fn load(path: &Path, snapshot: Option<&Path>) -> Result<Self, ExperimentError> {
        let mut config = ExperimentConfig::load(path)?;
        if let Some(snapshot) = snapshot {
            config.snapshot = snapshot.to_owned();
        }
        let env_config = EnvConfig::load(&config.env)?;
        let snap = snapshot::read(&config.snapshot)?;
        let model = EnvModel::build(env_config, &snap.records).map_err(|source| ExperimentError::Env {
            path: config.snapshot.display().to_string(),
            source,
        })?;
        let model = Arc::new(model);
        let reference = reference_returns(&model, &config);
        Ok(Self {
            config,
            model,
            snapshot: snap.manifest,
            reference,
        })
    }

    /// The resolved experiment config.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// The env model shared by all runs.
    pub fn model(&self) -> &Arc<EnvModel> {
        &self.model
    }

    /// Runs every (agent, seed) in parallel; fails only if a checkpoint cannot be saved.
    pub fn run(&self, options: &RunOptions) -> Result<Results, ExperimentError> {
        let started_at = Utc::now();
        let jobs: Vec<(&AgentConfig, u64)> = self
            .config
            .agents
            .iter()
            .flat_map(|a| self.config.seeds.iter().map(move |s| (a, *s)))
            .collect();
        let bar = if options.progress {
            let total: u64 = jobs.iter().map(|(a, _)| self.episodes_of(a)).sum();
            ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} episodes ({eta} left)")
                    .expect("valid template")
                    .progress_chars("=> "),
            )
        } else {
            ProgressBar::hidden()
        };
        let runs = jobs
            .par_iter()
            .map(|(agent, seed)| self.run_one(agent, *seed, &bar, options.checkpoints.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        bar.finish_and_clear();
        Ok(Results {
            runs,
            started_at,
            finished_at: Utc::now(),
        })
    }

    /// Training episodes of an agent (none for agents that do not learn).
    fn episodes_of(&self, agent: &AgentConfig) -> u64 {
        if agent.learns() {
            self.config.budget.train_episodes
        } else {
            0
        }
    }

    fn run_one(
        &self,
        config: &AgentConfig,
        seed: u64,
        bar: &ProgressBar,
        checkpoints: Option<&Path>,
    ) -> Result<RunResult, ExperimentError> {
        let start = Instant::now();
        let name = config.name();
        let episodes = self.episodes_of(config);
        let total_steps = episodes * self.model.episode_len() as u64;
        let mut rng = AgentRng::seed_from_u64(derive_seed(&name, seed, "agent"));
        let mut agent = config
            .build(&self.model, total_steps, &mut rng)
            .expect("checkpoints are checked when the experiment loads");
        let mut env = ContractChoiceEnv::new(Arc::clone(&self.model), Split::Train, derive_seed(&name, seed, "env"));
        let eval = &self.config.evaluation;
        let evaluate_now = |agent: &mut dyn crate::agents::Agent, episode: u64, step: u64| {
            let mut eval_rng = AgentRng::seed_from_u64(derive_seed(&name, seed, &format!("eval/{episode}")));
            EvalPoint {
                episode,
                step,
                campaigns: evaluate(&self.model, agent, &mut eval_rng, eval.episodes, eval.seed),
            }
        };
        let mut evals = vec![evaluate_now(agent.as_mut(), 0, 0)];
        let mut train = Vec::with_capacity(episodes as usize);
        let mut steps = 0;
        for episode in 1..=episodes {
            let stats = play_episode(&mut env, agent.as_mut(), &mut rng, None, Mode::Train);
            steps += u64::from(stats.length);
            train.push(stats);
            if episode % eval.every_episodes == 0 || episode == episodes {
                evals.push(evaluate_now(agent.as_mut(), episode, steps));
            }
            if episode % 64 == 0 || episode == episodes {
                bar.inc(if episode % 64 == 0 { 64 } else { episode % 64 });
            }
        }
        if let Some(dir) = checkpoints.filter(|_| episodes > 0) {
            let path = dir.join(format!("{name}-seed{seed}.bpk"));
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))
                .and_then(|()| agent.save(&path))
                .map_err(ExperimentError::Checkpoint)?;
        }
        Ok(RunResult {
            agent: name,
            seed,
            episodes: train,
            evals,
            train_steps: steps,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The comparison of the final evaluations.
    pub fn summary(&self, results: &Results) -> Summary {
        let (myopic, hindsight) = self.reference_means();
        let per_agent: Vec<(String, Vec<FinalEval>)> = self
            .config
            .agents
            .iter()
            .map(|a| {
                let name = a.name();
                let finals = results
                    .runs
                    .iter()
                    .filter(|r| r.agent == name)
                    .map(|r| {
                        let last = r.evals.last().expect("every run evaluates at least once");
                        let expected = mean(last.campaigns.iter().map(|c| c.expected_return));
                        FinalEval {
                            expected_return: expected,
                            regret: hindsight - expected,
                            acceptance_rate: acceptance_rate(&last.campaigns),
                            mix: offer_mix(&last.campaigns, self.model.n_actions()),
                        }
                    })
                    .collect();
                (name, finals)
            })
            .collect();
        let contracts = self.model.config().contracts.iter().map(|c| c.name.clone()).collect();
        Summary::new(&self.config.name, contracts, myopic, hindsight, &per_agent)
    }

    /// Mean expected return per held-out campaign of the myopic oracle and the hindsight optimum.
    pub fn reference_means(&self) -> (f64, f64) {
        (
            mean(self.reference.0.iter().copied()),
            mean(self.reference.1.iter().copied()),
        )
    }
}

/// The oracles' expected returns on the held-out campaigns (they do not depend on any run).
fn reference_returns(model: &Arc<EnvModel>, config: &ExperimentConfig) -> (Vec<f64>, Vec<f64>) {
    let eval = &config.evaluation;
    let mut rng = AgentRng::seed_from_u64(0);
    let expected = |stats: Vec<EpisodeStats>| stats.iter().map(|s| s.expected_return).collect();
    let myopic = evaluate(
        model,
        &mut MyopicOracle::new(Arc::clone(model)),
        &mut rng,
        eval.episodes,
        eval.seed,
    );
    let hindsight = evaluate(
        model,
        &mut HindsightOracle::new(Arc::clone(model)),
        &mut rng,
        eval.episodes,
        eval.seed,
    );
    (expected(myopic), expected(hindsight))
}

/// A seed for one stream of one run, from (agent name, seed, stream) only.
pub fn derive_seed(agent: &str, seed: u64, stream: &str) -> u64 {
    let mut hash = Sha256::new();
    hash.update(agent.as_bytes());
    hash.update([0]);
    hash.update(seed.to_le_bytes());
    hash.update(stream.as_bytes());
    u64::from_le_bytes(hash.finalize()[..8].try_into().expect("8 bytes"))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

/// Accepted offers / offers over a set of campaigns.
pub fn acceptance_rate(campaigns: &[EpisodeStats]) -> f64 {
    let accepted: u32 = campaigns.iter().map(|c| c.accepted).sum();
    let offers: u32 = campaigns.iter().map(|c| c.length).sum();
    f64::from(accepted) / f64::from(offers)
}

/// Share of offers of each of `n_actions` contracts over a set of campaigns.
pub fn offer_mix(campaigns: &[EpisodeStats], n_actions: usize) -> Vec<f64> {
    let total: u32 = campaigns.iter().map(|c| c.length).sum();
    (0..n_actions)
        .map(|a| f64::from(campaigns.iter().map(|c| c.offers[a]).sum::<u32>()) / f64::from(total))
        .collect()
}
