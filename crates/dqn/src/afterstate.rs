//! The afterstate head: Q(s, a) = r̂(user, a) + W(post(s, a)). The reward network r̂ reads the
//! user's dense entries and is fitted by regression on immediate rewards; the value network W
//! reads the post-decision state (the campaign's entries once offer `a` is made, before the
//! answer: [`Afterstate`]) and is fitted by TD between post-decision states,
//! W(p) ← (1 − terminated) · max_a' [r̂(s', a') + W_target(post(s', a'))]
//! (Powell, "Approximate Dynamic Programming", ch. 4; Sutton & Barto §6.8). It is the form of
//! the online oracle's DP, V_{t+1}(quota after the offer), learned from data: W's differences
//! between quotas are the bid prices, fitted apart from the users' rewards. Past the campaign's
//! last step W is 0, as the DP's boundary V_T = 0.
//!
//! Both networks are trained by the configured [`Learner`], so the ndarray learner and burn's
//! give the same bits here as for the Q head. A checkpoint holds r̂'s layers, then W's.

use std::path::Path;

use burn::prelude::*;
use contract_rl_core::agents::{AgentRng, Diagnostics, DiagnosticsSums, DqnConfig, argmax_by};
use contract_rl_core::env::{ActionMask, Afterstate};
use ndarray::{Array2, ArrayView2};

use crate::burn_learner::QNetwork;
use crate::learner::Learner;
use crate::mlp::Mlp;
use crate::qfunction::{ValueFunction, learner, learning_rate};
use crate::replay::Batch;

/// The reward and post-decision value networks of one agent, with W's target and the buffers
/// of acting and training.
pub(crate) struct AfterstateFunction {
    config: DqnConfig,
    afterstate: Afterstate,
    n_actions: usize,
    reward: Box<dyn Learner>,
    value: Box<dyn Learner>,
    target: Mlp,
    diagnostics: DiagnosticsSums,
    /// Minibatches of r̂ (user entries, taken actions) and of W (post-decision states).
    users: Batch,
    posts: Batch,
    /// Every action's post-decision state of each next observation, `[batch × actions, campaign]`.
    next_posts: Vec<f32>,
    targets: Vec<f32>,
    residuals: Vec<f32>,
}

impl AfterstateFunction {
    /// Networks for observations of `dense_len` entries laid out as `afterstate` says, and
    /// `n_actions` actions, with weights drawn from `rng` (r̂'s first).
    pub(crate) fn new(
        config: DqnConfig,
        afterstate: Afterstate,
        dense_len: usize,
        n_actions: usize,
        rng: &mut AgentRng,
    ) -> Self {
        let sizes = |inputs: usize, outputs: usize| -> Vec<usize> {
            std::iter::once(inputs)
                .chain(config.hidden.iter().copied())
                .chain(std::iter::once(outputs))
                .collect()
        };
        let reward = Mlp::draw(&sizes(afterstate.user_dense_len, n_actions), false, rng);
        let value = Mlp::draw(&sizes(dense_len - afterstate.user_dense_len, 1), false, rng);
        Self {
            target: value.clone(),
            reward: learner(reward, &config),
            value: learner(value, &config),
            afterstate,
            n_actions,
            diagnostics: DiagnosticsSums::default(),
            users: Batch::default(),
            posts: Batch::default(),
            next_posts: Vec::new(),
            targets: Vec::new(),
            residuals: Vec::new(),
            config,
        }
    }

    fn campaign_len(&self) -> usize {
        self.value.mlp().inputs()
    }

    /// Every action's post-decision state of each row of `dense` (`[rows, dense_len]`), into
    /// `out` (`[rows × actions, campaign]`).
    fn all_posts(&self, dense: &[f32], out: &mut Vec<f32>) {
        let (c, d) = (
            self.campaign_len(),
            self.afterstate.user_dense_len + self.campaign_len(),
        );
        out.resize(dense.len() / d * self.n_actions * c, 0.0);
        for (row, posts) in dense.chunks_exact(d).zip(out.chunks_exact_mut(self.n_actions * c)) {
            for (a, post) in posts.chunks_exact_mut(c).enumerate() {
                self.afterstate.write(row, a, post);
            }
        }
    }

    /// r̂(user, a) + W(post(s, a)) of every row and action, with W from `value`, and W = 0
    /// past the campaign's last step (the DP's V_T = 0, not left to the network).
    fn q(&self, dense: &[f32], value: &Mlp, posts: &mut Vec<f32>) -> Array2<f32> {
        let rewards = self.rewards_and_posts(dense, posts);
        self.plus_values(rewards, value, posts)
    }

    /// r̂(user, ·) of every row of `dense`, with every action's post-decision state written
    /// into `posts`.
    fn rewards_and_posts(&self, dense: &[f32], posts: &mut Vec<f32>) -> Array2<f32> {
        let (u, c) = (self.afterstate.user_dense_len, self.campaign_len());
        let rows = dense.len() / (u + c);
        let users: Vec<f32> = dense.chunks_exact(u + c).flat_map(|r| r[..u].iter().copied()).collect();
        self.all_posts(dense, posts);
        self.reward
            .mlp()
            .forward(ArrayView2::from_shape((rows, u), &users).expect("user rows"))
    }

    /// `rewards` plus W (from `value`) of the post-decision states `posts` (from
    /// [`Self::rewards_and_posts`]), 0 past the campaign's last step.
    fn plus_values(&self, mut rewards: Array2<f32>, value: &Mlp, posts: &[f32]) -> Array2<f32> {
        let c = self.campaign_len();
        let w = value.forward(ArrayView2::from_shape((posts.len() / c, c), posts).expect("post rows"));
        for ((i, q), post) in rewards.iter_mut().enumerate().zip(posts.chunks_exact(c)) {
            if !self.afterstate.ends(post) {
                *q += w[[i, 0]];
            }
        }
        rewards
    }
}

impl ValueFunction for AfterstateFunction {
    fn config(&self) -> &DqnConfig {
        &self.config
    }

    fn values(&self, inputs: &[f32]) -> Vec<f32> {
        self.q(inputs, self.value.mlp(), &mut Vec::new())
            .into_raw_vec_and_offset()
            .0
    }

    fn target_values(&self, inputs: &[f32]) -> Vec<f32> {
        self.q(inputs, &self.target, &mut Vec::new())
            .into_raw_vec_and_offset()
            .0
    }

    #[cfg(test)]
    fn forward(&self, rows: ArrayView2<f32>) -> Array2<f32> {
        self.q(
            rows.as_slice().expect("standard layout"),
            self.value.mlp(),
            &mut Vec::new(),
        )
    }

    fn greedy(&mut self, inputs: &[f32], mask: ActionMask) -> usize {
        let mut posts = std::mem::take(&mut self.next_posts);
        let q = self.q(inputs, self.value.mlp(), &mut posts);
        self.next_posts = posts;
        argmax_by(mask.iter(), |a| f64::from(q[[0, a]])).expect("a valid action")
    }

    /// r̂'s regression step on the minibatch's rewards, then W's TD step toward the best next
    /// decision under the updated r̂ and W's target (for double DQN, chosen by the online W),
    /// then the Polyak sync of W's target.
    fn train(&mut self, batch: &Batch, progress: f64) -> &[f32] {
        let c = &self.config;
        let (u, len) = (self.afterstate.user_dense_len, self.campaign_len());
        let d = u + len;
        let rate = learning_rate(c, progress);
        // r̂: the user's entries → the reward of the offer made.
        self.users.obs.clear();
        self.users
            .obs
            .extend(batch.obs.chunks_exact(d).flat_map(|row| row[..u].iter().copied()));
        self.users.actions.clone_from(&batch.actions);
        self.targets.clear();
        self.targets.extend(batch.rewards.iter().map(|r| r * c.reward_scale));
        let (reward_loss, reward_mean) = self
            .reward
            .train(&self.users, &self.targets, rate, c, &mut self.residuals);
        // W's targets: the best next decision's r̂ + W_target.
        // One r̂ pass and one set of post-decision states serve the target and the chooser.
        let mut next_posts = std::mem::take(&mut self.next_posts);
        let rewards = self.rewards_and_posts(&batch.next_obs, &mut next_posts);
        let chooser = c
            .double_dqn
            .then(|| self.plus_values(rewards.clone(), self.value.mlp(), &next_posts));
        let target_q = self.plus_values(rewards, &self.target, &next_posts);
        self.next_posts = next_posts;
        self.targets.clear();
        for (i, target) in target_q.rows().into_iter().enumerate() {
            let mask = ActionMask(batch.next_masks[i]);
            let pick = match &chooser {
                Some(q) => argmax_by(mask.iter(), |a| f64::from(q[[i, a]])),
                None => argmax_by(mask.iter(), |a| f64::from(target[a])),
            };
            let next = pick.map_or(0.0, |a| target[a]);
            self.targets.push((1.0 - batch.terminated[i]) * next);
        }
        // W: the post-decision state of each transition → its target.
        self.posts.obs.resize(batch.actions.len() * len, 0.0);
        for ((row, &a), post) in batch
            .obs
            .chunks_exact(d)
            .zip(&batch.actions)
            .zip(self.posts.obs.chunks_exact_mut(len))
        {
            self.afterstate.write(row, a as usize, post);
        }
        self.posts.actions.clear();
        self.posts.actions.resize(batch.actions.len(), 0);
        let (value_loss, value_mean) = self
            .value
            .train(&self.posts, &self.targets, rate, c, &mut self.residuals);
        self.diagnostics
            .add(f64::from(reward_loss + value_loss), f64::from(reward_mean + value_mean));
        if c.tau < 1.0 {
            self.target.blend(self.value.mlp(), c.tau as f32);
        }
        &self.residuals
    }

    fn after_env_step(&mut self, steps: u64) {
        if self.config.tau >= 1.0 && steps.is_multiple_of(self.config.target_update_interval) {
            self.target = self.value.mlp().clone();
        }
    }

    fn diagnostics(&mut self, epsilon: f64) -> Diagnostics {
        self.diagnostics.take(epsilon)
    }

    fn save(&self, path: &Path) -> Result<(), burn::store::RecordError> {
        QNetwork::from_mlp(&self.joined(), &Device::flex()).save_file(path)
    }

    fn load(&mut self, path: &Path) -> Result<(), burn::store::RecordError> {
        let network = QNetwork::from_mlp(&self.joined(), &Device::flex()).try_load_file(path)?;
        let mut layers = network.to_mlp(false).layers;
        let value = layers.split_off(self.reward.mlp().layers.len());
        self.reward.set_mlp(Mlp { layers, dueling: false });
        self.target = Mlp {
            layers: value,
            dueling: false,
        };
        self.value.set_mlp(self.target.clone());
        Ok(())
    }
}

impl AfterstateFunction {
    /// r̂'s layers, then W's, as one list (the checkpoint's).
    fn joined(&self) -> Mlp {
        let layers = [self.reward.mlp(), self.value.mlp()]
            .iter()
            .flat_map(|m| m.layers.iter().cloned())
            .collect();
        Mlp { layers, dueling: false }
    }
}
