//! contract-rl: user records through Kafka and Cassandra into Parquet snapshots, replayed by a
//! contract-choice environment on which tabular and deep RL agents are compared with honest
//! baselines and oracles.
//!
//! Modules follow the data flow: [`record`] → [`source`] → [`pipeline`] → [`snapshot`] → [`env`] →
//! [`agents`] → [`experiment`] → [`report`].

pub mod agents;
pub mod config;
pub mod env;
pub mod experiment;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod snapshot;
pub mod source;
pub mod table;
