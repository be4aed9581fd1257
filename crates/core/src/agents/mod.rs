//! Agents: one [`Agent`] trait for learners, baselines and oracles, so the runner treats them
//! alike; [`AgentConfig`], their section of an experiment file; and [`AgentFactory`], which
//! turns configs into agents ([`CoreAgents`] builds every kind of this crate; DQN's factory is
//! in `contract-rl-dqn`).
//!
//! Agents never touch global randomness: every random choice draws from the run's
//! [`AgentRng`], handed in by the runner. Oracles are the documented privileged agents: they
//! are given the env's response model at construction. Learners see only observations (the
//! tabular state and the dense vector the env produces) and rewards.

mod baselines;
mod dqn_config;
mod lagrangian_q;
mod online_oracle;
mod oracles;
mod pricing;
mod q_learning;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use baselines::{BestSingleContract, RandomAgent};
pub use dqn_config::{DqnConfig, DqnHead, DqnLearner, LagrangianDqnConfig, PrioritizedReplay, RewardBaseline};
pub use lagrangian_q::{LagrangianQ, LagrangianQConfig};
pub use online_oracle::OnlineOracle;
pub use oracles::{HindsightOracle, MyopicOracle, optimal_assignment};
pub use pricing::{LearnedPrices, PlanMismatch, PriceController, PricingConfig};
pub use q_learning::{QLearning, QLearningConfig, StepSize};

use crate::env::{ActionMask, EnvKind, Observation, ResetInfo};

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

/// How a learner takes its experience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// The env's steps as they come ([`Agent::observe`]).
    Cohort,
    /// Each user's own transitions, from one of its decisions to its next
    /// ([`Agent::observe_user`]; envs with a per-user ledger only).
    PerUser,
}

/// One user's transition between two of its own decisions (customer lifetime): what a
/// per-user learner learns from. Its reward is the user's own margins minus the offer's cost;
/// the cost and the handset are given apart so that a learner can price them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserTransition {
    /// The user's observation at the decision.
    pub obs: Observation,
    /// The action taken.
    pub action: usize,
    /// The user's own margins from the decision to its next one (or its end).
    pub margins: f64,
    /// The offer's cost (0 for "no offer").
    pub offer_cost: f64,
    /// Whether the decision took a handset.
    pub handset: bool,
    /// The same user's next decision (the decision itself when terminated).
    pub next_obs: Observation,
    /// Nothing follows: the user churned or the campaign ended.
    pub terminated: bool,
}

impl UserTransition {
    /// The user's own reward: margins minus the offer's cost.
    pub fn reward(&self) -> f64 {
        self.margins - self.offer_cost
    }
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

    /// How the agent takes its experience while training.
    fn credit(&self) -> Credit {
        Credit::Cohort
    }

    /// Learns from one user's transition (agents whose [`Self::credit`] is
    /// [`Credit::PerUser`]).
    fn observe_user(&mut self, _transition: &UserTransition, _rng: &mut AgentRng) {}

    /// Called at the end of every campaign with its last observation; `training` tells whether
    /// the campaign trained the agent.
    fn end_episode(&mut self, _last: &Observation, _training: bool) {}

    /// Learning diagnostics since the last call (for learners; `None` for the others).
    fn diagnostics(&mut self) -> Option<Diagnostics> {
        None
    }

    /// The file extension of this agent's checkpoints, for agents that can save what they
    /// learned.
    fn checkpoint_extension(&self) -> Option<&'static str> {
        None
    }

    /// Saves what the agent learned to `path` (only called when
    /// [`Self::checkpoint_extension`] is `Some`).
    fn save(&self, path: &Path) -> Result<(), AgentError> {
        Err(AgentError::Save {
            path: path.to_owned(),
            source: "this agent has nothing to save".into(),
        })
    }
}

/// A learner's diagnostics over the training steps since they were last read, under CleanRL's
/// names: `losses/td_loss`, `losses/q_values`, `charts/epsilon`; and for learners that price
/// shared resources, `charts/budget_price` and `charts/stock_price`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Mean TD loss (squared TD error for tabular Q, the training loss for DQN).
    pub td_loss: f64,
    /// Mean Q-value of the actions taken.
    pub q_values: f64,
    /// ε now.
    pub epsilon: f64,
    /// The prices a campaign starts with now (budget, handset), for learners that price the
    /// shared resources.
    pub prices: Option<[f64; 2]>,
}

/// Running sums behind [`Diagnostics`]: a learner adds each update's loss and Q-value and
/// takes their means when the runner asks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiagnosticsSums {
    loss: f64,
    q_values: f64,
    updates: u64,
}

impl DiagnosticsSums {
    /// Adds one update's loss and the Q-value it learned from.
    #[inline]
    pub fn add(&mut self, loss: f64, q_value: f64) {
        self.loss += loss;
        self.q_values += q_value;
        self.updates += 1;
    }

    /// The means since the last call (NaN when nothing was added), with ε; then starts over.
    pub fn take(&mut self, epsilon: f64) -> Diagnostics {
        let n = self.updates as f64;
        let means = Diagnostics {
            td_loss: self.loss / n,
            q_values: self.q_values / n,
            epsilon,
            prices: None,
        };
        *self = Self::default();
        means
    }
}

/// A hyperparameter out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidHyperparameter {
    /// The field, e.g. `step_size.omega`.
    pub field: String,
    /// What is allowed and what was given.
    pub message: String,
}

impl InvalidHyperparameter {
    /// The same error for a field of the section `section` (e.g. `gamma` → `dqn.gamma`).
    pub fn under(self, section: &str) -> Self {
        Self {
            field: format!("{section}.{}", self.field),
            message: self.message,
        }
    }
}

/// Why an agent cannot be built or saved.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The kind needs a crate this program was built without.
    #[error("agents of kind {kind:?} need {krate}, which this program was built without")]
    Unavailable {
        /// The agent kind.
        kind: &'static str,
        /// The crate that provides it.
        krate: &'static str,
    },
    /// A checkpoint is missing, corrupt or does not fit the configured network.
    #[error("{path}: {source}")]
    Checkpoint {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The agent learns each user's own problem, which needs users coupled only through shared
    /// resources and a per-user ledger.
    #[error(
        "agents of kind {kind:?} learn each user's own problem under resource prices: they need an env whose users share resources (customer-lifetime), not the {env} env"
    )]
    NeedsCoupling {
        /// The agent kind.
        kind: &'static str,
        /// The env kind.
        env: &'static str,
    },
    /// A DQN option needs something of the env its kind does not state.
    #[error("agents of kind \"dqn\": `{option}` needs {needs}, which the {env} env does not have")]
    UnsupportedOption {
        /// The option, as in experiment files.
        option: &'static str,
        /// What it needs.
        needs: &'static str,
        /// The env kind.
        env: &'static str,
    },
    /// The agent reads a model the env kind does not have.
    #[error(
        "agents of kind {kind:?} are defined on the contract-choice env only (they read its model); the {env} env reports its own references instead"
    )]
    WrongEnv {
        /// The agent kind.
        kind: &'static str,
        /// The env kind.
        env: &'static str,
    },
    /// A trained agent could not be saved.
    #[error("saving {path}: {source}")]
    Save {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Turns agent configs into agents. The runner checks every config before any run starts and
/// then asks for one agent per (agent, seed).
pub trait AgentFactory: Sync {
    /// Checks what can be checked before any work (e.g. that a checkpoint loads into the
    /// configured network).
    fn check(&self, config: &AgentConfig, env: &EnvKind) -> Result<(), AgentError>;

    /// Builds the agent for a training run of `total_steps` env steps on `env`; initial
    /// weights are drawn from `rng`. Learners see only the env's [`crate::env::Spaces`]; only
    /// oracles and baselines may keep its model.
    fn build(
        &self,
        config: &AgentConfig,
        env: &EnvKind,
        total_steps: u64,
        rng: &mut AgentRng,
    ) -> Result<Box<dyn Agent>, AgentError>;
}

/// Builds every agent kind of this crate; `dqn` is [`AgentError::Unavailable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreAgents;

impl AgentFactory for CoreAgents {
    fn check(&self, config: &AgentConfig, env: &EnvKind) -> Result<(), AgentError> {
        match config {
            AgentConfig::Dqn(_) => Err(dqn_unavailable("dqn")),
            AgentConfig::LagrangianDqn(_) => Err(dqn_unavailable("lagrangian_dqn")),
            AgentConfig::LagrangianQ(_) => coupled(env, "lagrangian_q").map(drop),
            other => contract_choice_model(other, env).map(drop),
        }
    }

    fn build(
        &self,
        config: &AgentConfig,
        env: &EnvKind,
        total_steps: u64,
        _rng: &mut AgentRng,
    ) -> Result<Box<dyn Agent>, AgentError> {
        let model = || contract_choice_model(config, env).map(|m| Arc::clone(m.expect("a model for this kind")));
        let spaces = env.spaces();
        Ok(match config {
            AgentConfig::Random { .. } => Box::new(RandomAgent),
            AgentConfig::BestSingle { .. } => Box::new(BestSingleContract::new(&*model()?)),
            AgentConfig::MyopicOracle { .. } => Box::new(MyopicOracle::new(model()?)),
            AgentConfig::OnlineOracle { .. } => Box::new(OnlineOracle::new(model()?)),
            AgentConfig::HindsightOracle { .. } => Box::new(HindsightOracle::new(model()?)),
            AgentConfig::QLearning(c) => Box::new(QLearning::new(
                c.clone(),
                spaces.n_states,
                spaces.n_actions,
                total_steps,
            )),
            AgentConfig::LagrangianQ(c) => {
                coupled(env, "lagrangian_q")?;
                Box::new(LagrangianQ::new(c.clone(), spaces, total_steps))
            }
            AgentConfig::Dqn(_) => return Err(dqn_unavailable("dqn")),
            AgentConfig::LagrangianDqn(_) => return Err(dqn_unavailable("lagrangian_dqn")),
        })
    }
}

/// The coupling of `env`'s users, or [`AgentError::NeedsCoupling`] for agents of `kind`.
pub fn coupled(env: &EnvKind, kind: &'static str) -> Result<crate::env::Coupling, AgentError> {
    env.spaces()
        .coupling
        .ok_or(AgentError::NeedsCoupling { kind, env: env.name() })
}

/// The contract-choice model for agents that read it (`None` for those that do not), or
/// [`AgentError::WrongEnv`] when `env` is another kind.
fn contract_choice_model<'a>(
    config: &AgentConfig,
    env: &'a EnvKind,
) -> Result<Option<&'a Arc<crate::env::EnvModel>>, AgentError> {
    let kind = match config {
        AgentConfig::BestSingle { .. } => "best_single",
        AgentConfig::MyopicOracle { .. } => "myopic_oracle",
        AgentConfig::OnlineOracle { .. } => "online_oracle",
        AgentConfig::HindsightOracle { .. } => "hindsight_oracle",
        _ => return Ok(None),
    };
    env.contract_choice()
        .map(Some)
        .ok_or(AgentError::WrongEnv { kind, env: env.name() })
}

fn dqn_unavailable(kind: &'static str) -> AgentError {
    AgentError::Unavailable {
        kind,
        krate: "contract-rl-dqn",
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
    /// Knows the model and the user population, not the campaign's order: the DP over (step,
    /// offers left), the best online policy.
    OnlineOracle {
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
    /// Tabular Q-learning of each user's own problem, the shared resources priced.
    LagrangianQ(LagrangianQConfig),
    /// DQN of each user's own problem, with the prices of the shared resources as inputs.
    LagrangianDqn(LagrangianDqnConfig),
}

impl AgentConfig {
    /// The label of this agent in reports.
    pub fn name(&self) -> String {
        let (given, kind) = match self {
            Self::Random { name } => (name, "random"),
            Self::BestSingle { name } => (name, "best_single"),
            Self::MyopicOracle { name } => (name, "myopic_oracle"),
            Self::OnlineOracle { name } => (name, "online_oracle"),
            Self::HindsightOracle { name } => (name, "hindsight_oracle"),
            Self::QLearning(c) => (&c.name, "q_learning"),
            Self::Dqn(c) => (&c.name, "dqn"),
            Self::LagrangianQ(c) => (&c.name, "lagrangian_q"),
            Self::LagrangianDqn(c) => (&c.name, "lagrangian_dqn"),
        };
        given.clone().unwrap_or_else(|| kind.to_owned())
    }

    /// What the agent knows when it acts, in a few words for reports.
    pub fn knows(&self) -> &'static str {
        match self {
            Self::Random { .. } => "nothing: uniform over the valid contracts",
            Self::BestSingle { .. } => {
                "the response model's mean expected reward of each contract on the training users; offers the best one to everyone"
            }
            Self::MyopicOracle { .. } => {
                "the response model; offers the valid contract of highest expected reward to the current user"
            }
            Self::OnlineOracle { .. } => {
                "the response model and the user population, not the campaign's order: the DP over (step, offers left)"
            }
            Self::HindsightOracle { .. } => {
                "the response model and the whole campaign in advance: solves the quota assignment exactly"
            }
            Self::QLearning(_) => "only its observations (the discrete state, the valid actions) and rewards",
            Self::Dqn(c) if c.checkpoint.is_some() => {
                "only its observations (the dense vector, the valid actions), through a saved network it does not train"
            }
            Self::Dqn(_) => "only its observations (the dense vector, the valid actions) and rewards",
            Self::LagrangianQ(_) => {
                "its observations (the per-user tabular state, the valid actions), each user's own rewards and the \
                 campaign's budget and handsets; prices them by dual ascent"
            }
            Self::LagrangianDqn(c) if c.dqn.checkpoint.is_some() => {
                "its observations (the user's dense entries) and the campaign's budget and handsets, through a saved \
                 network and prices it does not train"
            }
            Self::LagrangianDqn(_) => {
                "its observations (the user's dense entries, the valid actions), each user's own rewards and the \
                 campaign's budget and handsets; prices them by dual ascent"
            }
        }
    }

    /// Whether the agent learns from experience (if not, the runner skips its training).
    pub fn learns(&self) -> bool {
        match self {
            Self::QLearning(_) | Self::LagrangianQ(_) => true,
            Self::Dqn(c) => c.checkpoint.is_none(),
            Self::LagrangianDqn(c) => c.dqn.checkpoint.is_none(),
            _ => false,
        }
    }

    /// Checks hyperparameters; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        match self {
            Self::QLearning(c) => c.validate(),
            Self::Dqn(c) => c.validate(),
            Self::LagrangianQ(c) => c.validate(),
            Self::LagrangianDqn(c) => c.validate(),
            _ => Ok(()),
        }
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

    /// ε-greedy over the actions of `mask`: uniform with probability ε after `step` steps,
    /// `greedy()` otherwise.
    #[inline]
    pub fn act(&self, step: u64, mask: ActionMask, rng: &mut AgentRng, greedy: impl FnOnce() -> usize) -> usize {
        use rand::RngExt;
        if rng.random::<f64>() < self.at(step) {
            mask.nth(rng.random_range(0..mask.count() as usize))
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
