//! The contract-choice env's [`VectorEnv`], built for speed: per-campaign state kept together
//! (RNG, position, quotas), every output one contiguous array over the campaigns. Dense rows are
//! written on request ([`VectorEnv::write_dense`]): tabular learners never pay for them. Every
//! per-step quantity that depends only on the position in the campaign or on the offers left is
//! looked up in tables built once, quotas are updated offer by offer, and the per-user tables are
//! laid out in the split's order, so a campaign reads consecutive memory as it moves through its
//! users.
//!
//! Campaign `i` follows exactly the trajectory of a [`ContractChoiceEnv`] built with seed
//! `seeds[i]` and reset with `reset(None)` whenever a campaign ends (same draws, same rewards,
//! same observations; a test checks it).

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[cfg(doc)]
use super::ContractChoiceEnv;
use super::{ActionMask, EnvError, EnvModel, MAX_CONTRACTS, MAX_DENSE, Observation, Split};
use crate::env::vector::refuse_masked;
use crate::env::{Outputs, VectorEnv};

/// `n` contract-choice campaigns over one split, each with its own RNG stream.
#[derive(Debug, Clone)]
pub struct ContractChoiceBatch {
    model: Arc<EnvModel>,
    tables: Tables,
    campaigns: Vec<Campaign>,
    out: Outputs,
}

/// One campaign's own state, kept together: what a step reads and writes for it.
#[derive(Debug, Clone)]
struct Campaign {
    rng: ChaCha8Rng,
    /// Position of the campaign's first user in the split.
    start: u32,
    /// Users already served.
    t: u32,
    quotas: Quotas,
}

/// A campaign's quotas, kept up to date offer by offer rather than recomputed per step.
#[derive(Debug, Clone, Copy)]
struct Quotas {
    /// Offers left of each quota'd contract; 0 for the others (which are never decremented).
    left: [u16; MAX_CONTRACTS],
    /// The quotas' part of the tabular state (already scaled by the progress buckets).
    state: u32,
    /// The contracts the quotas allow (every contract without a quota, and those with offers left).
    allowed: u16,
}

/// What a step looks up instead of computing. Per-user tables are indexed by position in the
/// split.
#[derive(Debug, Clone)]
struct Tables {
    dense_len: usize,
    n_features: usize,
    n_actions: usize,
    /// The split's users, with what the tabular observation needs of each.
    positions: Vec<Position>,
    /// The users' features as `f32`, row-major.
    features: Vec<f32>,
    /// P(accept) of each (user, contract). The expected reward is computed from it as the model
    /// computes it (same operations, so the same bits): a table of half the size stays in cache.
    accept_prob: Vec<f64>,
    contracts: Vec<Contract>,
    /// What one more offer of a quota'd contract does, by offers left before it: each quota'd
    /// contract's entries from its [`Contract::quota_steps`] on; entry 0 does nothing (the
    /// entry of every contract without a quota).
    quota_steps: Vec<QuotaStep>,
    /// A new campaign's quotas.
    fresh: Quotas,
    /// Per quota'd contract: its action and the dense share for each number of offers left.
    quota_shares: Vec<(usize, Vec<f32>)>,
    /// Per campaign position (0..=len): the progress bucket and the dense share done.
    progress_bucket: Vec<u32>,
    progress_share: Vec<f32>,
}

/// `rewards[accepted]`. Acceptance is a coin flip the CPU cannot predict, and LLVM turns a choice
/// between two floats (a select, `accepted as f64 * margin`, or this lookup with a plain index)
/// into a branch mispredicted on half the flips; an index it cannot see through keeps it a load
/// (BENCHMARKS.md: 56 → 78 M steps/s).
#[inline]
fn reward_of(rewards: &[f64; 2], accepted: bool) -> f64 {
    rewards[std::hint::black_box(usize::from(accepted))]
}

/// A user of the split: its snapshot row, static state times the number of dynamic states, and
/// the contracts it may be offered before quotas.
#[derive(Debug, Clone, Copy)]
struct Position {
    user: u32,
    state_base: u32,
    eligible: u16,
}

/// What an offer of one contract costs and earns, and does to the quotas.
#[derive(Debug, Clone, Copy)]
struct Contract {
    margin: f64,
    offer_cost: f64,
    /// The reward when refused, and when accepted.
    rewards: [f64; 2],
    /// 1 when the contract has a quota (an offer uses one up), else 0.
    uses_quota: u16,
    /// Where its entries start in [`Tables::quota_steps`].
    quota_steps: u32,
}

/// An offer's effect on [`Quotas`]: added to the state (wrapping: a bucket can go down), and the
/// contract it rules out (when it used the last offer).
#[derive(Debug, Clone, Copy, Default)]
struct QuotaStep {
    state: u32,
    ruled_out: u16,
}

impl Tables {
    fn new(model: &EnvModel, split: Split) -> Self {
        let config = &model.config;
        let len = config.episode_len;
        let users = model.split(split);
        let (n_features, n_actions) = (model.feature_names.len(), model.n_actions);
        let n_dynamic = (model.n_states() / model.n_static_states) as u32;
        let per_user = |width: usize| move |&u: &u32| (u as usize * width)..(u as usize + 1) * width;
        let cap_of = |a: usize| model.offer_caps[a].map(|c| c.min(u32::from(u16::MAX)) as u16);
        // The quotas' part of the state is a number in base `quota_buckets`, most significant
        // digit first, times the progress buckets.
        let n_quotas = model.quota_contracts.len() as u32;
        let stride =
            |k: usize| (model.quota_buckets as u32).pow(n_quotas - 1 - k as u32) * model.progress_buckets as u32;
        let mut quota_steps = vec![QuotaStep::default()];
        let mut contracts: Vec<Contract> = config
            .contracts
            .iter()
            .map(|c| Contract {
                margin: c.margin,
                offer_cost: c.offer_cost,
                rewards: [0.0 - c.offer_cost, c.margin - c.offer_cost],
                uses_quota: 0,
                quota_steps: 0,
            })
            .collect();
        let mut fresh = Quotas {
            left: [0; MAX_CONTRACTS],
            state: 0,
            allowed: u16::MAX,
        };
        for (k, &a) in model.quota_contracts.iter().enumerate() {
            let cap = cap_of(a).expect("quota contract");
            let bucket = |left: u16| model.quota_bucket(a, left) as u32 * stride(k);
            contracts[a].uses_quota = 1;
            contracts[a].quota_steps = quota_steps.len() as u32;
            quota_steps.push(QuotaStep::default());
            quota_steps.extend((1..=cap).map(|before| QuotaStep {
                state: bucket(before - 1).wrapping_sub(bucket(before)),
                ruled_out: if before == 1 { 1 << a } else { 0 },
            }));
            fresh.left[a] = cap;
            fresh.state += bucket(cap);
            if cap == 0 {
                fresh.allowed &= !(1 << a);
            }
        }
        Self {
            dense_len: model.dense_len(),
            n_features,
            n_actions,
            positions: users
                .iter()
                .map(|&u| Position {
                    user: u,
                    state_base: model.static_state[u as usize] * n_dynamic,
                    eligible: model.eligible[u as usize].0,
                })
                .collect(),
            features: users
                .iter()
                .flat_map(per_user(n_features))
                .map(|k| model.features[k] as f32)
                .collect(),
            accept_prob: users
                .iter()
                .flat_map(per_user(n_actions))
                .map(|k| model.accept_prob[k])
                .collect(),
            contracts,
            quota_steps,
            fresh,
            quota_shares: model
                .quota_contracts
                .iter()
                .map(|&a| {
                    let lefts = 0..=cap_of(a).expect("quota contract");
                    (a, lefts.map(|left| model.quota_share(a, left)).collect())
                })
                .collect(),
            progress_bucket: (0..=len).map(|t| model.progress_bucket(t) as u32).collect(),
            progress_share: (0..=len).map(|t| model.progress_share(t)).collect(),
        }
    }

    /// Starts a new campaign in `c` from its RNG: `ContractChoiceEnv::reset(None)`'s draw.
    fn restart(&self, c: &mut Campaign, len: usize) {
        let starts = self.positions.len() - len + 1;
        c.start = c.rng.random_range(0..starts) as u32;
        c.t = 0;
        c.quotas = self.fresh;
    }

    /// Campaign `c`'s user, tabular state and mask (what [`EnvModel::observe`] computes).
    #[inline]
    fn observe(&self, c: &Campaign) -> (u32, u32, ActionMask) {
        let position = self.positions[(c.start + c.t) as usize];
        let state = position.state_base + c.quotas.state + self.progress_bucket[c.t as usize];
        (position.user, state, ActionMask(position.eligible & c.quotas.allowed))
    }
}

impl ContractChoiceBatch {
    /// One campaign per seed over `split`; call [`VectorEnv::reset`] before stepping.
    pub fn new(model: Arc<EnvModel>, split: Split, seeds: &[u64]) -> Self {
        let n = seeds.len();
        let tables = Tables::new(&model, split);
        Self {
            campaigns: seeds
                .iter()
                .map(|&s| Campaign {
                    rng: ChaCha8Rng::seed_from_u64(s),
                    start: 0,
                    t: 0,
                    quotas: tables.fresh,
                })
                .collect(),
            out: Outputs::new(n),
            tables,
            model,
        }
    }

    /// Campaign `i`'s dense observation (what [`EnvModel::write_dense`] writes).
    fn write_dense_row(&self, i: usize, row: &mut [f32]) {
        let (tables, c) = (&self.tables, &self.campaigns[i]);
        let f = tables.n_features;
        let (features, rest) = row.split_at_mut(f);
        let at = (c.start + c.t) as usize;
        features.copy_from_slice(&tables.features[at * f..(at + 1) * f]);
        for ((a, share), out) in tables.quota_shares.iter().zip(rest.iter_mut()) {
            *out = share[usize::from(c.quotas.left[*a])];
        }
        rest[tables.quota_shares.len()] = tables.progress_share[c.t as usize];
    }
}

impl VectorEnv for ContractChoiceBatch {
    fn len(&self) -> usize {
        self.campaigns.len()
    }

    fn reset(&mut self) {
        let len = self.model.episode_len();
        for (i, c) in self.campaigns.iter_mut().enumerate() {
            self.tables.restart(c, len);
            let out = &mut self.out;
            (out.users[i], out.states[i], out.masks[i]) = self.tables.observe(c);
        }
    }

    fn step(&mut self, actions: &[usize]) -> Result<(), EnvError> {
        let n = self.len();
        assert_eq!(actions.len(), n, "one action per campaign");
        // Masks hold only the env's actions.
        refuse_masked(actions, &self.out.masks)?;
        let len = self.model.episode_len();
        let tables = &self.tables;
        // Two passes, the offers' outcomes and then the moves, each with few enough arrays to
        // keep in registers. Slices of one length, so the loops' indexing needs no bounds checks.
        let out = &mut self.out;
        let (rewards, expected, accepted) = (
            &mut out.rewards[..n],
            &mut out.expected_rewards[..n],
            &mut out.accepted[..n],
        );
        for (i, (c, &action)) in self.campaigns.iter_mut().zip(actions).enumerate() {
            let p = tables.accept_prob[(c.start + c.t) as usize * tables.n_actions + action];
            let contract = &tables.contracts[action];
            let accept = c.rng.random::<f64>() < p;
            accepted[i] = accept;
            rewards[i] = reward_of(&contract.rewards, accept);
            expected[i] = p * contract.margin - contract.offer_cost;
        }
        let (users, states, masks) = (&mut out.users[..n], &mut out.states[..n], &mut out.masks[..n]);
        let terminated = &mut out.terminated[..n];
        for (i, (c, &action)) in self.campaigns.iter_mut().zip(actions).enumerate() {
            let contract = &tables.contracts[action];
            let left = &mut c.quotas.left[action];
            let offer = tables.quota_steps[contract.quota_steps as usize + usize::from(*left)];
            *left -= contract.uses_quota;
            c.quotas.state = c.quotas.state.wrapping_add(offer.state);
            c.quotas.allowed &= !offer.ruled_out;
            c.t += 1;
            terminated[i] = c.t as usize == len;
            if terminated[i] {
                tables.restart(c, len);
            }
            (users[i], states[i], masks[i]) = tables.observe(c);
        }
        Ok(())
    }

    fn write_dense(&self, out: &mut [f32]) {
        let d = self.tables.dense_len;
        assert_eq!(out.len(), self.len() * d, "one dense row per campaign");
        for (i, row) in out.chunks_exact_mut(d).enumerate() {
            self.write_dense_row(i, row);
        }
    }

    fn outputs(&self) -> &Outputs {
        &self.out
    }

    fn observation(&self, i: usize) -> Observation {
        let mut dense = [0.0; MAX_DENSE];
        let dense = &mut dense[..self.tables.dense_len];
        self.write_dense_row(i, dense);
        let c = &self.campaigns[i];
        // Contracts without a quota show `u16::MAX` left, as the single env's do.
        let mut offers_left = c.quotas.left;
        for (left, contract) in offers_left.iter_mut().zip(&self.tables.contracts) {
            if contract.uses_quota == 0 {
                *left = u16::MAX;
            }
        }
        let out = &self.out;
        Observation::new(out.users[i], c.t, out.states[i], out.masks[i], offers_left, dense)
    }
}
