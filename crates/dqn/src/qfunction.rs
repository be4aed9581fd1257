//! The value side of DQN, shared by [`crate::Dqn`] and [`crate::LagrangianDqn`]: the online
//! network (trained by a [`Learner`]), the target network, acting on one observation and the
//! gradient step on a minibatch.
//!
//! The network is a plain `ndarray` MLP ([`Mlp`]) that acting, the target and the bootstrap
//! read. The target is never on an autodiff device (its graph would grow with training).
//! Initial weights are drawn from the run's own RNG (burn's initialiser draws from one
//! process-wide generator, which would make runs on parallel threads depend on scheduling).
//! Checkpoints are burn's burnpack files, whichever learner trained the network.

use std::path::Path;

use burn::prelude::*;
use contract_rl_core::agents::{AgentRng, Diagnostics, DiagnosticsSums, DqnConfig, DqnLearner, argmax_by};
use contract_rl_core::env::ActionMask;
use ndarray::{Array2, ArrayView2, Axis};

use crate::burn_learner::BurnLearner;
use crate::burn_learner::QNetwork;
use crate::learner::Learner;
use crate::mlp::Mlp;
use crate::ndarray_learner::NdarrayLearner;
use crate::replay::Batch;

/// A value low enough that a masked action never wins a max, finite so that it vanishes when
/// multiplied by zero at the end of a campaign.
const MASKED: f32 = -1e9;

/// The masked max (or, with `chooser`, the value under `values` of the chooser's masked argmax)
/// of each row.
pub(crate) fn masked_bootstrap<'a>(
    values: &'a Array2<f32>,
    chooser: Option<&'a Array2<f32>>,
    masks: &'a [u16],
) -> impl Iterator<Item = f32> + 'a {
    values
        .axis_iter(Axis(0))
        .zip(masks)
        .enumerate()
        .map(move |(row, (v, mask))| {
            let mask = ActionMask(*mask);
            let pick = match chooser {
                Some(c) => argmax_by(mask.iter(), |a| f64::from(c[[row, a]])),
                None => argmax_by(mask.iter(), |a| f64::from(v[a])),
            };
            pick.map_or(MASKED, |a| v[a])
        })
}

/// One row of inputs as a one-row matrix.
pub(crate) fn as_row(inputs: &[f32]) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((1, inputs.len()), inputs).expect("one row")
}

/// The learner `config` names, for the network `mlp`.
pub(crate) fn learner(mlp: Mlp, config: &DqnConfig) -> Box<dyn Learner> {
    match config.learner {
        DqnLearner::Ndarray => Box::new(NdarrayLearner::new(mlp, config.batch_size)),
        DqnLearner::Burn => Box::new(BurnLearner::new(mlp, config)),
    }
}

/// Adam's learning rate at `progress` (the share of training done): `learning_rate`, or its
/// linear decay to `learning_rate_end`.
pub(crate) fn learning_rate(config: &DqnConfig, progress: f64) -> f64 {
    match config.learning_rate_end {
        Some(end) => config.learning_rate + (end - config.learning_rate) * progress.clamp(0.0, 1.0),
        None => config.learning_rate,
    }
}

/// What DQN's agents read of a value function: acting, a gradient step on a minibatch, target
/// updates, diagnostics and checkpoints. [`QFunction`] outputs Q directly;
/// [`crate::afterstate::AfterstateFunction`] sums a reward and a post-decision value.
pub(crate) trait ValueFunction: Send {
    fn config(&self) -> &DqnConfig;

    /// Q-values of the online networks for one row of inputs.
    fn values(&self, inputs: &[f32]) -> Vec<f32>;

    /// Q-values of the target networks for one row of inputs.
    fn target_values(&self, inputs: &[f32]) -> Vec<f32>;

    /// Q-values of the online networks for a minibatch of rows.
    #[cfg(test)]
    fn forward(&self, rows: ArrayView2<f32>) -> Array2<f32>;

    /// The action of `mask` with the highest online Q for one row of inputs.
    fn greedy(&mut self, inputs: &[f32], mask: ActionMask) -> usize;

    /// One gradient step on `batch` at `progress` (the share of training done); returns each
    /// row's TD error (scaled units), for priorities.
    fn train(&mut self, batch: &Batch, progress: f64) -> &[f32];

    /// The hard target copy, when `steps` env steps reach an update point.
    fn after_env_step(&mut self, steps: u64);

    /// The diagnostics since the last call, with ε.
    fn diagnostics(&mut self, epsilon: f64) -> Diagnostics;

    /// Saves the online networks with burn's recorder (burnpack), whichever learner trained them.
    fn save(&self, path: &Path) -> Result<(), burn::store::RecordError>;

    /// Loads the online networks saved by [`Self::save`]; the targets follow them.
    fn load(&mut self, path: &Path) -> Result<(), burn::store::RecordError>;

    /// Gradient steps due after `steps` env steps: `gradient_steps` every `train_freq` once
    /// `learning_starts` are done.
    fn gradient_steps_due(&self, steps: u64) -> u64 {
        let c = self.config();
        if steps >= c.learning_starts && steps.is_multiple_of(c.train_freq) {
            c.gradient_steps
        } else {
            0
        }
    }
}

/// The online and target networks of one agent, with the buffers of acting and training.
pub(crate) struct QFunction {
    config: DqnConfig,
    diagnostics: DiagnosticsSums,
    learner: Box<dyn Learner>,
    target: Mlp,
    targets: Vec<f32>,
    residuals: Vec<f32>,
    /// Layer outputs of acting (one row), the target and the online network on a minibatch.
    acting: Vec<Array2<f32>>,
    bootstrap: [Vec<Array2<f32>>; 2],
}

impl QFunction {
    /// Networks of `inputs` inputs and `n_actions` outputs with weights drawn from `rng`.
    pub(crate) fn new(config: DqnConfig, inputs: usize, n_actions: usize, rng: &mut AgentRng) -> Self {
        let sizes: Vec<usize> = std::iter::once(inputs)
            .chain(config.hidden.iter().copied())
            .chain(std::iter::once(n_actions))
            .collect();
        let online = Mlp::draw(&sizes, config.dueling, rng);
        Self {
            acting: online.buffers(1),
            bootstrap: [online.buffers(config.batch_size), online.buffers(config.batch_size)],
            target: online.clone(),
            learner: learner(online, &config),
            targets: Vec::with_capacity(config.batch_size),
            residuals: Vec::with_capacity(config.batch_size),
            diagnostics: DiagnosticsSums::default(),
            config,
        }
    }

    /// The online network's Q-values for one row, in the acting buffers (no allocation).
    pub(crate) fn act_values(&mut self, inputs: &[f32]) -> &Array2<f32> {
        self.learner.mlp().forward_into(as_row(inputs), &mut self.acting)
    }
}

impl ValueFunction for QFunction {
    fn config(&self) -> &DqnConfig {
        &self.config
    }

    fn values(&self, inputs: &[f32]) -> Vec<f32> {
        self.learner.mlp().forward(as_row(inputs)).into_raw_vec_and_offset().0
    }

    fn target_values(&self, inputs: &[f32]) -> Vec<f32> {
        self.target.forward(as_row(inputs)).into_raw_vec_and_offset().0
    }

    #[cfg(test)]
    fn forward(&self, rows: ArrayView2<f32>) -> Array2<f32> {
        self.learner.mlp().forward(rows)
    }

    fn greedy(&mut self, inputs: &[f32], mask: ActionMask) -> usize {
        let q = self.act_values(inputs);
        argmax_by(mask.iter(), |a| f64::from(q[[0, a]])).expect("a valid action")
    }

    /// In a fixed order: bootstrap on the target (and, for double DQN, the online network's
    /// choice) → the learner's step → Polyak target sync. An n-step row's bootstrap is
    /// discounted by γⁿ.
    fn train(&mut self, batch: &Batch, progress: f64) -> &[f32] {
        let c = &self.config;
        let b = batch.rewards.len();
        // Targets, without gradients: r + γᵐ (1 − terminated) Q_target(s', a*).
        let next = ArrayView2::from_shape((b, self.target.inputs()), &batch.next_obs).expect("batch shape");
        let [target_outputs, chooser_outputs] = &mut self.bootstrap;
        let target_values = self.target.forward_into(next, target_outputs);
        let chooser = c
            .double_dqn
            .then(|| self.learner.mlp().forward_into(next, chooser_outputs));
        let bootstrap = masked_bootstrap(target_values, chooser, &batch.next_masks);
        self.targets.clear();
        self.targets.extend(bootstrap.enumerate().map(|(i, next)| {
            let r = batch.rewards[i] * c.reward_scale;
            let discount = c.gamma.powi(i32::from(batch.steps[i])) as f32;
            r + discount * (1.0 - batch.terminated[i]) * next
        }));
        // Forward, loss, backward, optimiser step.
        let rate = learning_rate(c, progress);
        let (loss, q_mean) = self.learner.train(batch, &self.targets, rate, c, &mut self.residuals);
        self.diagnostics.add(f64::from(loss), f64::from(q_mean));
        // Polyak target sync (hard copies follow env steps: `after_env_step`).
        if c.tau < 1.0 {
            self.target.blend(self.learner.mlp(), c.tau as f32);
        }
        &self.residuals
    }

    fn after_env_step(&mut self, steps: u64) {
        if self.config.tau >= 1.0 && steps.is_multiple_of(self.config.target_update_interval) {
            self.target = self.learner.mlp().clone();
        }
    }

    fn diagnostics(&mut self, epsilon: f64) -> Diagnostics {
        self.diagnostics.take(epsilon)
    }

    fn save(&self, path: &Path) -> Result<(), burn::store::RecordError> {
        QNetwork::from_mlp(self.learner.mlp(), &Device::flex()).save_file(path)
    }

    fn load(&mut self, path: &Path) -> Result<(), burn::store::RecordError> {
        let network = QNetwork::from_mlp(self.learner.mlp(), &Device::flex()).try_load_file(path)?;
        self.target = network.to_mlp(self.config.dueling);
        self.learner.set_mlp(self.target.clone());
        Ok(())
    }
}
