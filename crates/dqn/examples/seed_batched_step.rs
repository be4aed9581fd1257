//! Measures what issue 13's seed batching could gain: one DQN-shaped gradient step (MLP
//! 12→64→64→5, batch 64, squared error on the taken action against fixed targets, Adam) of
//! SEEDS networks, done three ways:
//! - burn (`flex`), one network per seed, one step after another;
//! - burn, the SEEDS networks as one with a leading seed dimension (rank-3 `matmul`, one Adam
//!   over the stacked weights; the loss is the sum of each seed's mean, so every seed's gradient
//!   is its own);
//! - plain ndarray, forward, backward and Adam written out, one network after another.
//!
//! Prints microseconds per step of all SEEDS networks. BENCHMARKS.md ("Where DQN's time goes")
//! quotes it.
//!
//! cargo run --release -p contract-rl-dqn --example seed_batched_step -- [SEEDS] [STEPS]

use std::time::Instant;

use burn::module::Param;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use ndarray::{Array1, Array2, Axis};

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

/// One layer of a plain MLP with its Adam moments.
struct Layer {
    w: Array2<f32>,
    b: Array1<f32>,
    moments_w: (Array2<f32>, Array2<f32>),
    moments_b: (Array1<f32>, Array1<f32>),
}

/// Adam's update of `params` from `grads` with moments `m` and `v`, at step `t` (from 1).
fn adam(params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32], t: i32) {
    let (b1, b2) = (0.9f32, 0.999f32);
    let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    for (((p, g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p -= LEARNING_RATE * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
    }
}

/// A freshly built matrix's entries as one slice.
fn contiguous(a: &mut Array2<f32>) -> &mut [f32] {
    a.as_slice_mut().expect("a standard-layout matrix")
}

/// Microseconds per step of `seeds` plain ndarray MLPs, one after another.
fn plain_step(seeds: usize, steps: usize) -> f64 {
    let (obs, actions, targets) = minibatch(1);
    let x = Array2::from_shape_vec((BATCH, SIZES[0]), obs).expect("batch shape");
    let mut nets: Vec<Vec<Layer>> = (0..seeds)
        .map(|_| {
            SIZES
                .windows(2)
                .map(|w| Layer {
                    w: Array2::from_shape_vec((w[0], w[1]), filler(w[0] * w[1], w[0])).expect("weight shape"),
                    b: Array1::zeros(w[1]),
                    moments_w: (Array2::zeros((w[0], w[1])), Array2::zeros((w[0], w[1]))),
                    moments_b: (Array1::zeros(w[1]), Array1::zeros(w[1])),
                })
                .collect()
        })
        .collect();
    let mut t = 0;
    timed(steps, || {
        t += 1;
        for net in &mut nets {
            // Forward, keeping every layer's input.
            let mut inputs = vec![x.clone()];
            for (i, layer) in net.iter().enumerate() {
                let mut h = inputs[i].dot(&layer.w) + &layer.b;
                if i + 1 < net.len() {
                    h.mapv_inplace(|v| v.max(0.0));
                }
                inputs.push(h);
            }
            // d(loss)/d(output): only the taken action's entry.
            let q = inputs.pop().expect("the output");
            let mut delta = Array2::<f32>::zeros(q.dim());
            for (row, (&a, &y)) in actions.iter().zip(&targets).enumerate() {
                delta[[row, a as usize]] = 2.0 * (q[[row, a as usize]] - y) / BATCH as f32;
            }
            for (i, layer) in net.iter_mut().enumerate().rev() {
                let grad_w = inputs[i].t().dot(&delta);
                let grad_b = delta.sum_axis(Axis(0));
                if i > 0 {
                    let mut back = delta.dot(&layer.w.t());
                    back.zip_mut_with(&inputs[i], |d, h| *d = if *h > 0.0 { *d } else { 0.0 });
                    delta = back;
                }
                let (m, v) = &mut layer.moments_w;
                adam(
                    contiguous(&mut layer.w),
                    grad_w.as_slice().expect("contiguous"),
                    contiguous(m),
                    contiguous(v),
                    t,
                );
                let (m, v) = &mut layer.moments_b;
                let b = layer.b.as_slice_mut().expect("contiguous");
                let (m, v) = (
                    m.as_slice_mut().expect("contiguous"),
                    v.as_slice_mut().expect("contiguous"),
                );
                adam(b, grad_b.as_slice().expect("contiguous"), m, v, t);
            }
        }
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
    let plain = plain_step(seeds, steps);
    println!("µs per step of all {seeds} networks (batch {BATCH}, MLP {SIZES:?}):");
    println!("  burn, one network per seed:        {separate:7.0}");
    println!(
        "  burn, seeds stacked in one network: {stacked:7.0}  ({:.2}× the separate steps' speed)",
        separate / stacked
    );
    println!(
        "  plain ndarray, one after another:   {plain:7.0}  ({:.2}× the separate steps' speed)",
        separate / plain
    );
}
