//! The light core of contract-rl: everything an RL researcher needs to build and run the
//! envs and tabular agents, with no database, Parquet or deep-learning dependency.
//!
//! Modules follow the data flow: [`record`] (the user record and its schema) → [`source`] (the
//! embedded generator) → [`env`] (env kinds and the checker) → [`agents`] (the `Agent` trait,
//! baselines, oracles, tabular Q-learning) → [`experiment`] (configs, rollouts, the parallel
//! runner) → [`report`] (statistics and summaries). Snapshots and results on disk live in
//! `contract-rl-parquet`, DQN in `contract-rl-dqn`, Kafka and Cassandra in
//! `contract-rl-pipeline`.

pub mod agents;
pub mod config;
pub mod env;
pub mod experiment;
pub mod record;
pub mod report;
pub mod schema;
pub mod source;
