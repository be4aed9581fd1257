use std::path::Path;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::env::Split;
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

/// One user valued by plain recursion over the model (no tables), with prices.
struct BruteForce<'a> {
    model: &'a LifetimeModel,
    user: u32,
    shift: f64,
    prices: Prices,
}

impl BruteForce<'_> {
    fn value(&self, month: usize, h: usize, l: usize, r: u8) -> f64 {
        let (model, config) = (self.model, self.model.config());
        if month == config.months {
            return 0.0;
        }
        let window = (1u16 << config.fatigue.window_months) - 1;
        let end = |h: usize, l: usize, r: u8| {
            let hazard = model.churn_prob(self.user, h > 0, r.count_ones());
            let (h2, l2) = if h > 0 && l > 1 { (h, l - 1) } else { (0, 0) };
            let r2 = ((u16::from(r) << 1) & window) as u8;
            model.margin(h) + (1.0 - hazard) * self.value(month + 1, h2, l2, r2)
        };
        let mut best = end(h, l, r);
        if h == 0 || l as u32 <= config.renewal_window_months {
            for (k, c) in config.contracts.iter().enumerate() {
                let p = model.accept_prob(self.user, k, self.shift, r.count_ones());
                let stock = if c.uses_stock { self.prices.stock } else { 0.0 };
                let value = -c.offer_cost - self.prices.budget * c.offer_cost
                    + p * (end(k + 1, c.months as usize, r | 1) - stock)
                    + (1.0 - p) * end(h, l, r | 1);
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
        for (month, h, l, r) in [
            (0, 0, 0, 0),
            (1, 1, 2, 0b1),
            (2, 0, 0, 0b11),
            (3, 3, 1, 0b10),
            (1, 2, 1, 0),
        ] {
            let exact = BruteForce {
                model: &model,
                user,
                shift,
                prices,
            }
            .value(month, h, l, r);
            let dp = plan.value(month, h, l, usize::from(r));
            assert!(
                (dp - exact).abs() < 1e-9,
                "user {user} at {:?}: dp {dp} vs {exact}",
                (month, h, l, r)
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

/// The exact optimum of a whole cohort (latents known) by expectimax over the joint state.
struct Joint<'a> {
    model: &'a LifetimeModel,
    cohort: Vec<u32>,
    shifts: Vec<f64>,
}

#[derive(Clone)]
struct JointState {
    users: Vec<(bool, usize, usize, u8)>, // alive, holding, left, recent
    stock: u32,
    budget: f64,
}

impl Joint<'_> {
    fn month(&self, month: usize, s: &JointState) -> f64 {
        if month == self.model.config().months {
            return 0.0;
        }
        let window = self.model.config().renewal_window_months as usize;
        let queue: Vec<usize> = (0..s.users.len())
            .filter(|&i| {
                let (alive, h, l, _) = s.users[i];
                alive && (h == 0 || l <= window)
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
            let (alive, h, l, r) = s.users[slot];
            let p = self
                .model
                .accept_prob(self.cohort[slot], k, self.shifts[slot], r.count_ones());
            let mut refused = s.clone();
            refused.budget -= c.offer_cost;
            refused.users[slot] = (alive, h, l, r | 1);
            let mut accepted = refused.clone();
            accepted.users[slot] = (alive, k + 1, c.months as usize, r | 1);
            if c.uses_stock {
                accepted.stock -= 1;
            }
            let value = -c.offer_cost
                + p * self.decide(month, queue, i + 1, &accepted)
                + (1.0 - p) * self.decide(month, queue, i + 1, &refused);
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
        let (alive, h, l, r) = s.users[i];
        if !alive {
            return self.close(month, s, i + 1, prob, acc);
        }
        let window = (1u16 << self.model.config().fatigue.window_months) - 1;
        let hazard = self.model.churn_prob(self.cohort[i], h > 0, r.count_ones());
        let (h2, l2) = if h > 0 && l > 1 { (h, l - 1) } else { (0, 0) };
        let r2 = ((u16::from(r) << 1) & window) as u8;
        let acc = acc + self.model.margin(h);
        let mut stays = s.clone();
        stays.users[i] = (true, h2, l2, r2);
        let mut goes = s.clone();
        goes.users[i] = (false, 0, 0, 0);
        self.close(month, &stays, i + 1, prob * (1.0 - hazard), acc)
            + self.close(month, &goes, i + 1, prob * hazard, acc)
    }
}

#[test]
fn the_relaxation_bound_is_at_least_the_exact_optimum_of_a_tiny_cohort() {
    let mut config = tiny(3, 2);
    config.stock.initial = 1;
    config.stock.monthly = 0;
    config.budget = 20.0;
    let model = model_with(config, 3000);
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, 5);
    for _ in 0..5 {
        env.reset(None);
        let joint = Joint {
            model: &model,
            cohort: env.cohort().to_vec(),
            shifts: env.users().iter().map(|u| u.shift).collect(),
        };
        let start = JointState {
            users: vec![(true, 0, 0, 0); 2],
            stock: 1,
            budget: 20.0,
        };
        let exact = joint.month(0, &start);
        let bound = upper_bound(&env);
        assert!(bound >= exact - 1e-9, "bound {bound} below the optimum {exact}");
        assert!(
            bound <= exact * 1.5,
            "bound {bound} is loose beyond use (optimum {exact})"
        );
    }
}

#[test]
fn the_bound_is_above_the_references_and_bid_prices_beat_the_myopic_oracle() {
    let model = model_with(default_config(), 5000);
    let runs = evaluate_references(&model, Split::Test, 2, 3, 0, 3);
    for r in &runs {
        // Per replay the bound holds in expectation only; over a campaign's replays it holds
        // with room to spare.
        assert!(r.bound.is_finite() && r.bound > 0.0, "{r:?}");
    }
    for campaign in 0..2 {
        let of = |f: fn(&CampaignReferences) -> f64| {
            runs.iter().filter(|r| r.campaign == campaign).map(f).sum::<f64>() / 3.0
        };
        let (myopic, bid_price, bound) = (of(|r| r.myopic), of(|r| r.bid_price), of(|r| r.bound));
        assert!(bound >= myopic && bound >= bid_price, "campaign {campaign}: {runs:?}");
    }
    let total = |f: fn(&CampaignReferences) -> f64| runs.iter().map(f).sum::<f64>();
    let (myopic, bid_price) = (total(|r| r.myopic), total(|r| r.bid_price));
    assert!(bid_price >= 1.1 * myopic, "bid prices {bid_price} vs myopic {myopic}");
}

#[test]
fn reference_evaluations_repeat_exactly() {
    let model = model_with(default_config(), 5000);
    let once = evaluate_references(&model, Split::Validation, 1, 2, 9, 6);
    assert_eq!(once, evaluate_references(&model, Split::Validation, 1, 2, 9, 6));
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
