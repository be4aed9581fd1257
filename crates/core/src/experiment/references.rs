//! What evaluations score, and the references every summary reports beside the agents: the
//! myopic policy, the best online policy the env kind can compute (regret and "% of" are
//! against it), an upper bound (two on the lifetime env: one for the policies that do not see
//! the latents, one for all) and the kind's further references, each named with what it knows.

use std::sync::Arc;

use rand::SeedableRng;

use super::config::ExperimentConfig;
use super::rollout::{EpisodeStats, Trace, evaluate_campaigns};
use crate::agents::{Agent, AgentRng, HindsightOracle, MyopicOracle, OnlineOracle};
use crate::env::lifetime::{self, BidPrice, RefEvent};
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
            second_bound: None,
            others: &[],
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
                "the response, churn and fatigue models, latents only through each user's answers (the exact grid \
                 posterior); prices stock and budget by Lagrangian relaxation re-solved as the campaign goes, plans \
                 each user's future over its belief",
            ),
            bound: named(
                "bayes_bound",
                "Bayes bound",
                "the models, no latent: the relaxation over each user's Bayes-adaptive problem; bounds every \
                 policy that does not see the latents",
            ),
            second_bound: Some(named(
                "upper_bound",
                "upper bound (latents revealed)",
                "everything, latents included; resources bind only on average (the relaxation's value); bounds \
                 every policy",
            )),
            others: &[
                Named {
                    key: "bid_price_v1",
                    label: "bid-price v1",
                    knows: "the previous release's OR policy: a Beta-Bernoulli posterior mean plugged into the \
                            sigmoid, no value of information",
                },
                Named {
                    key: "zero_price",
                    label: "zero-price bid-price",
                    knows: "the bid-price policy with both prices 0: what pricing the shared resources adds",
                },
                Named {
                    key: "rule_once",
                    label: "rule: cheapest offer once",
                    knows: "nothing: the cheapest contract once to each new user",
                },
                Named {
                    key: "rule_always",
                    label: "rule: cheapest offer always",
                    knows: "nothing: the cheapest contract to every user up for a decision",
                },
            ],
        },
        _ => return None,
    })
}

/// The references' scores on each evaluation campaign of one split (means over its replays).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceReturns {
    pub myopic: Vec<f64>,
    pub online: Vec<f64>,
    pub bound: Vec<f64>,
    /// The second bound, where the kind has one ([`Labels::second_bound`]).
    pub second_bound: Option<Vec<f64>>,
    /// The kind's further references, in [`Labels::others`] order.
    pub others: Vec<Vec<f64>>,
    /// What the myopic and the online reference did on each replay of each campaign, campaign
    /// after campaign (the bounds are no policies).
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
                    let (stats, traces) = evaluate_campaigns(kind, agent, &mut rng, split, &eval.campaigns());
                    (stats.iter().map(|s| s.expected_return).collect(), traces)
                };
                let (myopic, myopic_traces) = play(&mut MyopicOracle::new(Arc::clone(model)));
                let (online, online_traces) = play(&mut OnlineOracle::new(Arc::clone(model)));
                Self {
                    myopic,
                    online,
                    bound: play(&mut HindsightOracle::new(Arc::clone(model))).0,
                    second_bound: None,
                    others: Vec::new(),
                    traces: [myopic_traces, online_traces],
                }
            }
            EnvKind::CustomerLifetime(model) => {
                // The campaigns `evaluate_campaigns` plays, each policy's decisions kept for
                // the myopic and the online reference.
                let which = eval.campaigns();
                let l = labels(kind);
                let index = |key: &str| {
                    lifetime::POLICIES
                        .iter()
                        .position(|p| *p == key)
                        .expect("every lifetime reference is one of the env's policies")
                };
                let kept = [index(l.myopic.key), index(l.online.key)];
                let played = lifetime::evaluate_references_observed(
                    model,
                    split,
                    &which,
                    BidPrice::RESOLVE_MONTHS,
                    || [Trace::default(), Trace::default()],
                    |traces, event| match event {
                        RefEvent::Decision {
                            policy,
                            user,
                            action,
                            expected_reward,
                        } => {
                            if let Some(k) = kept.iter().position(|&p| p == policy) {
                                traces[k].push(user, action, expected_reward);
                            }
                        }
                        RefEvent::End { policy, env } => {
                            if let Some(k) = kept.iter().position(|&p| p == policy) {
                                traces[k].resources_left = env.resources_left();
                            }
                        }
                    },
                );
                // Per campaign, the mean over its replays.
                let per_campaign = |value: &dyn Fn(&lifetime::Replay) -> f64| -> Vec<f64> {
                    played.iter().map(|c| mean(c.replays.iter().map(value))).collect()
                };
                let policy = |key: &str| {
                    let i = index(key);
                    per_campaign(&|r| r.returns[i])
                };
                let traces = |k: usize| {
                    played
                        .iter()
                        .flat_map(|c| c.observed.iter().map(|t| t[k].clone()))
                        .collect()
                };
                Self {
                    myopic: policy(l.myopic.key),
                    online: policy(l.online.key),
                    bound: played.iter().map(|c| c.bayes_bound).collect(),
                    second_bound: Some(per_campaign(&|r| r.upper_bound)),
                    others: l.others.iter().map(|named| policy(named.key)).collect(),
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
            second_bound: self.second_bound.as_deref().map(m),
            others: self.others.iter().map(|v| m(v)).collect(),
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
