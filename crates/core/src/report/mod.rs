//! Reporting: statistics over runs and the comparison summary of an experiment.

pub mod stats;
mod summary;

pub use summary::{AgentSummary, FinalEval, Improvement, Labels, Named, References, Summary};
