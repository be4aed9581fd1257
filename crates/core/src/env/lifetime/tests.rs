use std::path::Path;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::env::{Campaigns, Split};
use crate::source::{Generator, generate_records};

fn default_config() -> LifetimeConfig {
    LifetimeConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envs/customer-lifetime.toml")).unwrap()
}

fn model_with(config: LifetimeConfig, users: usize) -> Arc<LifetimeModel> {
    let (records, _) = generate_records(&Generator::new("lifetime", &[]).unwrap(), users);
    Arc::new(LifetimeModel::build(config, &records).unwrap())
}

/// A small campaign: `months` months, `cohort` users all arriving at once.
fn tiny(months: usize, cohort: usize) -> LifetimeConfig {
    let mut c = default_config();
    c.months = months;
    c.cohort = cohort;
    c.arrival_months = 1;
    c
}

fn random_episode(
    env: &mut CustomerLifetimeEnv,
    rng: &mut ChaCha8Rng,
    mut check: impl FnMut(&CustomerLifetimeEnv),
) -> f64 {
    let mut total = 0.0;
    while env.current().is_some() {
        check(env);
        let allowed: Vec<usize> = env.mask().iter().collect();
        let action = allowed[rng.random_range(0..allowed.len())];
        total += env.step(action).unwrap().reward;
    }
    total
}

#[test]
fn bad_values_name_the_file_the_field_and_what_is_allowed() {
    let file = Path::new("envs/x.toml");
    let mut c = default_config();
    c.fatigue.acceptance = 0.5;
    let e = c.validate(file).unwrap_err().to_string();
    assert!(
        e.contains("envs/x.toml") && e.contains("fatigue.acceptance") && e.contains("<= 0"),
        "{e}"
    );
    let mut c = default_config();
    c.contracts[1].response.coefficients.insert("height".into(), 1.0);
    let e = c.validate(file).unwrap_err().to_string();
    assert!(
        e.contains("contracts[1].response.coefficients.height") && e.contains("age_x_seniority"),
        "{e}"
    );
    let mut c = default_config();
    c.arrival_months = 13;
    assert!(c.validate(file).unwrap_err().to_string().contains("arrival_months"));
}

#[test]
fn the_same_seed_gives_the_same_trajectory() {
    let model = model_with(default_config(), 3000);
    let run = |seed: u64| {
        let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (first, _) = env.reset(None);
        let mut trace = vec![(first.state, first.dense().to_vec(), 0.0)];
        while env.current().is_some() {
            let allowed: Vec<usize> = env.mask().iter().collect();
            let step = env.step(allowed[rng.random_range(0..allowed.len())]).unwrap();
            trace.push((step.obs.state, step.obs.dense().to_vec(), step.reward));
        }
        trace
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn stock_never_goes_negative_and_the_mask_follows_stock_and_budget() {
    let mut config = default_config();
    config.stock.initial = 2;
    config.stock.monthly = 1;
    config.budget = 300.0;
    let model = model_with(config, 3000);
    let contracts = model.config().contracts.clone();
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut saw_empty = false;
    for _ in 0..20 {
        env.reset(None);
        random_episode(&mut env, &mut rng, |env| {
            let mask = env.mask();
            saw_empty |= env.stock() == 0;
            assert!(env.stock() <= 2 + 12, "stock {} wrapped around", env.stock());
            assert!(env.budget() >= 0.0);
            for (k, c) in contracts.iter().enumerate() {
                let affordable = env.budget() >= c.offer_cost && (!c.uses_stock || env.stock() > 0);
                assert_eq!(mask.contains(k + 1), affordable, "contract {k}");
            }
            assert!(mask.contains(0));
        });
    }
    assert!(
        saw_empty,
        "the stock ran out at some point, so the mask was tested at 0"
    );
}

#[test]
fn a_user_offered_every_month_churns_more_than_one_never_offered() {
    let mut config = default_config();
    for c in &mut config.contracts {
        c.response.bias = -40.0; // nobody accepts: only fatigue differs
    }
    config.budget = 1e9;
    let model = model_with(config, 3000);
    let churned = |offer: bool| {
        let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, 3);
        (0..30)
            .map(|_| {
                env.reset(None);
                while env.current().is_some() {
                    env.step(usize::from(offer)).unwrap();
                }
                env.users().iter().filter(|u| u.churned).count()
            })
            .sum::<usize>()
    };
    let (pestered, left_alone) = (churned(true), churned(false));
    assert!(pestered > left_alone + left_alone / 2, "{pestered} vs {left_alone}");
}

/// The fatigue rules as the env file states them, on a list of the months a user was offered
/// something in (no bit sets): an offer made in `month` meets the offers of the `window` months
/// before it; churn at `month`'s close counts that month's offer and those of the `window − 1`
/// months before, so `window` months in all.
fn at_offer(offer_months: &[usize], month: usize, window: usize) -> u32 {
    offer_months
        .iter()
        .filter(|&&m| m < month && m + window >= month)
        .count() as u32
}

fn at_close(offer_months: &[usize], month: usize, window: usize) -> u32 {
    offer_months
        .iter()
        .filter(|&&m| m <= month && m + window > month)
        .count() as u32
}

/// The offer bits of the months before `month` (bit j − 1: an offer j months ago).
fn bits_before(offer_months: &[usize], month: usize, window: usize) -> u8 {
    offer_months
        .iter()
        .filter(|&&m| m < month && m + window >= month)
        .fold(0, |bits, &m| bits | 1 << (month - m - 1))
}

/// One user valued by plain recursion over the model (no tables, no bit sets), with prices.
struct BruteForce<'a> {
    model: &'a LifetimeModel,
    user: u32,
    shift: f64,
    prices: Prices,
}

impl BruteForce<'_> {
    fn value(&self, month: usize, h: usize, l: usize, offers: &[usize]) -> f64 {
        let (model, config) = (self.model, self.model.config());
        if month == config.months {
            return 0.0;
        }
        let window = config.fatigue.window_months as usize;
        let end = |h: usize, l: usize, offered: bool| {
            let mut offers = offers.to_vec();
            if offered {
                offers.push(month);
            }
            let hazard = model.churn_prob(self.user, h > 0, at_close(&offers, month, window));
            let (h2, l2) = if h > 0 && l > 1 { (h, l - 1) } else { (0, 0) };
            model.margin(h) + (1.0 - hazard) * self.value(month + 1, h2, l2, &offers)
        };
        let mut best = end(h, l, false);
        if h == 0 || l as u32 <= config.renewal_window_months {
            for (k, c) in config.contracts.iter().enumerate() {
                let p = model.accept_prob(self.user, k, self.shift, at_offer(offers, month, window));
                let stock = if c.uses_stock { self.prices.stock } else { 0.0 };
                let value = -c.offer_cost - self.prices.budget * c.offer_cost
                    + p * (end(k + 1, c.months as usize, true) - stock)
                    + (1.0 - p) * end(h, l, true);
                best = best.max(value);
            }
        }
        best
    }
}

#[test]
fn the_per_user_dp_equals_brute_force_on_a_tiny_user() {
    let mut config = tiny(4, 1);
    config.contracts[0].months = 2; // a contract that ends inside the horizon
    let model = model_with(config, 3000);
    for (user, shift, prices) in [
        (0, 0.0, Prices::default()),
        (
            5,
            1.3,
            Prices {
                stock: 40.0,
                budget: 0.5,
            },
        ),
        (
            9,
            -0.7,
            Prices {
                stock: 5.0,
                budget: 2.0,
            },
        ),
    ] {
        let plan = UserPlan::solve(&model, &UserView::fresh(user, shift), 0, prices);
        let window = model.config().fatigue.window_months as usize;
        for (month, h, l, offers) in [
            (0, 0, 0, vec![]),
            (1, 1, 2, vec![0]),
            (2, 0, 0, vec![0, 1]),
            (3, 3, 1, vec![1]),
            (3, 0, 0, vec![0, 1, 2]),
            (1, 2, 1, vec![]),
        ] {
            let exact = BruteForce {
                model: &model,
                user,
                shift,
                prices,
            }
            .value(month, h, l, &offers);
            let r = usize::from(bits_before(&offers, month, window));
            let dp = plan.value(month, h, l, r);
            assert!(
                (dp - exact).abs() < 1e-9,
                "user {user} at {:?}: dp {dp} vs {exact}",
                (month, h, l, &offers)
            );
        }
    }
}

/// Follows a user's own DP policy in the env.
struct OwnPlan;

impl Reference for OwnPlan {
    fn begin(&mut self, _env: &CustomerLifetimeEnv) {}

    fn act(&mut self, env: &CustomerLifetimeEnv) -> usize {
        let model = env.model();
        let slot = env.current().unwrap();
        let u = &env.users()[slot];
        let view = UserView::of(env.cohort()[slot], u, u.shift);
        UserPlan::solve(model, &view, env.month(), Prices::default()).best_action(
            model,
            env.month(),
            &view,
            env.mask().0,
        )
    }
}

#[test]
fn the_env_pays_on_average_what_the_per_user_dp_expects() {
    let mut config = tiny(6, 1);
    config.budget = 1e9;
    config.stock.initial = 1000;
    let model = model_with(config, 3000);
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, 11);
    let episodes = 20_000;
    let (mut gap, mut sq) = (0.0, 0.0);
    for _ in 0..episodes {
        env.reset(None);
        let u = env.users()[0];
        let expected =
            UserPlan::solve(&model, &UserView::fresh(env.cohort()[0], u.shift), 0, Prices::default()).value(0, 0, 0, 0);
        let d = play(&mut env, &mut OwnPlan) - expected;
        gap += d;
        sq += d * d;
    }
    let mean = gap / f64::from(episodes);
    let se = ((sq / f64::from(episodes) - mean * mean) / f64::from(episodes)).sqrt();
    assert!(mean.abs() < 4.0 * se + 1e-9, "realised minus expected: {mean} ± {se}");
}

/// The exact optimum of a whole cohort by expectimax over the joint state: with the latents
/// known (`grid` `None`), or of the policies that know them only through the users' answers
/// (each user's acceptance the grid posterior's prediction).
struct Joint<'a> {
    model: &'a LifetimeModel,
    cohort: Vec<u32>,
    shifts: Vec<f64>,
    grid: Option<&'a ThetaGrid>,
}

/// A user of the joint state.
#[derive(Clone)]
struct JointUser {
    alive: bool,
    holding: usize,
    left: usize,
    /// The months the user was offered something in.
    offers: Vec<usize>,
    /// Its answers: (contract, remembered offers, accepted).
    answers: Vec<Answer>,
}

#[derive(Clone)]
struct JointState {
    users: Vec<JointUser>,
    stock: u32,
    budget: f64,
}

impl Joint<'_> {
    fn window(&self) -> usize {
        self.model.config().fatigue.window_months as usize
    }

    fn accept(&self, slot: usize, user: &JointUser, contract: usize, remembered: u32) -> f64 {
        let user_row = self.cohort[slot];
        match self.grid {
            None => self
                .model
                .accept_prob(user_row, contract, self.shifts[slot], remembered),
            Some(grid) => BayesBruteForce {
                model: self.model,
                grid,
                user: user_row,
                prices: Prices::default(),
            }
            .predictive(&user.answers, contract, remembered),
        }
    }

    fn month(&self, month: usize, s: &JointState) -> f64 {
        if month == self.model.config().months {
            return 0.0;
        }
        let renewal = self.model.config().renewal_window_months as usize;
        let queue: Vec<usize> = (0..s.users.len())
            .filter(|&i| {
                let u = &s.users[i];
                u.alive && (u.holding == 0 || u.left <= renewal)
            })
            .collect();
        self.decide(month, &queue, 0, s)
    }

    fn decide(&self, month: usize, queue: &[usize], i: usize, s: &JointState) -> f64 {
        if i == queue.len() {
            return self.close(month, s, 0, 1.0, 0.0);
        }
        let config = self.model.config();
        let slot = queue[i];
        let mut best = self.decide(month, queue, i + 1, s);
        for (k, c) in config.contracts.iter().enumerate() {
            if s.budget < c.offer_cost || (c.uses_stock && s.stock == 0) {
                continue;
            }
            let user = &s.users[slot];
            let remembered = at_offer(&user.offers, month, self.window());
            let p = self.accept(slot, user, k, remembered);
            let answered = |accepted: bool| {
                let mut next = s.clone();
                next.budget -= c.offer_cost;
                let u = &mut next.users[slot];
                u.offers.push(month);
                u.answers.push((k, remembered, accepted));
                if accepted {
                    (u.holding, u.left) = (k + 1, c.months as usize);
                    if c.uses_stock {
                        next.stock -= 1;
                    }
                }
                next
            };
            let value = -c.offer_cost
                + p * self.decide(month, queue, i + 1, &answered(true))
                + (1.0 - p) * self.decide(month, queue, i + 1, &answered(false));
            best = best.max(value);
        }
        best
    }

    /// Month end for users from `i` on: margins, then each user's churn outcome in turn.
    fn close(&self, month: usize, s: &JointState, i: usize, prob: f64, acc: f64) -> f64 {
        if i == s.users.len() {
            let mut next = s.clone();
            next.stock += self.model.config().stock.monthly;
            return prob * (acc + self.month(month + 1, &next));
        }
        let u = &s.users[i];
        if !u.alive {
            return self.close(month, s, i + 1, prob, acc);
        }
        let hazard = self
            .model
            .churn_prob(self.cohort[i], u.holding > 0, at_close(&u.offers, month, self.window()));
        let acc = acc + self.model.margin(u.holding);
        let mut stays = s.clone();
        (stays.users[i].holding, stays.users[i].left) = if u.holding > 0 && u.left > 1 {
            (u.holding, u.left - 1)
        } else {
            (0, 0)
        };
        let mut goes = s.clone();
        goes.users[i].alive = false;
        self.close(month, &stays, i + 1, prob * (1.0 - hazard), acc)
            + self.close(month, &goes, i + 1, prob * hazard, acc)
    }
}

#[test]
fn both_bounds_are_at_least_the_exact_optimum_of_a_tiny_cohort_of_what_they_bound() {
    let mut config = tiny(3, 2);
    config.stock.initial = 1;
    config.stock.monthly = 0;
    config.budget = 20.0;
    let model = model_with(config, 3000);
    let grid = ThetaGrid::new(&model.config().latent, ThetaGrid::POINTS);
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, 5);
    let fresh = JointUser {
        alive: true,
        holding: 0,
        left: 0,
        offers: Vec::new(),
        answers: Vec::new(),
    };
    let start = JointState {
        users: vec![fresh; 2],
        stock: 1,
        budget: 20.0,
    };
    for _ in 0..4 {
        env.reset(None);
        let joint = |grid| Joint {
            model: &model,
            cohort: env.cohort().to_vec(),
            shifts: env.users().iter().map(|u| u.shift).collect(),
            grid,
        };
        let (clairvoyant, bayes) = (joint(None).month(0, &start), joint(Some(&grid)).month(0, &start));
        let (upper, bayes_bound) = (upper_bound(&env), bayes_bound(&env));
        assert!(
            upper >= clairvoyant - 1e-9,
            "upper bound {upper} below the optimum {clairvoyant}"
        );
        assert!(
            upper <= clairvoyant * 1.5,
            "upper bound {upper} is loose beyond use ({clairvoyant})"
        );
        assert!(
            bayes_bound >= bayes - 1e-9,
            "Bayes bound {bayes_bound} below the optimum {bayes}"
        );
        assert!(
            bayes_bound <= bayes * 1.5,
            "Bayes bound {bayes_bound} is loose beyond use ({bayes})"
        );
        assert!(
            bayes <= clairvoyant + 1e-9,
            "seeing the latents is worth something: {bayes} vs {clairvoyant}"
        );
    }
}

#[test]
fn the_bounds_are_above_the_references_they_bound_and_bid_prices_beat_the_rest() {
    let model = model_with(default_config(), 5000);
    let replays = 12;
    let which = Campaigns {
        campaigns: 2,
        replays,
        seed: 0,
    };
    let runs = evaluate_references(&model, Split::Test, &which, 3);
    let policy = |name: &str| POLICIES.iter().position(|p| *p == name).unwrap();
    // Mean and standard error over a campaign's replays.
    let stats = |values: Vec<f64>| {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (var / n).sqrt())
    };
    for c in &runs {
        // The bounds hold in expectation: each policy's mean may exceed them by sampling noise
        // only (3 standard errors).
        let (upper, _) = stats(c.replays.iter().map(|r| r.upper_bound).collect());
        assert!(
            c.bayes_bound <= upper,
            "campaign {}: {} vs {upper}",
            c.campaign,
            c.bayes_bound
        );
        for (i, name) in POLICIES.iter().enumerate() {
            let (value, se) = stats(c.replays.iter().map(|r| r.returns[i]).collect());
            assert!(
                upper >= value - 3.0 * se,
                "campaign {}: {name} {value} ± {se} above {upper}",
                c.campaign
            );
            if *name != "myopic_oracle" {
                assert!(
                    c.bayes_bound >= value - 3.0 * se,
                    "campaign {}: {name} {value} ± {se} above the Bayes bound {}",
                    c.campaign,
                    c.bayes_bound
                );
            }
        }
    }
    // Paired over the same replays (the same latents and draws).
    let total = |name: &str| {
        let i = policy(name);
        runs.iter()
            .flat_map(|c| c.replays.iter().map(move |r| r.returns[i]))
            .sum::<f64>()
    };
    let bid_price = total("bid_price");
    for other in [
        "myopic_oracle",
        "bid_price_v1",
        "zero_price",
        "rule_once",
        "rule_always",
    ] {
        assert!(
            bid_price >= total(other),
            "bid-price {bid_price} below {other} {}",
            total(other)
        );
    }
    assert!(
        bid_price >= 1.1 * total("myopic_oracle"),
        "bid prices {bid_price} vs myopic {}",
        total("myopic_oracle")
    );
}

#[test]
fn reference_evaluations_repeat_exactly() {
    let model = model_with(default_config(), 5000);
    let which = Campaigns {
        campaigns: 1,
        replays: 2,
        seed: 9,
    };
    let once = evaluate_references(&model, Split::Validation, &which, 6);
    assert_eq!(once, evaluate_references(&model, Split::Validation, &which, 6));
}

#[test]
fn learners_train_on_the_lifetime_env_through_the_shared_rollout_loop() {
    use crate::agents::{AgentFactory, AgentRng, CoreAgents, QLearningConfig};
    use crate::env::EnvKind;
    use crate::experiment::{Mode, evaluate, play_episode};

    let mut config = default_config();
    config.cohort = 50;
    let model = model_with(config, 3000);
    let kind = EnvKind::from(Arc::clone(&model));
    let spaces = kind.spaces();
    assert_eq!(spaces.dense_len, dense_names(&model).len());
    let mut env = kind.make(Split::Train, 0);
    let (obs, _) = env.reset(Some(1));
    assert_eq!(obs.dense().len(), spaces.dense_len);
    assert!((obs.state as usize) < spaces.n_states);

    let mut rng = AgentRng::seed_from_u64(0);
    let q = crate::agents::AgentConfig::QLearning(QLearningConfig::default());
    let mut agent = CoreAgents.build(&q, &kind, 100_000, &mut rng).unwrap();
    for _ in 0..30 {
        play_episode(env.as_mut(), agent.as_mut(), &mut rng, None, Mode::Train);
    }
    let evaluated = evaluate(&kind, agent.as_mut(), &mut rng, Split::Test, 3, 5);
    assert!(evaluated.iter().all(|e| e.return_.is_finite() && e.length > 0));
    let oracle = crate::agents::AgentConfig::MyopicOracle { name: None };
    let refused = CoreAgents.check(&oracle, &kind).unwrap_err().to_string();
    assert!(refused.contains("customer-lifetime"), "{refused}");
}

/// A user's acceptance of `contract` with `remembered` offers, averaged over the continuous prior
/// and the likelihood of `answers` (contract, remembered offers, accepted) by midpoint
/// integration on a fine grid: the grid posterior's yardstick.
fn continuous_predictive(
    model: &LifetimeModel,
    user: u32,
    contract: usize,
    remembered: u32,
    answers: &[Answer],
) -> f64 {
    let l = model.config().latent;
    let n = 200_000;
    let (mut mass, mut accept) = (0.0, 0.0);
    for i in 0..n {
        let theta = (i as f64 + 0.5) / n as f64;
        let prior = theta.powf(l.alpha - 1.0) * (1.0 - theta).powf(l.beta - 1.0);
        let shift = l.shift(theta);
        let likelihood: f64 = answers
            .iter()
            .map(|&(k, r, yes)| {
                let p = model.accept_prob(user, k, shift, r);
                if yes { p } else { 1.0 - p }
            })
            .product();
        mass += prior * likelihood;
        accept += prior * likelihood * model.accept_prob(user, contract, shift, remembered);
    }
    accept / mass
}

#[test]
fn the_grid_posterior_predicts_acceptance_as_the_continuous_prior_and_a_finer_grid_do() {
    let model = model_with(default_config(), 3000);
    let grid = ThetaGrid::new(&model.config().latent, ThetaGrid::POINTS);
    let fine = ThetaGrid::new(&model.config().latent, MAX_POINTS);
    assert!((grid.prior().weights().iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let histories: [&[Answer]; 4] = [
        &[],
        &[(2, 0, false)],
        &[(0, 0, false), (1, 1, false), (2, 2, false)],
        &[(1, 0, false), (0, 1, true)],
    ];
    for user in [0, 7, 42] {
        let (likelihood, fine_likelihood) = (
            UserLikelihood::new(&model, &grid, user),
            UserLikelihood::new(&model, &fine, user),
        );
        for answers in histories {
            let responses: Vec<Response> = answers
                .iter()
                .map(|&(k, r, accepted)| Response {
                    contract: k as u8,
                    remembered: r as u8,
                    accepted,
                })
                .collect();
            let belief = likelihood.posterior(&grid, &responses);
            let fine_belief = fine_likelihood.posterior(&fine, &responses);
            for (contract, remembered) in [(0, 0), (1, 0), (2, 0), (2, 2)] {
                let exact = continuous_predictive(&model, user, contract, remembered as u32, answers);
                let grid_value = belief.predict(likelihood.accept(contract, remembered));
                let finer = fine_belief.predict(fine_likelihood.accept(contract, remembered));
                assert!(
                    (grid_value - exact).abs() < 1e-6,
                    "user {user} after {answers:?}: contract {contract} {grid_value} vs {exact}"
                );
                assert!(
                    (grid_value - finer).abs() < 1e-8,
                    "{grid_value} vs {finer} on 32 points"
                );
            }
        }
    }
    // What the previous release believed instead: a fresh user's premium acceptance.
    let fresh = UserState::default();
    let believed = model.accept_prob(0, 2, believed_shift(&model, &fresh), 0);
    let exact = continuous_predictive(&model, 0, 2, 0, &[]);
    assert!(
        believed < exact,
        "the Beta-Bernoulli mean underestimates: {believed} vs {exact}"
    );
}

/// An answer of the brute-force plans: (contract, remembered offers, accepted).
type Answer = (usize, u32, bool);

/// One user's Bayes-adaptive value by plain recursion: the posterior recomputed from the whole
/// list of answers at every node, offers kept as a list of months, nothing memoised or shared.
struct BayesBruteForce<'a> {
    model: &'a LifetimeModel,
    grid: &'a ThetaGrid,
    user: u32,
    prices: Prices,
}

impl BayesBruteForce<'_> {
    fn predictive(&self, answers: &[Answer], contract: usize, remembered: u32) -> f64 {
        let (mut mass, mut accept) = (0.0, 0.0);
        for (&shift, &prior) in self.grid.shifts().iter().zip(self.grid.prior().weights()) {
            let likelihood: f64 = answers
                .iter()
                .map(|&(k, r, yes)| {
                    let p = self.model.accept_prob(self.user, k, shift, r);
                    if yes { p } else { 1.0 - p }
                })
                .product();
            mass += prior * likelihood;
            accept += prior * likelihood * self.model.accept_prob(self.user, contract, shift, remembered);
        }
        accept / mass
    }

    fn value(&self, month: usize, h: usize, l: usize, offers: &[usize], answers: &[Answer]) -> f64 {
        let (model, config) = (self.model, self.model.config());
        if month == config.months {
            return 0.0;
        }
        let window = config.fatigue.window_months as usize;
        let end = |h: usize, l: usize, answer: Option<Answer>| {
            let (mut offers, mut answers) = (offers.to_vec(), answers.to_vec());
            if let Some(a) = answer {
                offers.push(month);
                answers.push(a);
            }
            let hazard = model.churn_prob(self.user, h > 0, at_close(&offers, month, window));
            let (h2, l2) = if h > 0 && l > 1 { (h, l - 1) } else { (0, 0) };
            model.margin(h) + (1.0 - hazard) * self.value(month + 1, h2, l2, &offers, &answers)
        };
        let mut best = end(h, l, None);
        if h == 0 || l as u32 <= config.renewal_window_months {
            let r = at_offer(offers, month, window);
            for (k, c) in config.contracts.iter().enumerate() {
                let p = self.predictive(answers, k, r);
                let stock = if c.uses_stock { self.prices.stock } else { 0.0 };
                let value = -c.offer_cost * (1.0 + self.prices.budget)
                    + p * (end(k + 1, c.months as usize, Some((k, r, true))) - stock)
                    + (1.0 - p) * end(h, l, Some((k, r, false)));
                best = best.max(value);
            }
        }
        best
    }
}

#[test]
fn the_belief_plan_equals_brute_force_expectimax_on_a_tiny_user() {
    let mut config = tiny(4, 1);
    config.contracts[0].months = 2; // a contract that ends inside the horizon, so renewals happen
    let model = model_with(config, 3000);
    let grid = ThetaGrid::new(&model.config().latent, 8);
    let window = model.config().fatigue.window_months as usize;
    for (user, prices) in [
        (0, Prices::default()),
        (
            5,
            Prices {
                stock: 40.0,
                budget: 0.5,
            },
        ),
        (
            9,
            Prices {
                stock: 5.0,
                budget: 2.0,
            },
        ),
    ] {
        let likelihood = UserLikelihood::new(&model, &grid, user);
        let brute = BayesBruteForce {
            model: &model,
            grid: &grid,
            user,
            prices,
        };
        // (month, holding, months left, offer months, answers so far)
        let cases = [
            (0, 0, 0, vec![], vec![]),
            (1, 0, 0, vec![0], vec![(2, 0, false)]),
            (2, 1, 1, vec![0, 1], vec![(1, 0, false), (0, 1, true)]),
            (3, 0, 0, vec![1], vec![(1, 0, false)]),
        ];
        for (month, h, l, offers, answers) in cases {
            let answers: Vec<Answer> = answers;
            let exact = brute.value(month, h, l, &offers, &answers);
            let responses: Vec<Response> = answers
                .iter()
                .map(|&(k, r, yes)| Response {
                    contract: k as u8,
                    remembered: r as u8,
                    accepted: yes,
                })
                .collect();
            let belief = likelihood.posterior(&grid, &responses);
            let view = UserView {
                user,
                shift: 0.0,
                holding: h as u8,
                months_left: l as u8,
                recent: bits_before(&offers, month, window),
            };
            let planned = BeliefPlan::new(&model, &grid, &likelihood, belief, month, prices, Lookahead::Exact)
                .value(month, &view);
            assert!(
                (planned - exact).abs() < 1e-9,
                "user {user} at month {month} after {answers:?}: plan {planned} vs brute force {exact}"
            );
            // Looking ahead through fewer answers brackets the exact value.
            for offers in [1, 2] {
                let plan = |lookahead| {
                    BeliefPlan::new(&model, &grid, &likelihood, belief, month, prices, lookahead).value(month, &view)
                };
                let lower = plan(Lookahead::ThenNoOffers { offers });
                let upper = plan(Lookahead::ThenRevealed { offers });
                assert!(
                    lower <= exact + 1e-9 && exact <= upper + 1e-9,
                    "{lower} <= {exact} <= {upper}"
                );
            }
        }
    }
}

#[test]
fn fatigue_counts_the_window_before_an_offer_and_the_window_to_a_close() {
    let mut config = default_config();
    for c in &mut config.contracts {
        c.response.bias = -40.0; // nobody accepts, so every user is up every month
    }
    config.churn.bias = -40.0; // and nobody leaves, so the first user is seen every month
    config.fatigue.churn = 0.0;
    config.budget = 1e9;
    assert_eq!(config.fatigue.window_months, 3);
    let model = model_with(config, 3000);
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, 3);
    env.reset(None);
    let first = env.current().unwrap();
    let mut remembered = Vec::new();
    // The first user is offered a contract in each of its first four months, then nothing.
    while let Some(slot) = env.current() {
        let u = env.users()[slot];
        let offer = slot == first && env.month() < 4;
        if slot == first && env.month() <= 5 {
            remembered.push((env.month(), u.remembered()));
        }
        env.step(usize::from(offer)).unwrap();
        if env.users()[first].churned {
            break;
        }
    }
    // Offers in months 0-3: an offer in month 3 meets those of months 0, 1 and 2.
    assert_eq!(remembered, [(0, 0), (1, 1), (2, 2), (3, 3), (4, 3), (5, 2)]);
    let mut u = UserState {
        recent: 0b0111,
        ..UserState::default()
    }; // this month and the two before
    assert_eq!(u.remembered_at_close(3), 3);
    u.recent = 0b1110; // the three months before, none this month
    assert_eq!((u.remembered(), u.remembered_at_close(3)), (3, 2));
}

#[test]
fn dense_entries_stay_in_their_documented_ranges_terminal_observations_included() {
    let model = model_with(default_config(), 3000);
    let names = dense_names(&model);
    let features = model.feature_names().len();
    let stock = names.iter().position(|n| n == "stock").unwrap();
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..20 {
        let (mut obs, _) = env.reset(None);
        loop {
            for (i, &x) in obs.dense().iter().enumerate().skip(features) {
                assert!(x.is_finite() && x >= 0.0, "{}: {x}", names[i]);
                assert!(i == stock || x <= 1.0, "{}: {x}", names[i]);
            }
            let allowed: Vec<usize> = obs.mask.iter().collect();
            let step = env.step(allowed[rng.random_range(0..allowed.len())]).unwrap();
            obs = step.obs;
            if step.terminated {
                break;
            }
        }
        for (i, &x) in obs.dense().iter().enumerate().skip(features) {
            assert!(x >= 0.0 && (i == stock || x <= 1.0), "terminal {}: {x}", names[i]);
        }
    }
}

#[test]
fn policies_on_the_same_replay_meet_the_same_latents_and_the_same_answers() {
    let model = model_with(default_config(), 3000);
    let first_answers = |policy: &mut dyn Reference| {
        let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Test, 0);
        env.reset_campaign(1, 77);
        play(&mut env, policy);
        let shifts: Vec<f64> = env.users().iter().map(|u| u.shift).collect();
        let firsts: Vec<Option<Response>> = (0..env.cohort().len())
            .map(|s| env.responses(s).first().copied())
            .collect();
        (shifts, firsts)
    };
    let (always, once) = (
        first_answers(&mut CheapestOffer { once: false }),
        first_answers(&mut CheapestOffer { once: true }),
    );
    assert_eq!(always.0, once.0, "the latents");
    // Both offer the cheapest contract at each user's arrival, with nothing remembered: the
    // same draw answers it, whatever else either policy did before in that month.
    assert_eq!(always.1, once.1);
    assert!(always.1.iter().flatten().any(|r| r.accepted) && always.1.iter().flatten().any(|r| !r.accepted));
}

#[test]
fn evaluation_cohorts_are_fixed_and_disjoint() {
    let model = model_with(default_config(), 5000);
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Test, 0);
    let campaigns = model.campaigns(Split::Test);
    assert!(campaigns >= 4, "{campaigns}");
    let mut seen = std::collections::HashSet::new();
    for campaign in 0..campaigns {
        env.reset_campaign(campaign, 1);
        let cohort = env.cohort().to_vec();
        env.reset_campaign(campaign, 2);
        assert_eq!(env.cohort(), &cohort[..], "campaign {campaign} is fixed");
        for user in cohort {
            assert!(seen.insert(user), "user {user} in two campaigns");
        }
    }
}

#[test]
fn per_user_rewards_add_up_to_the_cohort_return_for_any_policy() {
    use crate::agents::{Agent, AgentRng, Credit, Transition, UserTransition};
    use crate::env::{Env, Observation};
    use crate::experiment::{Mode, play_episode};

    /// Acts at random (or always "no offer") and records what it is fed.
    struct Recorder {
        offer: bool,
        transitions: Vec<UserTransition>,
    }
    impl Agent for Recorder {
        fn act(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
            if self.offer {
                obs.mask.nth(rng.random_range(0..obs.mask.count() as usize)).unwrap()
            } else {
                0
            }
        }
        fn act_greedy(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
            self.act(obs, rng)
        }
        fn observe(&mut self, _t: &Transition, _rng: &mut AgentRng) {
            panic!("a per-user learner is never fed the cohort's steps");
        }
        fn credit(&self) -> Credit {
            Credit::PerUser
        }
        fn observe_user(&mut self, t: &UserTransition, _rng: &mut AgentRng) {
            self.transitions.push(*t);
        }
    }

    let model = model_with(default_config(), 3000);
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, 9);
    let mut rng = AgentRng::seed_from_u64(9);
    for offer in [true, false, true] {
        let mut agent = Recorder {
            offer,
            transitions: Vec::new(),
        };
        let stats = play_episode(&mut env as &mut dyn Env, &mut agent, &mut rng, None, Mode::Train);
        let credited: f64 = agent.transitions.iter().map(UserTransition::reward).sum();
        assert!(
            (credited - stats.return_).abs() < 1e-6 * stats.return_.abs(),
            "per-user {credited} vs cohort {}",
            stats.return_
        );
        assert_eq!(
            agent.transitions.len(),
            stats.length as usize,
            "one transition per decision"
        );
        // Each transition leads to the same user's next decision, or ends.
        let ends = agent.transitions.iter().filter(|t| t.terminated).count();
        assert_eq!(ends, model.config().cohort, "each user ends once");
        for t in agent.transitions.iter().filter(|t| !t.terminated) {
            assert_eq!(t.next_obs.user, t.obs.user);
            assert!(
                t.next_obs.dense()[t.next_obs.dense().len() - 3] > t.obs.dense()[t.obs.dense().len() - 3],
                "later"
            );
        }
    }
}
