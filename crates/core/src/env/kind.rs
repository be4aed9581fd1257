//! What the rollout loop and the agent factories need from any env kind: Gymnasium's
//! `reset`/`step` ([`Env`]), the sizes learners are built for ([`Spaces`]), and the kinds
//! themselves with their models ([`EnvKind`]).

use std::path::Path;
use std::sync::Arc;

use super::config::EnvConfig;
use super::contract_choice::{ContractChoiceEnv, EnvError, EnvModel, Observation, ResetInfo, Split, Step};
use super::lifetime::{CustomerLifetimeEnv, LifetimeConfig, LifetimeModel};
use rand::{RngExt, SeedableRng};

use crate::config::{ConfigError, load_toml};
use crate::record::UserRecord;

/// Gymnasium's interface, as the rollout loop uses it.
pub trait Env {
    /// Starts a campaign, reseeding first when `seed` is given.
    fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo);
    /// Takes `action`; a masked action is an error.
    fn step(&mut self, action: usize) -> Result<Step, EnvError>;
    /// What is left of the shared resources, in [`EnvKind::resource_names`] order.
    fn resources_left(&self) -> Vec<f64>;
}

impl Env for ContractChoiceEnv {
    fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo) {
        ContractChoiceEnv::reset(self, seed)
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

    fn step(&mut self, action: usize) -> Result<Step, EnvError> {
        CustomerLifetimeEnv::step(self, action)
    }

    fn resources_left(&self) -> Vec<f64> {
        vec![f64::from(self.stock()), self.budget()]
    }
}

/// The sizes learners are built for; they never see more of an env.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spaces {
    /// Tabular states (the bound of `Observation::state`).
    pub n_states: usize,
    /// Actions (the width of `Observation::mask`).
    pub n_actions: usize,
    /// Length of the dense observation.
    pub dense_len: usize,
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
                n_actions: m.n_actions(),
                dense_len: m.dense_len(),
            },
            Self::CustomerLifetime(m) => Spaces {
                n_states: m.n_states(),
                n_actions: m.n_actions(),
                dense_len: m.dense_len(),
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
