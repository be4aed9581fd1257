//! The default learner: one gradient step written out on `ndarray` (forward, the loss's
//! gradient at the taken actions, backward, per-tensor gradient-norm clipping, Adam), computing
//! what [`crate::burn_learner`] computes (bit for bit where [`DqnLearner`] says), in buffers
//! allocated once. burn's
//! per-operation bookkeeping (graph, allocation, dispatch) cost about half of its step at these
//! sizes (BENCHMARKS.md, "Where DQN's time goes").

use burn::grad_clipping::GradientClipping;
use burn::prelude::*;
use contract_rl_core::agents::DqnConfig;
#[cfg(doc)]
use contract_rl_core::agents::DqnLearner;
use ndarray::{Array, Array2, ArrayView2, Dimension, linalg::general_mat_mul};

use crate::learner::Learner;
use crate::mlp::Mlp;
use crate::replay::Batch;

/// Clips the gradient `g` to norm `max` as burn's `GradientClipping::Norm` does. burn's factor
/// is a reciprocal times `max`, and its sum of squares follows how burn-flex is built (in order
/// here; in lanes of the CPU's vector width with its `simd` feature), so a norm that may reach
/// `max` is left to burn itself. A norm clearly below `max` by an 8-lane sum leaves `g` as it
/// is, as burn would (its factor is then exactly 1); either sum of n squares is within n·2⁻²⁴
/// of the true one relatively, under 1% up to 10⁵ entries, and larger tensors always go to burn.
fn clip(g: &mut [f32], max: f32) {
    let mut lanes = [0.0f32; 8];
    let chunks = g.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|x| x * x).sum();
    for chunk in chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x * x;
        }
    }
    if g.len() <= 100_000 && (lanes.iter().sum::<f32>() + tail).sqrt() < 0.99 * max {
        return;
    }
    let tensor = Tensor::<1>::from_data(TensorData::new(g.to_vec(), [g.len()]), &Device::flex());
    let clipped = GradientClipping::Norm(max).clip_gradient(tensor).into_data();
    g.copy_from_slice(clipped.as_slice::<f32>().expect("f32 gradients"));
}

/// Adam's decay rates (burn's and PyTorch's defaults).
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;

/// The online network with its Adam moments and the buffers of one step.
pub(crate) struct NdarrayLearner {
    mlp: Mlp,
    /// Each layer's output for the minibatch (`[batch, outputs]`; hidden ones after ReLU).
    outputs: Vec<Array2<f32>>,
    /// d loss / d each layer's output (before its ReLU; the last layer's, before the dueling
    /// head).
    deltas: Vec<Array2<f32>>,
    grads: Mlp,
    first_moments: Mlp,
    second_moments: Mlp,
    /// Adam steps taken.
    steps: i32,
}

impl NdarrayLearner {
    /// A learner of `mlp` for minibatches of `batch_size`.
    pub(crate) fn new(mlp: Mlp, batch_size: usize) -> Self {
        let mut deltas = mlp.buffers(batch_size);
        deltas.truncate(mlp.layers.len());
        Self {
            outputs: mlp.buffers(batch_size),
            deltas,
            grads: mlp.zeros_like(),
            first_moments: mlp.zeros_like(),
            second_moments: mlp.zeros_like(),
            steps: 0,
            mlp,
        }
    }
}

impl Learner for NdarrayLearner {
    fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    fn set_mlp(&mut self, mlp: Mlp) {
        self.mlp = mlp;
    }

    fn train(
        &mut self,
        batch: &Batch,
        y: &[f32],
        learning_rate: f64,
        config: &DqnConfig,
        residuals: &mut Vec<f32>,
    ) -> (f32, f32) {
        let b = y.len();
        let obs = ArrayView2::from_shape((b, self.mlp.inputs()), &batch.obs).expect("batch shape");
        self.mlp.forward_into(obs, &mut self.outputs);
        let (loss, q_mean) = self.output_delta(batch, y, config.huber_delta, residuals);
        self.backward(obs);
        self.adam(learning_rate, config);
        (loss, q_mean)
    }
}

impl NdarrayLearner {
    /// Writes d loss / d Q into the last delta (non-zero only at the taken actions, and through
    /// the dueling head; the loss is the mean over the minibatch, each row's times its weight
    /// when `batch` has weights) and each Q(s, a) − y into `residuals`; returns the loss and
    /// the mean Q(s, a). The gradient is formed as burn's backward pass forms it, through 1/n
    /// as its mean's gradient.
    fn output_delta(
        &mut self,
        batch: &Batch,
        y: &[f32],
        huber_delta: Option<f32>,
        residuals: &mut Vec<f32>,
    ) -> (f32, f32) {
        let n = y.len() as f32;
        let inverse_n = (1.0 / f64::from(n)) as f32;
        let layers = self.mlp.layers.len();
        let (q, delta) = (self.outputs.last().expect("a layer"), &mut self.deltas[layers - 1]);
        delta.fill(0.0);
        residuals.clear();
        let (mut loss, mut q_sum) = (0.0, 0.0);
        let actions = q.ncols() as f32;
        for (row, (&action, &target)) in batch.actions.iter().zip(y).enumerate() {
            let at = [row, action as usize];
            let residual = q[at] - target;
            // d loss / d loss_i: 1/n, times the row's weight.
            let g = batch.weights.get(row).map_or(inverse_n, |w| inverse_n * w);
            let (value, gradient) = match huber_delta {
                Some(d) if residual.abs() > d => (d * residual.abs() - 0.5 * d * d, d.copysign(residual) * g),
                Some(_) => (0.5 * residual * residual, residual * g),
                None => (residual * residual, 2.0 * (residual * g)),
            };
            loss += batch.weights.get(row).map_or(value, |w| value * w);
            q_sum += q[at];
            residuals.push(residual);
            if self.mlp.dueling {
                // Q_j = V + A_j − mean(A): d/dV = Σ_j dQ_j, d/dA_k = dQ_k − Σ_j dQ_j / n.
                delta[[row, 0]] = gradient;
                let spread = -(gradient / actions);
                for k in 0..q.ncols() {
                    delta[[row, 1 + k]] = if k == at[1] { gradient + spread } else { spread };
                }
            } else {
                delta[at] = gradient;
            }
        }
        (loss / n, q_sum / n)
    }

    /// Gradients of every weight and bias from the last delta back to the input `obs`.
    fn backward(&mut self, obs: ArrayView2<f32>) {
        for i in (0..self.mlp.layers.len()).rev() {
            let (grad_w, grad_b) = &mut self.grads.layers[i];
            let input = if i == 0 { obs } else { self.outputs[i - 1].view() };
            general_mat_mul(1.0, &input.t(), &self.deltas[i], 0.0, grad_w);
            // Row after row: each entry sums the rows in order, as burn does.
            grad_b.fill(0.0);
            for row in self.deltas[i].rows() {
                *grad_b += &row;
            }
            if i > 0 {
                let (before, after) = self.deltas.split_at_mut(i);
                let back = &mut before[i - 1];
                general_mat_mul(1.0, &after[0], &self.mlp.layers[i].0.t(), 0.0, back);
                // ReLU's gradient: zero where its output was (a select, so it vectorises).
                back.zip_mut_with(&self.outputs[i - 1], |d, &h| *d = if h > 0.0 { *d } else { 0.0 });
            }
        }
    }

    /// Clips each tensor's gradient to `max_grad_norm` (burn's `GradientClipping::Norm`) and
    /// takes an Adam step in burn's form of the bias corrections.
    fn adam(&mut self, learning_rate: f64, config: &DqnConfig) {
        self.steps += 1;
        let correction_2 = (1.0 - BETA_2.powi(self.steps)).sqrt();
        let step = AdamStep {
            factor: correction_2 / (1.0 - BETA_1.powi(self.steps)),
            epsilon: config.adam_epsilon * correction_2,
            learning_rate: learning_rate as f32,
            max_grad_norm: config.max_grad_norm,
        };
        let layers = self.mlp.layers.iter_mut().zip(&mut self.grads.layers);
        let moments = self
            .first_moments
            .layers
            .iter_mut()
            .zip(&mut self.second_moments.layers);
        for (((w, b), (gw, gb)), ((mw, mb), (vw, vb))) in layers.zip(moments) {
            step.apply(entries(w), entries(gw), entries(mw), entries(vw));
            step.apply(entries(b), entries(gb), entries(mb), entries(vb));
        }
    }
}

/// A standard-layout array's entries.
fn entries<D: Dimension>(a: &mut Array<f32, D>) -> &mut [f32] {
    a.as_slice_mut().expect("standard layout")
}

/// One Adam step's constants.
struct AdamStep {
    /// √(1 − β₂ᵗ) / (1 − β₁ᵗ).
    factor: f32,
    /// Adam's ε × √(1 − β₂ᵗ).
    epsilon: f32,
    learning_rate: f32,
    max_grad_norm: f32,
}

impl AdamStep {
    /// Clips the gradient `g` of the tensor `p`, then updates its moments `m`, `v` and `p`.
    fn apply(&self, p: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32]) {
        clip(g, self.max_grad_norm);
        for (((p, &g), m), v) in p.iter_mut().zip(g.iter()).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = BETA_1 * *m + (1.0 - BETA_1) * g;
            *v = BETA_2 * *v + (1.0 - BETA_2) * (g * g);
            *p -= (*m * self.factor / (v.sqrt() + self.epsilon)) * self.learning_rate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Below, near and above the largest norm (the shortcut's edge included), for tensor sizes
    /// of a bias, a first layer and a 64 × 64 layer: the same bits as burn's clipping.
    #[test]
    fn clipping_gives_burns_bits() {
        for n in [2, 5, 64, 768, 4096] {
            let g: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.1)
                .collect();
            let norm = g.iter().map(|x| x * x).sum::<f32>().sqrt();
            for max in [
                0.5 * norm,
                0.995 * norm,
                norm,
                1.001 * norm,
                1.0102 * norm,
                1.02 * norm,
                2.0 * norm,
            ] {
                let mut ours = g.clone();
                clip(&mut ours, max);
                let tensor = Tensor::<1>::from_data(TensorData::new(g.clone(), [n]), &Device::flex());
                let burns = GradientClipping::Norm(max).clip_gradient(tensor).into_data();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&ours),
                    bits(burns.as_slice::<f32>().unwrap()),
                    "{n} entries, max {max}"
                );
            }
        }
    }
}
