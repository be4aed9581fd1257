//! The contract-choice environment: its file format ([`EnvConfig`]), user features, the env
//! itself with Gymnasium semantics, and the checker. The env knows records, never Kafka or
//! Parquet: the caller reads the snapshot and hands over its records.

mod checker;
mod config;
mod contract_choice;
pub mod features;
pub mod lifetime;

pub use checker::{Check, check_env};
pub use config::{ContractConfig, EnvConfig, MAX_CONTRACTS, MAX_DENSE, Response, Standardise, StateBuckets};
pub use contract_choice::{
    ActionMask, ContractChoiceEnv, EnvError, EnvModel, Observation, ResetInfo, Split, Step, StepInfo, split_of,
};
