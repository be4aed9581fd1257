//! Measures what issue 13's seed batching could gain: one DQN-shaped gradient step (MLP
//! 12→64→64→5, batch 64, squared error on the taken action against fixed targets, Adam) of
//! SEEDS networks on burn (`flex`), done two ways:
//! - one network per seed, one step after another;
//! - the SEEDS networks as one with a leading seed dimension (rank-3 `matmul`, one Adam over the
//!   stacked weights; the loss is the sum of each seed's mean, so every seed's gradient is its
//!   own).
//!
//! Prints microseconds per step of all SEEDS networks. BENCHMARKS.md ("Where DQN's time goes")
//! quotes it; the step written out on ndarray is the DQN crate's default learner, measured by
//! `dqn/gradient_step_batch64` against `dqn/gradient_step_batch64_burn`.
//!
//! cargo run --release -p contract-rl-dqn --example seed_batched_step -- [SEEDS] [STEPS]

use std::time::Instant;

use burn::module::Param;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

const SIZES: [usize; 4] = [12, 64, 64, 5];
const BATCH: usize = 64;
const LEARNING_RATE: f32 = 1e-3;

/// Deterministic values in [−0.15, 0.15): weights and inputs without an RNG.
fn filler(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 31 + salt * 17) % 97) as f32 / 97.0 - 0.5) * 0.3)
        .collect()
}

/// The inputs, taken actions and targets of one minibatch per seed.
fn minibatch(seeds: usize) -> (Vec<f32>, Vec<i64>, Vec<f32>) {
    let n = seeds * BATCH;
    let actions = (0..n).map(|i| (i % SIZES[3]) as i64).collect();
    let targets = (0..n).map(|i| (i % 10) as f32 / 10.0).collect();
    (filler(n * SIZES[0], 3), actions, targets)
}

/// `seeds` MLPs stacked along a leading dimension.
#[derive(Module, Debug)]
struct Stacked {
    weights: Vec<Param<Tensor<3>>>,
    biases: Vec<Param<Tensor<3>>>,
}

impl Stacked {
    fn new(seeds: usize, device: &Device) -> Self {
        let param = |values: Vec<f32>, shape: [usize; 3]| Param::from_data(TensorData::new(values, shape), device);
        Self {
            weights: SIZES
                .windows(2)
                .map(|w| param(filler(seeds * w[0] * w[1], w[0]), [seeds, w[0], w[1]]))
                .collect(),
            biases: SIZES
                .windows(2)
                .map(|w| param(vec![0.0; seeds * w[1]], [seeds, 1, w[1]]))
                .collect(),
        }
    }

    /// `[seeds, batch, inputs]` → `[seeds, batch, actions]`.
    fn forward(&self, mut x: Tensor<3>) -> Tensor<3> {
        let last = self.weights.len() - 1;
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            x = x.matmul(w.val()) + b.val();
            if i < last {
                x = burn::tensor::activation::relu(x);
            }
        }
        x
    }
}

/// Microseconds per step of `groups` burn networks of `seeds` stacked seeds each.
fn burn_step(groups: usize, seeds: usize, steps: usize) -> f64 {
    let device = Device::flex().autodiff();
    let (obs, actions, targets) = minibatch(seeds);
    let mut nets: Vec<(Stacked, ModuleOptimizer)> = (0..groups)
        .map(|_| {
            (
                Stacked::new(seeds, &device),
                AdamConfig::new().with_epsilon(1e-8).init(),
            )
        })
        .collect();
    let step = |net: Stacked, optimizer: &mut ModuleOptimizer| {
        let x = Tensor::<3>::from_data(TensorData::new(obs.clone(), [seeds, BATCH, SIZES[0]]), &device);
        let a = Tensor::<3, Int>::from_data(TensorData::new(actions.clone(), [seeds, BATCH, 1]), &device);
        let y = Tensor::<3>::from_data(TensorData::new(targets.clone(), [seeds, BATCH, 1]), &device);
        let loss = (net.forward(x).gather(2, a) - y).powi_scalar(2).sum() / BATCH as f32;
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        optimizer.step(f64::from(LEARNING_RATE), net, grads)
    };
    timed(steps, || {
        nets = std::mem::take(&mut nets)
            .into_iter()
            .map(|(net, mut optimizer)| (step(net, &mut optimizer), optimizer))
            .collect();
    })
}

/// Microseconds per call of `step`, after 50 warm-up calls.
fn timed(steps: usize, mut step: impl FnMut()) -> f64 {
    for _ in 0..50 {
        step();
    }
    let started = Instant::now();
    for _ in 0..steps {
        step();
    }
    started.elapsed().as_secs_f64() * 1e6 / steps as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: usize = args.next().map_or(10, |s| s.parse().expect("SEEDS: a number"));
    let steps: usize = args.next().map_or(2000, |s| s.parse().expect("STEPS: a number"));
    let separate = burn_step(seeds, 1, steps);
    let stacked = burn_step(1, seeds, steps);
    println!("µs per step of all {seeds} networks (batch {BATCH}, MLP {SIZES:?}):");
    println!("  burn, one network per seed:        {separate:7.0}");
    println!(
        "  burn, seeds stacked in one network: {stacked:7.0}  ({:.2}× the separate steps' speed)",
        separate / stacked
    );
}
