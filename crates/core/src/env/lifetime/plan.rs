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
            recent: state.recent,
        }
    }
}

/// Decision-time values V(month, holding, months left, remembered offers) of one user under
/// fixed prices, from some month to the end of the campaign.
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
    /// P(churn) per (holding a contract or not) and remembered-offer count.
    churn: [Vec<f64>; 2],
    prices: Prices,
}

impl UserPlan {
    /// Solves `view`'s user from `from` (its arrival or the current month) to the end.
    pub fn solve(model: &LifetimeModel, view: &UserView, from: usize, prices: Prices) -> Self {
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
            accept: (0..k)
                .flat_map(|c| (0..=window).map(move |r| (c, r)))
                .map(|(c, r)| model.accept_prob(view.user, c, view.shift, r as u32))
                .collect(),
            churn: [false, true].map(|in_contract| {
                (0..=window + 1)
                    .map(|r| model.churn_prob(view.user, in_contract, r as u32))
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

    /// After the month's decision: the month's margin, then churn, contracts running down and
    /// fatigue moving on; then the next month.
    fn month_end(&self, model: &LifetimeModel, month: usize, h: usize, l: usize, r: usize) -> f64 {
        let hazard = self.churn[usize::from(h > 0)][(r as u32).count_ones() as usize];
        let (h2, l2) = match (h, l) {
            (0, _) => (0, 0),
            (_, 1) => (0, 0),
            (h, l) => (h, l - 1),
        };
        let r2 = (r << 1) & (self.recents - 1);
        model.margin(h) + (1.0 - hazard) * self.value(month + 1, h2, l2, r2)
    }

    /// Whether a user in (holding, months left) is up for a decision.
    fn up(model: &LifetimeModel, h: usize, l: usize) -> bool {
        h == 0 || l as u32 <= model.config().renewal_window_months
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
        let stay = self.month_end(model, month, h, l, r);
        if !Self::up(model, h, l) {
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
            let accepted = self.month_end(model, month, k + 1, c.months as usize, r | 1)
                - if c.uses_stock { self.prices.stock } else { 0.0 };
            let refused = self.month_end(model, month, h, l, r | 1);
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

/// Resources a relaxation may spend over the rest of a campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub stock: f64,
    pub budget: f64,
}

/// The Lagrangian dual: Σ_u V_u(prices) + prices · capacity, for users `views` whose planning
/// starts at the given months.
pub fn dual(model: &LifetimeModel, views: &[(UserView, usize)], capacity: Capacity, prices: Prices) -> f64 {
    let users: f64 = views
        .iter()
        .map(|(view, from)| UserPlan::solve(model, view, *from, prices).value_of(*from, view))
        .sum();
    users + prices.stock * capacity.stock + prices.budget * capacity.budget
}

/// The prices that minimise the dual (coordinate descent with golden-section search on each
/// price; the dual is convex in the prices), and the dual's value there.
pub fn minimise_dual(
    model: &LifetimeModel,
    views: &[(UserView, usize)],
    capacity: Capacity,
    rounds: usize,
) -> (Prices, f64) {
    let config = model.config();
    let top_margin = config
        .contracts
        .iter()
        .map(|c| c.margin)
        .fold(config.base_margin, f64::max);
    let horizon_value = top_margin * config.months as f64;
    let cheapest = config
        .contracts
        .iter()
        .map(|c| c.offer_cost)
        .filter(|c| *c > 0.0)
        .fold(f64::INFINITY, f64::min);
    let stock_max = horizon_value;
    let budget_max = if cheapest.is_finite() {
        horizon_value / cheapest
    } else {
        0.0
    };
    let uses_stock = config.contracts.iter().any(|c| c.uses_stock);
    let f = |p: Prices| dual(model, views, capacity, p);
    let mut prices = Prices::default();
    for _ in 0..rounds {
        if budget_max > 0.0 {
            prices.budget = golden(|b| f(Prices { budget: b, ..prices }), 0.0, budget_max);
        }
        if uses_stock {
            prices.stock = golden(|s| f(Prices { stock: s, ..prices }), 0.0, stock_max);
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

/// The minimiser of a convex `f` on [lo, hi] by golden-section search.
fn golden(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    const INV_PHI: f64 = 0.618_033_988_749_895;
    let mut a = hi - INV_PHI * (hi - lo);
    let mut b = lo + INV_PHI * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..30 {
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
