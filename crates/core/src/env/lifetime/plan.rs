//! Per-user dynamic programming and the Lagrangian relaxation of the shared resources.
//!
//! Users interact only through the handset stock and the offer budget. Pricing both (λ per
//! handset, μ per unit of offer cost) splits a campaign into independent per-user problems,
//! each solved exactly by backward induction over (month, holding, months left, remembered
//! offers). For any prices, Σ_users V_u(λ, μ) + λ · handsets + μ · budget is an upper bound on
//! the expected return of every policy that respects the resources (weak duality), and it stays
//! one when each user's latent is revealed; its minimum over the prices is the tightest such
//! bound, and the minimising prices are bid prices for the online policy.

use super::env::UserState;
use super::model::LifetimeModel;

/// Prices of the shared resources.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Prices {
    /// Per handset taken from the stock.
    pub stock: f64,
    /// Per unit of offer cost spent from the budget.
    pub budget: f64,
}

/// A user's situation for planning: who, what the planner believes of the latent, and where
/// the user stands at the start of `month`'s decisions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserView {
    pub user: u32,
    /// Latent log-odds shift the plan assumes (the true one for bounds, an estimate online).
    pub shift: f64,
    pub holding: u8,
    pub months_left: u8,
    /// Offers of the fatigue window's months before this one (bit j − 1: j months ago).
    pub recent: u8,
}

impl UserView {
    /// A user who has not arrived yet or just arrived: no contract, no offers remembered.
    pub fn fresh(user: u32, shift: f64) -> Self {
        Self {
            user,
            shift,
            holding: 0,
            months_left: 0,
            recent: 0,
        }
    }

    /// The env's user `state` of cohort member `user`, planned with latent shift `shift`.
    pub fn of(user: u32, state: &UserState, shift: f64) -> Self {
        Self {
            user,
            shift,
            holding: state.holding,
            months_left: state.months_left,
            recent: state.previous_months(),
        }
    }
}

/// Decision-time values V(month, holding, months left, offers of the months before) of one user
/// under fixed prices, from some month to the end of the campaign.
#[derive(Debug, Clone)]
pub struct UserPlan {
    from: usize,
    months: usize,
    holdings: usize,
    lefts: usize,
    recents: usize,
    values: Vec<f64>,
    /// P(accept) per contract and remembered-offer count.
    accept: Vec<f64>,
    /// P(churn) per (holding a contract or not) and remembered-offer count at the close.
    churn: [Vec<f64>; 2],
    prices: Prices,
}

/// Churn's fatigue at a month's close, from the offer bits of the months before (`recent`) and
/// whether the user was offered something this month: this month's offer and those of the
/// `window − 1` months before.
#[inline]
pub(super) fn remembered_at_close(recent: usize, offered: bool, window: usize) -> usize {
    (recent & ((1 << (window - 1)) - 1)).count_ones() as usize + usize::from(offered)
}

/// The offer bits of the months before next month's decision.
#[inline]
pub(super) fn next_recent(recent: usize, offered: bool, window: usize) -> usize {
    ((recent << 1) | usize::from(offered)) & ((1 << window) - 1)
}

impl UserPlan {
    /// Solves `view`'s user from `from` (its arrival or the current month) to the end, with the
    /// acceptance its latent shift gives.
    pub fn solve(model: &LifetimeModel, view: &UserView, from: usize, prices: Prices) -> Self {
        let window = model.config().fatigue.window_months as usize;
        let accept = (0..model.config().contracts.len())
            .flat_map(|c| (0..=window).map(move |r| (c, r)))
            .map(|(c, r)| model.accept_prob(view.user, c, view.shift, r as u32))
            .collect();
        Self::solve_with(model, view.user, accept, from, prices)
    }

    /// Solves `user` from `from` to the end with the acceptance probabilities `accept`, per
    /// contract and remembered-offer count (contract-major, as
    /// [`super::UserLikelihood::predictive`] gives them): a planner's belief frozen as it is now.
    pub fn solve_with(model: &LifetimeModel, user: u32, accept: Vec<f64>, from: usize, prices: Prices) -> Self {
        let config = model.config();
        let k = config.contracts.len();
        let window = config.fatigue.window_months as usize;
        let lefts = config.contracts.iter().map(|c| c.months as usize).max().unwrap_or(0) + 1;
        let mut plan = Self {
            from,
            months: config.months,
            holdings: k + 1,
            lefts,
            recents: 1 << window,
            values: Vec::new(),
            accept,
            churn: [false, true].map(|in_contract| {
                (0..=window)
                    .map(|r| model.churn_prob(user, in_contract, r as u32))
                    .collect()
            }),
            prices,
        };
        plan.values = vec![0.0; (plan.months + 1 - from) * plan.holdings * plan.lefts * plan.recents];
        for month in (from..plan.months).rev() {
            for h in 0..plan.holdings {
                for l in 0..plan.lefts {
                    if (h == 0) != (l == 0) {
                        continue;
                    }
                    for r in 0..plan.recents {
                        let v = plan.decide(model, month, h, l, r).0;
                        let i = plan.index(month, h, l, r);
                        plan.values[i] = v;
                    }
                }
            }
        }
        plan
    }

    fn index(&self, month: usize, h: usize, l: usize, r: usize) -> usize {
        (((month - self.from) * self.holdings + h) * self.lefts + l) * self.recents + r
    }

    /// V at the start of `month`'s decisions.
    pub fn value(&self, month: usize, h: usize, l: usize, r: usize) -> f64 {
        if month >= self.months {
            0.0
        } else {
            self.values[self.index(month, h, l, r)]
        }
    }

    /// The value of the user's state as given.
    pub fn value_of(&self, month: usize, view: &UserView) -> f64 {
        self.value(
            month,
            usize::from(view.holding),
            usize::from(view.months_left),
            usize::from(view.recent),
        )
    }

    /// After the month's decision (`offered`: whether it was an offer): the month's margin,
    /// then churn, contracts running down and fatigue moving on; then the next month.
    fn month_end(&self, model: &LifetimeModel, month: usize, h: usize, l: usize, r: usize, offered: bool) -> f64 {
        let window = self.recents.trailing_zeros() as usize;
        let hazard = self.churn[usize::from(h > 0)][remembered_at_close(r, offered, window)];
        let (h2, l2) = run_down(h, l);
        model.margin(h) + (1.0 - hazard) * self.value(month + 1, h2, l2, next_recent(r, offered, window))
    }

    /// The best action at a decision (0 when the user is not up) and its value, over the
    /// actions `allowed` (bit a: action a).
    fn decide_among(
        &self,
        model: &LifetimeModel,
        month: usize,
        h: usize,
        l: usize,
        r: usize,
        allowed: u16,
    ) -> (f64, usize) {
        let stay = self.month_end(model, month, h, l, r, false);
        if !up(model, h, l) {
            return (stay, 0);
        }
        let remembered = (r as u32).count_ones() as usize;
        let window = self.recents.trailing_zeros() as usize;
        let mut best = (stay, 0);
        for (k, c) in model.config().contracts.iter().enumerate() {
            if allowed & (1 << (k + 1)) == 0 {
                continue;
            }
            let p = self.accept[k * (window + 1) + remembered];
            let accepted = self.month_end(model, month, k + 1, c.months as usize, r, true)
                - if c.uses_stock { self.prices.stock } else { 0.0 };
            let refused = self.month_end(model, month, h, l, r, true);
            let q = -c.offer_cost * (1.0 + self.prices.budget) + p * accepted + (1.0 - p) * refused;
            if q > best.0 {
                best = (q, k + 1);
            }
        }
        best
    }

    fn decide(&self, model: &LifetimeModel, month: usize, h: usize, l: usize, r: usize) -> (f64, usize) {
        self.decide_among(model, month, h, l, r, u16::MAX)
    }

    /// The best action for `view` in `month` among the actions `allowed`.
    pub fn best_action(&self, model: &LifetimeModel, month: usize, view: &UserView, allowed: u16) -> usize {
        self.decide_among(
            model,
            month,
            usize::from(view.holding),
            usize::from(view.months_left),
            usize::from(view.recent),
            allowed,
        )
        .1
    }
}

/// Whether a user in (holding, months left) is up for a decision.
pub(super) fn up(model: &LifetimeModel, h: usize, l: usize) -> bool {
    h == 0 || l as u32 <= model.config().renewal_window_months
}

/// (holding, months left) after a month's close: the contract runs down by a month.
#[inline]
pub(super) fn run_down(h: usize, l: usize) -> (usize, usize) {
    if h > 0 && l > 1 { (h, l - 1) } else { (0, 0) }
}

/// Resources a relaxation may spend over the rest of a campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub stock: f64,
    pub budget: f64,
}

/// Each user's value under prices, for the dual: user `i` of `0..users` at `prices`.
pub type UserValue<'a> = dyn Fn(usize, Prices) -> f64 + Sync + 'a;

/// The Lagrangian dual Σ_u V_u(prices) + prices · capacity, with each user's value from `value`
/// (the users in parallel; summed in order, so the result does not depend on the threads).
pub fn dual_of(users: usize, capacity: Capacity, prices: Prices, value: &UserValue) -> f64 {
    use rayon::prelude::*;
    let values: Vec<f64> = (0..users).into_par_iter().map(|i| value(i, prices)).collect();
    values.iter().sum::<f64>() + prices.stock * capacity.stock + prices.budget * capacity.budget
}

/// The Lagrangian dual with each user planned by [`UserPlan::solve`] on the latent shift of
/// its view, for users `views` whose planning starts at the given months.
pub fn dual(model: &LifetimeModel, views: &[(UserView, usize)], capacity: Capacity, prices: Prices) -> f64 {
    dual_of(views.len(), capacity, prices, &|i, prices| {
        let (view, from) = &views[i];
        UserPlan::solve(model, view, *from, prices).value_of(*from, view)
    })
}

/// The prices that minimise [`dual`], and the dual's value there.
pub fn minimise_dual(
    model: &LifetimeModel,
    views: &[(UserView, usize)],
    capacity: Capacity,
    rounds: usize,
) -> (Prices, f64) {
    minimise_dual_of(model, views.len(), capacity, rounds, &|i, prices| {
        let (view, from) = &views[i];
        UserPlan::solve(model, view, *from, prices).value_of(*from, view)
    })
}

/// The prices that minimise [`dual_of`] (coordinate descent with golden-section search on each
/// price; the dual is convex in the prices whatever the users' values, each being a maximum of
/// functions linear in them), and the dual's value there.
pub fn minimise_dual_of(
    model: &LifetimeModel,
    users: usize,
    capacity: Capacity,
    rounds: usize,
    value: &UserValue,
) -> (Prices, f64) {
    let config = model.config();
    let prices_budget = config.contracts.iter().any(|c| c.offer_cost > 0.0);
    let uses_stock = config.contracts.iter().any(|c| c.uses_stock);
    let f = |p: Prices| dual_of(users, capacity, p, value);
    let mut prices = Prices::default();
    for _ in 0..rounds {
        if prices_budget {
            // Per unit of offer cost: prices of order 1.
            prices.budget = minimise_from_zero(|b| f(Prices { budget: b, ..prices }), 1.0);
        }
        if uses_stock {
            // Per handset: prices of the order of a month's margin.
            prices.stock = minimise_from_zero(|s| f(Prices { stock: s, ..prices }), config.base_margin.max(1.0));
        }
    }
    // The search ends near the minimum; a price of 0 (a slack resource) is checked exactly.
    let mut value = f(prices);
    for candidate in [Prices { budget: 0.0, ..prices }, Prices { stock: 0.0, ..prices }] {
        let at = f(candidate);
        if at <= value {
            (prices, value) = (candidate, at);
        }
    }
    (prices, value)
}

/// The minimiser of a convex `f` on [0, ∞): 0 when `f` rises from there, else a bracket found
/// by doubling from `scale` until `f` stops falling, then golden-section search in it.
fn minimise_from_zero(f: impl Fn(f64) -> f64, scale: f64) -> f64 {
    let (mut below, mut best, mut at_best) = (0.0, 0.0, f(0.0));
    // A slack resource: the dual rises from a price of 0 on.
    if f(scale * 1e-3) >= at_best {
        return 0.0;
    }
    let mut next = scale;
    for _ in 0..60 {
        let at_next = f(next);
        if at_next >= at_best {
            break;
        }
        (below, best, at_best) = (best, next, at_next);
        next *= 2.0;
    }
    golden(f, below, next)
}

/// Golden-section steps: the bracket shrinks to 0.618^12 ≈ 3e-3 of its width.
const GOLDEN_STEPS: usize = 12;

/// The minimiser of a convex `f` on [lo, hi] by golden-section search.
fn golden(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    const INV_PHI: f64 = 0.618_033_988_749_895;
    let mut a = hi - INV_PHI * (hi - lo);
    let mut b = lo + INV_PHI * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..GOLDEN_STEPS {
        if fa <= fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - INV_PHI * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + INV_PHI * (hi - lo);
            fb = f(b);
        }
    }
    (lo + hi) / 2.0
}
