//! Single-thread throughput of the inner loops, on the default env and the sample snapshot:
//! env steps per second, and tabular Q-learning training steps (act + step + learn) per second.
//! Targets: at least 10 million env steps/s and 5 million Q-learning steps/s.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use contract_rl::agents::{AgentRng, QLearning, QLearningConfig};
use contract_rl::env::{ContractChoiceEnv, EnvConfig, EnvModel, Split};
use contract_rl::experiment::{Mode, play_episode};
use contract_rl::snapshot;
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

fn env_steps(c: &mut Criterion) {
    const STEPS: u64 = 100_000;
    let model = sample_model();
    let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Train, 0);
    let mut group = c.benchmark_group("env");
    group.throughput(Throughput::Elements(STEPS));
    group.bench_function("step", |b| {
        b.iter(|| {
            let (mut obs, _) = env.reset(None);
            let mut total = 0.0;
            for i in 0..STEPS as usize {
                // Cycle through the valid contracts so that quotas do run out.
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

criterion_group!(benches, env_steps, q_learning_steps);
criterion_main!(benches);
