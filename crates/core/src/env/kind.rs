//! What the rollout loop and the agent factories need from any env kind: Gymnasium's
//! `reset`/`step` ([`Env`]), the sizes learners are built for ([`Spaces`]), and the kinds
//! themselves with their models ([`EnvKind`]).

use std::path::Path;
use std::sync::Arc;

use super::config::EnvConfig;
use super::contract_choice::{ContractChoiceEnv, EnvError, EnvModel, Observation, ResetInfo, Split, Step};
use super::lifetime::{CustomerLifetimeEnv, LifetimeConfig, LifetimeModel};
use crate::config::{ConfigError, load_toml};
use crate::record::UserRecord;

/// Gymnasium's interface, as the rollout loop uses it.
pub trait Env {
    /// Starts a campaign, reseeding first when `seed` is given.
    fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo);
    /// Takes `action`; a masked action is an error.
    fn step(&mut self, action: usize) -> Result<Step, EnvError>;
}

impl Env for ContractChoiceEnv {
    fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo) {
        ContractChoiceEnv::reset(self, seed)
    }

    fn step(&mut self, action: usize) -> Result<Step, EnvError> {
        ContractChoiceEnv::step(self, action)
    }
}

impl Env for CustomerLifetimeEnv {
    fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo) {
        CustomerLifetimeEnv::reset(self, seed)
    }

    fn step(&mut self, action: usize) -> Result<Step, EnvError> {
        CustomerLifetimeEnv::step(self, action)
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

    /// The contract-choice model, which its oracles and baselines are built on.
    pub fn contract_choice(&self) -> Option<&Arc<EnvModel>> {
        match self {
            Self::ContractChoice(m) => Some(m),
            Self::CustomerLifetime(_) => None,
        }
    }
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
