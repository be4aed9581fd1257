//! Reporting: statistics over runs, the comparison summary of an experiment, and comparisons
//! across results folders.

mod compare;
pub mod stats;
mod summary;

pub use compare::{AgentRuns, Aggregates, Comparison, Estimate, PROFILE_POINTS};
pub use summary::{AgentSummary, FinalEval, Improvement, Labels, Named, References, Summary};
