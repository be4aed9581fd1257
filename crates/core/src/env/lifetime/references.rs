//! Reference policies and the upper bound of the customer-lifetime env, each with what it knows.
//!
//! | reference   | knows                                                                  | ignores |
//! |-------------|------------------------------------------------------------------------|---------|
//! | myopic      | the response model and every user's latent                            | churn, fatigue's future cost, that stock and budget run out |
//! | bid-price   | the response, churn and fatigue models; latents only through each user's history (posterior mean) | nothing: prices the shared resources (Lagrangian relaxation, re-solved every `resolve_months`) and plans each user's future by DP |
//! | upper bound | everything, latents included                                            | that resources bind month by month and user by user: the relaxation's value at its best prices |

use super::env::{CustomerLifetimeEnv, UserState};
use super::model::LifetimeModel;
use super::plan::{Capacity, Prices, UserPlan, UserView, minimise_dual};

/// A reference policy: it may read the whole env, latents included (what it uses is its
/// documented knowledge).
pub trait Reference {
    /// Called after each reset.
    fn begin(&mut self, env: &CustomerLifetimeEnv);
    /// The action for the env's current decision.
    fn act(&mut self, env: &CustomerLifetimeEnv) -> usize;
}

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

/// The latent shift a planner without the latents believes: that of the posterior mean of θ
/// after the user's accepts out of offers (a Beta–Bernoulli update of the prior).
pub fn believed_shift(model: &LifetimeModel, u: &UserState) -> f64 {
    let l = &model.config().latent;
    let mean = (l.alpha + f64::from(u.accepts)) / (l.alpha + l.beta + f64::from(u.offers));
    l.shift(mean)
}

/// Bid prices from the Lagrangian relaxation over the users' believed latents, re-solved with
/// the remaining resources at the first decision of every `resolve_months`-th month; each
/// decision is the best action of the current user's own DP under those prices.
#[derive(Debug, Clone)]
pub struct BidPrice {
    pub resolve_months: usize,
    pub rounds: usize,
    prices: Prices,
    solved_month: Option<usize>,
}

impl BidPrice {
    /// Months between re-solves by default: four solves in a year-long campaign.
    pub const RESOLVE_MONTHS: usize = 3;

    pub fn new(resolve_months: usize) -> Self {
        Self {
            resolve_months: resolve_months.max(1),
            rounds: 2,
            prices: Prices::default(),
            solved_month: None,
        }
    }

    /// The prices in force.
    pub fn prices(&self) -> Prices {
        self.prices
    }

    fn solve(&mut self, env: &CustomerLifetimeEnv) {
        self.prices = minimise_dual(env.model(), &believed_views(env), capacity_left(env), self.rounds).0;
        self.solved_month = Some(env.month());
    }
}

impl Reference for BidPrice {
    fn begin(&mut self, _env: &CustomerLifetimeEnv) {
        self.solved_month = None;
    }

    fn act(&mut self, env: &CustomerLifetimeEnv) -> usize {
        let month = env.month();
        if self.solved_month.is_none_or(|m| month >= m + self.resolve_months) {
            self.solve(env);
        }
        let model = env.model();
        let slot = env.current().expect("a decision");
        let u = &env.users()[slot];
        let view = UserView::of(env.cohort()[slot], u, believed_shift(model, u));
        UserPlan::solve(model, &view, month, self.prices).best_action(model, month, &view, env.mask().0)
    }
}

/// The users still in `env`'s campaign as a planner without the latents sees them, each with
/// the month its plan starts (now, or its arrival).
pub fn believed_views(env: &CustomerLifetimeEnv) -> Vec<(UserView, usize)> {
    let model = env.model();
    env.cohort()
        .iter()
        .zip(env.users())
        .filter(|(_, u)| !u.churned)
        .map(|(&user, u)| {
            let view = UserView::of(user, u, believed_shift(model, u));
            (view, usize::from(u.arrival).max(env.month()))
        })
        .collect()
}

/// What the rest of `env`'s campaign may spend: the handsets in stock and those still to come,
/// and the budget left.
pub fn capacity_left(env: &CustomerLifetimeEnv) -> Capacity {
    let config = env.model().config();
    let months_to_come = (config.months - 1 - env.month()) as f64;
    Capacity {
        stock: f64::from(env.stock()) + f64::from(config.stock.monthly) * months_to_come,
        budget: env.budget(),
    }
}

/// The upper bound on the expected return of the campaign just reset: the Lagrangian
/// relaxation with every latent revealed, at its best prices.
pub fn upper_bound(env: &CustomerLifetimeEnv) -> f64 {
    let model = env.model();
    let views: Vec<(UserView, usize)> = env
        .cohort()
        .iter()
        .zip(env.users())
        .map(|(&user, u)| (UserView::fresh(user, u.shift), usize::from(u.arrival)))
        .collect();
    minimise_dual(model, &views, capacity_left(env), 3).1
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

/// What [`play_references`] reports as the references play: a decision of policy `policy` (0 the
/// myopic oracle, 1 the bid-price policy), or the end of its campaign.
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

/// The references on the campaign `reset` starts (called before each policy, so both meet the
/// same latents and, as far as their actions agree, the same draws): [myopic, bid-price, bound].
pub fn play_references(
    env: &mut CustomerLifetimeEnv,
    reset: impl Fn(&mut CustomerLifetimeEnv),
    resolve_months: usize,
    mut on_event: impl FnMut(RefEvent),
) -> [f64; 3] {
    reset(env);
    let bound = upper_bound(env);
    let mut returns = [0.0, 0.0, bound];
    let policies: [&mut dyn Reference; 2] = [&mut Myopic, &mut BidPrice::new(resolve_months)];
    for (policy, reference) in policies.into_iter().enumerate() {
        if policy > 0 {
            reset(env);
        }
        returns[policy] = play_with(env, reference, |user, action, expected_reward| {
            on_event(RefEvent::Decision {
                policy,
                user,
                action,
                expected_reward,
            })
        });
        on_event(RefEvent::End { policy, env });
    }
    returns
}

/// The returns of the references on one replay of a campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CampaignReferences {
    pub campaign: usize,
    pub seed: u64,
    pub myopic: f64,
    pub bid_price: f64,
    pub bound: f64,
}

/// Plays the references on `episodes` replays (seeds `seed`, `seed + 1`, ...) of each of the
/// first `campaigns` campaigns of `split`, in parallel; the result does not depend on the
/// number of threads.
pub fn evaluate_references(
    model: &std::sync::Arc<LifetimeModel>,
    split: crate::env::Split,
    campaigns: usize,
    episodes: u64,
    seed: u64,
    resolve_months: usize,
) -> Vec<CampaignReferences> {
    use rayon::prelude::*;
    let jobs: Vec<(usize, u64)> = (0..campaigns)
        .flat_map(|c| (0..episodes).map(move |e| (c, seed.wrapping_add(c as u64 * episodes + e))))
        .collect();
    jobs.par_iter()
        .map(|&(campaign, seed)| {
            let mut env = CustomerLifetimeEnv::new(std::sync::Arc::clone(model), split, seed);
            let reset = |env: &mut CustomerLifetimeEnv| {
                env.reset_campaign(campaign, seed);
            };
            let [myopic, bid_price, bound] = play_references(&mut env, reset, resolve_months, |_| {});
            CampaignReferences {
                campaign,
                seed,
                myopic,
                bid_price,
                bound,
            }
        })
        .collect()
}
