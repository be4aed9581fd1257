//! Many contract-choice campaigns stepped by one call, in a structure-of-arrays layout: users,
//! positions, tabular states, masks, rewards and flags each in one contiguous array over the
//! campaigns, so a seed-batched learner or a sweep reads and writes them in place. Dense rows
//! are written on request ([`ContractChoiceBatch::write_dense`]): tabular learners never pay for
//! them. Every per-step quantity that depends only on the position in the campaign or on the
//! offers left is looked up in tables built once, and the per-user tables are laid out in the
//! split's order, so a campaign reads consecutive memory as it moves through its users.
//!
//! Campaign `i` follows exactly the trajectory of a [`ContractChoiceEnv`] built with seed
//! `seeds[i]` and reset with `reset(None)` whenever a campaign ends (same draws, same rewards,
//! same observations; a test checks it): a finished campaign is reset within the step that
//! finishes it, as Gymnasium's vector envs do ("same-step" autoreset), and its terminal
//! observation, which no learner bootstraps from, is not kept.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[cfg(doc)]
use super::ContractChoiceEnv;
use super::{ActionMask, EnvError, EnvModel, MAX_CONTRACTS, MAX_DENSE, Observation, Split};

/// `n` contract-choice campaigns over one split, each with its own RNG stream.
#[derive(Debug, Clone)]
pub struct ContractChoiceBatch {
    model: Arc<EnvModel>,
    tables: Tables,
    rngs: Vec<ChaCha8Rng>,
    starts: Vec<u32>,
    t: Vec<u32>,
    offers_left: Vec<[u16; MAX_CONTRACTS]>,
    users: Vec<u32>,
    states: Vec<u32>,
    masks: Vec<ActionMask>,
    rewards: Vec<f64>,
    expected_rewards: Vec<f64>,
    accepted: Vec<bool>,
    terminated: Vec<bool>,
}

/// What a step looks up instead of computing. Per-user tables are indexed by position in the
/// split.
#[derive(Debug, Clone)]
struct Tables {
    dense_len: usize,
    n_features: usize,
    /// The split's users (snapshot rows).
    users: Vec<u32>,
    /// The users' features as `f32`, row-major.
    features: Vec<f32>,
    /// P(accept) of each (user, contract). The expected reward is computed from it as the model
    /// computes it (same operations, so the same bits): a table of half the size stays in cache.
    accept_prob: Vec<f64>,
    /// The contracts each user may be offered, before quotas.
    eligible: Vec<u16>,
    /// Each user's static state times the number of dynamic states.
    state_base: Vec<u32>,
    /// The contracts with a quota.
    capped: ActionMask,
    margin: Vec<f64>,
    offer_cost: Vec<f64>,
    /// Per quota'd contract: its action, the state bucket and the dense share for each number
    /// of offers left (0..=cap).
    quotas: Vec<(usize, Vec<u32>, Vec<f32>)>,
    quota_buckets: u32,
    /// Per campaign position (0..=len): the progress bucket and the dense share done.
    progress_bucket: Vec<u32>,
    progress_share: Vec<f32>,
    progress_buckets: u32,
}

impl Tables {
    fn new(model: &EnvModel, split: Split) -> Self {
        let config = &model.config;
        let len = config.episode_len;
        let users = model.split(split).to_vec();
        let (n_features, n_actions) = (model.feature_names.len(), model.n_actions);
        let n_dynamic = (model.n_states() / model.n_static_states) as u32;
        let per_user = |width: usize| move |&u: &u32| (u as usize * width)..(u as usize + 1) * width;
        let quotas = model
            .quota_contracts
            .iter()
            .map(|&a| {
                let lefts = 0..=model.offer_caps[a].expect("quota contract") as u16;
                let bucket_of = lefts.clone().map(|left| model.quota_bucket(a, left) as u32).collect();
                (a, bucket_of, lefts.map(|left| model.quota_share(a, left)).collect())
            })
            .collect();
        Self {
            dense_len: model.dense_len(),
            n_features,
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
            eligible: users.iter().map(|&u| model.eligible[u as usize].0).collect(),
            state_base: users
                .iter()
                .map(|&u| model.static_state[u as usize] * n_dynamic)
                .collect(),
            users,
            capped: ActionMask(model.quota_contracts.iter().fold(0, |m, a| m | 1 << a)),
            margin: config.contracts.iter().map(|c| c.margin).collect(),
            offer_cost: config.contracts.iter().map(|c| c.offer_cost).collect(),
            quotas,
            quota_buckets: model.quota_buckets as u32,
            progress_bucket: (0..=len).map(|t| model.progress_bucket(t) as u32).collect(),
            progress_share: (0..=len).map(|t| model.progress_share(t)).collect(),
            progress_buckets: model.progress_buckets as u32,
        }
    }
}

impl ContractChoiceBatch {
    /// One campaign per seed over `split`; call [`Self::reset`] before stepping.
    pub fn new(model: Arc<EnvModel>, split: Split, seeds: &[u64]) -> Self {
        let n = seeds.len();
        let tables = Tables::new(&model, split);
        Self {
            rngs: seeds.iter().map(|&s| ChaCha8Rng::seed_from_u64(s)).collect(),
            starts: vec![0; n],
            t: vec![0; n],
            offers_left: vec![[0; MAX_CONTRACTS]; n],
            users: vec![0; n],
            states: vec![0; n],
            masks: vec![ActionMask(0); n],
            rewards: vec![0.0; n],
            expected_rewards: vec![0.0; n],
            accepted: vec![false; n],
            terminated: vec![false; n],
            tables,
            model,
        }
    }

    /// Number of campaigns.
    pub fn len(&self) -> usize {
        self.rngs.len()
    }

    /// Whether the batch has no campaign.
    pub fn is_empty(&self) -> bool {
        self.rngs.is_empty()
    }

    /// The shared model.
    pub fn model(&self) -> &Arc<EnvModel> {
        &self.model
    }

    /// Starts a campaign in every slot, each continuing its own RNG stream.
    pub fn reset(&mut self) {
        for i in 0..self.len() {
            self.start_campaign(i);
        }
    }

    /// Offers `actions[i]` to the current user of campaign `i`, for every `i`; campaigns that end
    /// start again at once. Refuses, before any campaign moves, an action outside its mask (before
    /// the first [`Self::reset`] every mask is empty).
    ///
    /// # Panics
    /// When `actions` does not hold one action per campaign.
    pub fn step(&mut self, actions: &[usize]) -> Result<(), EnvError> {
        assert_eq!(actions.len(), self.len(), "one action per campaign");
        if let Some((&action, mask)) = actions
            .iter()
            .zip(&self.masks)
            .find(|(a, mask)| !mask.contains(**a) || **a >= self.model.n_actions)
        {
            return Err(EnvError::InvalidAction {
                action,
                allowed: mask.iter().collect(),
            });
        }
        let (len, n_actions) = (self.model.episode_len() as u32, self.model.n_actions);
        for (i, &action) in actions.iter().enumerate() {
            let at = (self.starts[i] + self.t[i]) as usize;
            let p = self.tables.accept_prob[at * n_actions + action];
            let (margin, cost) = (self.tables.margin[action], self.tables.offer_cost[action]);
            let accepted = self.rngs[i].random::<f64>() < p;
            self.accepted[i] = accepted;
            // Arithmetic rather than a branch: acceptance is a coin flip the CPU cannot predict.
            self.rewards[i] = f64::from(u8::from(accepted)) * margin - cost;
            self.expected_rewards[i] = p * margin - cost;
            self.offers_left[i][action] -= u16::from(self.tables.capped.contains(action));
            self.t[i] += 1;
            self.terminated[i] = self.t[i] == len;
            if self.terminated[i] {
                self.start_campaign(i);
            } else {
                self.observe(i);
            }
        }
        Ok(())
    }

    /// `ContractChoiceEnv::reset(None)` for campaign `i`.
    fn start_campaign(&mut self, i: usize) {
        let starts = self.tables.users.len() - self.model.episode_len() + 1;
        self.starts[i] = self.rngs[i].random_range(0..starts) as u32;
        self.t[i] = 0;
        for (a, cap) in self.model.offer_caps.iter().enumerate() {
            self.offers_left[i][a] = cap.map_or(u16::MAX, |c| c.min(u32::from(u16::MAX)) as u16);
        }
        self.observe(i);
    }

    /// Writes campaign `i`'s user, tabular state and mask (what [`EnvModel::observe`] computes).
    #[inline]
    fn observe(&mut self, i: usize) {
        let tables = &self.tables;
        let at = (self.starts[i] + self.t[i]) as usize;
        let left = &self.offers_left[i];
        let mut mask = tables.eligible[at];
        let mut dynamic = 0;
        for (a, bucket_of, _) in &tables.quotas {
            let left = usize::from(left[*a]);
            if left == 0 {
                mask &= !(1 << a);
            }
            dynamic = dynamic * tables.quota_buckets + bucket_of[left];
        }
        dynamic = dynamic * tables.progress_buckets + tables.progress_bucket[self.t[i] as usize];
        self.users[i] = tables.users[at];
        self.states[i] = tables.state_base[at] + dynamic;
        self.masks[i] = ActionMask(mask);
    }

    /// Writes every campaign's dense observation into `out`, one row of
    /// [`EnvModel::dense_len`] entries per campaign.
    pub fn write_dense(&self, out: &mut [f32]) {
        let d = self.tables.dense_len;
        assert_eq!(out.len(), self.len() * d, "one dense row per campaign");
        for (i, row) in out.chunks_exact_mut(d).enumerate() {
            self.write_dense_row(i, row);
        }
    }

    /// Campaign `i`'s dense observation (what [`EnvModel::write_dense`] writes).
    fn write_dense_row(&self, i: usize, row: &mut [f32]) {
        let tables = &self.tables;
        let f = tables.n_features;
        let (features, rest) = row.split_at_mut(f);
        let at = (self.starts[i] + self.t[i]) as usize;
        features.copy_from_slice(&tables.features[at * f..(at + 1) * f]);
        for ((a, _, share), out) in tables.quotas.iter().zip(rest.iter_mut()) {
            *out = share[usize::from(self.offers_left[i][*a])];
        }
        rest[tables.quotas.len()] = tables.progress_share[self.t[i] as usize];
    }

    /// The current user of each campaign (snapshot rows).
    pub fn users(&self) -> &[u32] {
        &self.users
    }

    /// The tabular state of each campaign.
    pub fn states(&self) -> &[u32] {
        &self.states
    }

    /// The actions each campaign allows now.
    pub fn masks(&self) -> &[ActionMask] {
        &self.masks
    }

    /// Sampled reward of each campaign's last step.
    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }

    /// Expected reward of each campaign's last offer under the response model.
    pub fn expected_rewards(&self) -> &[f64] {
        &self.expected_rewards
    }

    /// Whether each campaign's last offer was accepted.
    pub fn accepted(&self) -> &[bool] {
        &self.accepted
    }

    /// Whether each campaign's last step ended it (the slot now holds a new campaign).
    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    /// Position of each campaign's first user in the split.
    pub fn campaign_starts(&self) -> &[u32] {
        &self.starts
    }

    /// Each campaign's position (users already served).
    pub fn positions(&self) -> &[u32] {
        &self.t
    }

    /// Campaign `i`'s observation as the single env shows it (dense vector included).
    pub fn observation(&self, i: usize) -> Observation {
        let mut dense = [0.0; MAX_DENSE];
        let dense = &mut dense[..self.tables.dense_len];
        self.write_dense_row(i, dense);
        Observation::new(
            self.users[i],
            self.t[i],
            self.states[i],
            self.masks[i],
            self.offers_left[i],
            dense,
        )
    }
}
