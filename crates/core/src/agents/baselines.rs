//! Honest baselines: uniform random over valid contracts, and the best single contract.

use rand::RngExt;

use super::{Agent, AgentRng, argmax_by};
use crate::env::{EnvModel, Observation, Split};

/// Offers a contract drawn uniformly from the valid ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomAgent;

impl Agent for RandomAgent {
    fn act(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        let i = rng.random_range(0..obs.mask.count() as usize);
        obs.mask.nth(i).expect("a non-terminal observation has a valid action")
    }

    fn act_greedy(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        self.act(obs, rng)
    }
}

/// Offers the same contract to everyone: among the contracts open to every training user, the
/// one with the highest mean expected reward. When its quota runs out, the best open-to-all
/// contract without a quota is offered instead.
#[derive(Debug, Clone)]
pub struct BestSingleContract {
    contract: usize,
    fallback: usize,
}

impl BestSingleContract {
    /// Chooses the contract on the training users of `model`.
    pub fn new(model: &EnvModel) -> Self {
        let train = model.split(Split::Train);
        let mean_reward =
            |a: usize| train.iter().map(|&u| model.expected_reward(u, a)).sum::<f64>() / train.len() as f64;
        let open_to_all = |a: &usize| train.iter().all(|&u| model.eligible(u).contains(*a));
        let contract = argmax_by((0..model.n_actions()).filter(open_to_all), mean_reward);
        let unlimited = |a: &usize| model.offer_caps()[*a].is_none();
        let fallback = argmax_by(
            (0..model.n_actions()).filter(open_to_all).filter(unlimited),
            mean_reward,
        );
        let fallback = fallback.expect("validation guarantees a contract open to every user without quota");
        Self {
            contract: contract.unwrap_or(fallback),
            fallback,
        }
    }

    /// The chosen contract.
    pub fn contract(&self) -> usize {
        self.contract
    }
}

impl Agent for BestSingleContract {
    fn act(&mut self, obs: &Observation, _rng: &mut AgentRng) -> usize {
        if obs.mask.contains(self.contract) {
            self.contract
        } else if obs.mask.contains(self.fallback) {
            self.fallback
        } else {
            obs.mask.nth(0).expect("a non-terminal observation has a valid action")
        }
    }

    fn act_greedy(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        self.act(obs, rng)
    }
}
