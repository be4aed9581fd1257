//! Reference policies and bounds of the customer-lifetime env, each with what it knows, and how
//! they are played on a campaign.
//!
//! | reference      | knows                                                                  | ignores |
//! |----------------|------------------------------------------------------------------------|---------|
//! | myopic         | the response model and every user's latent                            | churn, fatigue's future cost, that stock and budget run out |
//! | bid-price      | the models; latents only through each user's answers (the exact grid posterior) | nothing: prices stock and budget (Lagrangian relaxation, re-solved every `resolve_months`) and plans each user's future over its belief, valuing what answers tell |
//! | bid-price v1   | as bid-price, with a Beta–Bernoulli belief plugged into the sigmoid    | that acceptance is logistic in the latent; the value of information |
//! | zero price     | as bid-price, with both prices 0                                        | that stock and budget are shared |
//! | rules          | nothing: the cheapest contract once to each new user, or to every user up | everything |
//! | Bayes bound    | the models; no latent                                                  | that resources bind month by month and user by user: bounds every policy that does not see the latents |
//! | upper bound    | everything, latents included                                           | as the Bayes bound: bounds every policy, even one that sees the latents |
//!
//! Every policy plays a replay of a campaign from the same reset, so they meet the same latents
//! and, user by user and month by month, the same draws (the env's per-user streams).

use std::sync::Arc;

use super::Reference;
use super::bid_price::{BidPrice, BidPriceV1, Pricing, bayes_bound, upper_bound};
use super::env::CustomerLifetimeEnv;
use super::model::LifetimeModel;
use crate::env::{Campaigns, Split};

/// Best immediate expected value: P(accept) × the margins the offer adds over the rest of the
/// campaign (no churn) − its cost, with the true latent; "no offer" when nothing is positive.
#[derive(Debug, Default, Clone, Copy)]
pub struct Myopic;

impl Reference for Myopic {
    fn begin(&mut self, _env: &CustomerLifetimeEnv) {}

    fn act(&mut self, env: &CustomerLifetimeEnv) -> usize {
        let model = env.model();
        let config = model.config();
        let slot = env.current().expect("a decision");
        let user = env.cohort()[slot];
        let u = env.users()[slot];
        let rest = (config.months - env.month()) as f64;
        let keep = usize::from(u.months_left) as f64;
        let refused =
            model.margin(usize::from(u.holding)) * keep.min(rest) + config.base_margin * (rest - keep).max(0.0);
        let mut best = (0.0, 0);
        for k in env.mask().iter().filter(|a| *a > 0) {
            let c = &config.contracts[k - 1];
            let held = f64::from(c.months).min(rest);
            let accepted = c.margin * held + config.base_margin * (rest - held);
            let p = model.accept_prob(user, k - 1, u.shift, u.remembered());
            let value = p * (accepted - refused) - c.offer_cost;
            if value > best.0 {
                best = (value, k);
            }
        }
        best.1
    }
}

/// A one-line policy: the cheapest contract (of lowest offer cost) to every user up for a
/// decision, or (`once`) only to users never offered anything; "no offer" when it is masked.
#[derive(Debug, Clone, Copy)]
pub struct CheapestOffer {
    pub once: bool,
}

impl Reference for CheapestOffer {
    fn begin(&mut self, _env: &CustomerLifetimeEnv) {}

    fn act(&mut self, env: &CustomerLifetimeEnv) -> usize {
        let contracts = &env.model().config().contracts;
        let cheapest = (0..contracts.len())
            .min_by(|&a, &b| contracts[a].offer_cost.total_cmp(&contracts[b].offer_cost))
            .expect("a catalogue")
            + 1;
        let u = &env.users()[env.current().expect("a decision")];
        if env.mask().contains(cheapest) && !(self.once && u.offers > 0) {
            cheapest
        } else {
            0
        }
    }
}

/// The policies the env's references play, in report order.
pub const POLICIES: [&str; 6] = [
    "myopic_oracle",
    "bid_price",
    "bid_price_v1",
    "zero_price",
    "rule_once",
    "rule_always",
];

/// The reference policies, in [`POLICIES`] order, re-solving bid prices every `resolve_months`.
pub fn policies(model: &LifetimeModel, resolve_months: usize) -> Vec<Box<dyn Reference + Send>> {
    vec![
        Box::new(Myopic),
        Box::new(BidPrice::new(model, resolve_months, Pricing::Dual)),
        Box::new(BidPriceV1::new(resolve_months)),
        Box::new(BidPrice::new(model, resolve_months, Pricing::Zero)),
        Box::new(CheapestOffer { once: true }),
        Box::new(CheapestOffer { once: false }),
    ]
}

/// The return of one campaign under `policy`.
pub fn play(env: &mut CustomerLifetimeEnv, policy: &mut dyn Reference) -> f64 {
    play_with(env, policy, |_, _, _| {})
}

/// [`play`], telling `on_decision` the user, the action and its expected reward of every
/// decision.
pub fn play_with(
    env: &mut CustomerLifetimeEnv,
    policy: &mut dyn Reference,
    mut on_decision: impl FnMut(u32, usize, f64),
) -> f64 {
    policy.begin(env);
    let mut total = 0.0;
    while let Some(slot) = env.current() {
        let action = policy.act(env);
        let user = env.cohort()[slot];
        let step = env.step(action).expect("references act within the mask");
        on_decision(user, action, step.info.expected_reward);
        total += step.reward;
    }
    total
}

/// What [`play_references`] reports as the references play: a decision of the policy at
/// `policy` in [`POLICIES`], or the end of its campaign.
pub enum RefEvent<'a> {
    Decision {
        policy: usize,
        user: u32,
        action: usize,
        expected_reward: f64,
    },
    End {
        policy: usize,
        env: &'a CustomerLifetimeEnv,
    },
}

/// One replay of a campaign: each policy's return, in [`POLICIES`] order, and the upper bound
/// (latents revealed) of its latents.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub returns: Vec<f64>,
    pub upper_bound: f64,
}

/// The references on the campaign `reset` starts (called before each policy, so all meet the
/// same latents and draws).
pub fn play_references(
    env: &mut CustomerLifetimeEnv,
    reset: impl Fn(&mut CustomerLifetimeEnv),
    resolve_months: usize,
    mut on_event: impl FnMut(RefEvent),
) -> Replay {
    reset(env);
    let upper_bound = upper_bound(env);
    let mut policies = policies(env.model(), resolve_months);
    let returns = policies
        .iter_mut()
        .enumerate()
        .map(|(policy, reference)| {
            reset(env);
            let total = play_with(env, reference.as_mut(), |user, action, expected_reward| {
                on_event(RefEvent::Decision {
                    policy,
                    user,
                    action,
                    expected_reward,
                })
            });
            on_event(RefEvent::End { policy, env });
            total
        })
        .collect();
    Replay { returns, upper_bound }
}

/// The references of one campaign over its replays, with what an observer kept of each replay.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignReferences<T = ()> {
    pub campaign: usize,
    /// The replays, in seed order.
    pub replays: Vec<Replay>,
    /// What the observer kept of each replay, in the same order.
    pub observed: Vec<T>,
    /// The Bayes bound (no latent seen): the same for every replay.
    pub bayes_bound: f64,
}

/// Plays the references on `which` campaigns of `split`, in parallel; the result does not
/// depend on the number of threads.
pub fn evaluate_references(
    model: &Arc<LifetimeModel>,
    split: Split,
    which: &Campaigns,
    resolve_months: usize,
) -> Vec<CampaignReferences> {
    evaluate_references_observed(model, split, which, resolve_months, || (), |_, _| {})
}

/// [`evaluate_references`], with each replay's events given to `observe` with what `start`
/// made for that replay.
pub fn evaluate_references_observed<T: Send>(
    model: &Arc<LifetimeModel>,
    split: Split,
    which: &Campaigns,
    resolve_months: usize,
    start: impl Fn() -> T + Sync,
    observe: impl Fn(&mut T, RefEvent) + Sync,
) -> Vec<CampaignReferences<T>> {
    use rayon::prelude::*;
    let entries: Vec<(usize, usize)> = which.replays().collect();
    let played: Vec<(Replay, T)> = entries
        .into_par_iter()
        .map(|(campaign, replay)| {
            let seed = which.seed_of(campaign, replay);
            let mut env = CustomerLifetimeEnv::new(Arc::clone(model), split, seed);
            let reset = |env: &mut CustomerLifetimeEnv| {
                env.reset_campaign(campaign, seed);
            };
            let mut kept = start();
            let outcome = play_references(&mut env, reset, resolve_months, |event| observe(&mut kept, event));
            (outcome, kept)
        })
        .collect();
    let bounds: Vec<f64> = (0..which.campaigns)
        .into_par_iter()
        .map(|campaign| {
            let mut env = CustomerLifetimeEnv::new(Arc::clone(model), split, which.seed);
            env.reset_campaign(campaign, which.seed);
            bayes_bound(&env)
        })
        .collect();
    let mut played = played.into_iter();
    bounds
        .into_iter()
        .enumerate()
        .map(|(campaign, bayes_bound)| {
            let (replays, observed) = played.by_ref().take(which.replays).unzip();
            CampaignReferences {
                campaign,
                replays,
                observed,
                bayes_bound,
            }
        })
        .collect()
}
