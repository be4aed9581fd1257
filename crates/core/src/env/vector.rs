//! Many campaigns stepped by one call, Gymnasium's vector envs in structure-of-arrays form: each
//! output is one array over the campaigns, which a seed-batched learner or a sweep reads in
//! place. A campaign that ends is reset within the step that ends it ("same-step" autoreset, as
//! Gymnasium's vector envs do); its terminal observation, which no learner bootstraps from, is not
//! kept. Neither env kind truncates (a vector env refuses one that does).
//!
//! [`ContractChoiceBatch`](super::ContractChoiceBatch) is the contract-choice env's own, built for
//! speed; [`SyncVectorEnv`] steps single envs of any kind in turn, as Gymnasium's
//! `SyncVectorEnv` does.

use super::{ActionMask, Env, EnvError, Observation};

/// `len()` campaigns, each following the trajectory of a single env with its own seed reset with
/// `reset(None)` whenever its campaign ends. Implemented in this crate only ([`Outputs`] cannot be
/// built outside it).
pub trait VectorEnv {
    /// Number of campaigns.
    fn len(&self) -> usize;

    /// Whether there is no campaign.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a campaign in every slot, each continuing its own RNG stream.
    fn reset(&mut self);

    /// Takes `actions[i]` in campaign `i`, for every `i`. Refuses, before any campaign moves, an
    /// action outside its mask (before the first [`Self::reset`] every mask is empty).
    ///
    /// # Panics
    /// When `actions` does not hold one action per campaign.
    fn step(&mut self, actions: &[usize]) -> Result<(), EnvError>;

    /// What the last step (or reset) wrote.
    fn outputs(&self) -> &Outputs;

    /// The current user of each campaign (snapshot rows).
    fn users(&self) -> &[u32] {
        &self.outputs().users
    }

    /// The tabular state of each campaign.
    fn states(&self) -> &[u32] {
        &self.outputs().states
    }

    /// The actions each campaign allows now.
    fn masks(&self) -> &[ActionMask] {
        &self.outputs().masks
    }

    /// Sampled reward of each campaign's last step.
    fn rewards(&self) -> &[f64] {
        &self.outputs().rewards
    }

    /// Expected reward of each campaign's last step, as the single env's step info gives it.
    fn expected_rewards(&self) -> &[f64] {
        &self.outputs().expected_rewards
    }

    /// Whether each campaign's last offer was accepted.
    fn accepted(&self) -> &[bool] {
        &self.outputs().accepted
    }

    /// Whether each campaign's last step ended it (the slot now holds a new campaign).
    fn terminated(&self) -> &[bool] {
        &self.outputs().terminated
    }

    /// Campaign `i`'s observation as the single env shows it (dense vector included).
    fn observation(&self, i: usize) -> Observation;

    /// Writes every campaign's dense observation into `out`, one row per campaign.
    ///
    /// # Panics
    /// When `out` does not hold one row per campaign.
    fn write_dense(&self, out: &mut [f32]) {
        if self.is_empty() {
            return assert!(out.is_empty(), "one dense row per campaign");
        }
        let width = self.observation(0).dense().len();
        assert_eq!(out.len(), self.len() * width, "one dense row per campaign");
        for (i, row) in out.chunks_exact_mut(width).enumerate() {
            row.copy_from_slice(self.observation(i).dense());
        }
    }
}

/// Refuses, naming the first, an action outside its campaign's mask.
///
/// # Panics
/// When `actions` does not hold one action per campaign.
#[inline]
pub(super) fn refuse_masked(actions: &[usize], masks: &[ActionMask]) -> Result<(), EnvError> {
    assert_eq!(actions.len(), masks.len(), "one action per campaign");
    match actions.iter().zip(masks).find(|(a, mask)| !mask.contains(**a)) {
        Some((&action, mask)) => Err(EnvError::InvalidAction {
            action,
            allowed: mask.iter().collect(),
        }),
        None => Ok(()),
    }
}

/// What a step (or a reset) writes: one array per output, one entry per campaign; read through
/// [`VectorEnv`]'s accessors.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub(super) users: Vec<u32>,
    pub(super) states: Vec<u32>,
    pub(super) masks: Vec<ActionMask>,
    pub(super) rewards: Vec<f64>,
    pub(super) expected_rewards: Vec<f64>,
    pub(super) accepted: Vec<bool>,
    pub(super) terminated: Vec<bool>,
}

impl Outputs {
    /// Outputs for `n` campaigns, every mask empty.
    pub(super) fn new(n: usize) -> Self {
        Self {
            users: vec![0; n],
            states: vec![0; n],
            masks: vec![ActionMask(0); n],
            rewards: vec![0.0; n],
            expected_rewards: vec![0.0; n],
            accepted: vec![false; n],
            terminated: vec![false; n],
        }
    }
}

/// Single envs of any kind behind the [`VectorEnv`] API, stepped in turn.
#[derive(Debug, Clone)]
pub struct SyncVectorEnv<E> {
    envs: Vec<E>,
    obs: Vec<Observation>,
    out: Outputs,
}

impl<E: Env> SyncVectorEnv<E> {
    /// One campaign per env (each seeded already); call [`VectorEnv::reset`] before stepping.
    pub fn new(envs: Vec<E>) -> Self {
        let n = envs.len();
        let empty = Observation::new(0, 0, 0, ActionMask(0), Default::default(), &[]);
        Self {
            envs,
            obs: vec![empty; n],
            out: Outputs::new(n),
        }
    }

    fn show(&mut self, i: usize, obs: Observation) {
        let out = &mut self.out;
        (out.users[i], out.states[i], out.masks[i]) = (obs.user, obs.state, obs.mask);
        self.obs[i] = obs;
    }
}

impl<E: Env> VectorEnv for SyncVectorEnv<E> {
    fn len(&self) -> usize {
        self.envs.len()
    }

    fn reset(&mut self) {
        for i in 0..self.envs.len() {
            let (obs, _) = self.envs[i].reset(None);
            self.show(i, obs);
        }
    }

    fn step(&mut self, actions: &[usize]) -> Result<(), EnvError> {
        refuse_masked(actions, &self.out.masks)?;
        for (i, &action) in actions.iter().enumerate() {
            let step = self.envs[i].step(action).expect("an action of the mask");
            assert!(!step.truncated, "vector envs take envs that never truncate");
            let out = &mut self.out;
            out.rewards[i] = step.reward;
            out.expected_rewards[i] = step.info.expected_reward;
            out.accepted[i] = step.info.accepted;
            out.terminated[i] = step.terminated;
            let next = if step.terminated {
                self.envs[i].reset(None).0
            } else {
                step.obs
            };
            self.show(i, next);
        }
        Ok(())
    }

    fn outputs(&self) -> &Outputs {
        &self.out
    }

    fn observation(&self, i: usize) -> Observation {
        self.obs[i]
    }
}
