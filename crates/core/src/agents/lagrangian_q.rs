//! Tabular Q-learning of each user's own problem under resource prices: the tabular member of
//! the weakly coupled learners (the env's per-user credit, prices from a [`PriceController`]).
//!
//! Hyperparameters → table → prices → act → learn. The table holds Q(user state, action) at
//! every point of a grid of (budget, handset) prices; every user transition updates all of
//! them, its reward relabelled at each point (margins − offer cost × (1 + budget price) −
//! handset price when it took a handset), so the prices are inputs the table learns over
//! rather than a setting it must be retrained for. Acting reads the table at the controller's
//! prices, interpolated between grid points. The state is the env's per-user tabular state
//! (holding, the window's offers, refusals, age band, seniority band, month), undiscounted by
//! default: a user's campaign is at most `months` decisions long. The bootstrap takes the best of
//! every action, not only those the mask allowed: in the priced problem the shared resources
//! bind no user (their masks are what the prices stand for).

use serde::{Deserialize, Serialize};

use super::pricing::{PriceController, PricingConfig};
use super::q_learning::{QLearningConfig, StepSize};
use super::{
    Agent, AgentRng, Credit, Diagnostics, DiagnosticsSums, EpsilonSchedule, InvalidHyperparameter, UserTransition,
};
use crate::env::lifetime::Prices;
use crate::env::{MAX_CONTRACTS, Observation, Spaces};

/// Hyperparameters of `lagrangian_q`; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LagrangianQConfig {
    /// Label in reports (default "lagrangian_q").
    pub name: Option<String>,
    /// The tabular options, as for `q_learning` (`double_q` is not supported); `gamma` 1 by
    /// default here.
    pub q: QLearningConfig,
    /// Budget prices of the table's grid (per unit of offer cost), increasing from 0.
    pub budget_prices: Vec<f64>,
    /// Handset prices of the grid (margin units), increasing from 0.
    pub stock_prices: Vec<f64>,
    /// How the prices are learned and paced.
    pub pricing: PricingConfig,
}

impl Default for LagrangianQConfig {
    fn default() -> Self {
        Self {
            name: None,
            q: QLearningConfig {
                gamma: 1.0,
                ..QLearningConfig::default()
            },
            budget_prices: vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0],
            stock_prices: vec![0.0, 10.0, 25.0, 50.0],
            pricing: PricingConfig::default(),
        }
    }
}

impl LagrangianQConfig {
    /// Checks ranges; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        self.q.validate().map_err(|e| e.under("q"))?;
        if self.q.double_q {
            return Err(InvalidHyperparameter {
                field: "q.double_q".into(),
                message: "is not supported by lagrangian_q; use false".into(),
            });
        }
        for (field, grid) in [
            ("budget_prices", &self.budget_prices),
            ("stock_prices", &self.stock_prices),
        ] {
            let increasing = grid.windows(2).all(|w| w[0] < w[1]);
            if grid.first() != Some(&0.0) || !increasing || grid.iter().any(|p| !p.is_finite()) {
                return Err(InvalidHyperparameter {
                    field: field.into(),
                    message: format!("must be finite, strictly increasing and start at 0, got {grid:?}"),
                });
            }
        }
        self.pricing.validate()
    }
}

/// The per-user tabular learner.
#[derive(Debug, Clone)]
pub struct LagrangianQ {
    config: LagrangianQConfig,
    n_actions: usize,
    /// `[state][action][budget price][stock price]`.
    q: Vec<f64>,
    visits: Vec<u32>,
    steps: u64,
    schedule: EpsilonSchedule,
    controller: PriceController,
    sums: DiagnosticsSums,
}

/// The grid interval holding `x` and the weight of its upper end (clamped to the grid).
fn locate(grid: &[f64], x: f64) -> (usize, f64) {
    if grid.len() == 1 || x <= grid[0] {
        return (0, 0.0);
    }
    let i = grid.partition_point(|g| *g <= x).min(grid.len() - 1) - 1;
    let w = ((x - grid[i]) / (grid[i + 1] - grid[i])).min(1.0);
    (i, w)
}

impl LagrangianQ {
    /// A fresh learner for an env of `spaces` (which must describe its coupling), whose ε
    /// schedule spans `total_steps` decisions.
    pub fn new(config: LagrangianQConfig, spaces: Spaces, total_steps: u64) -> Self {
        let coupling = spaces
            .coupling
            .expect("a per-user learner needs an env whose users share resources");
        let prices = config.budget_prices.len() * config.stock_prices.len();
        let size = spaces.n_user_states * spaces.n_actions;
        Self {
            q: vec![config.q.initial_q; size * prices],
            visits: vec![0; size],
            steps: 0,
            schedule: EpsilonSchedule::new(
                config.q.epsilon_start,
                config.q.epsilon_end,
                config.q.epsilon_decay_fraction,
                total_steps,
            ),
            controller: PriceController::new(
                config.pricing.clone(),
                coupling,
                Prices {
                    budget: *config.budget_prices.last().expect("a grid"),
                    stock: *config.stock_prices.last().expect("a grid"),
                },
            ),
            sums: DiagnosticsSums::default(),
            n_actions: spaces.n_actions,
            config,
        }
    }

    /// The prices a campaign starts with, as learned so far.
    pub fn base_prices(&self) -> Prices {
        self.controller.base()
    }

    fn grid_points(&self) -> usize {
        self.config.budget_prices.len() * self.config.stock_prices.len()
    }

    /// The table's entries of (`state`, `action`), one per grid point.
    fn entries(&self, state: u32, action: usize) -> std::ops::Range<usize> {
        let n = self.grid_points();
        let start = (state as usize * self.n_actions + action) * n;
        start..start + n
    }

    /// Q(`state`, `action`) at `prices`, interpolated between grid points.
    fn value(&self, state: u32, action: usize, prices: Prices) -> f64 {
        let q = &self.q[self.entries(state, action)];
        let stocks = self.config.stock_prices.len();
        let (b, wb) = locate(&self.config.budget_prices, prices.budget);
        let (s, ws) = locate(&self.config.stock_prices, prices.stock);
        let at = |i: usize, j: usize| q[i.min(self.config.budget_prices.len() - 1) * stocks + j.min(stocks - 1)];
        (1.0 - wb) * ((1.0 - ws) * at(b, s) + ws * at(b, s + 1))
            + wb * ((1.0 - ws) * at(b + 1, s) + ws * at(b + 1, s + 1))
    }

    /// The greedy action among `obs`'s allowed ones, and what it asks of the budget and of the
    /// stock ([`PriceController::choose`]).
    fn greedy(&self, obs: &Observation) -> (usize, [usize; 2]) {
        let prices = self.controller.prices(obs);
        let mut values = [0.0; MAX_CONTRACTS];
        for (a, v) in values[..self.n_actions].iter_mut().enumerate() {
            *v = self.value(obs.user_state, a, prices);
        }
        self.controller.choose(obs, &values[..self.n_actions])
    }
}

impl Agent for LagrangianQ {
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

    fn observe_user(&mut self, t: &UserTransition, _rng: &mut AgentRng) {
        self.steps += 1;
        self.controller.record_answer(t.action, t.handset);
        let visits = &mut self.visits[t.obs.user_state as usize * self.n_actions + t.action];
        *visits = visits.saturating_add(1);
        let alpha = match self.config.q.step_size {
            StepSize::Constant { alpha } => alpha,
            StepSize::Visits { omega } => f64::from(*visits).powf(-omega),
        };
        let (stocks, gamma) = (self.config.stock_prices.len(), self.config.q.gamma);
        let base = self.controller.base();
        let nearest = |grid: &[f64], x: f64| {
            (0..grid.len())
                .min_by(|&a, &b| (grid[a] - x).abs().total_cmp(&(grid[b] - x).abs()))
                .expect("a grid")
        };
        let tracked =
            nearest(&self.config.budget_prices, base.budget) * stocks + nearest(&self.config.stock_prices, base.stock);
        let here = self.entries(t.obs.user_state, t.action).start;
        let next = self.entries(t.next_obs.user_state, 0).start;
        let points = self.grid_points();
        for (i, &budget) in self.config.budget_prices.iter().enumerate() {
            for (j, &stock) in self.config.stock_prices.iter().enumerate() {
                let p = i * stocks + j;
                let reward = t.margins - t.offer_cost * (1.0 + budget) - if t.handset { stock } else { 0.0 };
                let bootstrap = if t.terminated {
                    0.0
                } else {
                    (0..self.n_actions)
                        .map(|a| self.q[next + a * points + p])
                        .fold(f64::NEG_INFINITY, f64::max)
                };
                let q = &mut self.q[here + p];
                let td = reward + gamma * bootstrap - *q;
                if p == tracked {
                    self.sums.add(td * td, *q);
                }
                *q += alpha * td;
            }
        }
    }

    fn end_episode(&mut self, last: &Observation, training: bool) {
        if training {
            self.controller.end_campaign(last);
        }
    }

    fn diagnostics(&mut self) -> Option<Diagnostics> {
        let epsilon = self.schedule.at(self.steps);
        Some(self.controller.diagnostics(self.sums.take(epsilon)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::ActionMask;

    #[test]
    fn the_grid_is_interpolated_between_its_points_and_clamped_at_its_ends() {
        let grid = [0.0, 1.0, 3.0];
        assert_eq!(locate(&grid, -1.0), (0, 0.0));
        assert_eq!(locate(&grid, 0.5), (0, 0.5));
        assert_eq!(locate(&grid, 2.0), (1, 0.5));
        assert_eq!(locate(&grid, 3.0), (1, 1.0));
        assert_eq!(locate(&grid, 9.0), (1, 1.0));
        assert_eq!(locate(&[0.0], 5.0), (0, 0.0));
    }

    /// Two per-user states, two actions (action 1 an offer costing 5); a grid of budget prices
    /// {0, 1} and handset prices {0, 10}; full steps.
    fn learner() -> LagrangianQ {
        let mut coupling = crate::agents::pricing::tests::coupling();
        coupling.offer_cost[1] = 5.0;
        let spaces = Spaces {
            n_states: 2,
            n_user_states: 2,
            n_actions: 2,
            dense_len: 4,
            coupling: Some(coupling),
            steps_per_campaign: None,
            afterstate: None,
        };
        let config = LagrangianQConfig {
            q: QLearningConfig {
                gamma: 1.0,
                step_size: StepSize::Constant { alpha: 1.0 },
                ..QLearningConfig::default()
            },
            budget_prices: vec![0.0, 1.0],
            stock_prices: vec![0.0, 10.0],
            ..LagrangianQConfig::default()
        };
        LagrangianQ::new(config, spaces, 100)
    }

    fn in_state(user_state: u32) -> Observation {
        Observation::new(0, 0, 0, ActionMask(0b11), [0; MAX_CONTRACTS], &[0.0, 0.0, 0.5, 1.0])
            .with_user_state(user_state)
    }

    #[test]
    fn a_transition_is_learned_at_every_grid_price_with_its_reward_relabelled() {
        use rand::SeedableRng;
        let mut agent = learner();
        let mut rng = AgentRng::seed_from_u64(0);
        // The end of a user: margins 100 for an offer costing 5 that took a handset.
        let last = UserTransition {
            obs: in_state(1),
            action: 1,
            margins: 100.0,
            offer_cost: 5.0,
            handset: true,
            next_obs: in_state(1),
            terminated: true,
        };
        agent.observe_user(&last, &mut rng);
        let q = &agent.q[agent.entries(1, 1)];
        // [budget][stock]: 100 − 5 (1 + budget) − stock.
        assert_eq!(q, &[95.0, 85.0, 90.0, 80.0]);
        // One step before it, no offer and margins 30: the bootstrap is the best action there,
        // at each price (action 0 is worth 0 so far).
        let before = UserTransition {
            obs: in_state(0),
            action: 0,
            margins: 30.0,
            offer_cost: 0.0,
            handset: false,
            next_obs: in_state(1),
            terminated: false,
        };
        agent.observe_user(&before, &mut rng);
        assert_eq!(&agent.q[agent.entries(0, 0)], &[125.0, 115.0, 120.0, 110.0]);
        // Acting reads the grid between its points: at budget price 0.5 and handset price 5,
        // Q(1, 1) = 100 − 7.5 − 5.
        let at = agent.value(
            1,
            1,
            Prices {
                budget: 0.5,
                stock: 5.0,
            },
        );
        assert!((at - 87.5).abs() < 1e-12, "{at}");
    }

    #[test]
    fn bad_grids_name_their_field() {
        let config = LagrangianQConfig {
            budget_prices: vec![0.0, 2.0, 1.0],
            ..LagrangianQConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().field, "budget_prices");
        let config = LagrangianQConfig {
            q: QLearningConfig {
                gamma: 2.0,
                ..QLearningConfig::default()
            },
            ..LagrangianQConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().field, "q.gamma");
    }
}
