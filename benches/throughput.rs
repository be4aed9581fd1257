//! Single-thread throughput of the inner loops, on the default env and the sample snapshot:
//! env steps per second, and tabular Q-learning training steps (act + step + learn) per second.
//! DQN: one gradient step at batch 64 over thousands of steps, and whole DQN training in env
//! steps per second. Targets: at least 10 million env steps/s, 5 million Q-learning steps/s and
//! 6,000 DQN training env steps/s. The customer-lifetime env: steps per second (target 5
//! million: every decision is a step, and month ends are paid inside them) and the time of one
//! bid-price solve (the Lagrangian dual minimised over a cohort).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use contract_rl_core::agents::{AgentRng, DqnConfig, QLearning, QLearningConfig};
use contract_rl_core::env::lifetime::{
    CustomerLifetimeEnv, LifetimeConfig, LifetimeModel, believed_views, capacity_left, minimise_dual,
};
use contract_rl_core::env::{ContractChoiceEnv, Env, EnvConfig, EnvModel, Split};
use contract_rl_core::experiment::{Mode, play_episode};
use contract_rl_dqn::Dqn;
use contract_rl_parquet::snapshot;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;

fn sample_model() -> Arc<EnvModel> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = EnvConfig::load(&root.join("envs/contract-choice.toml")).unwrap();
    let records = snapshot::read(&root.join("data/snapshots/sample.parquet"))
        .unwrap()
        .records;
    Arc::new(EnvModel::build(config, &records).unwrap())
}

/// Steps per second of `env` under a policy that cycles through the allowed actions (so quotas,
/// stock and budget do run out), resetting at each episode's end.
fn step_throughput(c: &mut Criterion, group: &str, env: &mut dyn Env) {
    const STEPS: u64 = 100_000;
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(STEPS));
    group.bench_function("step", |b| {
        b.iter(|| {
            let (mut obs, _) = env.reset(None);
            let mut total = 0.0;
            for i in 0..STEPS as usize {
                let action = obs.mask.nth(i % obs.mask.count() as usize).unwrap();
                let step = env.step(action).unwrap();
                total += step.reward;
                obs = if step.terminated { env.reset(None).0 } else { step.obs };
            }
            black_box(total)
        })
    });
    group.finish();
}

fn env_steps(c: &mut Criterion) {
    step_throughput(c, "env", &mut ContractChoiceEnv::new(sample_model(), Split::Train, 0));
}

fn q_learning_steps(c: &mut Criterion) {
    const EPISODES: u64 = 100;
    let model = sample_model();
    let steps = EPISODES * model.episode_len() as u64;
    let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Train, 0);
    let mut agent = QLearning::new(
        QLearningConfig::default(),
        model.n_states(),
        model.n_actions(),
        10_000_000,
    );
    let mut rng = AgentRng::seed_from_u64(0);
    let mut group = c.benchmark_group("q_learning");
    group.throughput(Throughput::Elements(steps));
    group.bench_function("train_step", |b| {
        b.iter(|| {
            for _ in 0..EPISODES {
                black_box(play_episode(&mut env, &mut agent, &mut rng, None, Mode::Train));
            }
        })
    });
    group.finish();
}

/// One DQN gradient step at batch 64 (hidden [64, 64]); each sample runs 2,000 steps on the
/// same agent, so a step time that grows with training shows up across samples.
fn dqn_gradient_steps(c: &mut Criterion) {
    const STEPS: u64 = 2_000;
    let model = sample_model();
    let config = DqnConfig {
        learning_starts: u64::MAX,
        ..DqnConfig::default()
    };
    let mut rng = AgentRng::seed_from_u64(0);
    let mut agent = Dqn::new(config, model.dense_len(), model.n_actions(), 1_000_000, &mut rng);
    let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Train, 0);
    for _ in 0..100 {
        play_episode(&mut env, &mut agent, &mut rng, None, Mode::Train);
    }
    let mut group = c.benchmark_group("dqn");
    group.throughput(Throughput::Elements(STEPS));
    group.sample_size(10);
    group.bench_function("gradient_step_batch64", |b| {
        b.iter(|| {
            for _ in 0..STEPS {
                agent.gradient_step(&mut rng);
            }
        })
    });
    group.finish();
}

/// Whole DQN training (act + step + store + a gradient step every 4 env steps) in env steps.
fn dqn_training_steps(c: &mut Criterion) {
    const EPISODES: u64 = 20;
    let model = sample_model();
    let config = DqnConfig {
        learning_starts: 0,
        epsilon_decay_fraction: 0.0,
        ..DqnConfig::default()
    };
    let mut rng = AgentRng::seed_from_u64(0);
    let mut agent = Dqn::new(config, model.dense_len(), model.n_actions(), 1_000_000, &mut rng);
    let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Train, 0);
    let mut group = c.benchmark_group("dqn");
    group.throughput(Throughput::Elements(EPISODES * model.episode_len() as u64));
    group.sample_size(10);
    group.bench_function("train_env_step", |b| {
        b.iter(|| {
            for _ in 0..EPISODES {
                black_box(play_episode(&mut env, &mut agent, &mut rng, None, Mode::Train));
            }
        })
    });
    group.finish();
}

fn lifetime_model() -> Arc<LifetimeModel> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = LifetimeConfig::load(&root.join("envs/customer-lifetime.toml")).unwrap();
    let records = snapshot::read(&root.join("data/snapshots/sample.parquet"))
        .unwrap()
        .records;
    Arc::new(LifetimeModel::build(config, &records).unwrap())
}

fn lifetime_env_steps(c: &mut Criterion) {
    step_throughput(
        c,
        "lifetime_env",
        &mut CustomerLifetimeEnv::new(lifetime_model(), Split::Train, 0),
    );
}

fn lifetime_bid_price_solve(c: &mut Criterion) {
    let mut env = CustomerLifetimeEnv::new(lifetime_model(), Split::Test, 0);
    env.reset_campaign(0, 0);
    let model = Arc::clone(env.model());
    let views = believed_views(&env);
    let capacity = capacity_left(&env);
    let mut group = c.benchmark_group("lifetime_bid_price");
    group.sample_size(10);
    group.bench_function("solve_cohort", |b| {
        b.iter(|| black_box(minimise_dual(&model, &views, capacity, 2)))
    });
    group.finish();
}

criterion_group!(
    benches,
    env_steps,
    lifetime_env_steps,
    lifetime_bid_price_solve,
    q_learning_steps,
    dqn_gradient_steps,
    dqn_training_steps
);
criterion_main!(benches);
