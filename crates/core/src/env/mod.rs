//! The envs: contract choice (its file format [`EnvConfig`], the env with Gymnasium semantics,
//! the checker), customer lifetime ([`lifetime`]), the user features they share, what the
//! rollout loop needs of any kind ([`Env`], [`EnvKind`]), and many campaigns stepped by one call
//! ([`VectorEnv`]). Envs know records, never Kafka or Parquet: the caller reads the snapshot and
//! hands over its records.

mod checker;
mod config;
mod contract_choice;
pub mod features;
mod kind;
pub mod lifetime;
mod vector;

pub use checker::{Check, check_env};
pub use config::{ContractConfig, EnvConfig, MAX_CONTRACTS, MAX_DENSE, Response, StateBuckets, region_of_nat};
pub use contract_choice::{
    ActionMask, ContractChoiceBatch, ContractChoiceEnv, EnvError, EnvModel, Observation, ResetInfo, Split, Step,
    StepInfo, split_of,
};
pub use features::Standardise;
pub use kind::{Afterstate, Campaigns, Coupling, Env, EnvFile, EnvKind, Ledger, Spaces, bands};
pub use vector::{Outputs, SyncVectorEnv, VectorEnv};
