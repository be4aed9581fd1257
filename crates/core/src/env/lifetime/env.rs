//! The customer-lifetime env itself: a campaign of months over a cohort, one step per decision.
//!
//! Randomness is drawn per user: each cohort slot has its own stream, which draws the user's
//! latent at reset and then, every month the user is alive, one uniform for an offer's answer
//! and one for churn, whatever the policy does. Two policies on the same campaign and seed
//! therefore meet the same latents and the same draws for every user and month (common random
//! numbers), not only as long as their actions agree.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};

use super::super::config::MAX_CONTRACTS;
use super::super::contract_choice::{ActionMask, EnvError, Observation, ResetInfo, Split, Step, StepInfo};
use super::super::features::bucket;
use super::config::MAX_LIFETIME_CONTRACTS;
use super::model::LifetimeModel;

/// What the env knows of one user of the cohort. Only the latent `shift` is hidden from agents.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UserState {
    /// Arrived and not churned.
    pub alive: bool,
    /// Left for good (stops paying).
    pub churned: bool,
    /// 0: no contract; k: contract k − 1.
    pub holding: u8,
    /// Months left of the contract held (0 without one).
    pub months_left: u8,
    /// Bit i set: an offer i months ago (bit 0: this month); bits 0 to the fatigue window kept.
    pub recent: u8,
    /// Offers received so far in the campaign.
    pub offers: u8,
    /// Offers accepted so far.
    pub accepts: u8,
    /// Offers of each contract so far.
    pub offers_of: [u8; MAX_LIFETIME_CONTRACTS],
    /// Refusals of each contract so far.
    pub refusals_of: [u8; MAX_LIFETIME_CONTRACTS],
    /// Month of arrival.
    pub arrival: u8,
    /// The latent propensity's log-odds shift (drawn at reset, never observed).
    pub shift: f64,
}

impl UserState {
    /// Offers that weigh on the acceptance of an offer made now: those of the `window` months
    /// before this one.
    #[inline]
    pub fn remembered(&self) -> u32 {
        (self.recent >> 1).count_ones()
    }

    /// Offers that weigh on churn at this month's close: this month's and those of the
    /// `window − 1` months before, so `window` months in all.
    #[inline]
    pub fn remembered_at_close(&self, window: u32) -> u32 {
        (self.recent & ((1u8 << window) - 1)).count_ones()
    }

    /// The offer bits of the `window` months before this one (bit j − 1: an offer j months ago),
    /// what fatigue will remember of the past at this month's decision and after.
    #[inline]
    pub fn previous_months(&self) -> u8 {
        self.recent >> 1
    }
}

/// One offer a user answered: what it was, the fatigue it met and the answer. A user's answers
/// are all a policy that does not see the latent can learn it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response {
    /// The contract offered (0-based).
    pub contract: u8,
    /// Offers remembered by fatigue when it was made ([`UserState::remembered`]).
    pub remembered: u8,
    /// Whether the user took it.
    pub accepted: bool,
}

/// The customer-lifetime env. See the module documentation for spaces, rewards and episode end.
#[derive(Debug, Clone)]
pub struct CustomerLifetimeEnv {
    model: Arc<LifetimeModel>,
    split: Split,
    /// Draws campaign starts and the seeds of the users' streams.
    rng: ChaCha8Rng,
    start: usize,
    cohort: Vec<u32>,
    users: Vec<UserState>,
    /// Each slot's own stream (latent, answers, churn).
    streams: Vec<ChaCha8Rng>,
    /// Each slot's uniform for an offer's answer this month.
    answer_draws: Vec<f64>,
    /// Each slot's own margins since the reset (the per-user ledger).
    ledger: Vec<f64>,
    /// Each slot's answers, `months` places per slot (the first `offers` of them filled).
    responses: Vec<Response>,
    month: usize,
    /// Cohort slots up for a decision this month, in cohort order, and the next one's position.
    queue: Vec<u16>,
    next: usize,
    stock: u32,
    budget: f64,
    t: u32,
    /// Revenue of months closed since the last reward.
    pending: f64,
    done: bool,
}

impl CustomerLifetimeEnv {
    /// An env over `split`'s users; call [`Self::reset`] before stepping.
    pub fn new(model: Arc<LifetimeModel>, split: Split, seed: u64) -> Self {
        Self {
            model,
            split,
            rng: ChaCha8Rng::seed_from_u64(seed),
            start: 0,
            cohort: Vec::new(),
            users: Vec::new(),
            streams: Vec::new(),
            answer_draws: Vec::new(),
            ledger: Vec::new(),
            responses: Vec::new(),
            month: 0,
            queue: Vec::new(),
            next: 0,
            stock: 0,
            budget: 0.0,
            t: 0,
            pending: 0.0,
            done: true,
        }
    }

    pub fn model(&self) -> &Arc<LifetimeModel> {
        &self.model
    }

    /// Starts a campaign at a position of the split drawn uniformly (reseeding first when `seed`
    /// is given).
    pub fn reset(&mut self, seed: Option<u64>) -> (Observation, ResetInfo) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let start = self.rng.random_range(0..self.model.split(self.split).len());
        self.start_at(start)
    }

    /// Starts campaign `index` of the split: its cohort is fixed (users `index · cohort` on, in
    /// split order, so campaigns below [`LifetimeModel::campaigns`] are disjoint); latents,
    /// answers and churn are drawn from streams seeded by `seed`.
    pub fn reset_campaign(&mut self, index: usize, seed: u64) -> (Observation, ResetInfo) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self.start_at(index * self.model.config().cohort)
    }

    fn start_at(&mut self, start: usize) -> (Observation, ResetInfo) {
        let config = self.model.config();
        let users = self.model.split(self.split);
        self.start = start;
        self.cohort = (0..config.cohort).map(|i| users[(start + i) % users.len()]).collect();
        let streams_seed = self.rng.random::<u64>();
        self.streams = (0..config.cohort)
            .map(|slot| {
                let mut stream = ChaCha8Rng::seed_from_u64(streams_seed);
                stream.set_stream(slot as u64);
                stream
            })
            .collect();
        let latent = Beta::new(config.latent.alpha, config.latent.beta).expect("validated parameters");
        self.users = (0..config.cohort)
            .map(|i| UserState {
                arrival: self.model.arrival_month(i) as u8,
                shift: config.latent.shift(latent.sample(&mut self.streams[i])),
                ..UserState::default()
            })
            .collect();
        self.answer_draws = vec![0.0; config.cohort];
        self.ledger = vec![0.0; config.cohort];
        self.responses = vec![Response::default(); config.cohort * config.months];
        self.stock = config.stock.initial;
        self.budget = config.budget;
        self.t = 0;
        self.pending = 0.0;
        self.done = false;
        self.month = 0;
        self.open_month();
        self.advance();
        let info = ResetInfo {
            campaign_start: start,
            split: self.split,
        };
        (self.observe(), info)
    }

    /// The users of the campaign, in cohort order.
    pub fn cohort(&self) -> &[u32] {
        &self.cohort
    }

    /// The state of every user of the cohort (the latents included: for references and tests).
    pub fn users(&self) -> &[UserState] {
        &self.users
    }

    /// Each slot's own margins since the reset: what the months closed so far paid for that
    /// user alone. Over the cohort they add up to the return without the offers' costs.
    pub fn ledger(&self) -> &[f64] {
        &self.ledger
    }

    /// The answers of the user in `slot` so far, in order.
    pub fn responses(&self, slot: usize) -> &[Response] {
        let months = self.model.config().months;
        let start = slot * months;
        &self.responses[start..start + usize::from(self.users[slot].offers)]
    }

    /// The month of the current decision.
    pub fn month(&self) -> usize {
        self.month
    }

    /// Handsets in stock.
    pub fn stock(&self) -> u32 {
        self.stock
    }

    /// Offer budget left.
    pub fn budget(&self) -> f64 {
        self.budget
    }

    /// The cohort slot of the user the current decision is about.
    pub fn current(&self) -> Option<usize> {
        (!self.done).then(|| usize::from(self.queue[self.next]))
    }

    /// Actions allowed now: "no offer" always; a contract while the budget pays its offer and,
    /// if it needs one, a handset is in stock.
    pub fn mask(&self) -> ActionMask {
        let mut bits = 1u16;
        for (k, c) in self.model.config().contracts.iter().enumerate() {
            if self.budget >= c.offer_cost && (!c.uses_stock || self.stock > 0) {
                bits |= 1 << (k + 1);
            }
        }
        ActionMask(bits)
    }

    /// Takes `action` (0: no offer, k: offer contract k − 1) for the current user.
    pub fn step(&mut self, action: usize) -> Result<Step, EnvError> {
        let slot = self.current().ok_or(EnvError::EpisodeOver)?;
        let mask = self.mask();
        if !mask.contains(action) {
            return Err(EnvError::InvalidAction {
                action,
                allowed: mask.iter().collect(),
            });
        }
        let mut cost = 0.0;
        let mut accepted = false;
        let mut handset = false;
        if action > 0 {
            let (k, months) = (action - 1, self.model.config().months);
            let contract = &self.model.config().contracts[k];
            cost = contract.offer_cost;
            let user = self.users[slot];
            let remembered = user.remembered();
            let p = self.model.accept_prob(self.cohort[slot], k, user.shift, remembered);
            accepted = self.answer_draws[slot] < p;
            self.budget -= cost;
            self.responses[slot * months + usize::from(user.offers)] = Response {
                contract: k as u8,
                remembered: remembered as u8,
                accepted,
            };
            let u = &mut self.users[slot];
            u.recent |= 1;
            u.offers += 1;
            u.offers_of[k] += 1;
            if accepted {
                u.accepts += 1;
                u.holding = action as u8;
                u.months_left = contract.months as u8;
                handset = contract.uses_stock;
                if handset {
                    self.stock -= 1;
                }
            } else {
                u.refusals_of[k] += 1;
            }
        }
        self.t += 1;
        self.next += 1;
        self.advance();
        Ok(Step {
            obs: self.observe(),
            reward: std::mem::take(&mut self.pending) - cost,
            terminated: self.done,
            truncated: false,
            info: StepInfo {
                accepted,
                expected_reward: -cost,
                slot: slot as u32,
                offer_cost: cost,
                handset,
            },
        })
    }

    /// Moves on to the next decision, closing months (and the campaign) on the way.
    fn advance(&mut self) {
        while self.next == self.queue.len() {
            self.close_month();
            self.month += 1;
            if self.month == self.model.config().months {
                self.done = true;
                return;
            }
            self.open_month();
        }
    }

    /// Replenishes the stock (after the first month), lets the month's arrivals in and lists the
    /// users up for a decision.
    fn open_month(&mut self) {
        let config = self.model.config();
        if self.month > 0 {
            self.stock += config.stock.monthly;
        }
        self.queue.clear();
        self.next = 0;
        for (slot, u) in self.users.iter_mut().enumerate() {
            if usize::from(u.arrival) == self.month {
                u.alive = true;
            }
            if u.alive {
                // Drawn whether or not the user is offered anything (common random numbers).
                self.answer_draws[slot] = self.streams[slot].random::<f64>();
                if u.holding == 0 || u32::from(u.months_left) <= config.renewal_window_months {
                    self.queue.push(slot as u16);
                }
            }
        }
    }

    /// Every user alive pays the month's margin (into the ledger), then may churn; contracts run
    /// down and fatigue moves on by a month.
    fn close_month(&mut self) {
        let window = self.model.config().fatigue.window_months;
        let kept = (1u16 << (window + 1)) - 1;
        for (slot, u) in self.users.iter_mut().enumerate() {
            if !u.alive {
                continue;
            }
            let margin = self.model.margin(usize::from(u.holding));
            self.pending += margin;
            self.ledger[slot] += margin;
            let hazard = self
                .model
                .churn_prob(self.cohort[slot], u.holding > 0, u.remembered_at_close(window));
            if self.streams[slot].random::<f64>() < hazard {
                u.alive = false;
                u.churned = true;
            }
            if u.holding > 0 {
                u.months_left -= 1;
                if u.months_left == 0 {
                    u.holding = 0;
                }
            }
            u.recent = ((u16::from(u.recent) << 1) & kept) as u8;
        }
    }

    /// The observation of the current decision (after the last one: the final observation of the
    /// last user, with only "no offer" allowed).
    pub fn observe(&self) -> Observation {
        let config = self.model.config();
        let slot = self.current().unwrap_or(usize::from(*self.queue.last().unwrap_or(&0)));
        let user = self.cohort[slot];
        let u = &self.users[slot];
        let b = &config.state;
        let months = config.months as f64;
        let progress = self.month as f64 / months;
        let budget_share = if config.budget > 0.0 {
            self.budget / config.budget
        } else {
            0.0
        };
        let history = if u.accepts > 0 { 2 } else { usize::from(u.offers > 0) };
        let state = [
            (usize::from(u.holding), config.n_actions()),
            ((u.remembered() as usize).min(2), 3),
            (history, 3),
            (self.model.age_bucket(user), b.age_edges_years.len() + 1),
            (bucket(f64::from(self.stock), &b.stock_edges), b.stock_edges.len() + 1),
            (bucket(budget_share, &b.budget_edges), b.budget_edges.len() + 1),
            (bucket(progress, &b.progress_edges), b.progress_edges.len() + 1),
        ]
        .into_iter()
        .fold(0, |index, (value, size)| index * size + value);
        let refusals = u.offers - u.accepts;
        let user_state = [
            (usize::from(u.holding), config.n_actions()),
            (usize::from(u.previous_months()), 1 << config.fatigue.window_months),
            (usize::from(refusals.min(2)), 3),
            (self.model.age_bucket(user), b.age_edges_years.len() + 1),
            (self.model.seniority_bucket(user), b.seniority_edges_years.len() + 1),
            (self.month.min(config.months - 1), config.months),
        ]
        .into_iter()
        .fold(0, |index, (value, size)| index * size + value);
        let mut dense = [0.0f32; super::super::config::MAX_DENSE];
        let n = write_dense(&self.model, user, u, self.month, self.stock, budget_share, &mut dense);
        let mask = if self.done { ActionMask(1) } else { self.mask() };
        Observation::new(user, self.t, state as u32, mask, [0; MAX_CONTRACTS], &dense[..n])
            .with_user_state(user_state as u32)
    }
}

/// Names of the dense observation's entries: the user's own first, the shared resources last.
pub fn dense_names(model: &LifetimeModel) -> Vec<String> {
    let config = model.config();
    let per_contract = |what: &'static str| config.contracts.iter().map(move |c| format!("{what}.{}", c.name));
    model
        .feature_names()
        .iter()
        .cloned()
        .chain(std::iter::once("holding.none".to_owned()))
        .chain(config.contracts.iter().map(|c| format!("holding.{}", c.name)))
        .chain(["months_left".to_owned(), "remembered_offers".to_owned()])
        .chain((1..=config.fatigue.window_months).map(|j| format!("offered_{j}m_ago")))
        .chain(per_contract("offers"))
        .chain(per_contract("refusals"))
        .chain(
            [
                "offers",
                "accepts",
                "accept_rate_posterior",
                "months_since_arrival",
                "progress",
                "stock",
                "budget_left",
            ]
            .map(str::to_owned),
        )
        .collect()
}

/// Writes the dense observation into `out`, returning its length.
fn write_dense(
    model: &LifetimeModel,
    user: u32,
    u: &UserState,
    month: usize,
    stock: u32,
    budget_share: f64,
    out: &mut [f32],
) -> usize {
    let config = model.config();
    let months = config.months as f32;
    let k = config.contracts.len();
    let window = config.fatigue.window_months;
    let longest = config.contracts.iter().map(|c| c.months).max().unwrap_or(1) as f32;
    let l = &config.latent;
    let posterior = (l.alpha + f64::from(u.accepts)) / (l.alpha + l.beta + f64::from(u.offers));
    let stock_scale = (config.stock.initial + config.stock.monthly).max(1) as f32;
    let previous = u.previous_months();
    let values = model
        .features(user)
        .iter()
        .map(|&x| x as f32)
        .chain((0..config.n_actions()).map(|h| f32::from(u8::from(usize::from(u.holding) == h))))
        .chain([
            f32::from(u.months_left) / longest,
            u.remembered() as f32 / window as f32,
        ])
        .chain((0..window).map(|j| f32::from(previous >> j & 1)))
        .chain(u.offers_of[..k].iter().map(|&n| f32::from(n) / months))
        .chain(u.refusals_of[..k].iter().map(|&n| f32::from(n) / months))
        .chain([
            f32::from(u.offers) / months,
            f32::from(u.accepts) / months,
            posterior as f32,
            (month.saturating_sub(usize::from(u.arrival))) as f32 / months,
            month as f32 / months,
            stock as f32 / stock_scale,
            budget_share as f32,
        ]);
    let mut n = 0;
    for (slot, value) in out.iter_mut().zip(values) {
        *slot = value;
        n += 1;
    }
    n
}
