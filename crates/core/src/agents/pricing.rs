//! Prices of the shared resources for per-user learners: the Lagrange multipliers of the weakly
//! coupled decomposition (Hawkins 2003; Adelman & Mersereau 2008; El Shar & Jiang 2023), which
//! turn a cohort's shared budget and handset stock into a price each user's own problem pays.
//!
//! A [`PriceController`] learns the prices a campaign starts with by projected dual ascent
//! across training campaigns: the dual's subgradient is the capacity minus what the greedy
//! policy asks for, so each campaign moves a price by `step × (demand / capacity − 1)`, kept
//! between 0 and the highest price the learner knows values at (its price grid's or sampling
//! range's end), where the demand is the cost of the greedy action (whatever the mask allowed)
//! at every decision. What the greedy policy asks of one resource is its choice among the
//! actions the other resource allows: an offer the empty stock forbids asks nothing of the
//! budget. Within a campaign it paces: a resource spent ahead of the plan (the share
//! spent by each month, learned from the training campaigns) costs more, one spent behind it
//! less.

use serde::{Deserialize, Serialize};

use super::{AgentRng, Diagnostics, EpsilonSchedule, InvalidHyperparameter, argmax_by};
use crate::env::lifetime::Prices;
use crate::env::{Coupling, Observation};

/// How a per-user learner prices the shared resources; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    /// The budget price a learner starts with, per unit of offer cost.
    pub initial_budget_price: f64,
    /// The handset price a learner starts with, in margin units.
    pub initial_stock_price: f64,
    /// Dual ascent on the budget price: its change per training campaign per share of the
    /// budget the greedy policy asked for beyond it.
    pub budget_step: f64,
    /// Dual ascent on the handset price, per share of the campaign's handsets asked for beyond
    /// them.
    pub stock_step: f64,
    /// Pacing: budget price added per share of the budget spent ahead of the plan (0: none).
    pub budget_pacing: f64,
    /// Pacing: handset price added per share of the handsets used ahead of the plan.
    pub stock_pacing: f64,
    /// Weight of each training campaign in the plan (the share spent by each month).
    pub plan_rate: f64,
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            initial_budget_price: 1.0,
            initial_stock_price: 0.0,
            budget_step: 0.5,
            stock_step: 10.0,
            budget_pacing: 5.0,
            stock_pacing: 50.0,
            plan_rate: 0.05,
        }
    }
}

impl PricingConfig {
    /// Checks ranges; the error names the field (under `pricing.`) and what is allowed.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        for (field, v) in [
            ("pricing.initial_budget_price", self.initial_budget_price),
            ("pricing.initial_stock_price", self.initial_stock_price),
            ("pricing.budget_step", self.budget_step),
            ("pricing.stock_step", self.stock_step),
            ("pricing.budget_pacing", self.budget_pacing),
            ("pricing.stock_pacing", self.stock_pacing),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(InvalidHyperparameter {
                    field: field.into(),
                    message: format!("must be a finite number >= 0, got {v}"),
                });
            }
        }
        if !(self.plan_rate > 0.0 && self.plan_rate <= 1.0) {
            return Err(InvalidHyperparameter {
                field: "pricing.plan_rate".into(),
                message: format!("must be in (0, 1], got {}", self.plan_rate),
            });
        }
        Ok(())
    }
}

/// The budget (index 0) and the handsets (1).
const RESOURCES: usize = 2;

/// Learns and paces the prices of one learner.
#[derive(Debug, Clone)]
pub struct PriceController {
    config: PricingConfig,
    coupling: Coupling,
    /// The highest price of each resource the learner knows values at.
    limits: [f64; RESOURCES],
    /// The prices a campaign starts with.
    base: [f64; RESOURCES],
    /// The planned share of each resource used by the start of each month (and at the end).
    plan: [Vec<f64>; RESOURCES],
    /// This campaign's shares used at each month's first decision (NaN: not seen yet).
    seen: [Vec<f64>; RESOURCES],
    /// What the greedy policy asked for this campaign, as shares of each resource.
    demand: [f64; RESOURCES],
    /// Offers and acceptances of each action, to expect how many handsets an offer takes.
    offers: Vec<(u64, u64)>,
}

impl PriceController {
    /// A controller for an env of `coupling`, with a linear plan, whose prices stay within
    /// `limits`.
    pub fn new(config: PricingConfig, coupling: Coupling, limits: Prices) -> Self {
        let months = coupling.months;
        let linear: Vec<f64> = (0..=months).map(|m| m as f64 / months as f64).collect();
        let limits = [limits.budget, limits.stock];
        Self {
            base: [
                config.initial_budget_price.min(limits[0]),
                config.initial_stock_price.min(limits[1]),
            ],
            limits,
            plan: [linear.clone(), linear],
            seen: [vec![f64::NAN; months + 1], vec![f64::NAN; months + 1]],
            demand: [0.0; RESOURCES],
            offers: vec![(0, 0); coupling.offer_cost.len()],
            config,
            coupling,
        }
    }

    /// The prices a campaign starts with.
    pub fn base(&self) -> Prices {
        Prices {
            budget: self.base[0],
            stock: self.base[1],
        }
    }

    fn used(&self, obs: &Observation) -> [f64; RESOURCES] {
        [self.coupling.budget_spent(obs), self.coupling.stock_used(obs)]
    }

    /// The prices at `obs`'s decision: the base prices, raised for a resource used ahead of the
    /// plan's share for the end of this month and lowered for one behind its share at the
    /// month's start.
    pub fn prices(&self, obs: &Observation) -> Prices {
        let month = self.coupling.month(obs).min(self.coupling.months - 1);
        let used = self.used(obs);
        let gains = [self.config.budget_pacing, self.config.stock_pacing];
        let [budget, stock] = std::array::from_fn(|r| {
            let (start, end) = (self.plan[r][month], self.plan[r][month + 1]);
            let ahead = used[r] - used[r].clamp(start.min(end), end.max(start));
            (self.base[r] + gains[r] * ahead).clamp(0.0, self.limits[r])
        });
        Prices { budget, stock }
    }

    /// The greedy action at `obs` among the actions its mask allows, given the learner's
    /// `values` of every action at [`Self::prices`], and what the greedy policy asks of the
    /// budget and of the stock: its choices among the actions the stock, and the budget, allow
    /// ([`Coupling::without_budget`], [`Coupling::without_stock`]).
    pub fn choose(&self, obs: &Observation, values: &[f64]) -> (usize, [usize; RESOURCES]) {
        let n = values.len();
        let masks = [
            obs.mask,
            self.coupling.without_budget(obs, n),
            self.coupling.without_stock(obs, n),
        ];
        let [allowed, budget, stock] = masks.map(|m| argmax_by(m.iter(), |a| values[a]).expect("a valid action"));
        (allowed, [budget, stock])
    }

    /// The action a learner takes at `obs` given its [`Self::choose`]: while training, with
    /// what the greedy policy asked recorded, ε-greedy around the greedy action (ε of
    /// `schedule` after `steps`); else the greedy action.
    pub fn act(
        &mut self,
        obs: &Observation,
        (greedy, wants): (usize, [usize; RESOURCES]),
        exploring: Option<(&EpsilonSchedule, u64, &mut AgentRng)>,
    ) -> usize {
        match exploring {
            Some((schedule, steps, rng)) => {
                self.record(obs, wants);
                schedule.act(steps, obs.mask, rng, || greedy)
            }
            None => greedy,
        }
    }

    /// `diagnostics` with the prices a campaign starts with now.
    pub fn diagnostics(&self, diagnostics: Diagnostics) -> Diagnostics {
        Diagnostics {
            prices: Some(self.base),
            ..diagnostics
        }
    }

    /// Records a training decision at `obs` whose greedy actions, whatever the budget and
    /// whatever the stock allowed ([`Coupling::without_budget`], [`Coupling::without_stock`]),
    /// were `wants` (budget, stock).
    pub fn record(&mut self, obs: &Observation, wants: [usize; RESOURCES]) {
        let month = self.coupling.month(obs);
        let used = self.used(obs);
        for (seen, used) in self.seen.iter_mut().zip(used) {
            if seen[month].is_nan() {
                seen[month] = used;
            }
        }
        let [budget, stock] = wants;
        self.demand[0] += self.coupling.offer_cost[budget] / self.coupling.budget.max(f64::MIN_POSITIVE);
        if self.coupling.uses_stock[stock] {
            self.demand[1] += self.acceptance(stock) / self.coupling.stock_total();
        }
    }

    /// Records an offer of `action` and whether it took a handset (from the user transitions).
    pub fn record_answer(&mut self, action: usize, handset: bool) {
        if action > 0 {
            let (offers, taken) = &mut self.offers[action];
            *offers += 1;
            *taken += u64::from(handset);
        }
    }

    /// The share of offers of `action` that took a handset so far (one half before any).
    fn acceptance(&self, action: usize) -> f64 {
        let (offers, taken) = self.offers[action];
        if offers == 0 { 0.5 } else { taken as f64 / offers as f64 }
    }

    /// After a training campaign ending at `last`: a dual ascent step on each price, and the
    /// plan moved toward this campaign's use.
    pub fn end_campaign(&mut self, last: &Observation) {
        let months = self.coupling.months;
        let used = self.used(last);
        let steps = [self.config.budget_step, self.config.stock_step];
        for r in 0..RESOURCES {
            self.base[r] = (self.base[r] + steps[r] * (self.demand[r] - 1.0)).clamp(0.0, self.limits[r]);
            self.seen[r][months] = used[r];
            let mut last_seen = 0.0;
            for (planned, seen) in self.plan[r].iter_mut().zip(&mut self.seen[r]) {
                if !seen.is_nan() {
                    last_seen = *seen;
                }
                *planned += self.config.plan_rate * (last_seen - *planned);
                *seen = f64::NAN;
            }
            self.demand[r] = 0.0;
        }
    }

    /// What the controller learned, for a checkpoint.
    pub fn learned(&self) -> LearnedPrices {
        LearnedPrices {
            base: self.base,
            plan: self.plan.clone(),
        }
    }

    /// Restores what [`Self::learned`] gave.
    pub fn restore(&mut self, learned: LearnedPrices) -> Result<(), PlanMismatch> {
        let planned = learned
            .plan
            .iter()
            .map(|p| p.len().saturating_sub(1))
            .max()
            .unwrap_or(0);
        if learned.plan.iter().any(|p| p.len() != self.coupling.months + 1) {
            return Err(PlanMismatch {
                planned,
                months: self.coupling.months,
            });
        }
        (self.base, self.plan) = (learned.base, learned.plan);
        Ok(())
    }
}

/// What a [`PriceController`] learned: the prices a campaign starts with (budget, handsets) and
/// the planned share of each used by the start of each month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedPrices {
    pub base: [f64; RESOURCES],
    pub plan: [Vec<f64>; RESOURCES],
}

/// Learned prices planned for campaigns of another length.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the prices were planned for campaigns of {planned} months; this env's last {months}")]
pub struct PlanMismatch {
    pub planned: usize,
    pub months: usize,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::env::MAX_CONTRACTS;

    /// Campaigns of 4 months, a budget of 100, offers of action 1 costing 10 and taking a
    /// handset; 8 handsets in all (2, then 2 a month).
    pub(crate) fn coupling() -> Coupling {
        let (mut offer_cost, mut uses_stock) = ([0.0; MAX_CONTRACTS], [false; MAX_CONTRACTS]);
        offer_cost[1] = 10.0;
        uses_stock[1] = true;
        Coupling {
            user_dense_len: 2,
            progress_index: 1,
            months: 4,
            budget: 100.0,
            offer_cost,
            stock_initial: 2.0,
            stock_monthly: 2.0,
            stock_scale: 4.0,
            uses_stock,
        }
    }

    /// An observation in `month` with `spent` of the budget gone and `stock` handsets left.
    fn at(month: usize, spent: f32, stock: f32) -> Observation {
        let dense = [0.0, month as f32 / 4.0, stock / 4.0, 1.0 - spent];
        Observation::new(0, 0, 0, crate::env::ActionMask(0b11), [0; MAX_CONTRACTS], &dense)
    }

    fn controller() -> PriceController {
        let config = PricingConfig {
            initial_budget_price: 1.0,
            budget_step: 0.5,
            budget_pacing: 4.0,
            plan_rate: 1.0,
            ..PricingConfig::default()
        };
        PriceController::new(
            config,
            coupling(),
            Prices {
                budget: 3.0,
                stock: 50.0,
            },
        )
    }

    #[test]
    fn dual_ascent_raises_a_price_asked_for_beyond_capacity_and_lowers_it_below() {
        let mut c = controller();
        // Twelve greedy offers at 10 each: 1.2 budgets asked for.
        for _ in 0..12 {
            c.record(&at(0, 0.0, 2.0), [1, 1]);
        }
        c.end_campaign(&at(4, 1.0, 0.0));
        assert!((c.base().budget - (1.0 + 0.5 * 0.2)).abs() < 1e-12, "{:?}", c.base());
        // Nothing asked for: one step down, then 0 at the most.
        for _ in 0..5 {
            c.end_campaign(&at(4, 0.0, 8.0));
        }
        assert_eq!(c.base().budget, 0.0);
        // Far beyond capacity: up to the limit, no further.
        for _ in 0..10 {
            for _ in 0..100 {
                c.record(&at(0, 0.0, 2.0), [1, 1]);
            }
            c.end_campaign(&at(4, 1.0, 0.0));
        }
        assert_eq!(c.base().budget, 3.0);
    }

    #[test]
    fn a_resource_spent_ahead_of_the_plan_costs_more_and_one_behind_it_less() {
        let mut c = controller();
        // One campaign that spent a quarter of the budget a month: the plan (rate 1) is its.
        for month in 0..4 {
            c.record(&at(month, month as f32 * 0.25, 2.0), [0, 0]);
        }
        c.end_campaign(&at(4, 1.0, 0.0));
        let base = c.base().budget;
        // Month 1 is planned to spend from 25% to 50%.
        assert_eq!(c.prices(&at(1, 0.4, 2.0)).budget, base, "within the month's plan");
        let ahead = c.prices(&at(1, 0.6, 2.0)).budget;
        assert!((ahead - (base + 4.0 * 0.1)).abs() < 1e-6, "{ahead} vs {base}");
        let behind = c.prices(&at(1, 0.15, 2.0)).budget;
        assert!((behind - (base - 4.0 * 0.1)).abs() < 1e-6, "{behind} vs {base}");
    }

    #[test]
    fn learned_prices_are_restored_only_for_campaigns_of_the_same_length() {
        let mut c = controller();
        let learned = c.learned();
        assert!(c.restore(learned.clone()).is_ok());
        let mut other = learned;
        other.plan = [vec![0.0; 13], vec![0.0; 13]];
        assert_eq!(c.restore(other).unwrap_err(), PlanMismatch { planned: 12, months: 4 });
    }
}
