//! Tabular Q-learning on the env's discrete state.
//!
//! Hyperparameters → table → ε schedule → act → learn. The Q table is one contiguous
//! `n_states × n_actions` array; the behaviour argmax and the bootstrap max both range over the
//! valid actions only; the step size is constant or 1/n(s, a)^ω; Double Q-learning (van Hasselt
//! 2010) is optional.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{
    Agent, AgentRng, Diagnostics, DiagnosticsSums, EpsilonSchedule, InvalidHyperparameter, Transition, argmax_by,
};
use crate::env::{ActionMask, Observation};

/// Hyperparameters of tabular Q-learning; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QLearningConfig {
    /// Label in reports (default "q_learning").
    pub name: Option<String>,
    /// Discount factor in [0, 1]. Campaigns are evaluated undiscounted, yet 0.9 beats 1 on
    /// validation users: each progress bucket of the tabular state spans many steps, whose
    /// undiscounted returns-to-go differ by thousands, and a short horizon keeps the values
    /// of one bucket comparable (docs/agents.md, "DQN against tabular Q-learning").
    pub gamma: f64,
    /// Step size schedule.
    pub step_size: StepSize,
    /// ε at the first training step, in [0, 1].
    pub epsilon_start: f64,
    /// ε after the decay, in [0, 1].
    pub epsilon_end: f64,
    /// Share of the training steps over which ε decays linearly, in [0, 1].
    pub epsilon_decay_fraction: f64,
    /// Keep two tables and update one with the other's estimate (Double Q-learning).
    pub double_q: bool,
    /// Initial value of every entry.
    pub initial_q: f64,
}

/// How far each update moves Q(s, a) toward its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "schedule", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSize {
    /// A constant α in (0, 1].
    Constant { alpha: f64 },
    /// α = 1 / n(s, a)^ω with ω in (0.5, 1]: converges under the Robbins–Monro conditions.
    Visits { omega: f64 },
}

impl Default for QLearningConfig {
    fn default() -> Self {
        Self {
            name: None,
            gamma: 0.9,
            step_size: StepSize::Visits { omega: 0.7 },
            epsilon_start: 1.0,
            epsilon_end: 0.05,
            epsilon_decay_fraction: 0.5,
            double_q: false,
            initial_q: 0.0,
        }
    }
}

impl QLearningConfig {
    /// Checks ranges; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        let bad = |field: &str, message: String| {
            Err(InvalidHyperparameter {
                field: field.into(),
                message,
            })
        };
        let unit = |field: &'static str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                bad(field, format!("must be in [0, 1], got {v}"))
            }
        };
        unit("gamma", self.gamma)?;
        unit("epsilon_start", self.epsilon_start)?;
        unit("epsilon_end", self.epsilon_end)?;
        unit("epsilon_decay_fraction", self.epsilon_decay_fraction)?;
        if !self.initial_q.is_finite() {
            return bad("initial_q", format!("must be finite, got {}", self.initial_q));
        }
        match self.step_size {
            StepSize::Constant { alpha } if !(alpha > 0.0 && alpha <= 1.0) => {
                bad("step_size.alpha", format!("must be in (0, 1], got {alpha}"))
            }
            StepSize::Visits { omega } if !(omega > 0.5 && omega <= 1.0) => {
                bad("step_size.omega", format!("must be in (0.5, 1], got {omega}"))
            }
            _ => Ok(()),
        }
    }
}

/// A tabular Q-learning agent.
#[derive(Debug, Clone)]
pub struct QLearning {
    config: QLearningConfig,
    n_actions: usize,
    q: Vec<f64>,
    /// The second table of Double Q-learning; empty otherwise.
    q2: Vec<f64>,
    visits: Vec<u32>,
    steps: u64,
    schedule: EpsilonSchedule,
    /// Squared TD errors and Q(s, a) before each update, since the last read.
    sums: DiagnosticsSums,
}

impl QLearning {
    /// A fresh agent for `n_states × n_actions`, whose ε schedule spans `total_steps`.
    pub fn new(config: QLearningConfig, n_states: usize, n_actions: usize, total_steps: u64) -> Self {
        let size = n_states * n_actions;
        Self {
            q: vec![config.initial_q; size],
            q2: if config.double_q {
                vec![config.initial_q; size]
            } else {
                Vec::new()
            },
            visits: vec![0; size],
            steps: 0,
            sums: DiagnosticsSums::default(),
            schedule: EpsilonSchedule::new(
                config.epsilon_start,
                config.epsilon_end,
                config.epsilon_decay_fraction,
                total_steps,
            ),
            n_actions,
            config,
        }
    }

    /// ε at the current training step.
    pub fn epsilon(&self) -> f64 {
        self.schedule.at(self.steps)
    }

    /// The value used for acting: Q, or Q1 + Q2 with Double Q.
    #[inline]
    fn value(&self, state: u32, action: usize) -> f64 {
        let i = state as usize * self.n_actions + action;
        if self.q2.is_empty() {
            self.q[i]
        } else {
            self.q[i] + self.q2[i]
        }
    }

    /// The table entries of one state (the first table with Double Q).
    pub fn q_values(&self, state: u32) -> &[f64] {
        let start = state as usize * self.n_actions;
        &self.q[start..start + self.n_actions]
    }

    /// ε-greedy in `state` among the actions of `mask`: [`Agent::act`] without an observation,
    /// for learners fed from a [`VectorEnv`](crate::env::VectorEnv).
    #[inline]
    pub fn act_in(&mut self, state: u32, mask: ActionMask, rng: &mut AgentRng) -> usize {
        self.schedule.act(self.steps, mask, rng, || self.greedy(state, mask))
    }

    #[inline]
    fn greedy(&self, state: u32, mask: ActionMask) -> usize {
        argmax_by(mask.iter(), |a| self.value(state, a)).expect("a valid action")
    }

    /// Learns from taking `action` in `state` for `reward`: [`Agent::observe`] without
    /// observations. `next` is the next state and the actions it allows, `None` when the campaign
    /// ended (no bootstrap).
    #[inline]
    pub fn learn(
        &mut self,
        state: u32,
        action: usize,
        reward: f64,
        next: Option<(u32, ActionMask)>,
        rng: &mut AgentRng,
    ) {
        self.steps += 1;
        let k = self.n_actions;
        let i = state as usize * k + action;
        // Which table learns, and which one evaluates the bootstrap action.
        let swap = !self.q2.is_empty() && rng.random_bool(0.5);
        let (learner, evaluator) = match (swap, self.q2.is_empty()) {
            (_, true) => (&mut self.q, None),
            (false, false) => (&mut self.q, Some(&self.q2)),
            (true, false) => (&mut self.q2, Some(&self.q)),
        };
        let bootstrap = next.map_or(0.0, |(next, mask)| {
            let next = next as usize * k;
            let best = argmax_by(mask.iter(), |a| learner[next + a]);
            best.map_or(0.0, |a| evaluator.map_or(learner[next + a], |e| e[next + a]))
        });
        let target = reward + self.config.gamma * bootstrap;
        self.visits[i] = self.visits[i].saturating_add(1);
        let alpha = match self.config.step_size {
            StepSize::Constant { alpha } => alpha,
            StepSize::Visits { omega } => f64::from(self.visits[i]).powf(-omega),
        };
        let td = target - learner[i];
        self.sums.add(td * td, learner[i]);
        learner[i] += alpha * td;
    }
}

impl Agent for QLearning {
    #[inline]
    fn act(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        self.act_in(obs.state, obs.mask, rng)
    }

    #[inline]
    fn act_greedy(&mut self, obs: &Observation, _rng: &mut AgentRng) -> usize {
        self.greedy(obs.state, obs.mask)
    }

    #[inline]
    fn observe(&mut self, t: &Transition, rng: &mut AgentRng) {
        let next = (!t.terminated).then_some((t.next_obs.state, t.next_obs.mask));
        self.learn(t.obs.state, t.action, t.reward, next, rng);
    }

    fn diagnostics(&mut self) -> Option<Diagnostics> {
        Some(self.sums.take(self.epsilon()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MAX_CONTRACTS;
    use rand::SeedableRng;

    fn obs(state: u32, mask: u16) -> Observation {
        Observation::new(0, 0, state, ActionMask(mask), [0; MAX_CONTRACTS], &[])
    }

    #[test]
    fn masked_actions_are_never_chosen() {
        let mut agent = QLearning::new(QLearningConfig::default(), 1, 4, 1000);
        agent.q = vec![100.0, 1.0, 100.0, 0.0];
        let mut rng = AgentRng::seed_from_u64(0);
        for _ in 0..2000 {
            let a = agent.act(&obs(0, 0b1010), &mut rng);
            assert!(a == 1 || a == 3);
        }
        assert_eq!(agent.act_greedy(&obs(0, 0b1010), &mut rng), 1);
    }

    #[test]
    fn the_bootstrap_ignores_masked_actions() {
        let config = QLearningConfig {
            step_size: StepSize::Constant { alpha: 1.0 },
            gamma: 0.5,
            ..QLearningConfig::default()
        };
        let mut agent = QLearning::new(config, 2, 2, 10);
        agent.q = vec![0.0, 0.0, 50.0, 4.0];
        let t = Transition {
            obs: obs(0, 0b11),
            action: 0,
            reward: 1.0,
            next_obs: obs(1, 0b10),
            terminated: false,
            truncated: false,
        };
        agent.observe(&t, &mut AgentRng::seed_from_u64(0));
        assert_eq!(agent.q_values(0)[0], 1.0 + 0.5 * 4.0);
        agent.observe(&Transition { terminated: true, ..t }, &mut AgentRng::seed_from_u64(0));
        assert_eq!(agent.q_values(0)[0], 1.0);
    }

    #[test]
    fn epsilon_decays_linearly_then_stays() {
        let mut agent = QLearning::new(QLearningConfig::default(), 1, 2, 100);
        assert_eq!(agent.epsilon(), 1.0);
        agent.steps = 25;
        assert!((agent.epsilon() - 0.525).abs() < 1e-12);
        agent.steps = 90;
        assert_eq!(agent.epsilon(), 0.05);
    }

    /// One state, a clearly best action among three with noisy rewards: both variants find it.
    #[test]
    fn it_converges_to_the_best_action_of_a_trivial_bandit() {
        for double_q in [false, true] {
            let config = QLearningConfig {
                gamma: 0.0,
                double_q,
                ..QLearningConfig::default()
            };
            let mut agent = QLearning::new(config, 1, 3, 5000);
            let mut rng = AgentRng::seed_from_u64(1);
            for _ in 0..5000 {
                let o = obs(0, 0b111);
                let action = agent.act(&o, &mut rng);
                let reward = [1.0, 2.0, 1.5][action] + rng.random_range(-1.0..1.0);
                agent.observe(
                    &Transition {
                        obs: o,
                        action,
                        reward,
                        next_obs: o,
                        terminated: true,
                        truncated: false,
                    },
                    &mut rng,
                );
            }
            assert_eq!(agent.act_greedy(&obs(0, 0b111), &mut rng), 1, "double_q = {double_q}");
            // With Double Q the acting value is the sum of two tables that each estimate the mean.
            let tables = if double_q { 2.0 } else { 1.0 };
            let estimate = agent.value(0, 1) / tables;
            assert!((estimate - 2.0).abs() < 0.2, "double_q = {double_q}: Q = {estimate}");
        }
    }

    #[test]
    fn bad_hyperparameters_name_their_field() {
        let config = QLearningConfig {
            gamma: 1.5,
            ..QLearningConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().field, "gamma");
        let config = QLearningConfig {
            step_size: StepSize::Visits { omega: 0.3 },
            ..QLearningConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().field, "step_size.omega");
    }
}
