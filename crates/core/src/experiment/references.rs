//! What evaluations score, and the references every summary reports beside the agents: the
//! myopic policy, the best online policy the env kind can compute (regret and "% of" are
//! against it) and an upper bound, each named with what it knows.

use std::sync::Arc;

use rand::SeedableRng;
use rayon::prelude::*;

use super::config::ExperimentConfig;
use super::rollout::{EpisodeStats, Trace, evaluate_traced};
use crate::agents::{Agent, AgentRng, HindsightOracle, MyopicOracle, OnlineOracle};
use crate::env::lifetime::{self, BidPrice, CustomerLifetimeEnv, RefEvent};
use crate::env::{Env, EnvKind, Split};
use crate::report::stats::mean;
use crate::report::{Labels, Named, References};

/// How a campaign is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// The sum of the offers' expected rewards, without sampling noise (contract choice, where
    /// an offer's expectation is known in closed form).
    Expected,
    /// The sampled return (customer lifetime, where an offer's effect runs through later
    /// months); agents and references meet the same campaigns with the same seeds.
    Sampled,
}

impl Score {
    pub fn of(kind: &EnvKind) -> Self {
        match kind {
            EnvKind::ContractChoice(_) => Self::Expected,
            EnvKind::CustomerLifetime(_) => Self::Sampled,
        }
    }

    /// The score of one campaign.
    pub fn campaign(self, stats: &EpisodeStats) -> f64 {
        match self {
            Self::Expected => stats.expected_return,
            Self::Sampled => stats.return_,
        }
    }

    /// The mean score over `campaigns`.
    pub fn mean(self, campaigns: &[EpisodeStats]) -> f64 {
        mean(campaigns.iter().map(|c| self.campaign(c)))
    }
}

/// What a summary calls the score and the references of `kind`.
pub fn labels(kind: &EnvKind) -> Labels {
    labels_of(kind.name()).expect("every env kind is labelled")
}

/// [`labels`] of the env kind named `kind` (as [`EnvKind::name`] names it: a results
/// manifest has no model to build an [`EnvKind`] from); `None` for no kind of this version.
pub fn labels_of(kind: &str) -> Option<Labels> {
    let named = |key, label, knows| Named { key, label, knows };
    Some(match kind {
        "contract-choice" => Labels {
            score: named(
                "expected_return",
                "expected return",
                "the offers' expected rewards, no sampling noise",
            ),
            myopic: named(
                "myopic_oracle",
                "myopic oracle",
                "the response model; the current user only",
            ),
            online: named(
                "online_optimum",
                "online optimum",
                "the response model and the user population, not the campaign's order",
            ),
            bound: named(
                "hindsight",
                "hindsight optimum",
                "the whole campaign in advance: the upper bound",
            ),
        },
        "customer-lifetime" => Labels {
            score: named(
                "return",
                "return",
                "the sampled profit of the campaign; every agent and reference meets the same campaigns and seeds",
            ),
            myopic: named(
                "myopic_oracle",
                "myopic oracle",
                "the response model and every latent; ignores churn, fatigue's future cost and that stock and budget run out",
            ),
            online: named(
                "bid_price",
                "bid-price (OR policy)",
                "the response, churn and fatigue models, latents only through each user's history; \
                 prices stock and budget by Lagrangian relaxation re-solved as the campaign goes, plans each user by DP",
            ),
            bound: named(
                "upper_bound",
                "upper bound",
                "everything, latents included; resources bind only on average (the relaxation's value)",
            ),
        },
        _ => return None,
    })
}

/// The references' scores on each evaluation campaign of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceReturns {
    pub myopic: Vec<f64>,
    pub online: Vec<f64>,
    pub bound: Vec<f64>,
    /// What the myopic and the online reference did on each campaign (the bound is no policy).
    pub traces: [Vec<Trace>; 2],
}

impl ReferenceReturns {
    /// The references on the `episodes` evaluation campaigns of `split` (the same ones agents
    /// are evaluated on).
    pub fn compute(kind: &EnvKind, config: &ExperimentConfig, split: Split) -> Self {
        let eval = &config.evaluation;
        match kind {
            EnvKind::ContractChoice(model) => {
                let mut rng = AgentRng::seed_from_u64(0);
                let mut play = |agent: &mut dyn Agent| {
                    let (stats, traces) = evaluate_traced(kind, agent, &mut rng, split, eval.episodes, eval.seed);
                    (stats.iter().map(|s| s.expected_return).collect(), traces)
                };
                let (myopic, myopic_traces) = play(&mut MyopicOracle::new(Arc::clone(model)));
                let (online, online_traces) = play(&mut OnlineOracle::new(Arc::clone(model)));
                Self {
                    myopic,
                    online,
                    bound: play(&mut HindsightOracle::new(Arc::clone(model))).0,
                    traces: [myopic_traces, online_traces],
                }
            }
            EnvKind::CustomerLifetime(model) => {
                let campaigns: Vec<([f64; 3], [Trace; 2])> = (0..eval.episodes as u64)
                    .into_par_iter()
                    .map(|i| {
                        // As `evaluate` does: an env seeded with the evaluation seed, reset
                        // with seed + i.
                        let seed = eval.seed.wrapping_add(i);
                        let mut env = CustomerLifetimeEnv::new(Arc::clone(model), split, eval.seed);
                        let reset = |env: &mut CustomerLifetimeEnv| {
                            env.reset(Some(seed));
                        };
                        let mut traces = [Trace::default(), Trace::default()];
                        let returns =
                            lifetime::play_references(&mut env, reset, BidPrice::RESOLVE_MONTHS, |event| match event {
                                RefEvent::Decision {
                                    policy,
                                    user,
                                    action,
                                    expected_reward,
                                } => traces[policy].push(user, action, expected_reward),
                                RefEvent::End { policy, env } => traces[policy].resources_left = env.resources_left(),
                            });
                        (returns, traces)
                    })
                    .collect();
                let column = |i: usize| campaigns.iter().map(|c| c.0[i]).collect();
                let traces = |i: usize| campaigns.iter().map(|c| c.1[i].clone()).collect();
                Self {
                    myopic: column(0),
                    online: column(1),
                    bound: column(2),
                    traces: [traces(0), traces(1)],
                }
            }
        }
    }

    /// Means over the campaigns.
    pub fn means(&self) -> References {
        let m = |v: &[f64]| mean(v.iter().copied());
        References {
            myopic: m(&self.myopic),
            online: m(&self.online),
            bound: m(&self.bound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_found_by_the_kind_names_env_files_use() {
        assert_eq!(labels_of("contract-choice").unwrap().online.key, "online_optimum");
        assert_eq!(labels_of("customer-lifetime").unwrap().online.key, "bid_price");
        assert_eq!(labels_of("cartpole"), None);
    }
}
