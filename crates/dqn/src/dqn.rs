//! DQN (Mnih et al. 2015), with Double DQN (van Hasselt et al. 2016) on by default and action
//! masking in both the behaviour argmax and the bootstrap, and the standard options: n-step
//! returns, a dueling head, a linear learning-rate decay, prioritized replay, a per-step reward
//! baseline and an afterstate head.
//!
//! Hyperparameters → value function ([`QFunction`] or [`AfterstateFunction`]) → schedule → act
//! → learn: the env's transitions (summed over n steps) go into a replay ring, sampled for a
//! gradient step every `train_freq` env steps.

use std::collections::VecDeque;
use std::path::Path;

use contract_rl_core::agents::{
    Agent, AgentError, AgentRng, Diagnostics, DqnConfig, DqnHead, EpsilonSchedule, RewardBaseline, Transition,
};
use contract_rl_core::env::{Observation, Spaces};

use crate::afterstate::AfterstateFunction;
use crate::qfunction::{QFunction, ValueFunction};
use crate::replay::{Batch, ReplayBuffer, Stored};

/// The file extension of DQN checkpoints (burn's burnpack).
pub const CHECKPOINT_EXTENSION: &str = "bpk";

/// The share of `total` training steps that `steps` is.
pub(crate) fn progress(steps: u64, total: u64) -> f64 {
    steps as f64 / total.max(1) as f64
}

/// A DQN agent.
pub struct Dqn {
    q: Box<dyn ValueFunction>,
    buffer: ReplayBuffer,
    batch: Batch,
    steps: u64,
    total_steps: u64,
    schedule: EpsilonSchedule,
    /// The decisions whose n-step return is not complete yet: observation, action, reward.
    pending: VecDeque<(Observation, usize, f64)>,
    baseline: Baseline,
}

/// The per-step baseline b: the mean reward of the transitions seen until `learning_starts`
/// (at least one), then frozen, so the shaping is the same through all of learning.
#[derive(Debug, Clone, Copy, Default)]
struct Baseline {
    on: bool,
    sum: f64,
    count: u64,
    frozen: Option<f32>,
}

impl Baseline {
    fn record(&mut self, reward: f64, steps: u64, learning_starts: u64) {
        if self.on && self.frozen.is_none() {
            self.sum += reward;
            self.count += 1;
            if steps >= learning_starts {
                self.frozen = Some((self.sum / self.count as f64) as f32);
            }
        }
    }

    /// r − m·b for each reward of `batch` summing m steps.
    fn apply(&self, batch: &mut Batch) {
        if let Some(b) = self.frozen {
            for (r, &m) in batch.rewards.iter_mut().zip(&batch.steps) {
                *r -= b * f32::from(m);
            }
        }
    }
}

impl Dqn {
    /// A fresh agent for an env of `spaces`, with weights drawn from `rng`, whose ε schedule
    /// (and learning-rate and β schedules) span `total_steps`.
    ///
    /// # Panics
    /// With `head = "afterstate"` when `spaces` states no afterstate (the agent factory
    /// refuses that config first).
    pub fn new(config: DqnConfig, spaces: &Spaces, total_steps: u64, rng: &mut AgentRng) -> Self {
        let (dense_len, n_actions) = (spaces.dense_len, spaces.n_actions);
        Self {
            buffer: ReplayBuffer::with_priorities(config.buffer_size, dense_len, config.prioritized_replay),
            batch: Batch::default(),
            steps: 0,
            total_steps,
            schedule: EpsilonSchedule::new(
                config.epsilon_start,
                config.epsilon_end,
                config.epsilon_decay_fraction,
                total_steps,
            ),
            pending: VecDeque::with_capacity(config.n_steps),
            baseline: Baseline {
                on: config.baseline == RewardBaseline::PerStep,
                ..Baseline::default()
            },
            q: match config.head {
                DqnHead::Q => Box::new(QFunction::new(config, dense_len, n_actions, rng)),
                DqnHead::Afterstate => {
                    let afterstate = spaces.afterstate.expect("an env that states its afterstates");
                    Box::new(AfterstateFunction::new(config, afterstate, dense_len, n_actions, rng))
                }
            },
        }
    }

    /// ε at the current training step.
    pub fn epsilon(&self) -> f64 {
        self.schedule.at(self.steps)
    }

    /// Q-values of the online network for one observation (with the baseline on, less
    /// (T − t)·b, scaled by `reward_scale`).
    pub fn q_values(&self, obs: &Observation) -> Vec<f32> {
        self.q.values(obs.dense())
    }

    /// Q-values of the target network for one observation.
    pub fn target_q_values(&self, obs: &Observation) -> Vec<f32> {
        self.q.target_values(obs.dense())
    }

    /// Saves the online network with burn's recorder (burnpack), whichever learner trained it.
    pub fn save(&self, path: &Path) -> Result<(), burn::store::RecordError> {
        self.q.save(path)
    }

    /// Loads the online network saved by [`Self::save`]; the target follows it.
    pub fn load(&mut self, path: &Path) -> Result<(), burn::store::RecordError> {
        self.q.load(path)
    }

    /// One gradient step on a sampled minibatch.
    pub fn gradient_step(&mut self, rng: &mut AgentRng) {
        let progress = progress(self.steps, self.total_steps);
        let config = self.q.config();
        let beta = config.prioritized_replay.map_or(1.0, |p| p.beta(progress));
        self.buffer.sample(config.batch_size, beta, rng, &mut self.batch);
        self.baseline.apply(&mut self.batch);
        let residuals = self.q.train(&self.batch, progress);
        self.buffer.update_priorities(&self.batch, residuals);
    }

    /// Stores the oldest pending decision with its discounted return over the pending ones,
    /// bootstrapping (unless the task ended) from `t`'s next observation.
    fn store_oldest(&mut self, t: &Transition) {
        let gamma = self.q.config().gamma;
        let reward = (self.pending.iter().enumerate()).fold(0.0, |sum, (k, p)| sum + gamma.powi(k as i32) * p.2);
        let steps = self.pending.len() as u8;
        let (obs, action, _) = self.pending.pop_front().expect("a pending decision");
        self.buffer.store(Stored {
            obs: obs.dense(),
            action,
            reward: reward as f32,
            uses: [0.0; 2],
            steps,
            next_obs: t.next_obs.dense(),
            terminated: t.terminated,
            next_mask: t.next_obs.mask.0,
        });
    }
}

impl Agent for Dqn {
    fn act(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        let (schedule, steps) = (self.schedule, self.steps);
        schedule.act(steps, obs.mask, rng, || self.q.greedy(obs.dense(), obs.mask))
    }

    fn act_greedy(&mut self, obs: &Observation, _rng: &mut AgentRng) -> usize {
        self.q.greedy(obs.dense(), obs.mask)
    }

    fn diagnostics(&mut self) -> Option<Diagnostics> {
        Some(self.q.diagnostics(self.epsilon()))
    }

    fn checkpoint_extension(&self) -> Option<&'static str> {
        Some(CHECKPOINT_EXTENSION)
    }

    fn save(&self, path: &Path) -> Result<(), AgentError> {
        Dqn::save(self, path).map_err(|e| AgentError::Save {
            path: path.to_owned(),
            source: e.into(),
        })
    }

    /// Stores the decision `n_steps` back with its n-step return (every pending one when the
    /// campaign ends), then takes the gradient steps due.
    fn observe(&mut self, t: &Transition, rng: &mut AgentRng) {
        self.steps += 1;
        let config = self.q.config();
        let (n, learning_starts) = (config.n_steps, config.learning_starts);
        self.baseline.record(t.reward, self.steps, learning_starts);
        self.pending.push_back((t.obs, t.action, t.reward));
        while self.pending.len() >= n || ((t.terminated || t.truncated) && !self.pending.is_empty()) {
            self.store_oldest(t);
        }
        for _ in 0..self.q.gradient_steps_due(self.steps) {
            self.gradient_step(rng);
        }
        self.q.after_env_step(self.steps);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::qfunction::masked_bootstrap;
    use contract_rl_core::agents::{DqnLearner, MyopicOracle, PrioritizedReplay};
    use contract_rl_core::env::{ActionMask, EnvKind};
    use contract_rl_core::env::{ContractChoiceEnv, EnvConfig, EnvModel, MAX_CONTRACTS, Split};
    use contract_rl_core::experiment::{Mode, evaluate, play_episode};
    use contract_rl_core::source::{Generator, generate_records};
    use ndarray::{Array2, ArrayView2};
    use rand::SeedableRng;

    /// An env of one region, no state buckets, campaigns of `episode_len` users and the
    /// `contracts` given as TOML, on 2,000 (or `users`) generated users.
    fn small_model(episode_len: usize, contracts: &str, users: usize) -> Arc<EnvModel> {
        let config: EnvConfig = toml::from_str(&format!(
            r#"
            name = "small"
            version = 1
            episode_len = {episode_len}
            test_fraction = 0.2
            validation_fraction = 0.2
            [standardise]
            age_mean_years = 53.0
            age_std_years = 16.0
            seniority_mean_years = 13.5
            seniority_std_years = 6.0
            tz_offset_scale_hours = 6.0
            [regions]
            all = ["AU","BR","CA","CH","DE","DK","ES","FI","FR","GB","IE","IN","IR","MX","NL","NO","NZ","RS","TR","UA","US"]
            [state]
            age_edges_years = []
            seniority_edges_years = []
            quota_remaining_edges = []
            progress_edges = []
            {contracts}
            "#
        ))
        .unwrap();
        config.validate(Path::new("small.toml")).unwrap();
        let (records, _) = generate_records(&Generator::new("dqn", &[]).unwrap(), users);
        Arc::new(EnvModel::build(config, &records).unwrap())
    }

    /// Two contracts; women almost always take `a`, men `b`: one clearly best action per state.
    fn trivial_model() -> Arc<EnvModel> {
        small_model(
            10,
            r#"
            [[contracts]]
            name = "a"
            margin = 100.0
            offer_cost = 0.0
            response = { bias = -3.0, coefficients = { female = 6.0 } }
            [[contracts]]
            name = "b"
            margin = 100.0
            offer_cost = 0.0
            response = { bias = 3.0, coefficients = { female = -6.0 } }
            "#,
            2000,
        )
    }

    fn small_config() -> DqnConfig {
        DqnConfig {
            hidden: vec![16],
            learning_starts: 200,
            target_update_interval: 50,
            epsilon_decay_fraction: 0.5,
            ..DqnConfig::default()
        }
    }

    fn spaces(model: &Arc<EnvModel>) -> Spaces {
        EnvKind::from(Arc::clone(model)).spaces()
    }

    fn train(model: &Arc<EnvModel>, config: DqnConfig, seed: u64, episodes: u64) -> Dqn {
        let mut rng = AgentRng::seed_from_u64(seed);
        let mut agent = Dqn::new(config, &spaces(model), episodes * model.episode_len() as u64, &mut rng);
        let mut env = ContractChoiceEnv::new(Arc::clone(model), Split::Train, seed);
        for _ in 0..episodes {
            play_episode(&mut env, &mut agent, &mut rng, None, Mode::Train);
        }
        agent
    }

    #[test]
    fn it_learns_the_best_action_of_each_state() {
        let model = trivial_model();
        let mut agent = train(&model, small_config(), 1, 400);
        let mut rng = AgentRng::seed_from_u64(0);
        let mut oracle = MyopicOracle::new(Arc::clone(&model));
        let learned: f64 = evaluate(&Arc::clone(&model).into(), &mut agent, &mut rng, Split::Test, 20, 5)
            .iter()
            .map(|s| s.expected_return)
            .sum();
        let best: f64 = evaluate(&Arc::clone(&model).into(), &mut oracle, &mut rng, Split::Test, 20, 5)
            .iter()
            .map(|s| s.expected_return)
            .sum();
        assert!(learned >= 0.97 * best, "dqn {learned:.1} vs best {best:.1}");
    }

    /// The ndarray learner sums in burn's order, so either learner gives the same bits: checked
    /// on Q-values after 1,000 gradient steps, for one and two hidden layers, squared error and
    /// Huber, hard and Polyak targets, max norms from 0.01 to 10, odd layer sizes and the
    /// bounds of `DqnLearner`'s conditions (a 256-unit layer, minibatches of 256; of 48 and 30
    /// too: 1/48 is inexact, so the loss gradient's order shows).
    #[test]
    fn the_ndarray_learner_trains_bit_for_bit_as_burn_does() {
        let model = trivial_model();
        for (hidden, huber_delta, tau, max_grad_norm, batch_size) in [
            (vec![16], None, 1.0, 0.5, 64),
            (vec![64, 64], None, 1.0, 0.5, 48),
            (vec![64, 64], None, 1.0, 0.01, 64),
            (vec![64, 64], Some(0.1), 1.0, 10.0, 64),
            (vec![64, 64], Some(0.3), 1.0, 0.5, 48),
            (vec![32, 32], None, 0.05, 0.5, 48),
            (vec![37, 100], Some(0.3), 0.05, 0.5, 30),
            (vec![256, 64], None, 1.0, 0.5, 256),
        ] {
            let case = format!(
                "hidden {hidden:?}, Huber δ {huber_delta:?}, τ {tau}, max norm {max_grad_norm}, batch {batch_size}"
            );
            let config = DqnConfig {
                hidden,
                huber_delta,
                tau,
                max_grad_norm,
                batch_size,
                train_freq: 1,
                ..small_config()
            };
            assert_learners_agree(&model, &config, 120, true, &case);
        }
    }

    /// Trains `config` on `model` for `episodes` campaigns with either learner (seed 6) and
    /// asserts that training moved the network and that the two give the same Q-values on
    /// 200 test observations: the same bits when `bits` (on CPUs within `DqnLearner`'s
    /// conditions), else to float rounding.
    fn assert_learners_agree(model: &Arc<EnvModel>, config: &DqnConfig, episodes: u64, bits: bool, case: &str) {
        let mut env = ContractChoiceEnv::new(Arc::clone(model), Split::Test, 4);
        let observations: Vec<Observation> = (0..200).map(|_| env.reset(None).0).collect();
        let q_bits = |agent: &Dqn| -> Vec<Vec<u32>> {
            observations
                .iter()
                .map(|o| agent.q_values(o).iter().map(|q| q.to_bits()).collect())
                .collect()
        };
        let with = |learner| DqnConfig {
            learner,
            ..config.clone()
        };
        let [fresh, ours, burns] = [
            (DqnLearner::Ndarray, 0),
            (DqnLearner::Ndarray, episodes),
            (DqnLearner::Burn, episodes),
        ]
        .map(|(learner, episodes)| q_bits(&train(model, with(learner), 6, episodes)));
        assert_ne!(ours, fresh, "{case}: training moved the network");
        if bits && crate::mlp::fma_cpu() {
            assert!(ours == burns, "{case}");
        } else {
            // Outside `DqnLearner`'s conditions the two agree to float rounding only.
            let value = |bits: &u32| f32::from_bits(*bits);
            for (o, b) in ours.iter().flatten().zip(burns.iter().flatten()) {
                let (o, b) = (value(o), value(b));
                assert!((o - b).abs() <= 1e-3 * (1.0 + b.abs()), "{case}: {o} against {b}");
            }
        }
    }

    /// Every option of the config, alone, trains the same with either learner, for a
    /// two-contract env with a quota: bits within `DqnLearner`'s conditions (the dueling
    /// head's mean and the importance weights are formed as burn's autodiff forms them), except
    /// the afterstate head (a value network of one output on two inputs here), whose bits
    /// differ: agreement to rounding there.
    #[test]
    fn every_option_trains_the_same_with_either_learner() {
        let model = quota_model();
        let base = DqnConfig {
            hidden: vec![32, 32],
            train_freq: 1,
            ..small_config()
        };
        for (option, config) in [
            (
                "n_steps = 3",
                DqnConfig {
                    n_steps: 3,
                    ..base.clone()
                },
            ),
            (
                "dueling",
                DqnConfig {
                    dueling: true,
                    ..base.clone()
                },
            ),
            (
                "dueling, Huber",
                DqnConfig {
                    dueling: true,
                    huber_delta: Some(0.1),
                    ..base.clone()
                },
            ),
            (
                "learning_rate_end = 0",
                DqnConfig {
                    learning_rate_end: Some(0.0),
                    ..base.clone()
                },
            ),
            (
                "prioritized_replay",
                DqnConfig {
                    prioritized_replay: Some(PrioritizedReplay::default()),
                    ..base.clone()
                },
            ),
            (
                "prioritized_replay, Huber",
                DqnConfig {
                    prioritized_replay: Some(PrioritizedReplay::default()),
                    huber_delta: Some(0.1),
                    ..base.clone()
                },
            ),
            (
                "baseline = per_step",
                DqnConfig {
                    baseline: RewardBaseline::PerStep,
                    ..base.clone()
                },
            ),
            (
                "head = afterstate",
                DqnConfig {
                    head: DqnHead::Afterstate,
                    ..base.clone()
                },
            ),
        ] {
            assert_learners_agree(&model, &config, 60, config.head == DqnHead::Q, option);
        }
    }

    /// Campaigns of 10 users and two contracts, one with a quota of 2 offers per campaign.
    fn quota_model() -> Arc<EnvModel> {
        small_model(
            10,
            r#"
            [[contracts]]
            name = "plain"
            margin = 20.0
            offer_cost = 1.0
            response = { bias = 1.0, coefficients = { female = -1.0 } }
            [[contracts]]
            name = "rare"
            margin = 100.0
            offer_cost = 2.0
            quota = 0.2
            response = { bias = -1.0, coefficients = { age = 1.0 } }
            "#,
            2000,
        )
    }

    /// n-step returns: a campaign of rewards 1, 2, 4, 8 at γ = 0.5 and n = 3 stores
    /// 1 + 1 + 1 = 3 (bootstrapping from the 4th observation, γ³), 2 + 2 + 2 = 6, then at the
    /// campaign's end 4 + 4 = 8 and 8, both ending the task.
    #[test]
    fn n_step_transitions_sum_the_discounted_rewards_up_to_the_horizon() {
        let model = trivial_model();
        let config = DqnConfig {
            n_steps: 3,
            gamma: 0.5,
            learning_starts: u64::MAX,
            ..small_config()
        };
        let mut rng = AgentRng::seed_from_u64(0);
        let mut agent = Dqn::new(config, &spaces(&model), 100, &mut rng);
        let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Test, 0);
        let observations: Vec<Observation> = (0..5).map(|_| env.reset(None).0).collect();
        for (k, reward) in [1.0, 2.0, 4.0, 8.0].into_iter().enumerate() {
            agent.observe(
                &Transition {
                    obs: observations[k],
                    action: 1,
                    reward,
                    next_obs: observations[k + 1],
                    terminated: k == 3,
                    truncated: false,
                },
                &mut rng,
            );
            let expected: &[(f32, u8, f32)] = match k {
                0 | 1 => &[],
                2 => &[(3.0, 3, 0.0)],
                _ => &[(3.0, 3, 0.0), (6.0, 3, 1.0), (8.0, 2, 1.0), (8.0, 1, 1.0)],
            };
            assert_eq!(agent.buffer.held(), expected, "after step {k}");
        }
        // Each stored row starts at its own observation and bootstraps from the right one.
        let (obs, next) = agent.buffer.row(0);
        assert_eq!((obs, next), (observations[0].dense(), observations[3].dense()));
    }

    /// The per-step baseline is the mean reward until `learning_starts`, then fixed; a reward
    /// summing m steps loses m·b.
    #[test]
    fn the_baseline_is_the_mean_reward_before_learning_and_then_fixed() {
        let mut baseline = Baseline {
            on: true,
            ..Baseline::default()
        };
        for (steps, reward) in [(1, 10.0), (2, 20.0), (3, 60.0), (4, 1000.0)] {
            baseline.record(reward, steps, 3);
        }
        assert_eq!(baseline.frozen, Some(30.0));
        let mut batch = Batch {
            rewards: vec![100.0, 100.0],
            steps: vec![1, 3],
            ..Batch::default()
        };
        baseline.apply(&mut batch);
        assert_eq!(batch.rewards, vec![70.0, 10.0]);
        let mut off = Baseline::default();
        off.record(5.0, 10, 0);
        assert_eq!(off.frozen, None);
    }

    /// The afterstate head learns the last step's values: with nothing after it, Q(s, a) is the
    /// offer's expected reward (r̂), and W of the campaign's end is near 0.
    #[test]
    fn the_afterstate_head_values_the_last_offer_at_its_expected_reward() {
        let model = quota_model();
        let config = DqnConfig {
            head: DqnHead::Afterstate,
            hidden: vec![32],
            learning_rate: 3e-3,
            ..small_config()
        };
        let agent = train(&model, config, 3, 1500);
        let scale = 0.01;
        let users = model.split(Split::Test);
        let offers_left = [1; MAX_CONTRACTS];
        let mut worst: f64 = 0.0;
        for a in 0..model.n_actions() {
            let (mut q, mut truth) = (0.0, 0.0);
            for &u in users {
                q += f64::from(agent.q_values(&model.observe(u, 9, &offers_left))[a]) / scale;
                truth += model.expected_reward(u, a);
            }
            worst = worst.max((q - truth).abs() / users.len() as f64);
        }
        assert!(worst < 3.0, "mean last-step offset {worst:.2}");
    }

    /// Acting reads one observation at a time without `matrixmultiply`; its Q-values are the
    /// minibatch forward pass's bits, so runs act as they did when acting called it.
    #[test]
    fn one_observation_gets_the_bits_of_its_row_in_a_minibatch() {
        let model = trivial_model();
        let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Test, 5);
        let observations: Vec<Observation> = (0..64).map(|_| env.reset(None).0).collect();
        let rows: Vec<f32> = observations.iter().flat_map(|o| o.dense().to_vec()).collect();
        let minibatch = ArrayView2::from_shape((64, model.dense_len()), &rows).unwrap();
        // 300 hidden units: longer than one of matrixmultiply's chains, so acting calls it there.
        for hidden in [vec![64, 64], vec![300, 16]] {
            let config = DqnConfig {
                hidden: hidden.clone(),
                ..small_config()
            };
            let agent = train(&model, config, 8, 40);
            let batch = agent.q.forward(minibatch);
            for (o, batch_row) in observations.iter().zip(batch.rows()) {
                let one: Vec<u32> = agent.q_values(o).iter().map(|q| q.to_bits()).collect();
                let row: Vec<u32> = batch_row.iter().map(|q| q.to_bits()).collect();
                assert_eq!(one, row, "hidden {hidden:?}");
            }
        }
    }

    #[test]
    fn masked_actions_are_never_chosen() {
        let model = trivial_model();
        let mut agent = train(&model, small_config(), 2, 30);
        let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Test, 3);
        let (mut obs, _) = env.reset(None);
        let mut rng = AgentRng::seed_from_u64(3);
        for i in 0..2000 {
            // Forbid each action in turn: only the other may come out, exploring or not.
            let forbidden = i % 2;
            obs.mask = ActionMask(1 << (1 - forbidden));
            assert_ne!(agent.act(&obs, &mut rng), forbidden);
            assert_ne!(agent.act_greedy(&obs, &mut rng), forbidden);
            obs = env.reset(None).0;
        }
    }

    #[test]
    fn the_bootstrap_ignores_masked_actions() {
        let values = Array2::from_shape_vec((2, 3), vec![1.0, 9.0, 2.0, 5.0, 4.0, 3.0]).unwrap();
        assert_eq!(
            masked_bootstrap(&values, None, &[0b101, 0b110]).collect::<Vec<_>>(),
            vec![2.0, 4.0]
        );
        let chooser = Array2::from_shape_vec((2, 3), vec![0.0, 0.0, 1.0, 0.0, 0.0, 7.0]).unwrap();
        assert_eq!(
            masked_bootstrap(&values, Some(&chooser), &[0b011, 0b110]).collect::<Vec<_>>(),
            vec![1.0, 3.0]
        );
    }

    #[test]
    fn the_target_network_changes_only_at_its_update_points() {
        let model = trivial_model();
        let config = DqnConfig {
            target_update_interval: 5,
            train_freq: 1,
            ..small_config()
        };
        let mut agent = train(&model, config, 4, 25);
        let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Test, 0);
        let obs = env.reset(None).0;
        let mut rng = AgentRng::seed_from_u64(9);
        // One env step with a gradient step on a fixed transition.
        let mut step = |agent: &mut Dqn| {
            let action = obs.mask.nth(0).unwrap();
            let transition = Transition {
                obs,
                action,
                reward: 50.0,
                next_obs: obs,
                terminated: true,
                truncated: false,
            };
            agent.observe(&transition, &mut rng);
        };
        // Learn until an update point, then check the next four env steps leave it alone.
        while !agent.steps.is_multiple_of(5) {
            step(&mut agent);
        }
        let synced = agent.target_q_values(&obs);
        assert_eq!(
            synced,
            agent.q_values(&obs),
            "the target equals the online network after a sync"
        );
        for _ in 0..4 {
            step(&mut agent);
            assert_eq!(agent.target_q_values(&obs), synced, "no change between update points");
        }
        assert_ne!(agent.q_values(&obs), synced, "the online network moved");
        step(&mut agent);
        assert_eq!(
            agent.target_q_values(&obs),
            agent.q_values(&obs),
            "synced again at the update point"
        );
    }

    /// One decision per campaign between a sure contract (worth about 10) and a rare large one
    /// (300 with probability 0.03: worth 9 on average); the same for every user.
    fn rare_reward_model() -> Arc<EnvModel> {
        small_model(
            1,
            r#"
            [[contracts]]
            name = "sure"
            margin = 10.0
            offer_cost = 0.0
            response = { bias = 12.0 }
            [[contracts]]
            name = "rare"
            margin = 300.0
            offer_cost = 0.0
            response = { bias = -3.4760986898 }
            "#,
            500,
        )
    }

    /// Q / reward_scale of each action, averaged over test users, after uniform exploration.
    fn learned_values(huber_delta: Option<f32>) -> Vec<f64> {
        let model = rare_reward_model();
        let config = DqnConfig {
            hidden: vec![16],
            learning_rate: 3e-4,
            learning_starts: 100,
            epsilon_start: 1.0,
            epsilon_end: 1.0,
            huber_delta,
            ..DqnConfig::default()
        };
        let agent = train(&model, config, 1, 30_000);
        let users = model.split(Split::Test);
        (0..2)
            .map(|a| {
                users
                    .iter()
                    .map(|&u| f64::from(agent.q_values(&model.observe(u, 0, &[0; MAX_CONTRACTS]))[a]) / 0.01)
                    .sum::<f64>()
                    / users.len() as f64
            })
            .collect()
    }

    #[test]
    fn squared_error_recovers_the_mean_of_a_rare_large_reward() {
        let model = rare_reward_model();
        let truth: Vec<f64> = (0..2)
            .map(|a| model.expected_reward(model.split(Split::Test)[0], a))
            .collect();
        assert!(
            (truth[0] - 10.0).abs() < 0.01 && (truth[1] - 9.0).abs() < 0.01,
            "{truth:?}"
        );
        let mse = learned_values(None);
        for (q, t) in mse.iter().zip(&truth) {
            assert!((q - t).abs() < 1.5, "squared error: Q {mse:?} vs truth {truth:?}");
        }
        // The bias this default removes: a Huber loss with δ = 1 on rewards scaled by 0.01 values
        // the rare contract near its median, far below its mean.
        let huber = learned_values(Some(1.0));
        assert!(huber[1] < truth[1] - 4.0, "Huber δ = 1: Q {huber:?} vs truth {truth:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_agent_even_on_concurrent_threads() {
        let model = trivial_model();
        let runs: Vec<Vec<Vec<u32>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let model = Arc::clone(&model);
                    s.spawn(move || {
                        let agent = train(&model, small_config(), 7, 60);
                        let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Test, 1);
                        (0..50)
                            .map(|_| agent.q_values(&env.reset(None).0).iter().map(|q| q.to_bits()).collect())
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(runs[0], runs[1]);
    }

    #[test]
    fn a_loaded_checkpoint_takes_the_same_greedy_actions() {
        let model = trivial_model();
        let mut trained = train(&model, small_config(), 5, 60);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dqn.bpk");
        trained.save(&path).unwrap();
        let mut loaded = Dqn::new(small_config(), &spaces(&model), 1, &mut AgentRng::seed_from_u64(99));
        let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Test, 2);
        let observations: Vec<Observation> = (0..100).map(|_| env.reset(None).0).collect();
        assert_ne!(
            observations.iter().map(|o| loaded.q_values(o)).collect::<Vec<_>>(),
            observations.iter().map(|o| trained.q_values(o)).collect::<Vec<_>>(),
            "a fresh network differs before loading"
        );
        loaded.load(&path).unwrap();
        let mut rng = AgentRng::seed_from_u64(0);
        for o in &observations {
            assert_eq!(loaded.q_values(o), trained.q_values(o));
            assert_eq!(loaded.act_greedy(o, &mut rng), trained.act_greedy(o, &mut rng));
        }
    }
}
