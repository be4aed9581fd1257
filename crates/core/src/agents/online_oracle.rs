//! The online oracle: the best policy that does not see the future. It knows the response model
//! and the population of the split it plays on (not the order of the campaign's users), and plays
//! the dynamic program over (step, offers left). The DP is optimal for users drawn independently
//! from the split's population; a campaign replays consecutive, distinct users of the split,
//! which for thousands of users per split differs negligibly (a learner could, in principle,
//! show a small negative regret).
//!
//! For one quota'd contract `j` the DP is exact:
//! `V_t(q) = E_u[max(base(u) + V_{t+1}(q), r(u, j) + V_{t+1}(q − 1))]`, `V_T = 0`, where `base(u)`
//! is the user's best contract without a quota and the second branch needs `q > 0` and `u`
//! eligible for `j`. Writing `Δ_t(q) = V_{t+1}(q) − V_{t+1}(q − 1)` (the bid price of an offer of
//! `j`), the policy offers `j` when `r(u, j) − Δ_t(q)` beats every other valid contract. With
//! several quota'd contracts the same is done per contract (DP decomposition: each contract's DP
//! ignores the other quotas, and each offer is charged its own contract's bid price), which is
//! an approximation, not the exact optimum of the joint DP (Talluri & van Ryzin 2004, §3.4).

use std::sync::Arc;

use super::{Agent, AgentRng, masked_argmax};
use crate::env::{EnvModel, Observation, ResetInfo, Split};
use crate::report::stats::mean;

/// The per-contract value functions of one split.
#[derive(Debug, Clone)]
struct BidPrices {
    /// `values[i][t * (cap + 1) + q]`: `V_t(q)` of the `i`-th quota'd contract, `t` in `0..=T`.
    values: Vec<Vec<f64>>,
}

/// Plays the DP policy over (step, offers left) for the split of each campaign.
#[derive(Debug, Clone)]
pub struct OnlineOracle {
    model: Arc<EnvModel>,
    /// Quota'd contracts and their caps, in catalogue order.
    quotas: Vec<(usize, u32)>,
    /// Bid prices per split, solved when a campaign of that split first starts.
    solved: Vec<Option<BidPrices>>,
    /// The split of the campaign in progress.
    split: Split,
}

impl OnlineOracle {
    /// An oracle over `model`'s response model and populations.
    pub fn new(model: Arc<EnvModel>) -> Self {
        let quotas = model
            .offer_caps()
            .iter()
            .enumerate()
            .filter_map(|(a, cap)| cap.map(|c| (a, c)))
            .collect();
        Self {
            model,
            quotas,
            solved: vec![None; Split::ALL.len()],
            split: Split::Train,
        }
    }

    /// Whether the policy is the exact online optimum (at most one quota'd contract) rather
    /// than the per-contract approximation.
    pub fn is_exact(&self) -> bool {
        self.quotas.len() <= 1
    }

    /// The optimal expected return per campaign of users drawn from `split`'s population: `V_0`
    /// at a full quota. `None` with several quota'd contracts, where the policy is an
    /// approximation whose value the DP does not give.
    pub fn optimal_value(&mut self, split: Split) -> Option<f64> {
        if self.quotas.is_empty() {
            let users = self.model.split(split);
            return Some(self.model.episode_len() as f64 * mean(users.iter().map(|&u| self.base(u))));
        }
        let cap = self.quotas[0].1 as usize;
        let exact = self.is_exact();
        exact.then(|| self.prices(split).values[0][cap])
    }

    fn prices(&mut self, split: Split) -> &BidPrices {
        let index = split as usize;
        if self.solved[index].is_none() {
            let values = self.quotas.iter().map(|&(a, cap)| self.solve(split, a, cap)).collect();
            self.solved[index] = Some(BidPrices { values });
        }
        self.solved[index].as_ref().expect("solved above")
    }

    /// The user's best expected reward among eligible contracts without a quota.
    fn base(&self, user: u32) -> f64 {
        let open = self
            .model
            .eligible(user)
            .iter()
            .filter(|a| self.model.offer_caps()[*a].is_none());
        open.map(|a| self.model.expected_reward(user, a))
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// `V_t(q)` of quota'd contract `a` with `cap` offers on `split`'s population, row-major
    /// over `t` in `0..=T`.
    fn solve(&self, split: Split, a: usize, cap: u32) -> Vec<f64> {
        let users = self.model.split(split);
        let base = mean(users.iter().map(|&u| self.base(u)));
        // What offering `a` instead of the user's best open contract gains; sorted, with suffix
        // sums, so that E[max(0, gain − Δ)] is a binary search.
        let mut gains: Vec<f64> = users
            .iter()
            .filter(|&&u| self.model.eligible(u).contains(a))
            .map(|&u| self.model.expected_reward(u, a) - self.base(u))
            .collect();
        gains.sort_by(f64::total_cmp);
        let mut suffix = vec![0.0; gains.len() + 1];
        for i in (0..gains.len()).rev() {
            suffix[i] = suffix[i + 1] + gains[i];
        }
        let n = users.len() as f64;
        let expected_surplus = |price: f64| {
            let first = gains.partition_point(|g| *g <= price);
            (suffix[first] - price * (gains.len() - first) as f64) / n
        };
        let (horizon, width) = (self.model.episode_len(), cap as usize + 1);
        let mut values = vec![0.0; (horizon + 1) * width];
        for t in (0..horizon).rev() {
            let (now, next) = values.split_at_mut((t + 1) * width);
            let now = &mut now[t * width..];
            for q in 0..width {
                let keep = next[q];
                now[q] = base
                    + keep
                    + if q == 0 {
                        0.0
                    } else {
                        expected_surplus(keep - next[q - 1])
                    };
            }
        }
        values
    }
}

impl Agent for OnlineOracle {
    fn begin_episode(&mut self, _obs: &Observation, info: &ResetInfo) {
        self.split = info.split;
        self.prices(info.split);
    }

    fn act(&mut self, obs: &Observation, _rng: &mut AgentRng) -> usize {
        let prices = self.solved[self.split as usize]
            .as_ref()
            .expect("solved when the campaign began");
        let t = obs.t as usize;
        let price = |a: usize| {
            self.quotas
                .iter()
                .zip(&prices.values)
                .find(|((c, _), _)| *c == a)
                .map_or(0.0, |((_, cap), values)| match obs.offers_left[a] as usize {
                    0 => f64::INFINITY,
                    q => {
                        let width = *cap as usize + 1;
                        values[(t + 1) * width + q] - values[(t + 1) * width + q - 1]
                    }
                })
        };
        masked_argmax(obs, |a| self.model.expected_reward(obs.user, a) - price(a)).expect("a valid action")
    }

    fn act_greedy(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        self.act(obs, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{ActionMask, EnvConfig, MAX_CONTRACTS};
    use crate::source::{Generator, generate_records};

    /// The default env with campaigns of 6 users and 2 premium offers, on a snapshot so small
    /// that every split holds a handful of users.
    fn tiny_model() -> Arc<EnvModel> {
        let mut config: EnvConfig = toml::from_str(include_str!("../../../../envs/contract-choice.toml")).unwrap();
        config.episode_len = 6;
        config.test_fraction = 0.3;
        config.validation_fraction = 0.3;
        for c in &mut config.contracts {
            if c.quota.is_some() {
                c.quota = Some(1.0 / 3.0);
            }
        }
        let (records, _) = generate_records(&Generator::new("online", &[]).unwrap(), 24);
        Arc::new(EnvModel::build(config, &records).unwrap())
    }

    /// The valid contracts of `user` with `left` offers.
    fn mask(model: &EnvModel, user: u32, left: &[u16; MAX_CONTRACTS]) -> ActionMask {
        let caps = model.offer_caps();
        ActionMask(
            model
                .eligible(user)
                .iter()
                .filter(|a| caps[*a].is_none() || left[*a] > 0)
                .fold(0, |m, a| m | 1 << a),
        )
    }

    /// The best expected return of any non-anticipating policy, by brute force: the expectation
    /// over every next user of the best action, recursively, over the whole tree of draws.
    fn expectimax(model: &EnvModel, users: &[u32], t: usize, left: [u16; MAX_CONTRACTS]) -> f64 {
        if t == model.episode_len() {
            return 0.0;
        }
        let caps = model.offer_caps();
        let total: f64 = users
            .iter()
            .map(|&u| {
                mask(model, u, &left)
                    .iter()
                    .map(|a| {
                        let mut next = left;
                        if caps[a].is_some() {
                            next[a] -= 1;
                        }
                        model.expected_reward(u, a) + expectimax(model, users, t + 1, next)
                    })
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .sum();
        total / users.len() as f64
    }

    /// The oracle's mean expected return over every sequence of users drawn from `users`.
    fn played(model: &Arc<EnvModel>, users: &[u32], full: [u16; MAX_CONTRACTS]) -> f64 {
        let mut oracle = OnlineOracle::new(Arc::clone(model));
        let len = model.episode_len();
        let first = Observation::new(users[0], 0, 0, ActionMask(1), full, &[]);
        oracle.begin_episode(
            &first,
            &ResetInfo {
                campaign_start: 0,
                split: Split::Test,
            },
        );
        let sequences = users.len().pow(len as u32);
        let mut rng = <AgentRng as rand::SeedableRng>::seed_from_u64(0);
        let total: f64 = (0..sequences)
            .map(|code| {
                let mut left = full;
                (0..len)
                    .map(|t| {
                        let u = users[code / users.len().pow(t as u32) % users.len()];
                        let obs = Observation::new(u, t as u32, 0, mask(model, u, &left), left, &[]);
                        let a = oracle.act(&obs, &mut rng);
                        if model.offer_caps()[a].is_some() {
                            left[a] -= 1;
                        }
                        model.expected_reward(u, a)
                    })
                    .sum::<f64>()
            })
            .sum();
        total / sequences as f64
    }

    #[test]
    fn the_dp_equals_brute_force_and_the_policy_reaches_it() {
        let model = tiny_model();
        let users = model.split(Split::Test).to_vec();
        assert!((6..=9).contains(&users.len()), "{} test users", users.len());
        let mut full = [u16::MAX; MAX_CONTRACTS];
        for (a, cap) in model.offer_caps().iter().enumerate() {
            if let Some(c) = cap {
                assert_eq!(*c, 2, "two premium offers per campaign of six");
                full[a] = *c as u16;
            }
        }
        let brute = expectimax(&model, &users, 0, full);
        let mut oracle = OnlineOracle::new(Arc::clone(&model));
        assert!(oracle.is_exact());
        let dp = oracle.optimal_value(Split::Test).unwrap();
        assert!(
            (dp - brute).abs() < 1e-9 * brute.abs(),
            "dp {dp} vs brute force {brute}"
        );
        let reached = played(&model, &users, full);
        assert!(
            (reached - brute).abs() < 1e-9 * brute.abs(),
            "policy {reached} vs optimum {brute}"
        );
    }
}
