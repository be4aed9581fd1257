//! Experiments: validate an experiment with its env and the snapshot's records, run every
//! (agent, seed) in parallel, evaluate on held-out users, and summarise. Reading snapshots and
//! writing results folders is `contract-rl-parquet`'s.
//!
//! The runner owns seeding. Each run's randomness is derived only from (agent name, seed),
//! never from scheduling, so the same config gives the same tables bit for bit.

mod config;
mod credit;
mod diagnostics;
mod references;
mod rollout;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use config::{Budget, DiagnosticsSchedule, Evaluation, ExperimentConfig};
pub use credit::UserCredit;
pub use references::{ReferenceReturns, Score, labels, labels_of};
pub use rollout::{
    EpisodeStats, Mode, Trace, evaluate, evaluate_campaigns, evaluate_traced, play_episode, train_q_learners,
};

use crate::agents::{Agent, AgentConfig, AgentError, AgentFactory, AgentRng, Diagnostics};
use crate::config::ConfigError;
use crate::env::{EnvError, EnvFile, EnvKind, Split};
use crate::record::UserRecord;
use crate::report::{FinalEval, Summary};

/// Why an experiment cannot start, or a run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The experiment or env file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The env cannot be built on this snapshot.
    #[error("{snapshot}: {source}")]
    Env { snapshot: PathBuf, source: EnvError },
    /// An agent cannot be built (e.g. its checkpoint does not load).
    #[error("{file}: agents[{index}] ({agent}): {source}")]
    Agent {
        file: PathBuf,
        index: usize,
        agent: String,
        source: AgentError,
    },
    /// A trained agent could not be saved.
    #[error(transparent)]
    Save(AgentError),
}

impl ExperimentError {
    /// Whether the error is the user's input (config, snapshot, checkpoint), not a failure
    /// while working.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Save(_))
    }
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Save each learning run's agent here as `<agent>-seed<seed>.<ext>` (agents that can).
    pub checkpoints: Option<PathBuf>,
    /// Run only this shard's (agent, seed) runs.
    pub shard: Option<Shard>,
}

/// One of `count` disjoint parts of an experiment's runs: the (agent, seed) runs whose place in
/// config order is `index` modulo `count` (so every shard gets a share of every agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// From 0.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether the run at `place` in config order is this shard's.
    pub fn holds(self, place: usize) -> bool {
        place % self.count == self.index
    }
}

/// One evaluation point of a run: the greedy policy on the held-out campaigns of a split
/// (validation during training, test once at the end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Validation or test.
    pub split: Split,
    /// Training episodes done before this evaluation.
    pub episode: u64,
    /// Training env steps done before this evaluation.
    pub step: u64,
    /// One entry per held-out campaign.
    pub campaigns: Vec<EpisodeStats>,
    /// What each campaign offered, for diagnostics.
    pub traces: Vec<Trace>,
}

/// A learner's diagnostics at one point of training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Training env steps done.
    pub step: u64,
    /// What the agent reported over the steps since the previous point.
    pub diagnostics: Diagnostics,
    /// `charts/SPS`: training env steps per second since the previous point (wall clock, so
    /// not reproducible).
    pub steps_per_sec: f64,
}

/// Everything one (agent, seed) run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// Agent name.
    pub agent: String,
    /// Seed.
    pub seed: u64,
    /// Training campaigns, in order.
    pub episodes: Vec<EpisodeStats>,
    /// Evaluations, in order.
    pub evals: Vec<EvalPoint>,
    /// Learning diagnostics, in order (empty for agents that do not learn).
    pub metrics: Vec<MetricPoint>,
    /// Training env steps.
    pub train_steps: u64,
    /// Wall-clock seconds of training and evaluation.
    pub seconds: f64,
}

/// All runs of an experiment, in (agent, seed) order of the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub runs: Vec<RunResult>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// A validated experiment, ready to run.
#[derive(Debug)]
pub struct Experiment {
    config: ExperimentConfig,
    kind: EnvKind,
    /// Steps of a campaign, as the learners' schedules assume.
    episode_len: usize,
    /// The references on the validation and the test campaigns.
    references: [ReferenceReturns; 2],
}

impl Experiment {
    /// Reads the experiment file at `path` and its env file (the caller reads the snapshot).
    pub fn load_config(path: &Path) -> Result<(ExperimentConfig, EnvFile), ConfigError> {
        let config = ExperimentConfig::load(path)?;
        let env = EnvFile::load(&config.env)?;
        Ok((config, env))
    }

    /// Builds the env on the snapshot's `records` and checks every agent with `factory`, all
    /// before any work; `file` is the experiment file, for messages.
    pub fn new(
        file: &Path,
        config: ExperimentConfig,
        env: EnvFile,
        records: &[UserRecord],
        factory: &dyn AgentFactory,
    ) -> Result<Self, ExperimentError> {
        let kind = env.build(records).map_err(|source| ExperimentError::Env {
            snapshot: config.snapshot.clone(),
            source,
        })?;
        for (index, agent) in config.agents.iter().enumerate() {
            factory.check(agent, &kind).map_err(|source| ExperimentError::Agent {
                file: file.to_owned(),
                index,
                agent: agent.name(),
                source,
            })?;
        }
        check_evaluation(file, &config, &kind)?;
        let references = [Split::Validation, Split::Test].map(|split| ReferenceReturns::compute(&kind, &config, split));
        Ok(Self {
            config,
            episode_len: kind.typical_episode_len(),
            kind,
            references,
        })
    }

    /// The resolved experiment config.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// The env kind and model shared by all runs.
    pub fn kind(&self) -> &EnvKind {
        &self.kind
    }

    /// How evaluations score a campaign.
    pub fn score(&self) -> Score {
        Score::of(&self.kind)
    }

    /// The (agent, seed) runs, in config order, of `shard` (all without one).
    fn jobs(&self, shard: Option<Shard>) -> Vec<(&AgentConfig, u64)> {
        self.config
            .agents
            .iter()
            .flat_map(|a| self.config.seeds.iter().map(move |s| (a, *s)))
            .enumerate()
            .filter(|(place, _)| shard.is_none_or(|s| s.holds(*place)))
            .map(|(_, job)| job)
            .collect()
    }

    /// Training episodes of the runs of `shard` (all without one) together, for progress bars.
    pub fn total_episodes(&self, shard: Option<Shard>) -> u64 {
        self.jobs(shard).iter().map(|(a, _)| self.episodes_of(a)).sum()
    }

    /// Runs every (agent, seed) in parallel, calling `progress` with the number of training
    /// episodes just done; fails only if a checkpoint cannot be saved.
    pub fn run(
        &self,
        factory: &dyn AgentFactory,
        options: &RunOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Results, ExperimentError> {
        let started_at = Utc::now();
        let runs = self
            .jobs(options.shard)
            .par_iter()
            .map(|(agent, seed)| self.run_one(factory, agent, *seed, progress, options.checkpoints.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
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
        factory: &dyn AgentFactory,
        config: &AgentConfig,
        seed: u64,
        progress: &(dyn Fn(u64) + Sync),
        checkpoints: Option<&Path>,
    ) -> Result<RunResult, ExperimentError> {
        let start = Instant::now();
        let name = config.name();
        let episodes = self.episodes_of(config);
        let total_steps = episodes * self.episode_len as u64;
        let mut rng = AgentRng::seed_from_u64(derive_seed(&name, seed, "agent"));
        let mut agent = factory
            .build(config, &self.kind, total_steps, &mut rng)
            .expect("agents are checked when the experiment is built");
        let mut env = self.kind.make(Split::Train, derive_seed(&name, seed, "env"));
        let eval = &self.config.evaluation;
        let evaluate_now = |agent: &mut dyn Agent, split: Split, episode: u64, step: u64| {
            let stream = format!("eval/{}/{episode}", split.name());
            let mut eval_rng = AgentRng::seed_from_u64(derive_seed(&name, seed, &stream));
            let (campaigns, traces) = evaluate_campaigns(&self.kind, agent, &mut eval_rng, split, &eval.campaigns());
            EvalPoint {
                split,
                episode,
                step,
                campaigns,
                traces,
            }
        };
        let mut evals = vec![evaluate_now(agent.as_mut(), Split::Validation, 0, 0)];
        let mut train = Vec::with_capacity(episodes as usize);
        let mut metrics = Vec::new();
        let every = self.config.diagnostics.every_steps;
        let (mut steps, mut last_record) = (0, (0, Instant::now()));
        for episode in 1..=episodes {
            let stats = play_episode(env.as_mut(), agent.as_mut(), &mut rng, None, Mode::Train);
            steps += u64::from(stats.length);
            train.push(stats);
            if steps - last_record.0 >= every || episode == episodes {
                if let Some(diagnostics) = agent.diagnostics() {
                    metrics.push(MetricPoint {
                        step: steps,
                        diagnostics,
                        steps_per_sec: (steps - last_record.0) as f64 / last_record.1.elapsed().as_secs_f64(),
                    });
                }
                last_record = (steps, Instant::now());
            }
            if episode % eval.every_episodes == 0 || episode == episodes {
                evals.push(evaluate_now(agent.as_mut(), Split::Validation, episode, steps));
            }
            if episode % 64 == 0 || episode == episodes {
                progress(if episode % 64 == 0 { 64 } else { episode % 64 });
            }
        }
        // The report's figure: the test campaigns, once, after training.
        evals.push(evaluate_now(agent.as_mut(), Split::Test, episodes, steps));
        if let (Some(dir), Some(extension)) = (checkpoints.filter(|_| episodes > 0), agent.checkpoint_extension()) {
            let path = dir.join(format!("{name}-seed{seed}.{extension}"));
            std::fs::create_dir_all(dir)
                .map_err(|e| AgentError::Save {
                    path: dir.to_owned(),
                    source: e.into(),
                })
                .and_then(|()| agent.save(&path))
                .map_err(ExperimentError::Save)?;
        }
        Ok(RunResult {
            agent: name,
            seed,
            episodes: train,
            evals,
            metrics,
            train_steps: steps,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The comparison of the final test evaluations.
    pub fn summary(&self, results: &Results) -> Summary {
        let test = self.references(Split::Test);
        let references = test.means();
        let score = self.score();
        let replays = self.config.evaluation.replays;
        let n_actions = self.kind.spaces().n_actions;
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
                        let test = r.test_eval();
                        let value = score.mean(&test.campaigns);
                        FinalEval {
                            score: value,
                            regret: references.online - value,
                            acceptance_rate: acceptance_rate(&test.campaigns),
                            mix: offer_mix(&test.campaigns, n_actions),
                            campaigns: test.campaigns.chunks(replays).map(|c| score.mean(c)).collect(),
                        }
                    })
                    .collect();
                (name, finals)
            })
            .collect();
        Summary::new(
            &self.config.name,
            self.kind.action_names(),
            labels(&self.kind),
            references,
            &test.online,
            &per_agent,
        )
    }

    /// The references' scores on the evaluation campaigns of `split` (validation or test).
    pub fn references(&self, split: Split) -> &ReferenceReturns {
        match split {
            Split::Validation => &self.references[0],
            Split::Test => &self.references[1],
            Split::Train => unreachable!("evaluations use validation and test campaigns only"),
        }
    }
}

impl RunResult {
    /// The final evaluation on the test campaigns.
    pub fn test_eval(&self) -> &EvalPoint {
        self.evals
            .iter()
            .rfind(|e| e.split == Split::Test)
            .expect("every run ends with a test evaluation")
    }
}

/// Checks what the evaluation asks of the env kind: on customer lifetime, campaigns that are
/// disjoint cohorts of the validation and test splits; on contract choice, one replay.
fn check_evaluation(file: &Path, config: &ExperimentConfig, kind: &EnvKind) -> Result<(), ConfigError> {
    let eval = &config.evaluation;
    match kind {
        EnvKind::ContractChoice(_) if eval.replays != 1 => Err(ConfigError::invalid(
            file,
            "evaluation.replays",
            format!(
                "the contract-choice env is scored by expected return, which replays do not change: use 1, got {}",
                eval.replays
            ),
        )),
        EnvKind::CustomerLifetime(model) => {
            let available = [Split::Validation, Split::Test]
                .map(|s| model.campaigns(s))
                .into_iter()
                .min();
            match available {
                Some(n) if eval.episodes > n => Err(ConfigError::invalid(
                    file,
                    "evaluation.episodes",
                    format!(
                        "the validation and test splits hold {n} disjoint campaigns of {} users each; ask for at most {n}, got {}",
                        model.config().cohort,
                        eval.episodes
                    ),
                )),
                _ => Ok(()),
            }
        }
        EnvKind::ContractChoice(_) => Ok(()),
    }
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

/// Accepted offers per decision over a set of campaigns ("no offer" decisions included).
pub fn acceptance_rate(campaigns: &[EpisodeStats]) -> f64 {
    let accepted: u32 = campaigns.iter().map(|c| c.accepted).sum();
    let offers: u32 = campaigns.iter().map(|c| c.length).sum();
    f64::from(accepted) / f64::from(offers)
}

/// Share of the decisions that took each of `n_actions` actions over a set of campaigns.
pub fn offer_mix(campaigns: &[EpisodeStats], n_actions: usize) -> Vec<f64> {
    let total: u32 = campaigns.iter().map(|c| c.length).sum();
    (0..n_actions)
        .map(|a| f64::from(campaigns.iter().map(|c| c.offers[a]).sum::<u32>()) / f64::from(total))
        .collect()
}
