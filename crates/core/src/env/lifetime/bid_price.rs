//! The operations-research references of the customer-lifetime env: bid-price policies that
//! price the shared stock and budget by the Lagrangian relaxation and plan each user's own
//! future under those prices, and the relaxation's bounds.
//!
//! Pricing handsets (λ) and the budget (μ) splits a campaign into one problem per user; for any
//! prices, Σ_users V_u(λ, μ) + λ · handsets + μ · budget bounds the expected return of every
//! policy that respects the resources and knows no more than V_u assumes (weak duality):
//! - [`upper_bound`] solves each user with the latent revealed: it bounds every policy;
//! - [`bayes_bound`] solves each user's Bayes-adaptive problem (the latent known only through
//!   the user's answers), looking ahead through [`BOUND_LOOKAHEAD`] answers and then revealing
//!   the latent (which can only raise the value): it bounds every policy that does not see the
//!   latents, every agent among them. The users' latents are independent, so what one user's
//!   answers tell of another is nothing.
//!
//! The policies re-solve the prices with the remaining resources every `resolve_months`:
//! [`BidPrice`] with each user planned on the exact grid posterior of its latent (frozen for
//! pricing; searched through [`BidPrice::LOOKAHEAD`] answers for its decisions, so offers are also
//! valued for what they tell), [`BidPriceV1`] (the previous release's) with a Beta–Bernoulli
//! posterior mean plugged into the sigmoid.

use super::Reference;
use super::bayes::{BeliefPlan, Lookahead};
use super::belief::{ThetaGrid, UserLikelihood};
use super::env::{CustomerLifetimeEnv, UserState};
use super::model::LifetimeModel;
use super::plan::{Capacity, Prices, UserPlan, UserView, minimise_dual, minimise_dual_of};

/// Answers the Bayes bound looks through before revealing the latent.
pub const BOUND_LOOKAHEAD: usize = 2;

/// How [`BidPrice`] prices the shared resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    /// By the Lagrangian relaxation, re-solved as the campaign goes.
    Dual,
    /// Both prices 0: every user planned as if stock and budget were not shared (an ablation
    /// that shows what pricing adds).
    Zero,
}

/// The Bayes-correct bid-price policy: bid prices from the relaxation over the users' grid
/// posteriors, and each decision the best allowed action of the current user's Bayes-adaptive
/// plan under those prices.
#[derive(Debug, Clone)]
pub struct BidPrice {
    /// Months between two solves of the prices.
    pub resolve_months: usize,
    /// Rounds of coordinate descent on the two prices per solve.
    pub rounds: usize,
    /// Answers each decision's plan looks through before it stops planning offers.
    pub lookahead: usize,
    pricing: Pricing,
    grid: ThetaGrid,
    /// Each cohort slot's acceptance table on the grid (made at `begin`).
    likelihoods: Vec<UserLikelihood>,
    prices: Prices,
    solved_month: Option<usize>,
}

impl BidPrice {
    /// Months between re-solves by default: four solves in a year-long campaign.
    pub const RESOLVE_MONTHS: usize = 3;
    /// Answers each decision's plan looks through by default.
    pub const LOOKAHEAD: usize = 2;

    pub fn new(model: &LifetimeModel, resolve_months: usize, pricing: Pricing) -> Self {
        Self {
            resolve_months: resolve_months.max(1),
            rounds: 2,
            lookahead: Self::LOOKAHEAD,
            pricing,
            grid: ThetaGrid::new(&model.config().latent, ThetaGrid::POINTS),
            likelihoods: Vec::new(),
            prices: Prices::default(),
            solved_month: None,
        }
    }

    /// The prices in force.
    pub fn prices(&self) -> Prices {
        self.prices
    }

    /// The prices that minimise the dual over the users still in `env`'s campaign, each planned
    /// with its posterior's predictive acceptance held fixed.
    fn solve(&mut self, env: &CustomerLifetimeEnv) {
        let model = env.model();
        let users: Vec<(usize, UserView, usize, Vec<f64>)> = (0..env.cohort().len())
            .filter(|&slot| !env.users()[slot].churned)
            .map(|slot| {
                let u = &env.users()[slot];
                let likelihood = &self.likelihoods[slot];
                let belief = likelihood.posterior(&self.grid, env.responses(slot));
                let view = UserView::of(env.cohort()[slot], u, 0.0);
                let from = usize::from(u.arrival).max(env.month());
                (slot, view, from, likelihood.predictive(&belief))
            })
            .collect();
        let value = |i: usize, prices: Prices| {
            let (_, view, from, accept) = &users[i];
            UserPlan::solve_with(model, view.user, accept.clone(), *from, prices).value_of(*from, view)
        };
        self.prices = minimise_dual_of(model, users.len(), capacity_left(env), self.rounds, &value).0;
        self.solved_month = Some(env.month());
    }
}

impl Reference for BidPrice {
    fn begin(&mut self, env: &CustomerLifetimeEnv) {
        self.solved_month = None;
        self.prices = Prices::default();
        self.likelihoods = env
            .cohort()
            .iter()
            .map(|&user| UserLikelihood::new(env.model(), &self.grid, user))
            .collect();
    }

    fn act(&mut self, env: &CustomerLifetimeEnv) -> usize {
        let month = env.month();
        if self.pricing == Pricing::Dual && self.solved_month.is_none_or(|m| month >= m + self.resolve_months) {
            self.solve(env);
        }
        let model = env.model();
        let slot = env.current().expect("a decision");
        let likelihood = &self.likelihoods[slot];
        let belief = likelihood.posterior(&self.grid, env.responses(slot));
        let view = UserView::of(env.cohort()[slot], &env.users()[slot], 0.0);
        let lookahead = Lookahead::ThenNoOffers { offers: self.lookahead };
        BeliefPlan::new(model, &self.grid, likelihood, belief, month, self.prices, lookahead)
            .best_action(month, &view, env.mask().0)
            .0
    }
}

/// The latent shift the previous release's planner believed: that of the posterior mean of θ
/// after the user's accepts out of offers (a Beta–Bernoulli update of the prior, as if
/// acceptance were Bernoulli(θ)).
pub fn believed_shift(model: &LifetimeModel, u: &UserState) -> f64 {
    let l = &model.config().latent;
    let mean = (l.alpha + f64::from(u.accepts)) / (l.alpha + l.beta + f64::from(u.offers));
    l.shift(mean)
}

/// The previous release's bid-price policy, kept for one release so the correction can be seen:
/// as [`BidPrice`], with each user planned on [`believed_shift`] and no value of information.
#[derive(Debug, Clone)]
pub struct BidPriceV1 {
    /// Months between two solves of the prices.
    pub resolve_months: usize,
    /// Rounds of coordinate descent on the two prices per solve.
    pub rounds: usize,
    prices: Prices,
    solved_month: Option<usize>,
}

impl BidPriceV1 {
    pub fn new(resolve_months: usize) -> Self {
        Self {
            resolve_months: resolve_months.max(1),
            rounds: 2,
            prices: Prices::default(),
            solved_month: None,
        }
    }
}

impl Reference for BidPriceV1 {
    fn begin(&mut self, _env: &CustomerLifetimeEnv) {
        self.solved_month = None;
    }

    fn act(&mut self, env: &CustomerLifetimeEnv) -> usize {
        let month = env.month();
        if self.solved_month.is_none_or(|m| month >= m + self.resolve_months) {
            self.prices = minimise_dual(env.model(), &believed_views(env), capacity_left(env), self.rounds).0;
            self.solved_month = Some(month);
        }
        let model = env.model();
        let slot = env.current().expect("a decision");
        let u = &env.users()[slot];
        let view = UserView::of(env.cohort()[slot], u, believed_shift(model, u));
        UserPlan::solve(model, &view, month, self.prices).best_action(model, month, &view, env.mask().0)
    }
}

/// The users still in `env`'s campaign as [`BidPriceV1`] sees them, each with the month its
/// plan starts (now, or its arrival).
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

/// The upper bound on the expected return of the campaign just reset, for every policy: the
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

/// The upper bound on the expected return of the campaign just reset for every policy that does
/// not see the latents: the relaxation over each user's Bayes-adaptive problem from the prior
/// (through [`BOUND_LOOKAHEAD`] answers, then the latent revealed), at its best prices. It does
/// not depend on the replay's draws.
pub fn bayes_bound(env: &CustomerLifetimeEnv) -> f64 {
    bayes_bound_with(env, BOUND_LOOKAHEAD)
}

/// [`bayes_bound`] looking ahead through `lookahead` answers.
pub fn bayes_bound_with(env: &CustomerLifetimeEnv, lookahead: usize) -> f64 {
    let model = env.model();
    let grid = ThetaGrid::new(&model.config().latent, ThetaGrid::POINTS);
    let users: Vec<(UserLikelihood, usize)> = env
        .cohort()
        .iter()
        .zip(env.users())
        .map(|(&user, u)| (UserLikelihood::new(model, &grid, user), usize::from(u.arrival)))
        .collect();
    let value = |i: usize, prices: Prices| {
        let (likelihood, arrival) = &users[i];
        let lookahead = Lookahead::ThenRevealed { offers: lookahead };
        BeliefPlan::new(model, &grid, likelihood, grid.prior(), *arrival, prices, lookahead)
            .value(*arrival, &UserView::fresh(likelihood.user(), 0.0))
    };
    minimise_dual_of(model, users.len(), capacity_left(env), 3, &value).1
}
