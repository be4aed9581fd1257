//! What the rollout loop and the agent factories need from any env kind: Gymnasium's
//! `reset`/`step` ([`Env`]), the sizes learners are built for ([`Spaces`]), and the kinds
//! themselves with their models ([`EnvKind`]).

use std::path::Path;
use std::sync::Arc;

use super::config::{EnvConfig, MAX_CONTRACTS};
use super::contract_choice::ActionMask;
use super::contract_choice::{ContractChoiceEnv, EnvError, EnvModel, Observation, ResetInfo, Split, Step};
use super::lifetime::{CustomerLifetimeEnv, LifetimeConfig, LifetimeModel};
use rand::{RngExt, SeedableRng};

use crate::config::{ConfigError, load_toml};
use crate::record::UserRecord;

/// Gymnasium's interface, as the rollout loop uses it.
pub trait Env {
    /// Starts a campaign, reseeding first when `seed` is given.
    fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo);
    /// Starts evaluation campaign `campaign`, its randomness seeded by `seed`: a fixed cohort
    /// of the split (customer lifetime, where campaigns are disjoint), or the campaign the seed
    /// draws (contract choice, as `reset(Some(seed))`).
    fn reset_campaign(&mut self, campaign: usize, seed: u64) -> (Observation, ResetInfo);
    /// Takes `action`; a masked action is an error.
    fn step(&mut self, action: usize) -> Result<Step, EnvError>;
    /// What is left of the shared resources, in [`EnvKind::resource_names`] order.
    fn resources_left(&self) -> Vec<f64>;
    /// The per-user ledger, for kinds that keep one (customer lifetime): what per-user learners
    /// are credited from.
    fn ledger(&self) -> Option<Ledger<'_>> {
        None
    }
}

/// Which campaigns an evaluation plays: the first `campaigns` of a split
/// ([`Env::reset_campaign`]), `replays` replays of each, each replay with its own seed from
/// `seed` on ([`Self::seed_of`]), the same for every agent and reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Campaigns {
    pub campaigns: usize,
    pub replays: usize,
    pub seed: u64,
}

impl Campaigns {
    /// The seed of replay `replay` of campaign `campaign`.
    pub fn seed_of(&self, campaign: usize, replay: usize) -> u64 {
        self.seed.wrapping_add((campaign * self.replays + replay) as u64)
    }

    /// (campaign, replay) of every replay, campaign after campaign.
    pub fn replays(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let replays = self.replays;
        (0..self.campaigns * replays).map(move |entry| (entry / replays, entry % replays))
    }
}

/// Each cohort slot's own margins since the reset, and the slot of the decision now due.
#[derive(Debug, Clone, Copy)]
pub struct Ledger<'a> {
    /// Each slot's own margins since the reset.
    pub margins: &'a [f64],
    /// `None` once the campaign is over.
    pub current: Option<usize>,
}

impl Env for ContractChoiceEnv {
    fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo) {
        ContractChoiceEnv::reset(self, seed)
    }

    fn reset_campaign(&mut self, _campaign: usize, seed: u64) -> (Observation, ResetInfo) {
        ContractChoiceEnv::reset(self, Some(seed))
    }

    fn step(&mut self, action: usize) -> Result<Step, EnvError> {
        ContractChoiceEnv::step(self, action)
    }

    fn resources_left(&self) -> Vec<f64> {
        let caps = self.model().offer_caps();
        let left = self.offers_left();
        (0..caps.len())
            .filter(|&a| caps[a].is_some())
            .map(|a| f64::from(left[a]))
            .collect()
    }
}

impl Env for CustomerLifetimeEnv {
    fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo) {
        CustomerLifetimeEnv::reset(self, seed)
    }

    fn reset_campaign(&mut self, campaign: usize, seed: u64) -> (Observation, ResetInfo) {
        CustomerLifetimeEnv::reset_campaign(self, campaign, seed)
    }

    fn step(&mut self, action: usize) -> Result<Step, EnvError> {
        CustomerLifetimeEnv::step(self, action)
    }

    fn resources_left(&self) -> Vec<f64> {
        vec![f64::from(self.stock()), self.budget()]
    }

    fn ledger(&self) -> Option<Ledger<'_>> {
        Some(Ledger {
            margins: CustomerLifetimeEnv::ledger(self),
            current: self.current(),
        })
    }
}

/// The sizes learners are built for, and the shared resources' terms; learners never see
/// more of an env.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spaces {
    /// Tabular states (the bound of `Observation::state`).
    pub n_states: usize,
    /// Per-user tabular states (the bound of `Observation::user_state`).
    pub n_user_states: usize,
    /// Actions (the width of `Observation::mask`).
    pub n_actions: usize,
    /// Length of the dense observation.
    pub dense_len: usize,
    /// How users share resources, for envs where they are coupled only through them.
    pub coupling: Option<Coupling>,
    /// Steps of every campaign, for envs where all campaigns have as many.
    pub steps_per_campaign: Option<usize>,
    /// How a decision moves the campaign's entries of the dense vector before the answer, for
    /// envs where that is known.
    pub afterstate: Option<Afterstate>,
}

/// The post-decision state of a dense observation (contract choice: an offer uses one of its
/// contract's quota whatever the answer, and the campaign moves on one user). Like
/// [`Coupling`], the rules of the task, not its response model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Afterstate {
    /// The dense entries about the user alone, at the start; the campaign's come after them.
    pub user_dense_len: usize,
    /// Where the share of the campaign done is, and what a step adds to it.
    pub clock: (usize, f32),
    /// Per action, the entry its offer draws down and by how much (a quota's share per offer).
    pub draws: [Option<(usize, f32)>; MAX_CONTRACTS],
}

impl Afterstate {
    /// Writes the campaign's entries after action `a` at `dense` into `out`.
    pub fn write(&self, dense: &[f32], a: usize, out: &mut [f32]) {
        out.copy_from_slice(&dense[self.user_dense_len..]);
        let (clock, tick) = self.clock;
        out[clock - self.user_dense_len] += tick;
        if let Some((entry, step)) = self.draws[a] {
            out[entry - self.user_dense_len] -= step;
        }
    }

    /// Whether the campaign entries `post` (as [`Self::write`] writes them) are past the
    /// campaign's last step: nothing follows, so any value of them is 0.
    pub fn ends(&self, post: &[f32]) -> bool {
        let (clock, tick) = self.clock;
        post[clock - self.user_dense_len] > 1.0 - tick / 2.0
    }
}

/// The terms of the resources an env's users share (customer lifetime: the offer budget and
/// the handset stock), as a campaign's rules state them: what a per-user learner prices. They
/// are the constraints of the task, not its dynamics (no response or churn model).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coupling {
    /// The dense entries about the user alone, at the start of the dense vector; after them,
    /// the handsets in stock (over `stock_scale`) and the budget's share left.
    pub user_dense_len: usize,
    /// Where the share of the campaign's months done is in the dense vector.
    pub progress_index: usize,
    /// Months per campaign.
    pub months: usize,
    /// The offer budget of a campaign.
    pub budget: f64,
    /// Each action's offer cost.
    pub offer_cost: [f64; MAX_CONTRACTS],
    /// Handsets at the start, and added at the start of each later month.
    pub stock_initial: f64,
    pub stock_monthly: f64,
    /// The divisor of the dense vector's stock entry.
    pub stock_scale: f64,
    /// Actions whose acceptance takes a handset.
    pub uses_stock: [bool; MAX_CONTRACTS],
}

impl Coupling {
    /// The coupling of the customer-lifetime env `model` describes.
    pub fn of(model: &LifetimeModel) -> Self {
        let config = model.config();
        let (mut offer_cost, mut uses_stock) = ([0.0; MAX_CONTRACTS], [false; MAX_CONTRACTS]);
        for (k, c) in config.contracts.iter().enumerate() {
            offer_cost[k + 1] = c.offer_cost;
            uses_stock[k + 1] = c.uses_stock;
        }
        Self {
            user_dense_len: model.user_dense_len(),
            progress_index: model.user_dense_len() - 1,
            months: config.months,
            budget: config.budget,
            offer_cost,
            stock_initial: f64::from(config.stock.initial),
            stock_monthly: f64::from(config.stock.monthly),
            stock_scale: f64::from((config.stock.initial + config.stock.monthly).max(1)),
            uses_stock,
        }
    }

    /// The dense entries of `obs` about the user alone.
    pub fn user<'a>(&self, obs: &'a Observation) -> &'a [f32] {
        &obs.dense()[..self.user_dense_len]
    }

    /// The month of `obs`'s decision (the campaign's months once it is over).
    pub fn month(&self, obs: &Observation) -> usize {
        (f64::from(obs.dense()[self.progress_index]) * self.months as f64).round() as usize
    }

    /// The share of the budget spent by `obs`'s decision.
    pub fn budget_spent(&self, obs: &Observation) -> f64 {
        1.0 - f64::from(obs.dense()[self.user_dense_len + 1])
    }

    /// Handsets taken by `obs`'s decision, as a share of all the campaign brings.
    pub fn stock_used(&self, obs: &Observation) -> f64 {
        let month = self.month(obs).min(self.months - 1) as f64;
        let brought = self.stock_initial + self.stock_monthly * month;
        let in_stock = f64::from(obs.dense()[self.user_dense_len]) * self.stock_scale;
        (brought - in_stock) / self.stock_total()
    }

    /// Handsets a campaign brings in all.
    pub fn stock_total(&self) -> f64 {
        (self.stock_initial + self.stock_monthly * (self.months - 1) as f64).max(1.0)
    }

    /// The actions the handsets in stock at `obs` allow, whatever the budget: what a learner
    /// may ask the budget for (an offer the stock forbids asks nothing of it).
    pub fn without_budget(&self, obs: &Observation, n_actions: usize) -> ActionMask {
        let out_of_stock = obs.dense()[self.user_dense_len] <= 0.0;
        self.allowed(n_actions, |a| !(out_of_stock && self.uses_stock[a]))
    }

    /// The actions the budget left at `obs` allows, whatever the stock: what a learner may ask
    /// the stock for.
    pub fn without_stock(&self, obs: &Observation, n_actions: usize) -> ActionMask {
        let left = (1.0 - self.budget_spent(obs)) * self.budget;
        // The budget share is a 32-bit float: a hair of slack keeps an affordable offer allowed.
        self.allowed(n_actions, |a| self.offer_cost[a] <= left + 1e-3)
    }

    fn allowed(&self, n_actions: usize, allow: impl Fn(usize) -> bool) -> ActionMask {
        ActionMask((0..n_actions).filter(|&a| allow(a)).fold(0, |bits, a| bits | 1 << a))
    }
}

/// An env kind and its model, built once per snapshot and shared by every run.
#[derive(Debug, Clone)]
pub enum EnvKind {
    /// One decision per user, quotas shared across a campaign.
    ContractChoice(Arc<EnvModel>),
    /// Monthly decisions over a cohort, with fatigue, churn, stock and budget.
    CustomerLifetime(Arc<LifetimeModel>),
}

impl From<Arc<EnvModel>> for EnvKind {
    fn from(model: Arc<EnvModel>) -> Self {
        Self::ContractChoice(model)
    }
}

impl From<Arc<LifetimeModel>> for EnvKind {
    fn from(model: Arc<LifetimeModel>) -> Self {
        Self::CustomerLifetime(model)
    }
}

impl EnvKind {
    /// The kind's name, as in env files.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ContractChoice(_) => "contract-choice",
            Self::CustomerLifetime(_) => "customer-lifetime",
        }
    }

    pub fn spaces(&self) -> Spaces {
        match self {
            Self::ContractChoice(m) => Spaces {
                n_states: m.n_states(),
                n_user_states: m.n_states(),
                n_actions: m.n_actions(),
                dense_len: m.dense_len(),
                coupling: None,
                steps_per_campaign: Some(m.episode_len()),
                afterstate: Some(m.afterstate()),
            },
            Self::CustomerLifetime(m) => Spaces {
                n_states: m.n_states(),
                n_user_states: m.config().user_states(),
                n_actions: m.n_actions(),
                dense_len: m.dense_len(),
                coupling: Some(Coupling::of(m)),
                steps_per_campaign: None,
                afterstate: None,
            },
        }
    }

    /// A new env of this kind over `split`'s users.
    pub fn make(&self, split: Split, seed: u64) -> Box<dyn Env + Send> {
        match self {
            Self::ContractChoice(m) => Box::new(ContractChoiceEnv::new(Arc::clone(m), split, seed)),
            Self::CustomerLifetime(m) => Box::new(CustomerLifetimeEnv::new(Arc::clone(m), split, seed)),
        }
    }

    /// Names of the actions: the contracts, after "no_offer" where the kind has it.
    pub fn action_names(&self) -> Vec<String> {
        match self {
            Self::ContractChoice(m) => m.config().contracts.iter().map(|c| c.name.clone()).collect(),
            Self::CustomerLifetime(m) => std::iter::once("no_offer".to_owned())
                .chain(m.config().contracts.iter().map(|c| c.name.clone()))
                .collect(),
        }
    }

    /// Names of the shared resources [`Env::resources_left`] reports: each quota'd contract's
    /// offers left, or the handsets in stock and the offer budget.
    pub fn resource_names(&self) -> Vec<String> {
        match self {
            Self::ContractChoice(m) => m
                .config()
                .contracts
                .iter()
                .zip(m.offer_caps())
                .filter(|(_, cap)| cap.is_some())
                .map(|(c, _)| format!("offers_left_{}", c.name))
                .collect(),
            Self::CustomerLifetime(_) => vec!["stock_left".to_owned(), "budget_left".to_owned()],
        }
    }

    /// The segments diagnostics group offers by: the age bands of the env's state buckets.
    pub fn segment_names(&self) -> Vec<String> {
        bands(
            "age",
            match self {
                Self::ContractChoice(m) => &m.config().state.age_edges_years,
                Self::CustomerLifetime(m) => &m.config().state.age_edges_years,
            },
        )
    }

    /// The segment of `user` (an index into [`Self::segment_names`]).
    pub fn segment(&self, user: u32) -> usize {
        match self {
            Self::ContractChoice(m) => m.age_bucket(user),
            Self::CustomerLifetime(m) => m.age_bucket(user),
        }
    }

    /// Steps in a campaign: exact for contract choice; for customer lifetime, where it depends
    /// on the policy, the mean over 8 campaigns of the uniformly random policy (rounded down) (the learners'
    /// exploration schedules span training steps estimated from it).
    pub fn typical_episode_len(&self) -> usize {
        match self {
            Self::ContractChoice(m) => m.episode_len(),
            Self::CustomerLifetime(_) => {
                let mut env = self.make(Split::Train, 0);
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
                let steps: usize = (0..8)
                    .map(|seed| {
                        let (mut obs, _) = env.reset(Some(seed));
                        let mut steps = 1;
                        loop {
                            let action = obs
                                .mask
                                .nth(rng.random_range(0..obs.mask.count() as usize))
                                .expect("in the mask");
                            let step = env.step(action).expect("a masked action");
                            if step.terminated {
                                return steps;
                            }
                            (obs, steps) = (step.obs, steps + 1);
                        }
                    })
                    .sum();
                steps / 8
            }
        }
    }

    /// The resolved env config, as the results manifest records it.
    pub fn config_json(&self) -> serde_json::Value {
        match self {
            Self::ContractChoice(m) => serde_json::to_value(m.config()),
            Self::CustomerLifetime(m) => serde_json::to_value(m.config()),
        }
        .expect("env configs serialise")
    }

    /// The contract-choice model, which its oracles and baselines are built on.
    pub fn contract_choice(&self) -> Option<&Arc<EnvModel>> {
        match self {
            Self::ContractChoice(m) => Some(m),
            Self::CustomerLifetime(_) => None,
        }
    }
}

/// The names of the bands of whole years that `edges` cut `what` into, in
/// [`features::bucket`](super::features::bucket) order: "age <33", "age 33-44", ..., "age 60+"
/// for `what` "age" and edges [33, 45, 60]; "any age" without edges.
pub fn bands(what: &str, edges: &[f64]) -> Vec<String> {
    (0..=edges.len())
        .map(|i| match (i.checked_sub(1).map(|j| edges[j]), edges.get(i)) {
            (None, Some(hi)) => format!("{what} <{hi}"),
            (Some(lo), Some(hi)) => format!("{what} {lo}-{}", hi - 1.0),
            (Some(lo), None) => format!("{what} {lo}+"),
            (None, None) => format!("any {what}"),
        })
        .collect()
}

/// An env file of either kind: a file with `kind = "customer-lifetime"` is a
/// [`LifetimeConfig`], one without `kind` an [`EnvConfig`] (contract choice).
#[derive(Debug, Clone, PartialEq)]
pub enum EnvFile {
    ContractChoice(EnvConfig),
    CustomerLifetime(LifetimeConfig),
}

impl EnvFile {
    /// Reads and validates the env file at `path`, whichever its kind.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let table: toml::Table = load_toml(path)?;
        match table.get("kind").map(|k| k.as_str()) {
            None => EnvConfig::load(path).map(Self::ContractChoice),
            Some(Some("customer-lifetime")) => LifetimeConfig::load(path).map(Self::CustomerLifetime),
            Some(other) => Err(ConfigError::invalid(
                path,
                "kind",
                format!("{other:?} is not an env kind; allowed: \"customer-lifetime\", or no kind for contract choice"),
            )),
        }
    }

    /// The env kind on a snapshot's `records`.
    pub fn build(self, records: &[UserRecord]) -> Result<EnvKind, EnvError> {
        Ok(match self {
            Self::ContractChoice(c) => EnvModel::build(c, records).map(Arc::new)?.into(),
            Self::CustomerLifetime(c) => LifetimeModel::build(c, records).map(Arc::new)?.into(),
        })
    }
}
