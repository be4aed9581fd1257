//! The customer-lifetime environment: telecom contracts over the months of a campaign, where
//! today's offer changes the same user's future and shared stock and budget tie users together.
//!
//! ## Description
//! A campaign runs `months` months over a cohort of `cohort` users of a snapshot split, who
//! arrive evenly over the first `arrival_months`. Each month every user without a contract, and
//! every holder in the last `renewal_window_months` of a contract, is up for a decision: no
//! offer, or one contract of the catalogue. An accepted contract replaces what the user held and
//! pays its monthly margin for its duration; without a contract a user pays `base_margin`. At
//! each month's end users may churn (and pay nothing more). Recent offers lower acceptance and
//! raise churn (fatigue); each user has a latent propensity, drawn at reset, that only their
//! responses reveal. Handsets (shared by the `uses_stock` contracts, replenished monthly) and the
//! offer budget are consumed across users.
//!
//! ## Action space
//! `Discrete(1 + contracts)`: 0 is "no offer", k offers contract k − 1. Contracts whose offer
//! cost exceeds the budget left, and stock contracts when no handset is left, are masked.
//!
//! ## Observation
//! | part          | meaning                                                               | range |
//! |---------------|-----------------------------------------------------------------------|-------|
//! | `user`        | row of the user the decision is about                                   | |
//! | `t`           | decisions already taken in the campaign                                | ≥ 0 |
//! | `state`       | tabular index: holding × remembered offers (0, 1, 2+) × history (never offered, never accepted, accepted) × age × stock × budget × progress buckets | < [`LifetimeConfig::tabular_states`] |
//! | `mask`        | actions allowed now                                                    | bit 0 always |
//! | dense vector  | [`dense_names`]: user features (standardised, `age_sq`, `seniority_sq`, `age_x_seniority`, region one-hot), holding one-hot, months left / months, remembered offers / window, offers / months, accepts / months, posterior mean of the propensity, months since arrival / months, stock / (initial + monthly), budget share left, months done / months | features unbounded (standardised), the rest in [0, 1] except stock (≥ 0) |
//! | `offers_left` | unused (zeros)                                                          | |
//!
//! ## Rewards
//! Each step: minus the offer's cost, plus the margins of the months that closed since the
//! previous step (all alive users of the cohort), so the return is the campaign's profit. The
//! step info's `expected_reward` is minus the offer cost.
//!
//! ## Starting state
//! `reset` draws a cohort start uniformly in the split (and each user's latent); evaluation uses
//! fixed cohorts through `reset_campaign`.
//!
//! ## Episode end
//! `terminated` when the last month has closed; the env never truncates.
//!
//! ## Version history
//! - v1: first version.

mod config;
mod env;
mod model;
mod plan;
mod references;

pub use config::{
    Churn, Fatigue, Latent, LifetimeBuckets, LifetimeConfig, LifetimeContract, MAX_FATIGUE_WINDOW,
    MAX_LIFETIME_CONTRACTS, MAX_MONTHS, Stock, feature_names,
};
pub use env::{CustomerLifetimeEnv, UserState, dense_names};
pub use model::{LifetimeModel, sigmoid};
pub use plan::{Capacity, Prices, UserPlan, UserView, dual, minimise_dual};
pub use references::{
    BidPrice, CampaignReferences, Myopic, RefEvent, Reference, believed_shift, believed_views, capacity_left,
    evaluate_references, play, play_references, play_with, upper_bound,
};

#[cfg(test)]
mod tests;
