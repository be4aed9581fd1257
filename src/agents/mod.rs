//! Agents: one [`Agent`] trait for learners, baselines and oracles, so the runner treats them
//! alike, and [`AgentConfig`], their section of an experiment file.
//!
//! Agents never touch global randomness: every random choice draws from the run's
//! [`AgentRng`], handed in by the runner. Oracles are given the env's response model
//! explicitly at construction; learners see only observations and rewards.

mod baselines;
mod dqn;
mod oracles;
mod q_learning;
mod replay;

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use baselines::{BestSingleContract, RandomAgent};
pub use dqn::{Dqn, DqnConfig};
pub use oracles::{HindsightOracle, MyopicOracle, optimal_assignment};
pub use q_learning::{QLearning, QLearningConfig, StepSize};
pub use replay::{Batch, ReplayBuffer};

use crate::env::{EnvModel, Observation, ResetInfo};

/// The random generator every agent draws from.
pub type AgentRng = rand_chacha::ChaCha8Rng;

/// One step of experience.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// Observation the action was taken in.
    pub obs: Observation,
    /// The action taken.
    pub action: usize,
    /// The sampled reward.
    pub reward: f64,
    /// The next observation.
    pub next_obs: Observation,
    /// The task ended: no bootstrapping past it.
    pub terminated: bool,
    /// Cut by an outside limit: value targets still bootstrap.
    pub truncated: bool,
}

/// What the runner needs from any agent.
pub trait Agent: Send {
    /// Called after every reset with the first observation of the campaign.
    fn begin_episode(&mut self, _obs: &Observation, _info: &ResetInfo) {}

    /// The action to take while training (may explore).
    fn act(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize;

    /// The action to take when evaluated (greedy where the agent has a notion of greedy).
    fn act_greedy(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize;

    /// Learns from one transition.
    fn observe(&mut self, _transition: &Transition, _rng: &mut AgentRng) {}

    /// Saves what the agent learned to `path`; `Ok(false)` for agents with nothing to save.
    fn save(&self, _path: &Path) -> Result<bool, String> {
        Ok(false)
    }
}

/// An agent's section of an experiment file: `[[agents]]` with a `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentConfig {
    /// Uniform over the valid contracts.
    Random {
        /// Label in reports (default: the kind).
        #[serde(default)]
        name: Option<String>,
    },
    /// One contract for everyone: the one with the best mean expected reward on training users.
    BestSingle {
        /// Label in reports (default: the kind).
        #[serde(default)]
        name: Option<String>,
    },
    /// Knows the response model; offers the valid contract of highest expected reward now.
    MyopicOracle {
        /// Label in reports (default: the kind).
        #[serde(default)]
        name: Option<String>,
    },
    /// Knows the model and the whole campaign; solves the quota assignment exactly.
    HindsightOracle {
        /// Label in reports (default: the kind).
        #[serde(default)]
        name: Option<String>,
    },
    /// Tabular Q-learning on the discrete state.
    QLearning(QLearningConfig),
    /// DQN on the dense observation.
    Dqn(DqnConfig),
}

impl AgentConfig {
    /// The label of this agent in reports.
    pub fn name(&self) -> String {
        let (given, kind) = match self {
            Self::Random { name } => (name, "random"),
            Self::BestSingle { name } => (name, "best_single"),
            Self::MyopicOracle { name } => (name, "myopic_oracle"),
            Self::HindsightOracle { name } => (name, "hindsight_oracle"),
            Self::QLearning(c) => (&c.name, "q_learning"),
            Self::Dqn(c) => (&c.name, "dqn"),
        };
        given.clone().unwrap_or_else(|| kind.to_owned())
    }

    /// Whether the agent learns from experience (if not, the runner skips its training).
    pub fn learns(&self) -> bool {
        match self {
            Self::QLearning(_) => true,
            Self::Dqn(c) => c.checkpoint.is_none(),
            _ => false,
        }
    }

    /// Checks hyperparameters; the message names the field and what is allowed.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self {
            Self::QLearning(c) => c.validate(),
            Self::Dqn(c) => c.validate(),
            _ => Ok(()),
        }
    }

    /// Builds the agent for `model`, for a training run of `total_steps` env steps; initial
    /// weights are drawn from `rng`. A DQN with a `checkpoint` loads it.
    pub fn build(&self, model: &Arc<EnvModel>, total_steps: u64, rng: &mut AgentRng) -> Result<Box<dyn Agent>, String> {
        Ok(match self {
            Self::Random { .. } => Box::new(RandomAgent),
            Self::BestSingle { .. } => Box::new(BestSingleContract::new(model)),
            Self::MyopicOracle { .. } => Box::new(MyopicOracle::new(Arc::clone(model))),
            Self::HindsightOracle { .. } => Box::new(HindsightOracle::new(Arc::clone(model))),
            Self::QLearning(c) => Box::new(QLearning::new(
                c.clone(),
                model.n_states(),
                model.n_actions(),
                total_steps,
            )),
            Self::Dqn(c) => {
                let mut agent = Dqn::new(c.clone(), Arc::clone(model), total_steps, rng);
                if let Some(path) = &c.checkpoint {
                    agent.load(path).map_err(|e| format!("{}: {e}", path.display()))?;
                }
                Box::new(agent)
            }
        })
    }
}

/// A linear ε schedule: from `start` to `end` over the first `decay_steps` training steps,
/// then `end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpsilonSchedule {
    start: f64,
    end: f64,
    decay_steps: f64,
}

impl EpsilonSchedule {
    /// Decays over `decay_fraction` of `total_steps`.
    pub fn new(start: f64, end: f64, decay_fraction: f64, total_steps: u64) -> Self {
        Self {
            start,
            end,
            decay_steps: decay_fraction * total_steps as f64,
        }
    }

    /// ε after `step` training steps.
    pub fn at(&self, step: u64) -> f64 {
        let progress = step as f64 / self.decay_steps;
        if progress >= 1.0 || self.decay_steps <= 0.0 {
            self.end
        } else {
            self.start + (self.end - self.start) * progress
        }
    }

    /// ε-greedy over the valid actions: uniform with probability ε after `step` steps,
    /// `greedy()` otherwise.
    #[inline]
    pub fn act(&self, step: u64, obs: &Observation, rng: &mut AgentRng, greedy: impl FnOnce() -> usize) -> usize {
        use rand::RngExt;
        if rng.random::<f64>() < self.at(step) {
            obs.mask
                .nth(rng.random_range(0..obs.mask.count() as usize))
                .expect("a valid action")
        } else {
            greedy()
        }
    }
}

/// The item of highest `value`, ties to the first; `None` when there are no items.
#[inline]
pub fn argmax_by(items: impl Iterator<Item = usize>, value: impl Fn(usize) -> f64) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for a in items {
        let v = value(a);
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((a, v));
        }
    }
    best.map(|(a, _)| a)
}

/// The valid action of highest `value`, ties to the lowest index; `None` for an empty mask.
#[inline]
pub fn masked_argmax(obs: &Observation, value: impl Fn(usize) -> f64) -> Option<usize> {
    argmax_by(obs.mask.iter(), value)
}
