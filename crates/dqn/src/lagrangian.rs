//! `lagrangian_dqn`: DQN of each user's own problem under resource prices, the subproblem
//! network of the weakly coupled decomposition (El Shar & Jiang, "Weakly Coupled Deep
//! Q-Networks", NeurIPS 2023; Adelman & Mersereau 2008).
//!
//! Hyperparameters → network ([`QFunction`], the user's dense entries and the two prices in,
//! one value per action out) → prices ([`PriceController`]) → act → learn. It learns from each
//! user's own transitions (the env's per-user credit: the next observation is the same user's
//! next decision, the reward that user's own margins minus the offer's cost), stored with what
//! the decision used (its offer's cost, a handset taken). Every sampled transition is
//! relabelled at prices drawn uniformly from [0, `budget_price_max`] × [0, `stock_price_max`]
//! (a `focus_share` of them within ±50% of the prices in force instead): reward = margins −
//! cost × (1 + budget price) − handset × handset price, the same prices as inputs of both its
//! observations, so one network learns the user's value at every price. The
//! bootstrap takes the best of every action: in the priced problem the shared resources bind
//! no user. Acting reads the network at the controller's prices (learned across training
//! campaigns by dual ascent, paced within a campaign) and takes the best action the env's mask
//! allows.

use std::path::{Path, PathBuf};

use contract_rl_core::agents::{
    Agent, AgentError, AgentRng, Credit, Diagnostics, EpsilonSchedule, LagrangianDqnConfig, LearnedPrices,
    PriceController, UserTransition,
};
use contract_rl_core::env::lifetime::Prices;
use contract_rl_core::env::{ActionMask, Coupling, MAX_CONTRACTS, Observation, Spaces};
use rand::RngExt;

use crate::qfunction::{QFunction, ValueFunction};
use crate::replay::{Batch, ReplayBuffer, Stored};

/// A per-user DQN with the resource prices as inputs.
pub struct LagrangianDqn {
    config: LagrangianDqnConfig,
    coupling: Coupling,
    q: QFunction,
    buffer: ReplayBuffer,
    /// A minibatch as stored, and relabelled at sampled prices.
    sampled: Batch,
    batch: Batch,
    /// The network's input for acting: the user's dense entries and the prices.
    row: Vec<f32>,
    n_actions: usize,
    all_actions: ActionMask,
    steps: u64,
    total_steps: u64,
    schedule: EpsilonSchedule,
    controller: PriceController,
}

impl LagrangianDqn {
    /// A fresh agent for an env of `spaces` (which must describe its coupling), with weights
    /// drawn from `rng`, whose ε schedule spans `total_steps` decisions.
    pub fn new(config: LagrangianDqnConfig, spaces: Spaces, total_steps: u64, rng: &mut AgentRng) -> Self {
        let coupling = spaces
            .coupling
            .expect("a per-user learner needs an env whose users share resources");
        let dqn = &config.dqn;
        Self {
            buffer: ReplayBuffer::with_priorities(dqn.buffer_size, coupling.user_dense_len, dqn.prioritized_replay),
            sampled: Batch::default(),
            batch: Batch::default(),
            row: vec![0.0; coupling.user_dense_len + 2],
            n_actions: spaces.n_actions,
            all_actions: ActionMask(((1u32 << spaces.n_actions) - 1) as u16),
            steps: 0,
            total_steps,
            schedule: EpsilonSchedule::new(
                dqn.epsilon_start,
                dqn.epsilon_end,
                dqn.epsilon_decay_fraction,
                total_steps,
            ),
            controller: PriceController::new(
                config.pricing.clone(),
                coupling,
                Prices {
                    budget: config.budget_price_max,
                    stock: config.stock_price_max,
                },
            ),
            q: QFunction::new(dqn.clone(), coupling.user_dense_len + 2, spaces.n_actions, rng),
            coupling,
            config,
        }
    }

    /// The prices a campaign starts with, as learned so far.
    pub fn base_prices(&self) -> Prices {
        self.controller.base()
    }

    /// Q-values of the online network for the user of `obs` at `prices`.
    pub fn q_values(&self, obs: &Observation, prices: Prices) -> Vec<f32> {
        let mut row = self.coupling.user(obs).to_vec();
        row.extend(price_inputs(&self.config, prices));
        self.q.values(&row)
    }

    /// The best action `obs`'s mask allows at the controller's prices, and what the greedy
    /// policy asks of the budget and of the stock ([`PriceController::choose`]).
    fn greedy(&mut self, obs: &Observation) -> (usize, [usize; 2]) {
        let d = self.coupling.user_dense_len;
        let inputs = price_inputs(&self.config, self.controller.prices(obs));
        self.row[..d].copy_from_slice(self.coupling.user(obs));
        self.row[d..].copy_from_slice(&inputs);
        let mut values = [0.0; MAX_CONTRACTS];
        for (v, q) in values.iter_mut().zip(self.q.act_values(&self.row).iter()) {
            *v = f64::from(*q);
        }
        self.controller.choose(obs, &values[..self.n_actions])
    }

    /// One gradient step on a minibatch relabelled at sampled prices.
    pub fn gradient_step(&mut self, rng: &mut AgentRng) {
        let progress = crate::dqn::progress(self.steps, self.total_steps);
        let beta = self.config.dqn.prioritized_replay.map_or(1.0, |p| p.beta(progress));
        self.buffer
            .sample(self.q.config().batch_size, beta, rng, &mut self.sampled);
        let (s, b, d) = (&self.sampled, &mut self.batch, self.coupling.user_dense_len);
        let (config, base) = (&self.config, self.controller.base());
        b.clone_from(s);
        b.obs.clear();
        b.next_obs.clear();
        b.next_masks.fill(self.all_actions.0);
        for i in 0..s.rewards.len() {
            let near = rng.random::<f64>() < config.focus_share;
            let [budget, stock] = [
                (base.budget, config.budget_price_max),
                (base.stock, config.stock_price_max),
            ]
            .map(|(now, max)| {
                let u = rng.random::<f64>();
                if near { (now * (0.5 + u)).min(max) } else { u * max }
            });
            let [cost, handsets] = s.uses[i].map(f64::from);
            b.rewards[i] = (f64::from(s.rewards[i]) - cost * (1.0 + budget) - handsets * stock) as f32;
            let prices = price_inputs(config, Prices { budget, stock });
            b.obs.extend_from_slice(&s.obs[i * d..(i + 1) * d]);
            b.obs.extend_from_slice(&prices);
            b.next_obs.extend_from_slice(&s.next_obs[i * d..(i + 1) * d]);
            b.next_obs.extend_from_slice(&prices);
        }
        let residuals = self.q.train(&self.batch, progress);
        self.buffer.update_priorities(&self.batch, residuals);
    }

    /// The checkpoint's side file holding the learned prices, beside the network's `path`.
    pub fn prices_path(path: &Path) -> PathBuf {
        path.with_extension("prices.json")
    }

    /// Saves the online network (burn's burnpack) and the learned prices beside it.
    pub fn save(&self, path: &Path) -> Result<(), AgentError> {
        let failed = |path: &Path, source: Box<dyn std::error::Error + Send + Sync>| AgentError::Save {
            path: path.to_owned(),
            source,
        };
        self.q.save(path).map_err(|e| failed(path, e.into()))?;
        let prices = Self::prices_path(path);
        let json = serde_json::to_vec_pretty(&self.controller.learned()).expect("prices serialise");
        std::fs::write(&prices, json).map_err(|e| failed(&prices, e.into()))
    }

    /// Loads what [`Self::save`] wrote; the target follows the network.
    pub fn load(&mut self, path: &Path) -> Result<(), AgentError> {
        let bad = |path: &Path, source: Box<dyn std::error::Error + Send + Sync>| AgentError::Checkpoint {
            path: path.to_owned(),
            source,
        };
        self.q.load(path).map_err(|e| bad(path, e.into()))?;
        let prices = Self::prices_path(path);
        let text = std::fs::read(&prices).map_err(|e| bad(&prices, e.into()))?;
        let learned: LearnedPrices = serde_json::from_slice(&text).map_err(|e| bad(&prices, e.into()))?;
        self.controller.restore(learned).map_err(|e| bad(&prices, e.into()))
    }
}

/// The network's inputs for `prices` (within the sampling range: the controller's limits):
/// each as a share of its range.
fn price_inputs(config: &LagrangianDqnConfig, prices: Prices) -> [f32; 2] {
    let share = |price: f64, max: f64| if max > 0.0 { (price / max) as f32 } else { 0.0 };
    [
        share(prices.budget, config.budget_price_max),
        share(prices.stock, config.stock_price_max),
    ]
}

impl Agent for LagrangianDqn {
    fn act(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        let choice = self.greedy(obs);
        self.controller
            .act(obs, choice, Some((&self.schedule, self.steps, rng)))
    }

    fn act_greedy(&mut self, obs: &Observation, _rng: &mut AgentRng) -> usize {
        let choice = self.greedy(obs);
        self.controller.act(obs, choice, None)
    }

    fn credit(&self) -> Credit {
        Credit::PerUser
    }

    fn observe_user(&mut self, t: &UserTransition, rng: &mut AgentRng) {
        self.steps += 1;
        self.controller.record_answer(t.action, t.handset);
        self.buffer.store(Stored {
            obs: self.coupling.user(&t.obs),
            action: t.action,
            reward: t.margins as f32,
            uses: [t.offer_cost as f32, f32::from(u8::from(t.handset))],
            steps: 1,
            next_obs: self.coupling.user(&t.next_obs),
            terminated: t.terminated,
            next_mask: self.all_actions.0,
        });
        for _ in 0..self.q.gradient_steps_due(self.steps) {
            self.gradient_step(rng);
        }
        self.q.after_env_step(self.steps);
    }

    fn end_episode(&mut self, last: &Observation, training: bool) {
        if training {
            self.controller.end_campaign(last);
        }
    }

    fn diagnostics(&mut self) -> Option<Diagnostics> {
        let epsilon = self.schedule.at(self.steps);
        Some(self.controller.diagnostics(self.q.diagnostics(epsilon)))
    }

    fn checkpoint_extension(&self) -> Option<&'static str> {
        Some(crate::CHECKPOINT_EXTENSION)
    }

    fn save(&self, path: &Path) -> Result<(), AgentError> {
        LagrangianDqn::save(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract_rl_core::env::MAX_CONTRACTS;
    use rand::SeedableRng;

    fn spaces() -> Spaces {
        let (mut offer_cost, mut uses_stock) = ([0.0; MAX_CONTRACTS], [false; MAX_CONTRACTS]);
        offer_cost[1] = 5.0;
        uses_stock[1] = true;
        Spaces {
            n_states: 1,
            n_user_states: 1,
            n_actions: 2,
            dense_len: 4,
            coupling: Some(Coupling {
                user_dense_len: 2,
                progress_index: 1,
                months: 4,
                budget: 100.0,
                offer_cost,
                stock_initial: 2.0,
                stock_monthly: 2.0,
                stock_scale: 4.0,
                uses_stock,
            }),
            steps_per_campaign: None,
            afterstate: None,
        }
    }

    #[test]
    fn every_sampled_transition_is_relabelled_at_the_prices_it_is_shown_with() {
        let config = LagrangianDqnConfig {
            dqn: contract_rl_core::agents::DqnConfig {
                hidden: vec![8],
                batch_size: 32,
                learning_starts: u64::MAX,
                ..Default::default()
            },
            budget_price_max: 4.0,
            stock_price_max: 40.0,
            focus_share: 0.5,
            ..LagrangianDqnConfig::default()
        };
        let mut rng = AgentRng::seed_from_u64(1);
        let mut agent = LagrangianDqn::new(config, spaces(), 100, &mut rng);
        let obs = Observation::new(0, 0, 0, ActionMask(0b11), [0; MAX_CONTRACTS], &[0.3, 0.25, 0.5, 1.0]);
        for (i, (offer_cost, handset)) in [(0.0, false), (5.0, false), (5.0, true)].into_iter().enumerate() {
            let t = UserTransition {
                obs,
                action: usize::from(offer_cost > 0.0),
                margins: 100.0 * (i + 1) as f64,
                offer_cost,
                handset,
                next_obs: obs,
                terminated: i == 2,
            };
            agent.observe_user(&t, &mut rng);
        }
        agent.gradient_step(&mut rng);
        let (s, b) = (&agent.sampled, &agent.batch);
        let mut focused = 0;
        for i in 0..32 {
            let row = &b.obs[i * 4..(i + 1) * 4];
            assert_eq!(&row[..2], &s.obs[i * 2..(i + 1) * 2], "the user's entries as stored");
            assert_eq!(
                &b.next_obs[i * 4 + 2..(i + 1) * 4],
                &row[2..],
                "the same prices in both"
            );
            let (budget, stock) = (f64::from(row[2]) * 4.0, f64::from(row[3]) * 40.0);
            assert!((0.0..=4.0).contains(&budget) && (0.0..=40.0).contains(&stock));
            // Focused draws: within ±50% of the starting prices (budget 1, handsets 0).
            focused += usize::from(stock == 0.0);
            let [cost, handsets] = s.uses[i].map(f64::from);
            let expected = f64::from(s.rewards[i]) - cost * (1.0 + budget) - handsets * stock;
            assert!(
                (f64::from(b.rewards[i]) - expected).abs() < 1e-3,
                "row {i}: {} vs {expected}",
                b.rewards[i]
            );
            assert_eq!(b.next_masks[i], 0b11, "the priced problem binds no user");
        }
        assert!(focused > 5 && focused < 27, "about half focused: {focused}");
    }

    #[test]
    fn a_saved_agent_loads_with_its_prices() {
        let mut rng = AgentRng::seed_from_u64(2);
        let config = LagrangianDqnConfig {
            dqn: contract_rl_core::agents::DqnConfig {
                hidden: vec![8],
                ..Default::default()
            },
            ..LagrangianDqnConfig::default()
        };
        let mut trained = LagrangianDqn::new(config.clone(), spaces(), 100, &mut rng);
        let last = Observation::new(0, 0, 0, ActionMask(0b11), [0; MAX_CONTRACTS], &[0.3, 1.0, 0.0, 0.0]);
        trained.end_episode(&last, true);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.bpk");
        trained.save(&path).unwrap();
        assert!(LagrangianDqn::prices_path(&path).is_file());
        let mut loaded = LagrangianDqn::new(config.clone(), spaces(), 100, &mut AgentRng::seed_from_u64(3));
        loaded.load(&path).unwrap();
        assert_eq!(loaded.base_prices(), trained.base_prices());
        assert_eq!(
            loaded.q_values(&last, trained.base_prices()),
            trained.q_values(&last, trained.base_prices())
        );
        std::fs::remove_file(LagrangianDqn::prices_path(&path)).unwrap();
        let missing = loaded.load(&path).unwrap_err().to_string();
        assert!(missing.contains("agent.prices.json"), "{missing}");
    }
}
