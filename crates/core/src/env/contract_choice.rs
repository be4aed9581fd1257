//! The contract-choice environment.
//!
//! ## Description
//! A campaign replays `episode_len` consecutive users of a snapshot split. For each user the
//! agent offers one contract of the catalogue; the user accepts with the probability given by the
//! env file's logistic response model. Quotas cap how many offers of a contract a campaign may
//! make, so an offer today changes tomorrow's options: with quotas the task is sequential, without
//! them it is a contextual bandit.
//!
//! ## Action space
//! `Discrete(K)`: the index of a contract in the catalogue. Ineligible contracts (age rules) and
//! exhausted quotas are masked; the mask is part of every observation and stepping a masked
//! action is an error.
//!
//! ## Observation
//! | part            | meaning                                                         |
//! |-----------------|-----------------------------------------------------------------|
//! | `user`          | row of the current user in the snapshot                          |
//! | `t`             | users already served in this campaign                            |
//! | `state`         | tabular index: age × seniority × gender × region × quota × progress buckets |
//! | `mask`          | contracts that may be offered now                                |
//! | `offers_left`   | remaining offers of each quota'd contract                         |
//! | dense vector    | [`EnvModel::write_dense`]: user features, remaining quota shares, progress |
//!
//! ## Rewards
//! `accepted × margin − offer_cost`, acceptance sampled from the env's RNG. The expected reward
//! of each (user, contract) is known ([`EnvModel::expected_reward`]), which gives oracles and
//! regret.
//!
//! ## Starting state
//! `reset` draws the campaign's first user uniformly among the split's possible starts.
//!
//! ## Episode end
//! `terminated` after the campaign's last user. The env never truncates; `truncated` is for
//! outside limits.
//!
//! ## Arguments
//! The env file ([`EnvConfig`]), the snapshot's records, the split (train, validation or test
//! users, by a hash of `user_id`) and a seed.
//!
//! ## Version history
//! - v2: a validation split (`validation_fraction`) taken from the train users; test users
//!   unchanged; quota shares must give a whole number of offers.
//! - v1: first version.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::config::{EnvConfig, MAX_CONTRACTS, MAX_DENSE};
use super::features::{self, bucket};
use crate::record::UserRecord;

mod batch;
pub use batch::ContractChoiceBatch;

/// A set of contract indices, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ActionMask(pub u16);

impl ActionMask {
    /// Whether `action` is in the set.
    #[inline]
    pub fn contains(self, action: usize) -> bool {
        action < MAX_CONTRACTS && self.0 & (1 << action) != 0
    }

    /// The actions in the set, in increasing order.
    #[inline]
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let a = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                a
            })
        })
    }

    /// How many actions are in the set.
    #[inline]
    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// The `i`-th action of the set, in increasing order: a table lookup, no loop (agents
    /// exploring call it every step).
    #[inline]
    pub fn nth(self, i: usize) -> Option<usize> {
        let [low, high] = self.0.to_le_bytes();
        let n_low = low.count_ones() as usize;
        if i < n_low {
            Some(usize::from(SET_BITS[usize::from(low)][i]))
        } else {
            let j = i - n_low;
            (j < high.count_ones() as usize).then(|| 8 + usize::from(SET_BITS[usize::from(high)][j]))
        }
    }
}

/// For each byte, the positions of its set bits in increasing order.
const SET_BITS: [[u8; 8]; 256] = {
    let mut table = [[0; 8]; 256];
    let mut byte = 0;
    while byte < 256 {
        let (mut bit, mut k) = (0, 0);
        while bit < 8 {
            if byte >> bit & 1 == 1 {
                table[byte][k] = bit as u8;
                k += 1;
            }
            bit += 1;
        }
        byte += 1;
    }
    table
};

/// Which users a campaign is drawn from: disjoint sets chosen by a hash of `user_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Users for training.
    Train,
    /// Held-out users for learning curves and any tuning or selection.
    Validation,
    /// Held-out users for the final report, evaluated once per run.
    Test,
}

impl Split {
    /// Every split, in index order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// The split's name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

/// What the agent sees before each decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Row of the current user in the snapshot.
    pub user: u32,
    /// Users already served in this campaign.
    pub t: u32,
    /// Tabular state index, below [`EnvModel::n_states`].
    pub state: u32,
    /// The tabular state of the user alone, below [`crate::env::Spaces::n_user_states`], for
    /// per-user learners (customer lifetime; `state` where every user is met once).
    pub user_state: u32,
    /// Contracts that may be offered now.
    pub mask: ActionMask,
    /// Remaining offers of each contract (meaningful for quota'd ones).
    pub offers_left: [u16; MAX_CONTRACTS],
    /// The dense vector, in its first [`EnvModel::dense_len`] entries: see [`Self::dense`].
    dense: [f32; MAX_DENSE],
    dense_len: u8,
}

impl Observation {
    /// An observation with the given parts; `dense` holds at most [`MAX_DENSE`] entries.
    pub fn new(
        user: u32,
        t: u32,
        state: u32,
        mask: ActionMask,
        offers_left: [u16; MAX_CONTRACTS],
        dense: &[f32],
    ) -> Self {
        let mut padded = [0.0; MAX_DENSE];
        padded[..dense.len()].copy_from_slice(dense);
        Self {
            user,
            t,
            state,
            user_state: state,
            mask,
            offers_left,
            dense: padded,
            dense_len: dense.len() as u8,
        }
    }

    /// The observation with the user's own tabular state `user_state`.
    pub fn with_user_state(self, user_state: u32) -> Self {
        Self { user_state, ..self }
    }

    /// The dense observation ([`EnvModel::dense_names`]): the user's features, the remaining
    /// share of each quota, and the share of the campaign done.
    #[inline]
    pub fn dense(&self) -> &[f32] {
        &self.dense[..usize::from(self.dense_len)]
    }
}

/// Extra information from `reset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResetInfo {
    /// Position of the campaign's first user in the split.
    pub campaign_start: usize,
    /// The split the campaign is drawn from.
    pub split: Split,
}

/// Extra information from `step`: the outcome, and whom the decision was about and what it used
/// of the shared resources (what a per-user learner credits to that user).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Whether the user accepted the offer.
    pub accepted: bool,
    /// Expected reward of the offer under the response model (customer lifetime: minus the
    /// offer's cost, the part of the reward known at the decision).
    pub expected_reward: f64,
    /// The user the decision was about, by place: the cohort slot (customer lifetime) or the
    /// position in the campaign (contract choice, where every user is met once).
    pub slot: u32,
    /// The offer's cost, paid whether or not it was accepted (0 for "no offer").
    pub offer_cost: f64,
    /// Whether the decision took a handset from the shared stock.
    pub handset: bool,
}

/// The result of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Observation of the next user (after the last user: the final observation).
    pub obs: Observation,
    /// Sampled reward: accepted × margin − offer cost.
    pub reward: f64,
    /// The campaign ran out of users.
    pub terminated: bool,
    /// Cut short by an outside limit; this env never sets it itself.
    pub truncated: bool,
    /// Extra information.
    pub info: StepInfo,
}

/// Errors from building or stepping the env.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvError {
    /// A split has fewer users than one campaign needs.
    #[error(
        "the {split:?} split has {have} users but a campaign needs episode_len = {need}; use a bigger snapshot, a shorter episode_len or other test and validation fractions"
    )]
    TooFewUsers { split: Split, have: usize, need: usize },
    /// The action is masked (ineligible or quota exhausted) or out of range.
    #[error("action {action} is not allowed now; allowed: {allowed:?}")]
    InvalidAction { action: usize, allowed: Vec<usize> },
    /// `step` after the campaign ended, or before `reset`.
    #[error("the campaign is over; call reset")]
    EpisodeOver,
}

/// The immutable, precomputed part of the env: users, features, response probabilities,
/// expected rewards and splits. Built once per snapshot and shared by every env and oracle.
#[derive(Debug)]
pub struct EnvModel {
    config: EnvConfig,
    n_actions: usize,
    user_ids: Vec<Uuid>,
    feature_names: Vec<String>,
    features: Vec<f64>,
    eligible: Vec<ActionMask>,
    accept_prob: Vec<f64>,
    expected_reward: Vec<f64>,
    static_state: Vec<u32>,
    n_static_states: usize,
    n_states: usize,
    splits: [Vec<u32>; 3],
    offer_caps: Vec<Option<u32>>,
    quota_contracts: Vec<usize>,
    quota_buckets: usize,
    progress_buckets: usize,
}

impl EnvModel {
    /// Precomputes everything the env needs from a validated config and a snapshot's records.
    pub fn build(config: EnvConfig, records: &[UserRecord]) -> Result<Self, EnvError> {
        let n_actions = config.contracts.len();
        let feature_names = features::names(&config.regions);
        let n_features = feature_names.len();
        let region_of_nat = config.region_of_nat();
        let b = &config.state;
        let n_regions = config.regions.len();
        let n_static_states = (b.age_edges_years.len() + 1) * (b.seniority_edges_years.len() + 1) * 2 * n_regions;
        let coefficients: Vec<Vec<f64>> = config
            .contracts
            .iter()
            .map(|c| {
                feature_names
                    .iter()
                    .map(|f| c.response.coefficients.get(f).copied().unwrap_or(0.0))
                    .collect()
            })
            .collect();

        let n = records.len();
        let mut features = vec![0.0; n * n_features];
        let mut eligible = Vec::with_capacity(n);
        let mut accept_prob = Vec::with_capacity(n * n_actions);
        let mut expected_reward = Vec::with_capacity(n * n_actions);
        let mut static_state = Vec::with_capacity(n);
        let mut splits = [Vec::new(), Vec::new(), Vec::new()];
        for (row, user) in records.iter().enumerate() {
            let x = &mut features[row * n_features..(row + 1) * n_features];
            let region = features::user_features(&config.standardise, &region_of_nat, user, x);
            let mut mask = 0u16;
            for (a, c) in config.contracts.iter().enumerate() {
                let logit = c.response.bias + coefficients[a].iter().zip(x.iter()).map(|(w, v)| w * v).sum::<f64>();
                let p = 1.0 / (1.0 + (-logit).exp());
                accept_prob.push(p);
                expected_reward.push(p * c.margin - c.offer_cost);
                if c.eligible(user.age) {
                    mask |= 1 << a;
                }
            }
            eligible.push(ActionMask(mask));
            let age_b = bucket(f64::from(user.age), &b.age_edges_years);
            let sen_b = bucket(f64::from(user.seniority_years), &b.seniority_edges_years);
            let female = usize::from(user.gender == "female");
            let s = ((age_b * (b.seniority_edges_years.len() + 1) + sen_b) * 2 + female) * n_regions + region;
            static_state.push(s as u32);
            splits[split_of(&user.user_id, config.test_fraction, config.validation_fraction) as usize].push(row as u32);
        }
        for (split, users) in Split::ALL.into_iter().zip(&splits) {
            if users.len() < config.episode_len {
                return Err(EnvError::TooFewUsers {
                    split,
                    have: users.len(),
                    need: config.episode_len,
                });
            }
        }
        let offer_caps: Vec<Option<u32>> = config
            .contracts
            .iter()
            .map(|c| c.offer_cap(config.episode_len))
            .collect();
        let quota_contracts = (0..n_actions).filter(|a| offer_caps[*a].is_some()).collect();
        Ok(Self {
            n_actions,
            user_ids: records.iter().map(|r| r.user_id).collect(),
            feature_names,
            features,
            eligible,
            accept_prob,
            expected_reward,
            static_state,
            n_static_states,
            n_states: config
                .tabular_states()
                .expect("a validated env file has at most MAX_TABULAR_STATES"),
            splits,
            offer_caps,
            quota_contracts,
            quota_buckets: b.quota_remaining_edges.len() + 2,
            progress_buckets: b.progress_edges.len() + 1,
            config,
        })
    }

    /// The env file this model was built from.
    pub fn config(&self) -> &EnvConfig {
        &self.config
    }

    /// The age band of `user` (a bucket of `state.age_edges_years`).
    pub fn age_bucket(&self, user: u32) -> usize {
        let b = &self.config.state;
        let per_age_band = (b.seniority_edges_years.len() + 1) * 2 * self.config.regions.len();
        self.static_state[user as usize] as usize / per_age_band
    }

    /// Number of contracts (actions).
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// Number of tabular states.
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// Number of users in the snapshot.
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    /// Users per campaign.
    pub fn episode_len(&self) -> usize {
        self.config.episode_len
    }

    /// The snapshot rows of a split, in snapshot order.
    pub fn split(&self, split: Split) -> &[u32] {
        &self.splits[split as usize]
    }

    /// The users of the campaign that starts at position `start` of `split`.
    pub fn campaign(&self, split: Split, start: usize) -> &[u32] {
        &self.split(split)[start..start + self.config.episode_len]
    }

    /// The `user_id` of a snapshot row.
    pub fn user_id(&self, user: u32) -> Uuid {
        self.user_ids[user as usize]
    }

    /// Contracts a user is eligible for (before quotas).
    pub fn eligible(&self, user: u32) -> ActionMask {
        self.eligible[user as usize]
    }

    /// Offers allowed per campaign for each contract; `None` when unlimited.
    pub fn offer_caps(&self) -> &[Option<u32>] {
        &self.offer_caps
    }

    /// P(accept) of contract `action` for `user`.
    #[inline]
    pub fn accept_prob(&self, user: u32, action: usize) -> f64 {
        self.accept_prob[user as usize * self.n_actions + action]
    }

    /// Expected reward of offering `action` to `user`: P(accept) · margin − offer cost.
    #[inline]
    pub fn expected_reward(&self, user: u32, action: usize) -> f64 {
        self.expected_reward[user as usize * self.n_actions + action]
    }

    /// Names of the entries of the dense observation.
    pub fn dense_names(&self) -> Vec<String> {
        let quotas = self
            .quota_contracts
            .iter()
            .map(|a| format!("quota_left.{}", self.config.contracts[*a].name));
        self.feature_names
            .iter()
            .cloned()
            .chain(quotas)
            .chain(["progress".to_owned()])
            .collect()
    }

    /// How an offer moves the campaign's dense entries: its quota's share down by one offer
    /// (when it has a quota), progress up by one user.
    pub fn afterstate(&self) -> crate::env::Afterstate {
        let n_features = self.feature_names.len();
        let mut draws = [None; MAX_CONTRACTS];
        for (i, &a) in self.quota_contracts.iter().enumerate() {
            let cap = self.offer_caps[a].expect("quota contract");
            draws[a] = (cap > 0).then(|| (n_features + i, 1.0 / cap as f32));
        }
        crate::env::Afterstate {
            user_dense_len: n_features,
            clock: (
                n_features + self.quota_contracts.len(),
                1.0 / self.config.episode_len as f32,
            ),
            draws,
        }
    }

    /// Length of the dense observation.
    pub fn dense_len(&self) -> usize {
        self.feature_names.len() + self.quota_contracts.len() + 1
    }

    /// Writes the dense observation of `user` at campaign position `t` with `offers_left`
    /// into `out` (length [`Self::dense_len`]).
    #[inline]
    fn write_dense(&self, user: u32, t: usize, offers_left: &[u16; MAX_CONTRACTS], out: &mut [f32]) {
        let n_features = self.feature_names.len();
        let user = user as usize;
        for (o, x) in out
            .iter_mut()
            .zip(&self.features[user * n_features..(user + 1) * n_features])
        {
            *o = *x as f32;
        }
        for (i, &a) in self.quota_contracts.iter().enumerate() {
            out[n_features + i] = self.quota_share(a, offers_left[a]);
        }
        out[n_features + self.quota_contracts.len()] = self.progress_share(t);
    }

    /// The tabular-state bucket of quota'd contract `a` with `left` offers left: 0 when
    /// exhausted, else 1 + the bucket of the share left.
    fn quota_bucket(&self, a: usize, left: u16) -> usize {
        if left == 0 {
            return 0;
        }
        let cap = self.offer_caps[a].expect("quota contract");
        1 + bucket(
            f64::from(left) / f64::from(cap),
            &self.config.state.quota_remaining_edges,
        )
    }

    /// The dense entry of quota'd contract `a` with `left` offers left: the share of its cap.
    fn quota_share(&self, a: usize, left: u16) -> f32 {
        let cap = self.offer_caps[a].expect("quota contract");
        if cap == 0 { 0.0 } else { f32::from(left) / cap as f32 }
    }

    /// The tabular-state bucket of campaign position `t`.
    fn progress_bucket(&self, t: usize) -> usize {
        bucket(
            t as f64 / self.config.episode_len as f64,
            &self.config.state.progress_edges,
        )
    }

    /// The dense entry of campaign position `t`: the share of the campaign done.
    fn progress_share(&self, t: usize) -> f32 {
        t as f32 / self.config.episode_len as f32
    }

    /// The observation of `user` at campaign position `t` with `offers_left`, as the env would
    /// show it (for diagnostics that probe an agent in chosen situations).
    #[inline]
    pub fn observe(&self, user: u32, t: usize, offers_left: &[u16; MAX_CONTRACTS]) -> Observation {
        let mut dynamic = 0;
        let mut available = self.eligible[user as usize].0;
        for &a in &self.quota_contracts {
            if offers_left[a] == 0 {
                available &= !(1 << a);
            }
            dynamic = dynamic * self.quota_buckets + self.quota_bucket(a, offers_left[a]);
        }
        dynamic = dynamic * self.progress_buckets + self.progress_bucket(t);
        let n_dynamic = self.n_states() / self.n_static_states;
        let mut dense = [0.0; MAX_DENSE];
        let dense_len = self.dense_len();
        self.write_dense(user, t, offers_left, &mut dense[..dense_len]);
        let state = (self.static_state[user as usize] as usize * n_dynamic + dynamic) as u32;
        Observation {
            user,
            t: t as u32,
            state,
            user_state: state,
            mask: ActionMask(available),
            offers_left: *offers_left,
            dense,
            dense_len: dense_len as u8,
        }
    }
}

/// The split of a user: the first 8 bytes of SHA-256(user_id), read as a fraction `h` of 2^64,
/// give test below `test_fraction`, validation below `test_fraction + validation_fraction`, and
/// train above. It depends on the user alone, so it is stable across snapshots, row orders and
/// runs, and test users stay test users when the validation share changes.
pub fn split_of(user_id: &Uuid, test_fraction: f64, validation_fraction: f64) -> Split {
    let digest = Sha256::digest(user_id.as_bytes());
    let h = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")) as f64 / 2f64.powi(64);
    if h < test_fraction {
        Split::Test
    } else if h < test_fraction + validation_fraction {
        Split::Validation
    } else {
        Split::Train
    }
}

/// One contract-choice env: the shared [`EnvModel`] plus a campaign in progress and the RNG.
#[derive(Debug, Clone)]
pub struct ContractChoiceEnv {
    model: Arc<EnvModel>,
    split: Split,
    rng: ChaCha8Rng,
    start: usize,
    t: usize,
    offers_left: [u16; MAX_CONTRACTS],
    obs: Option<Observation>,
}

impl ContractChoiceEnv {
    /// An env over `split` with its RNG seeded by `seed`; call [`Self::reset`] before stepping.
    pub fn new(model: Arc<EnvModel>, split: Split, seed: u64) -> Self {
        Self {
            model,
            split,
            rng: ChaCha8Rng::seed_from_u64(seed),
            start: 0,
            t: 0,
            offers_left: [0; MAX_CONTRACTS],
            obs: None,
        }
    }

    /// The shared model.
    pub fn model(&self) -> &Arc<EnvModel> {
        &self.model
    }

    /// Offers left of each contract (meaningful for quota'd ones).
    pub fn offers_left(&self) -> &[u16; MAX_CONTRACTS] {
        &self.offers_left
    }

    /// Starts a campaign. A seed reseeds the env's RNG; `None` continues its stream.
    pub fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let len = self.model.episode_len();
        let starts = self.model.split(self.split).len() - len + 1;
        self.start = self.rng.random_range(0..starts);
        self.t = 0;
        for (a, cap) in self.model.offer_caps.iter().enumerate() {
            self.offers_left[a] = cap.map_or(u16::MAX, |c| c.min(u32::from(u16::MAX)) as u16);
        }
        let obs = self
            .model
            .observe(self.model.split(self.split)[self.start], 0, &self.offers_left);
        self.obs = Some(obs);
        let info = ResetInfo {
            campaign_start: self.start,
            split: self.split,
        };
        (obs, info)
    }

    /// Offers contract `action` to the current user.
    #[inline]
    pub fn step(&mut self, action: usize) -> Result<Step, EnvError> {
        let obs = self.obs.ok_or(EnvError::EpisodeOver)?;
        let len = self.model.episode_len();
        if self.t >= len {
            return Err(EnvError::EpisodeOver);
        }
        if !obs.mask.contains(action) || action >= self.model.n_actions {
            return Err(EnvError::InvalidAction {
                action,
                allowed: obs.mask.iter().collect(),
            });
        }
        let contract = &self.model.config.contracts[action];
        let accepted = self.rng.random::<f64>() < self.model.accept_prob(obs.user, action);
        let reward = if accepted { contract.margin } else { 0.0 } - contract.offer_cost;
        if self.model.offer_caps[action].is_some() {
            self.offers_left[action] -= 1;
        }
        self.t += 1;
        let terminated = self.t == len;
        let campaign = self.model.campaign(self.split, self.start);
        let next_user = campaign[self.t.min(len - 1)];
        let next = self.model.observe(next_user, self.t, &self.offers_left);
        self.obs = Some(next);
        Ok(Step {
            obs: next,
            reward,
            terminated,
            truncated: false,
            info: StepInfo {
                accepted,
                expected_reward: self.model.expected_reward(obs.user, action),
                slot: (self.t - 1) as u32,
                offer_cost: contract.offer_cost,
                handset: false,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ActionMask;

    #[test]
    fn nth_is_the_nth_action_of_the_set_for_every_mask() {
        for bits in 0..=u16::MAX {
            let mask = ActionMask(bits);
            for i in 0..=16 {
                assert_eq!(mask.nth(i), mask.iter().nth(i), "{bits:#018b}, {i}");
            }
        }
    }
}
