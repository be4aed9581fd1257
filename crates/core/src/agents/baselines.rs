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

/// Offers the same contract to everyone: among the contracts open to every training user and
/// without a quota (so it can be offered all campaign), the one with the highest mean expected
/// reward on training users.
#[derive(Debug, Clone)]
pub struct BestSingleContract {
    contract: usize,
}

impl BestSingleContract {
    /// Chooses the contract on the training users of `model`.
    pub fn new(model: &EnvModel) -> Self {
        let train = model.split(Split::Train);
        let mean_reward =
            |a: usize| train.iter().map(|&u| model.expected_reward(u, a)).sum::<f64>() / train.len() as f64;
        let single =
            |a: &usize| model.offer_caps()[*a].is_none() && train.iter().all(|&u| model.eligible(u).contains(*a));
        let contract = argmax_by((0..model.n_actions()).filter(single), mean_reward)
            .expect("validation guarantees a contract open to every user without quota");
        Self { contract }
    }
}

impl Agent for BestSingleContract {
    fn act(&mut self, obs: &Observation, _rng: &mut AgentRng) -> usize {
        if obs.mask.contains(self.contract) {
            self.contract
        } else {
            obs.mask.nth(0).expect("a non-terminal observation has a valid action")
        }
    }

    fn act_greedy(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        self.act(obs, rng)
    }
}
