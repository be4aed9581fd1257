//! A user's own problem under resource prices, planned over the posterior of the latent: the
//! Bayes-adaptive dynamic programme, which values an offer also for what its answer will tell.
//!
//! The state is (month, holding, months left, offers of the months before, belief); the belief
//! is the grid posterior ([`Belief`]) after the user's answers so far and those the plan
//! supposes. The search is an expectimax over the answers, memoised on the state, with beliefs
//! that hold the same answers (in any order) shared. A plan may look ahead through every answer
//! there can be (exact; the tests compare it with a plain recursion), or through at most
//! `offers` of them, after which it ends one of two ways ([`Lookahead`]): with no more offers (a
//! plan a policy can follow: a lower value) or with the latent revealed (an upper value: knowing
//! θ is worth at least as much as learning it, so bounds built on it remain bounds).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::belief::{Belief, ThetaGrid, UserLikelihood};
use super::model::LifetimeModel;
use super::plan::{Prices, UserPlan, UserView, next_recent, remembered_at_close, run_down, up};

/// How a plan that looks ahead through a limited number of answers ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookahead {
    /// Through every answer there can be: the exact Bayes-adaptive value.
    Exact,
    /// Through `offers` answers, then no more offers: a lower value, and a plan to follow.
    ThenNoOffers { offers: usize },
    /// Through `offers` answers, then the latent revealed: the posterior mean of each grid
    /// point's full-information value, an upper value.
    ThenRevealed { offers: usize },
}

impl Lookahead {
    /// Answers the search looks through.
    fn offers(self) -> usize {
        match self {
            Self::Exact => usize::MAX,
            Self::ThenNoOffers { offers } | Self::ThenRevealed { offers } => offers,
        }
    }
}

/// A belief the search reached: the posterior, the supposed answers it holds (sorted codes),
/// the predictive acceptance of every (contract, remembered offers),
/// and its children by answer, created when first reached.
#[derive(Debug, Clone)]
struct Node {
    belief: Belief,
    answers: Vec<u8>,
    predictive: Vec<f64>,
    children: Vec<u32>,
}

const NO_CHILD: u32 = u32::MAX;
/// The node standing for "no more offers": its values do not depend on the belief.
const RIDE_OUT: u32 = (1 << 24) - 1;

/// The search for one user, from one month on, under fixed prices.
#[derive(Debug)]
pub struct BeliefPlan<'a> {
    model: &'a LifetimeModel,
    grid: &'a ThetaGrid,
    likelihood: &'a UserLikelihood,
    from: usize,
    prices: Prices,
    lookahead: Lookahead,
    window: usize,
    levels: usize,
    churn: [Vec<f64>; 2],
    nodes: Vec<Node>,
    by_answers: HashMap<Vec<u8>, u32>,
    memo: HashMap<u64, f64, Fx>,
    /// Each grid point's full-information plan from `from` on (for [`Lookahead::ThenRevealed`]).
    revealed: Vec<UserPlan>,
}

impl<'a> BeliefPlan<'a> {
    /// A plan for the user of `likelihood` from `from` on, who is believed to be as `belief`
    /// says now.
    pub fn new(
        model: &'a LifetimeModel,
        grid: &'a ThetaGrid,
        likelihood: &'a UserLikelihood,
        belief: Belief,
        from: usize,
        prices: Prices,
        lookahead: Lookahead,
    ) -> Self {
        let (config, user) = (model.config(), likelihood.user());
        let window = config.fatigue.window_months as usize;
        let mut plan = Self {
            model,
            grid,
            likelihood,
            from,
            prices,
            lookahead,
            window,
            levels: window + 1,
            churn: [false, true].map(|in_contract| {
                (0..=window)
                    .map(|r| model.churn_prob(user, in_contract, r as u32))
                    .collect()
            }),
            nodes: Vec::new(),
            by_answers: HashMap::default(),
            memo: HashMap::default(),
            revealed: Vec::new(),
        };
        plan.add_node(belief, Vec::new());
        plan
    }

    fn add_node(&mut self, belief: Belief, answers: Vec<u8>) -> u32 {
        let id = self.nodes.len() as u32;
        assert!(id < RIDE_OUT, "a plan's beliefs fit its keys");
        let answer_kinds = self.model.config().contracts.len() * self.levels * 2;
        self.nodes.push(Node {
            predictive: self.likelihood.predictive(&belief),
            belief,
            answers: answers.clone(),
            children: vec![NO_CHILD; answer_kinds],
        });
        self.by_answers.insert(answers, id);
        id
    }

    /// The belief after `node`'s answers and one more (`contract`, met with `remembered`
    /// offers, `accepted` or not).
    fn child(&mut self, node: u32, contract: usize, remembered: usize, accepted: bool) -> u32 {
        let answer = (contract * self.levels + remembered) * 2 + usize::from(accepted);
        let known = self.nodes[node as usize].children[answer];
        if known != NO_CHILD {
            return known;
        }
        let parent = &self.nodes[node as usize];
        let mut answers = parent.answers.clone();
        let at = answers.partition_point(|&a| a <= answer as u8);
        answers.insert(at, answer as u8);
        let id = match self.by_answers.get(&answers) {
            Some(&id) => id,
            None => {
                let belief = parent
                    .belief
                    .update(self.likelihood.accept(contract, remembered), accepted);
                self.add_node(belief, answers)
            }
        };
        self.nodes[node as usize].children[answer] = id;
        id
    }

    /// The value at the start of `month`'s decisions of the user as `view` has them (holding,
    /// months left, offers of the months before).
    pub fn value(&mut self, month: usize, view: &UserView) -> f64 {
        self.value_at(
            month,
            usize::from(view.holding),
            usize::from(view.months_left),
            usize::from(view.recent),
            0,
        )
    }

    /// The best action for `view` in `month` among the actions `allowed` (bit a: action a),
    /// and its value.
    pub fn best_action(&mut self, month: usize, view: &UserView, allowed: u16) -> (usize, f64) {
        let (value, action) = self.decide(
            month,
            usize::from(view.holding),
            usize::from(view.months_left),
            usize::from(view.recent),
            0,
            allowed,
        );
        (action, value)
    }

    fn value_at(&mut self, month: usize, h: usize, l: usize, r: usize, node: u32) -> f64 {
        if month >= self.model.config().months {
            return 0.0;
        }
        // The state packed into one key: node (24 bits) · month (6) · holding (4) · months
        // left (6) · offer bits (7). The env's limits keep each within its field: months ≤ 36,
        // holdings ≤ 9, months left ≤ 36, a fatigue window ≤ 6 months.
        debug_assert!(
            month < 64 && h < 16 && l < 64 && r < 128,
            "a state beyond the key's fields"
        );
        let key = (u64::from(node) << 23) | ((month as u64) << 17) | ((h as u64) << 13) | ((l as u64) << 7) | r as u64;
        if let Some(&v) = self.memo.get(&key) {
            return v;
        }
        let v = self.decide(month, h, l, r, node, u16::MAX).0;
        self.memo.insert(key, v);
        v
    }

    /// The month's close after the decision: margin, churn, contracts and fatigue moving on.
    fn month_end(&mut self, month: usize, h: usize, l: usize, r: usize, offered: bool, node: u32) -> f64 {
        let hazard = self.churn[usize::from(h > 0)][remembered_at_close(r, offered, self.window)];
        let (h2, l2) = run_down(h, l);
        let next = self.value_at(month + 1, h2, l2, next_recent(r, offered, self.window), node);
        self.model.margin(h) + (1.0 - hazard) * next
    }

    /// The best of the `allowed` actions and its value (0, "no offer", when the user is not up).
    fn decide(&mut self, month: usize, h: usize, l: usize, r: usize, node: u32, allowed: u16) -> (f64, usize) {
        if node != RIDE_OUT && self.nodes[node as usize].answers.len() >= self.lookahead.offers() {
            match self.lookahead {
                Lookahead::ThenNoOffers { .. } => return (self.value_at(month, h, l, r, RIDE_OUT), 0),
                Lookahead::ThenRevealed { .. } => return (self.revealed_value(month, h, l, r, node), 0),
                Lookahead::Exact => unreachable!("an exact search looks through every answer"),
            }
        }
        let stay = self.month_end(month, h, l, r, false, node);
        if node == RIDE_OUT || !up(self.model, h, l) {
            return (stay, 0);
        }
        let remembered = (r as u32).count_ones() as usize;
        let (model, prices) = (self.model, self.prices);
        let mut best = (stay, 0);
        for (k, c) in model.config().contracts.iter().enumerate() {
            if allowed & (1 << (k + 1)) == 0 {
                continue;
            }
            let p = self.nodes[node as usize].predictive[k * self.levels + remembered];
            let (yes, no) = (
                self.child(node, k, remembered, true),
                self.child(node, k, remembered, false),
            );
            let accepted = self.month_end(month, k + 1, c.months as usize, r, true, yes)
                - if c.uses_stock { prices.stock } else { 0.0 };
            let refused = self.month_end(month, h, l, r, true, no);
            let q = -c.offer_cost * (1.0 + prices.budget) + p * accepted + (1.0 - p) * refused;
            if q > best.0 {
                best = (q, k + 1);
            }
        }
        best
    }

    /// The posterior mean of the value with the latent known, at a belief the search ends at.
    fn revealed_value(&mut self, month: usize, h: usize, l: usize, r: usize, node: u32) -> f64 {
        if self.revealed.is_empty() {
            let (model, user, from, prices) = (self.model, self.likelihood.user(), self.from, self.prices);
            self.revealed = self
                .grid
                .shifts()
                .iter()
                .map(|&shift| UserPlan::solve(model, &UserView::fresh(user, shift), from, prices))
                .collect();
        }
        let revealed = &self.revealed;
        self.nodes[node as usize]
            .belief
            .expect(|g| revealed[g].value(month, h, l, r))
    }
}

/// A multiplicative hash of one `u64`, for the search's tables (the keys are packed states:
/// std's default SipHash would cost more than the arithmetic it indexes).
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

type Fx = BuildHasherDefault<FxHasher>;

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
