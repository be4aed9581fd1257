//! The hyperparameters of DQN: parsed, defaulted and validated here, so an experiment file is
//! checked whole before any work; the network itself is in `contract-rl-dqn`.

use serde::{Deserialize, Serialize};

use super::InvalidHyperparameter;

/// What computes DQN's gradient steps; acting and the bootstrap are on `ndarray` either way.
///
/// The two give the same bits on x86-64 CPUs with AVX2 and FMA when every layer has at most
/// 256 units (inputs and actions included) and minibatches hold 2 to 256 transitions: there,
/// `matrixmultiply` and burn's `gemm` both compute each product entry as one in-order chain of
/// fused multiply-adds (tests check sizes in that range and at its bounds on the machine they run
/// on). Elsewhere (a minibatch of 1 goes through burn's matrix-vector kernel, longer chains are
/// blocked differently, CPUs without FMA; and the afterstate head, whose one-output value
/// network's bits differ) they agree to float rounding. The loss diagnostic
/// matches too while burn-flex sums in order, as it is built here (without its `simd` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum DqnLearner {
    /// Forward, backward, per-tensor gradient clipping and Adam written out on `ndarray`, as
    /// burn computes them, without a framework's per-call overhead.
    Ndarray,
    /// burn's autodiff and Adam on its `flex` backend: the reference.
    Burn,
}

/// The variant of `choices` named `value`; the error names `field` and every choice, as
/// serde's message for an unknown variant would not.
fn choose<T: Copy>(field: &str, value: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(name, _)| format!("`{name}`")).collect();
            format!("{field}: `{value}` is none of {}", names.join(", "))
        })
}

impl TryFrom<String> for DqnLearner {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        choose("learner", &value, &[("ndarray", Self::Ndarray), ("burn", Self::Burn)])
    }
}

/// What the network outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum DqnHead {
    /// One Q-value per action (Mnih et al. 2015).
    Q,
    /// Q(s, a) = r̂(user, a) + W(state after a): a reward network r̂ of the user's entries,
    /// fitted by regression on immediate rewards, and a value network W of the post-decision
    /// state (the campaign's entries once the offer is made, before the answer), fitted by TD
    /// between post-decision states (Powell, "Approximate Dynamic Programming", ch. 4; Sutton &
    /// Barto §6.8). Needs an env that states how an offer moves its campaign's entries.
    Afterstate,
}

impl TryFrom<String> for DqnHead {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        choose("head", &value, &[("q", Self::Q), ("afterstate", Self::Afterstate)])
    }
}

/// A baseline subtracted from every reward before learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum RewardBaseline {
    /// Rewards as the env gives them.
    None,
    /// Potential-based shaping (Ng, Harada & Russell 1999) with Φ(t) = (T − t)·b, b the mean
    /// reward per step of the training transitions seen before `learning_starts`, frozen then:
    /// each reward becomes r − b, so Q(s, a) shrinks by (T − t)·b, the same for every action.
    /// Policy-invariant only when every campaign has the same number of steps T and γ = 1.
    PerStep,
}

impl TryFrom<String> for RewardBaseline {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        choose("baseline", &value, &[("none", Self::None), ("per_step", Self::PerStep)])
    }
}

/// Proportional prioritized replay (Schaul et al. 2016): transition i is drawn with
/// probability p_i^α / Σ p^α, p_i = |TD error| + ε (new ones at the largest priority so far),
/// and its loss weighted by (N·P(i))^−β over the minibatch's largest weight, β annealed
/// linearly from `beta_start` to `beta_end` over training. Defaults: the paper's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrioritizedReplay {
    pub alpha: f64,
    pub beta_start: f64,
    pub beta_end: f64,
    pub epsilon: f64,
}

impl Default for PrioritizedReplay {
    fn default() -> Self {
        Self {
            alpha: 0.6,
            beta_start: 0.4,
            beta_end: 1.0,
            epsilon: 1e-6,
        }
    }
}

impl PrioritizedReplay {
    /// β at `progress` (share of training done).
    pub fn beta(&self, progress: f64) -> f64 {
        self.beta_start + (self.beta_end - self.beta_start) * progress.clamp(0.0, 1.0)
    }
}

/// Hyperparameters of DQN; every field has a default (docs/agents.md has Stable-Baselines3's beside them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DqnConfig {
    /// Label in reports (default "dqn").
    pub name: Option<String>,
    /// Hidden layer sizes of the MLP.
    pub hidden: Vec<usize>,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Replay buffer capacity in transitions.
    pub buffer_size: usize,
    /// Transitions per gradient step.
    pub batch_size: usize,
    /// Discount factor in [0, 1]; 1 for finite campaigns evaluated undiscounted (progress is in
    /// the observation).
    pub gamma: f64,
    /// Target update: 1.0 copies the online network every `target_update_interval` env steps;
    /// below 1.0, Polyak averaging with this weight after every gradient step.
    pub tau: f64,
    /// Env steps between hard target updates (Stable-Baselines3's meaning).
    pub target_update_interval: u64,
    /// Env steps between training rounds.
    pub train_freq: u64,
    /// Gradient steps per training round.
    pub gradient_steps: u64,
    /// Env steps before learning starts.
    pub learning_starts: u64,
    /// ε at the first training step.
    pub epsilon_start: f64,
    /// ε after the decay.
    pub epsilon_end: f64,
    /// Share of the training steps over which ε decays linearly.
    pub epsilon_decay_fraction: f64,
    /// Largest gradient norm of each parameter tensor (burn's clipping); larger gradients are
    /// scaled down. Stable-Baselines3 clips the norm of all gradients together instead.
    pub max_grad_norm: f32,
    /// Adam's ε (PyTorch's and so Stable-Baselines3's default, 1e-8; burn's own is 1e-5).
    pub adam_epsilon: f32,
    /// Double DQN: the online network picks the bootstrap action, the target evaluates it.
    pub double_dqn: bool,
    /// Huber loss threshold in scaled reward units; absent: squared error, whose fixed point is
    /// the mean. A Huber loss estimates the mean only for TD errors within δ: with rare large
    /// rewards beyond it, it converges toward a median-like value and undervalues them.
    pub huber_delta: Option<f32>,
    /// Rewards are multiplied by this before learning (margins are in the hundreds).
    pub reward_scale: f32,
    /// What computes the gradient steps (both save burn checkpoints).
    pub learner: DqnLearner,
    /// Evaluate this saved network (`checkpoints/*.bpk` of a results folder) instead of
    /// training; relative to the experiment file.
    pub checkpoint: Option<std::path::PathBuf>,
    /// Adam's learning rate decays linearly from `learning_rate` to this over the training
    /// steps (Stable-Baselines3's linear schedule); absent: constant.
    pub learning_rate_end: Option<f64>,
    /// Targets sum this many rewards before bootstrapping (Sutton & Barto §7.1; Dopamine's
    /// `update_horizon`, 3 in Rainbow), fewer where the campaign ends.
    pub n_steps: usize,
    /// Dueling head (Wang et al. 2016): the last layer gives V(s) and A(s, ·), and
    /// Q = V + A − mean(A).
    pub dueling: bool,
    /// Prioritized replay; absent: uniform.
    pub prioritized_replay: Option<PrioritizedReplay>,
    /// A baseline subtracted from every reward.
    pub baseline: RewardBaseline,
    /// What the network outputs.
    pub head: DqnHead,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            name: None,
            hidden: vec![64, 64],
            learning_rate: 1e-3,
            buffer_size: 100_000,
            batch_size: 64,
            gamma: 1.0,
            tau: 1.0,
            target_update_interval: 2_000,
            train_freq: 4,
            gradient_steps: 1,
            learning_starts: 1_000,
            epsilon_start: 1.0,
            epsilon_end: 0.02,
            epsilon_decay_fraction: 0.3,
            max_grad_norm: 10.0,
            adam_epsilon: 1e-8,
            double_dqn: true,
            huber_delta: None,
            reward_scale: 0.01,
            learner: DqnLearner::Ndarray,
            checkpoint: None,
            learning_rate_end: None,
            n_steps: 1,
            dueling: false,
            prioritized_replay: None,
            baseline: RewardBaseline::None,
            head: DqnHead::Q,
        }
    }
}

impl DqnConfig {
    /// Checks ranges; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        let bad = |field: &str, message: String| {
            Err(InvalidHyperparameter {
                field: field.into(),
                message,
            })
        };
        for (field, v) in [
            ("gamma", self.gamma),
            ("epsilon_start", self.epsilon_start),
            ("epsilon_end", self.epsilon_end),
            ("epsilon_decay_fraction", self.epsilon_decay_fraction),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, format!("must be in [0, 1], got {v}"));
            }
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return bad("tau", format!("must be in (0, 1], got {}", self.tau));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learning_rate",
                format!("must be a positive number, got {}", self.learning_rate),
            );
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return bad(
                "hidden",
                format!("must list positive layer sizes, got {:?}", self.hidden),
            );
        }
        for (field, v) in [
            ("buffer_size", self.buffer_size as u64),
            ("batch_size", self.batch_size as u64),
            ("target_update_interval", self.target_update_interval),
            ("train_freq", self.train_freq),
            ("gradient_steps", self.gradient_steps),
        ] {
            if v == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        for (field, v) in [
            ("max_grad_norm", self.max_grad_norm),
            ("adam_epsilon", self.adam_epsilon),
            ("huber_delta", self.huber_delta.unwrap_or(1.0)),
            ("reward_scale", self.reward_scale),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return bad(field, format!("must be a positive number, got {v}"));
            }
        }
        if let Some(end) = self.learning_rate_end
            && !(end >= 0.0 && end.is_finite())
        {
            return bad("learning_rate_end", format!("must be a finite number >= 0, got {end}"));
        }
        if !(1..=100).contains(&self.n_steps) {
            return bad("n_steps", format!("must be in 1..=100, got {}", self.n_steps));
        }
        if let Some(p) = &self.prioritized_replay {
            for (field, v) in [
                ("prioritized_replay.alpha", p.alpha),
                ("prioritized_replay.beta_start", p.beta_start),
                ("prioritized_replay.beta_end", p.beta_end),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    return bad(field, format!("must be in [0, 1], got {v}"));
                }
            }
            if !(p.epsilon > 0.0 && p.epsilon.is_finite()) {
                return bad(
                    "prioritized_replay.epsilon",
                    format!("must be a positive number, got {}", p.epsilon),
                );
            }
        }
        if self.baseline == RewardBaseline::PerStep && self.gamma != 1.0 {
            return bad(
                "baseline",
                format!(
                    "`per_step` shapes rewards without changing the best policy only when gamma = 1 (got {}); set gamma = 1 or baseline = \"none\"",
                    self.gamma
                ),
            );
        }
        if self.head == DqnHead::Afterstate {
            for (field, on) in [
                ("n_steps", self.n_steps > 1),
                ("dueling", self.dueling),
                ("prioritized_replay", self.prioritized_replay.is_some()),
            ] {
                if on {
                    return bad(
                        field,
                        "is an option of the Q head: head = \"afterstate\" learns r̂ by regression and W by one-step TD, uniformly sampled".into(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Hyperparameters of `lagrangian_dqn`: DQN over each user's own transitions, with the prices
/// of the shared resources as inputs; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LagrangianDqnConfig {
    /// Label in reports (default "lagrangian_dqn").
    pub name: Option<String>,
    /// The network and its training, as for `dqn` (its `name` unused; `checkpoint` evaluates
    /// a saved `lagrangian_dqn` network with its prices instead of training).
    pub dqn: DqnConfig,
    /// Each sampled transition is relabelled at a budget price drawn uniformly from
    /// [0, `budget_price_max`] (per unit of offer cost) ...
    pub budget_price_max: f64,
    /// ... and a handset price drawn uniformly from [0, `stock_price_max`] (margin units).
    pub stock_price_max: f64,
    /// The share of sampled transitions relabelled near the prices in force instead (each
    /// within ±50% of the controller's current campaign-start price), where acting reads the
    /// network most; in [0, 1].
    pub focus_share: f64,
    /// How the prices are learned and paced.
    pub pricing: super::PricingConfig,
}

impl Default for LagrangianDqnConfig {
    fn default() -> Self {
        Self {
            name: None,
            dqn: DqnConfig::default(),
            budget_price_max: 6.0,
            stock_price_max: 60.0,
            focus_share: 0.0,
            pricing: super::PricingConfig::default(),
        }
    }
}

impl LagrangianDqnConfig {
    /// Checks ranges; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        self.dqn.validate().map_err(|e| e.under("dqn"))?;
        if self.dqn.name.is_some() {
            return Err(InvalidHyperparameter {
                field: "dqn.name".into(),
                message: "is not used here: name the agent with `name`".into(),
            });
        }
        let d = DqnConfig::default();
        for (field, default) in [
            ("dqn.n_steps", self.dqn.n_steps == d.n_steps),
            ("dqn.baseline", self.dqn.baseline == d.baseline),
            ("dqn.head", self.dqn.head == d.head),
        ] {
            if !default {
                return Err(InvalidHyperparameter {
                    field: field.into(),
                    message: "is an option of `dqn` only: lagrangian_dqn relabels one-step per-user rewards at sampled prices".into(),
                });
            }
        }
        for (field, v) in [
            ("budget_price_max", self.budget_price_max),
            ("stock_price_max", self.stock_price_max),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(InvalidHyperparameter {
                    field: field.into(),
                    message: format!("must be a finite number >= 0, got {v}"),
                });
            }
        }
        if !(0.0..=1.0).contains(&self.focus_share) {
            return Err(InvalidHyperparameter {
                field: "focus_share".into(),
                message: format!("must be in [0, 1], got {}", self.focus_share),
            });
        }
        self.pricing.validate()
    }
}
