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
/// blocked differently, CPUs without FMA) they agree to float rounding. The loss diagnostic
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

impl TryFrom<String> for DqnLearner {
    type Error = String;

    /// The error names the field, as serde's message for an unknown variant would not.
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "ndarray" => Ok(Self::Ndarray),
            "burn" => Ok(Self::Burn),
            other => Err(format!("learner: `{other}` is none of `ndarray`, `burn`")),
        }
    }
}

/// Hyperparameters of DQN; every field has a default (see README for Stable-Baselines3's).
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
