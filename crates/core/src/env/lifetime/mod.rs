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
//! | `user_state`  | the user's own tabular index, for per-user learners: holding × the window's offer bits × refusals (0, 1, 2+) × age × seniority buckets × month | < [`LifetimeConfig::user_states`] |
//! | `mask`        | actions allowed now                                                    | bit 0 always |
//! | dense vector  | [`dense_names`]: user features (standardised, `age_sq`, `seniority_sq`, `age_x_seniority`, region one-hot), holding one-hot, months left / longest contract, remembered offers / window, one bit per month of the window (an offer j months ago), offers and refusals of each contract / months, offers / months, accepts / months, Beta–Bernoulli mean of accepts over offers, months since arrival / months, months done / months; then the shared resources: stock / (initial + monthly), budget share left ([`SHARED_DENSE`] entries) | features unbounded (standardised), stock ≥ 0, the rest in [0, 1], terminal observations included |
//! | `offers_left` | unused (zeros)                                                          | |
//!
//! ## Rewards
//! Each step: minus the offer's cost, plus the margins of the months that closed since the
//! previous step (all alive users of the cohort), so the return is the campaign's profit. The
//! step info's `expected_reward` is minus the offer cost.
//!
//! ## Per-user credit
//! The step info also says whom the decision was about (`slot`, the cohort slot) and what it
//! used (`offer_cost`, `handset`: a handset taken by an accepted stock contract). The env keeps
//! a per-slot ledger ([`CustomerLifetimeEnv::ledger`]): each user's own margins, added at every
//! month's close; over the cohort it adds up to the return without the offers' costs. A
//! training adapter ([`crate::experiment::UserCredit`]) turns the cohort's steps into each
//! user's own transitions from it.
//!
//! ## Fatigue
//! An offer is remembered for `window_months` months: an offer made in month m meets the offers
//! of months m − window … m − 1 (acceptance log-odds `fatigue.acceptance` each), and churn at
//! month m's close counts the offers of months m − window + 1 … m, this month's included
//! (log-odds `fatigue.churn` each): with the default window of 3, the three months before an
//! offer, and the three months up to a close.
//!
//! ## Randomness
//! Each cohort slot has its own stream: the latent at reset, then every month the user is
//! alive one draw for an offer's answer and one for churn, whatever the policy does. Policies
//! replaying a campaign with the same seed meet the same latents and draws, user by user and
//! month by month (common random numbers).
//!
//! ## Starting state
//! `reset` draws a cohort start uniformly in the split (and each user's latent); evaluation
//! plays fixed, disjoint cohorts through `reset_campaign` (campaign i: users i · cohort on).
//!
//! ## Episode end
//! `terminated` when the last month has closed; the env never truncates.
//!
//! ## Version history
//! - v2: acceptance fatigue counts the window's months before the offer (it counted one month
//!   fewer than the env file said; churn's count is unchanged); per-user random streams; the
//!   step info's slot, offer cost and handset; the per-user ledger and responses; the dense
//!   vector's window bits and per-contract offers and refusals, months left over the longest
//!   contract; the per-user tabular state; `state.seniority_edges_years`; evaluation cohorts
//!   fixed and disjoint.
//! - v1: first version.

mod bayes;
mod belief;
mod bid_price;
mod config;
mod env;
mod model;
mod plan;
mod references;

pub use bayes::{BeliefPlan, Lookahead};
pub use belief::{Belief, MAX_POINTS, ThetaGrid, UserLikelihood};
pub use bid_price::{
    BOUND_LOOKAHEAD, BidPrice, BidPriceV1, Pricing, bayes_bound, bayes_bound_with, believed_shift, believed_views,
    capacity_left, upper_bound,
};
pub use config::{
    Churn, Fatigue, Latent, LifetimeBuckets, LifetimeConfig, LifetimeContract, MAX_FATIGUE_WINDOW,
    MAX_LIFETIME_CONTRACTS, MAX_MONTHS, Stock, feature_names,
};
pub use env::{CustomerLifetimeEnv, Response, UserState, dense_names};
pub use model::{LifetimeModel, SHARED_DENSE, sigmoid};
pub use plan::{Capacity, Prices, UserPlan, UserValue, UserView, dual, dual_of, minimise_dual, minimise_dual_of};
pub use references::{
    CampaignReferences, CheapestOffer, Myopic, POLICIES, RefEvent, Replay, evaluate_references,
    evaluate_references_observed, play, play_references, play_with, policies,
};

/// A reference policy: it may read the whole env, latents included (what it uses is its
/// documented knowledge).
pub trait Reference {
    /// Called after each reset.
    fn begin(&mut self, env: &CustomerLifetimeEnv);
    /// The action for the env's current decision.
    fn act(&mut self, env: &CustomerLifetimeEnv) -> usize;
}

#[cfg(test)]
mod tests;
