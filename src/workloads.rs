//! The workloads `cargo bench --bench throughput` (criterion) and `contract-rl bench rl` (a quick
//! median of a few runs) both measure, defined once: single-thread env steps of both envs and of
//! the batched contract-choice env, the lifetime env's steps re-cut into per-user transitions,
//! the lifetime references' costs (a bid-price solve, a Bayes-adaptive decision, the Bayes
//! bound), tabular Q-learning, DQN training (one run, and ten on all cores), lagrangian_dqn
//! training, a DQN gradient step with either learner and with each DQN option, replay sampling,
//! a snapshot load, the
//! statistics of a 6-agent × 10-seed comparison and a Power BI export.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use contract_rl_core::agents::{
    Agent, AgentRng, DqnConfig, DqnHead, DqnLearner, LagrangianDqnConfig, PrioritizedReplay, QLearning,
    QLearningConfig, RewardBaseline,
};
use contract_rl_core::env::lifetime::{
    BidPrice, CustomerLifetimeEnv, LifetimeConfig, LifetimeModel, Pricing, Reference, bayes_bound, believed_views,
    capacity_left, minimise_dual,
};
use contract_rl_core::env::{
    ActionMask, ContractChoiceBatch, ContractChoiceEnv, Env, EnvConfig, EnvModel, Split, VectorEnv,
};
use contract_rl_core::experiment::{Mode, RunOptions, UserCredit, play_episode, train_q_learners};
use contract_rl_core::record::UserRecord;
use contract_rl_core::report::{AgentRuns, Comparison};
use contract_rl_dqn::{Batch, Dqn, DqnAgents, LagrangianDqn, ReplayBuffer};
use contract_rl_parquet::{Bands, Build, LoadedExperiment, export_powerbi, snapshot};
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

/// One measured workload: `run` does `per_run` units of work.
pub struct Workload {
    /// `group/function`, as criterion names it.
    pub name: &'static str,
    /// What one unit is, e.g. "env steps".
    pub unit: &'static str,
    /// Units of work per call of `run`.
    pub per_run: u64,
    /// Whether `bench rl` reports it (the bid-price solve takes most of a second: criterion only).
    pub headline: bool,
    /// Whether a criterion sample is slow enough that 10 samples must do.
    pub slow: bool,
    /// Does the work once.
    pub run: Box<dyn FnMut()>,
}

/// Where the workloads read their inputs: a repository checkout (envs, experiments, the sample
/// snapshot) and a scratch folder for the export's input and output.
pub struct Inputs {
    pub root: PathBuf,
    pub scratch: PathBuf,
}

impl Inputs {
    fn records(&self) -> Vec<UserRecord> {
        snapshot::read(&self.sample())
            .expect("the sample snapshot reads")
            .records
    }

    fn sample(&self) -> PathBuf {
        self.root.join("data/snapshots/sample.parquet")
    }

    fn contract_choice(&self) -> Arc<EnvModel> {
        let config = EnvConfig::load(&self.root.join("envs/contract-choice.toml")).expect("the env file loads");
        Arc::new(EnvModel::build(config, &self.records()).expect("the env builds"))
    }

    fn lifetime(&self) -> Arc<LifetimeModel> {
        let config = LifetimeConfig::load(&self.root.join("envs/customer-lifetime.toml")).expect("the env file loads");
        Arc::new(LifetimeModel::build(config, &self.records()).expect("the env builds"))
    }
}

/// The policy every env workload steps under: the allowed action after `last`, in increasing
/// order, wrapping round (so quotas, stock and budget do run out). A few instructions, so the
/// figures are the env's.
fn round_robin(mask: ActionMask, last: usize) -> usize {
    let mask = u32::from(mask.0);
    let after = mask & (u32::MAX << (last + 1));
    (if after != 0 { after } else { mask }).trailing_zeros() as usize
}

/// Steps of `env` under [`round_robin`], resetting at each episode's end.
fn stepping(name: &'static str, mut env: Box<dyn Env>) -> Workload {
    const STEPS: u64 = 100_000;
    Workload {
        name,
        unit: "env steps",
        per_run: STEPS,
        headline: true,
        slow: false,
        run: Box::new(move || {
            let (mut obs, _) = env.reset(None);
            let (mut action, mut total) = (0, 0.0);
            for _ in 0..STEPS {
                action = round_robin(obs.mask, action);
                let step = env.step(action).expect("a masked action");
                total += step.reward;
                obs = if step.terminated { env.reset(None).0 } else { step.obs };
            }
            black_box(total);
        }),
    }
}

/// Steps of 64 campaigns of [`ContractChoiceBatch`] per call, each campaign under
/// [`round_robin`]; the rewards are summed in 8 lanes, so the loop around the env costs little
/// beside it.
fn batched_stepping(model: &Arc<EnvModel>) -> Workload {
    const CAMPAIGNS: u64 = 64;
    const ROUNDS: u64 = 10_000;
    let seeds: Vec<u64> = (0..CAMPAIGNS).collect();
    let mut batch = ContractChoiceBatch::new(Arc::clone(model), Split::Train, &seeds);
    batch.reset();
    let mut actions = vec![0; CAMPAIGNS as usize];
    Workload {
        name: "env/step_batched_64",
        unit: "env steps",
        per_run: CAMPAIGNS * ROUNDS,
        headline: true,
        slow: false,
        run: Box::new(move || {
            let mut total = [0.0; 8];
            for _ in 0..ROUNDS {
                for (action, &mask) in actions.iter_mut().zip(batch.masks()) {
                    *action = round_robin(mask, *action);
                }
                batch.step(&actions).expect("masked actions");
                for rewards in batch.rewards().chunks_exact(8) {
                    for (sum, reward) in total.iter_mut().zip(rewards) {
                        *sum += reward;
                    }
                }
            }
            black_box(total);
        }),
    }
}

/// Every workload, set up on `inputs` (the export's runs the quickstart experiment once).
pub fn workloads(inputs: &Inputs) -> Vec<Workload> {
    let model = inputs.contract_choice();
    let mut workloads = vec![
        stepping(
            "env/step",
            Box::new(ContractChoiceEnv::new(Arc::clone(&model), Split::Train, 0)),
        ),
        batched_stepping(&model),
        stepping(
            "lifetime_env/step",
            Box::new(CustomerLifetimeEnv::new(inputs.lifetime(), Split::Train, 0)),
        ),
        per_user_stepping("lifetime_credit/step", inputs.lifetime(), None),
        bid_price_solve(inputs.lifetime()),
        bayes_decisions(inputs.lifetime()),
        bayes_bound_solve(inputs.lifetime()),
        q_learning(&model),
        q_learning_sweep(&model),
        dqn_gradient_steps(&model, "dqn/gradient_step_batch64", DqnConfig::default()),
        dqn_gradient_steps(
            &model,
            "dqn/gradient_step_batch64_burn",
            DqnConfig {
                learner: DqnLearner::Burn,
                ..DqnConfig::default()
            },
        ),
        dqn_training("dqn/train_env_step", &model, DqnLearner::Ndarray, 1),
        dqn_training("dqn/train_env_step_burn", &model, DqnLearner::Burn, 1),
        dqn_training("dqn/train_env_step_10_seeds", &model, DqnLearner::Ndarray, 10),
        dqn_training("dqn/train_env_step_10_seeds_burn", &model, DqnLearner::Burn, 10),
        lagrangian_dqn_training(inputs.lifetime()),
        replay_sampling(&model),
        snapshot_load(inputs.sample()),
        statistics(),
        export(inputs),
    ];
    workloads.extend(dqn_option_steps(&model));
    workloads
}

/// Steps of the lifetime env re-cut into per-user transitions ([`UserCredit`]): under
/// [`round_robin`] (the adapter's cost beside `lifetime_env/step`), or acting and learning as
/// `agent` (a per-user learner's training).
fn per_user_stepping(name: &'static str, model: Arc<LifetimeModel>, agent: Option<Box<dyn Agent>>) -> Workload {
    const STEPS: u64 = 100_000;
    let mut env = CustomerLifetimeEnv::new(model, Split::Train, 0);
    let (mut agent, mut rng, mut transitions) = (agent, AgentRng::seed_from_u64(0), Vec::new());
    Workload {
        name,
        unit: "env steps",
        per_run: STEPS,
        headline: agent.is_none(),
        slow: agent.is_some(),
        run: Box::new(move || {
            let (mut obs, _) = Env::reset(&mut env, None);
            let (mut action, mut total, mut credit) = (0, 0.0, UserCredit::default());
            for _ in 0..STEPS {
                action = match agent.as_mut() {
                    Some(agent) => agent.act(&obs, &mut rng),
                    None => round_robin(obs.mask, action),
                };
                let before = UserCredit::before_step(&env);
                let step = Env::step(&mut env, action).expect("a masked action");
                credit.after_step(&env, before, &obs, action, &step, &mut transitions);
                for t in transitions.drain(..) {
                    match agent.as_mut() {
                        Some(agent) => agent.observe_user(&t, &mut rng),
                        None => total += t.reward(),
                    }
                }
                if step.terminated {
                    if let Some(agent) = agent.as_mut() {
                        agent.end_episode(&step.obs, true);
                    }
                    obs = Env::reset(&mut env, None).0;
                    credit = UserCredit::default();
                } else {
                    obs = step.obs;
                }
            }
            black_box(total);
        }),
    }
}

/// lagrangian_dqn's training on the lifetime env as `experiments/lifetime.toml` configures it
/// (learning from the first step): act, step, per-user credit, a gradient step every 4.
fn lagrangian_dqn_training(model: Arc<LifetimeModel>) -> Workload {
    let config = LagrangianDqnConfig {
        dqn: DqnConfig {
            learning_rate: 3e-4,
            buffer_size: 200_000,
            learning_starts: 0,
            epsilon_decay_fraction: 0.0,
            ..DqnConfig::default()
        },
        ..LagrangianDqnConfig::default()
    };
    let spaces = contract_rl_core::env::EnvKind::from(Arc::clone(&model)).spaces();
    let agent = LagrangianDqn::new(config, spaces, 10_000_000, &mut AgentRng::seed_from_u64(0));
    per_user_stepping("lagrangian_dqn/train_env_step", model, Some(Box::new(agent)))
}

/// The Bayes-correct bid-price policy's decisions without its pricing (the zero-price
/// ablation): each decision solves the current user's Bayes-adaptive plan over its belief. One
/// test campaign per run, replayed with the same seed.
fn bayes_decisions(model: Arc<LifetimeModel>) -> Workload {
    let mut env = CustomerLifetimeEnv::new(Arc::clone(&model), Split::Test, 0);
    let mut policy = BidPrice::new(&model, BidPrice::RESOLVE_MONTHS, Pricing::Zero);
    let decisions = |env: &mut CustomerLifetimeEnv, policy: &mut BidPrice| {
        env.reset_campaign(0, 0);
        policy.begin(env);
        let mut n = 0;
        while env.current().is_some() {
            let action = policy.act(env);
            env.step(action).expect("references act within the mask");
            n += 1;
        }
        n
    };
    let per_run = decisions(&mut env, &mut policy);
    Workload {
        name: "lifetime_bayes/decision",
        unit: "decisions",
        per_run,
        headline: false,
        slow: true,
        run: Box::new(move || {
            black_box(decisions(&mut env, &mut policy));
        }),
    }
}

/// The Bayes bound of one 200-user test cohort: the dual minimised over the users'
/// Bayes-adaptive plans (both cores).
fn bayes_bound_solve(model: Arc<LifetimeModel>) -> Workload {
    let mut env = CustomerLifetimeEnv::new(model, Split::Test, 0);
    env.reset_campaign(0, 0);
    Workload {
        name: "lifetime_bayes_bound/solve_cohort",
        unit: "solves",
        per_run: 1,
        headline: false,
        slow: true,
        run: Box::new(move || {
            black_box(bayes_bound(&env));
        }),
    }
}

/// The Lagrangian dual minimised over a 200-user cohort (2 rounds of a doubling bracket and
/// golden-section search per price; the users planned on both cores).
fn bid_price_solve(model: Arc<LifetimeModel>) -> Workload {
    let mut env = CustomerLifetimeEnv::new(model, Split::Test, 0);
    env.reset_campaign(0, 0);
    let (views, capacity) = (believed_views(&env), capacity_left(&env));
    Workload {
        name: "lifetime_bid_price/solve_cohort",
        unit: "solves",
        per_run: 1,
        headline: false,
        slow: true,
        run: Box::new(move || {
            black_box(minimise_dual(env.model(), &views, capacity, 2));
        }),
    }
}

/// Tabular Q-learning training: act + step + learn, 100 campaigns.
fn q_learning(model: &Arc<EnvModel>) -> Workload {
    const EPISODES: u64 = 100;
    let mut env = ContractChoiceEnv::new(Arc::clone(model), Split::Train, 0);
    let mut agent = QLearning::new(
        QLearningConfig::default(),
        model.n_states(),
        model.n_actions(),
        10_000_000,
    );
    let mut rng = AgentRng::seed_from_u64(0);
    Workload {
        name: "q_learning/train_step",
        unit: "env steps",
        per_run: EPISODES * model.episode_len() as u64,
        headline: true,
        slow: false,
        run: Box::new(move || {
            for _ in 0..EPISODES {
                black_box(play_episode(&mut env, &mut agent, &mut rng, None, Mode::Train));
            }
        }),
    }
}

/// Ten tabular Q-learners (seeds 0..10) trained side by side by [`train_q_learners`] on ten
/// campaigns of [`ContractChoiceBatch`], 1,000 steps each per run.
fn q_learning_sweep(model: &Arc<EnvModel>) -> Workload {
    const SEEDS: u64 = 10;
    const ROUNDS: u64 = 1_000;
    let seeds: Vec<u64> = (0..SEEDS).collect();
    let mut batch = ContractChoiceBatch::new(Arc::clone(model), Split::Train, &seeds);
    let config = QLearningConfig::default();
    let mut agents: Vec<QLearning> = (0..SEEDS)
        .map(|_| QLearning::new(config.clone(), model.n_states(), model.n_actions(), 10_000_000))
        .collect();
    let mut rngs: Vec<AgentRng> = seeds.iter().map(|&s| AgentRng::seed_from_u64(s)).collect();
    Workload {
        name: "q_learning/train_step_10_seeds_batched",
        unit: "env steps",
        per_run: SEEDS * ROUNDS,
        headline: true,
        slow: false,
        run: Box::new(move || train_q_learners(&mut batch, &mut agents, &mut rngs, ROUNDS)),
    }
}

/// A DQN of `config`, for the env of `model`.
fn dqn(model: &Arc<EnvModel>, config: DqnConfig, rng: &mut AgentRng) -> Dqn {
    Dqn::new(
        config,
        &contract_rl_core::env::EnvKind::from(Arc::clone(model)).spaces(),
        1_000_000,
        rng,
    )
}

/// One DQN gradient step at batch 64 (hidden [64, 64]) of `config` after 100 campaigns of
/// filling the buffer (learning starts at their end, so the per-step baseline is set); each run
/// takes 500 steps on the same agent, so a step time that grows with training shows up across
/// runs.
fn dqn_gradient_steps(model: &Arc<EnvModel>, name: &'static str, config: DqnConfig) -> Workload {
    const STEPS: u64 = 500;
    const CAMPAIGNS: u64 = 100;
    let config = DqnConfig {
        learning_starts: CAMPAIGNS * model.episode_len() as u64,
        ..config
    };
    let mut rng = AgentRng::seed_from_u64(0);
    let mut agent = dqn(model, config, &mut rng);
    let mut env = ContractChoiceEnv::new(Arc::clone(model), Split::Train, 0);
    for _ in 0..CAMPAIGNS {
        play_episode(&mut env, &mut agent, &mut rng, None, Mode::Train);
    }
    Workload {
        name,
        unit: "gradient steps",
        per_run: STEPS,
        headline: true,
        slow: true,
        run: Box::new(move || {
            for _ in 0..STEPS {
                agent.gradient_step(&mut rng);
            }
        }),
    }
}

/// A gradient step of each DQN option alone (`dqn/gradient_step_batch64` is none of them).
fn dqn_option_steps(model: &Arc<EnvModel>) -> Vec<Workload> {
    let d = DqnConfig::default;
    [
        ("dqn_options/n_steps_3", DqnConfig { n_steps: 3, ..d() }),
        ("dqn_options/dueling", DqnConfig { dueling: true, ..d() }),
        (
            "dqn_options/learning_rate_decay",
            DqnConfig {
                learning_rate_end: Some(0.0),
                ..d()
            },
        ),
        (
            "dqn_options/prioritized_replay",
            DqnConfig {
                prioritized_replay: Some(PrioritizedReplay::default()),
                ..d()
            },
        ),
        (
            "dqn_options/baseline_per_step",
            DqnConfig {
                baseline: RewardBaseline::PerStep,
                ..d()
            },
        ),
        (
            "dqn_options/afterstate",
            DqnConfig {
                head: DqnHead::Afterstate,
                ..d()
            },
        ),
    ]
    .into_iter()
    .map(|(name, config)| dqn_gradient_steps(model, name, config))
    .collect()
}

/// Whole DQN training with `learner` (act + step + store + a gradient step every 4 env steps)
/// of `seeds` runs, each 20 campaigns per call, spread over rayon's threads (all cores).
fn dqn_training(name: &'static str, model: &Arc<EnvModel>, learner: DqnLearner, seeds: u64) -> Workload {
    const EPISODES: u64 = 20;
    let config = DqnConfig {
        learning_starts: 0,
        epsilon_decay_fraction: 0.0,
        ..DqnConfig::default()
    };
    let mut runs: Vec<_> = (0..seeds)
        .map(|seed| {
            let mut rng = AgentRng::seed_from_u64(seed);
            let agent = dqn(
                model,
                DqnConfig {
                    learner,
                    ..config.clone()
                },
                &mut rng,
            );
            let env = ContractChoiceEnv::new(Arc::clone(model), Split::Train, seed);
            (agent, env, rng)
        })
        .collect();
    Workload {
        name,
        unit: "env steps",
        per_run: seeds * EPISODES * model.episode_len() as u64,
        headline: true,
        slow: true,
        run: Box::new(move || {
            runs.par_iter_mut().for_each(|(agent, env, rng)| {
                for _ in 0..EPISODES {
                    black_box(play_episode(env, agent, rng, None, Mode::Train));
                }
            });
        }),
    }
}

/// Minibatches of 64 drawn from a full 100,000-transition replay buffer of the env's dense
/// observations, 1,000 per run.
fn replay_sampling(model: &Arc<EnvModel>) -> Workload {
    const BATCHES: u64 = 1_000;
    const CAPACITY: usize = 100_000;
    let dim = model.dense_len();
    let mut rng = AgentRng::seed_from_u64(0);
    let mut buffer = ReplayBuffer::new(CAPACITY, dim);
    let obs: Vec<f32> = (0..dim).map(|_| rng.random::<f32>()).collect();
    for i in 0..CAPACITY {
        buffer.push(&obs, i % model.n_actions(), 1.0, &obs, i % 100 == 99, 0b1111);
    }
    let mut batch = Batch::default();
    Workload {
        name: "replay/sample_batch64",
        unit: "minibatches",
        per_run: BATCHES,
        headline: true,
        slow: false,
        run: Box::new(move || {
            for _ in 0..BATCHES {
                buffer.sample(64, 1.0, &mut rng, &mut batch);
                black_box(&batch);
            }
        }),
    }
}

/// The sample snapshot read, checked against its manifest and decoded (polars decodes on its
/// thread pool, so this and the export are not single-threaded).
fn snapshot_load(path: PathBuf) -> Workload {
    let users = snapshot::read_manifest(&path)
        .expect("the sample snapshot's manifest reads")
        .rows;
    Workload {
        name: "snapshot/load",
        unit: "users",
        per_run: users,
        headline: true,
        slow: false,
        run: Box::new(move || {
            black_box(snapshot::read(&path).expect("the sample snapshot reads"));
        }),
    }
}

/// A comparison of 6 agents × 10 seeds: IQM, median and mean with bootstrap intervals,
/// P(improvement) for every pair and performance profiles.
fn statistics() -> Workload {
    let mut rng = AgentRng::seed_from_u64(0);
    let runs: Vec<AgentRuns> = (0..6)
        .map(|a| AgentRuns {
            agent: format!("agent_{a}"),
            name: format!("agent_{a}"),
            scores: (0..10)
                .map(|_| 3_000.0 + 100.0 * f64::from(a) + rng.random::<f64>() * 200.0)
                .collect(),
        })
        .collect();
    Workload {
        name: "stats/compare_6_agents_10_seeds",
        unit: "comparisons",
        per_run: 1,
        headline: true,
        slow: false,
        run: Box::new(move || {
            black_box(Comparison::new("expected return", &runs));
        }),
    }
}

/// `export powerbi` of the quickstart experiment's results (run once, here) into the scratch
/// folder.
fn export(inputs: &Inputs) -> Workload {
    let results = inputs.scratch.join("quickstart");
    let loaded = LoadedExperiment::load(&inputs.root.join("experiments/quickstart.toml"), None, &DqnAgents)
        .expect("the quickstart experiment loads");
    let run = loaded
        .experiment
        .run(&DqnAgents, &RunOptions::default(), &|_| {})
        .expect("the quickstart experiment runs");
    let build = Build {
        version: env!("CARGO_PKG_VERSION"),
        commit: None,
    };
    loaded
        .write_results(&results, &run, build)
        .expect("the results are written");
    let (sample, out) = (inputs.sample(), inputs.scratch.join("powerbi"));
    Workload {
        name: "export/powerbi_quickstart",
        unit: "exports",
        per_run: 1,
        headline: true,
        slow: true,
        run: Box::new(move || {
            black_box(
                export_powerbi(std::slice::from_ref(&results), &sample, &Bands::default(), &out)
                    .expect("the export works"),
            );
        }),
    }
}

/// The median of `runs` timed calls of `workload`, in seconds per call; a fast workload is
/// called once untimed first (caches, lazy setup).
pub fn median_seconds(workload: &mut Workload, runs: usize) -> f64 {
    if !workload.slow {
        (workload.run)();
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = std::time::Instant::now();
            (workload.run)();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// A path inside the system's temporary folder unique to this process.
pub fn scratch(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("contract-rl-{what}-{}", std::process::id()))
}
