//! The Q-network as a plain `ndarray` MLP (Linear → ReLU → ... → Linear, and optionally a
//! dueling head): its weights, drawn as PyTorch draws them, the forward pass for acting and for
//! the bootstrap, and Polyak averaging. The learners train it; acting and the target read it.

use contract_rl_core::agents::AgentRng;
use ndarray::{Array1, Array2, ArrayView2, linalg::general_mat_mul};
use rand::RngExt;

/// Inputs `matrixmultiply` sums in one chain (its `kc` block for `f32`); past it, it adds
/// blocks' chains.
const GEMM_DEPTH_BLOCK: usize = 256;

/// `h = x · w + b` for a one-row `x` (acting, at every env step) without `matrixmultiply`'s
/// packing of all of `w`, giving its bits: where the CPU has AVX2 and FMA, `matrixmultiply`
/// computes each entry as one chain of fused multiply-adds over up to [`GEMM_DEPTH_BLOCK`]
/// inputs in order, from zero, and so does [`one_row_fma`]; elsewhere this calls it.
fn one_row(x: ArrayView2<f32>, w: &Array2<f32>, b: &Array1<f32>, h: &mut Array2<f32>) {
    #[cfg(target_arch = "x86_64")]
    if x.ncols() <= GEMM_DEPTH_BLOCK && fma_cpu() {
        let (x, w, b) = (x.to_slice(), w.as_slice(), b.as_slice());
        let out = h.as_slice_mut().expect("standard layout");
        let [x, w, b] = [x, w, b].map(|a| a.expect("standard layout"));
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        unsafe { one_row_fma(x, w, b, out) };
        return;
    }
    general_mat_mul(1.0, &x, w, 0.0, h);
    *h += b;
}

/// Whether the CPU has AVX2 and FMA: where `matrixmultiply` (and burn's `gemm`) run their FMA
/// kernels, the condition of [`one_row_fma`] and of the learners' equal bits.
pub(crate) fn fma_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `h = x · w + b`, `w` row-major `[x.len(), h.len()]`, in matrixmultiply's FMA kernel's order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn one_row_fma(x: &[f32], w: &[f32], b: &[f32], h: &mut [f32]) {
    debug_assert_eq!(x.len() * h.len(), w.len(), "one weight row per input");
    h.fill(0.0);
    for (&xi, row) in x.iter().zip(w.chunks_exact(h.len())) {
        for (hj, &wj) in h.iter_mut().zip(row) {
            *hj = xi.mul_add(wj, *hj);
        }
    }
    for (hj, &bj) in h.iter_mut().zip(b) {
        *hj += bj;
    }
}

/// The weights of each layer: `[inputs, outputs]` and `[outputs]`, so a layer computes
/// `x · W + b` as burn's `Linear` does.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    pub(crate) layers: Vec<(Array2<f32>, Array1<f32>)>,
    /// A dueling head (Wang et al. 2016): the last layer's outputs are V and A(·), and the
    /// network's are Q = V + A − mean(A), in one more output buffer.
    pub(crate) dueling: bool,
}

/// Q = (V + A) − mean(A) of each row of `head` (`[rows, 1 + actions]`) into `q`; the mean is
/// the in-order sum over the actions divided by their number, as burn's `mean_dim`.
pub(crate) fn dueling_q(head: &Array2<f32>, q: &mut Array2<f32>) {
    let n = q.ncols() as f32;
    for (h, mut q) in head.rows().into_iter().zip(q.rows_mut()) {
        let mean = h.iter().skip(1).sum::<f32>() / n;
        for (q, a) in q.iter_mut().zip(h.iter().skip(1)) {
            *q = (h[0] + a) - mean;
        }
    }
}

impl Mlp {
    /// An MLP of `sizes` (inputs, hidden..., actions; with `dueling`, one more last output for
    /// V) with weights and biases drawn from `rng` as PyTorch does: U(−1/√fan_in, 1/√fan_in),
    /// each layer's weights before its biases.
    pub(crate) fn draw(sizes: &[usize], dueling: bool, rng: &mut AgentRng) -> Self {
        let mut sizes = sizes.to_vec();
        *sizes.last_mut().expect("outputs") += usize::from(dueling);
        let layers = sizes
            .windows(2)
            .map(|w| {
                let (inputs, outputs) = (w[0], w[1]);
                let bound = 1.0 / (inputs as f32).sqrt();
                let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
                let weight = Array2::from_shape_vec((inputs, outputs), draw(inputs * outputs)).expect("weight shape");
                (weight, Array1::from_vec(draw(outputs)))
            })
            .collect();
        Self { layers, dueling }
    }

    /// The same shapes, all zeros.
    pub(crate) fn zeros_like(&self) -> Self {
        let layers = self
            .layers
            .iter()
            .map(|(w, b)| (Array2::zeros(w.raw_dim()), Array1::zeros(b.raw_dim())))
            .collect();
        Self {
            layers,
            dueling: self.dueling,
        }
    }

    /// Entries of the input layer.
    pub(crate) fn inputs(&self) -> usize {
        self.layers[0].0.nrows()
    }

    /// Buffers for each layer's output on `rows` inputs (and the dueling head's Q), for
    /// [`Self::forward_into`].
    pub(crate) fn buffers(&self, rows: usize) -> Vec<Array2<f32>> {
        let mut buffers: Vec<Array2<f32>> = self
            .layers
            .iter()
            .map(|(w, _)| Array2::zeros((rows, w.ncols())))
            .collect();
        if self.dueling {
            let actions = buffers.last().expect("a layer").ncols() - 1;
            buffers.push(Array2::zeros((rows, actions)));
        }
        buffers
    }

    /// # Shapes
    /// - `x`: `[batch, inputs]` → `[batch, actions]`
    pub(crate) fn forward(&self, x: ArrayView2<f32>) -> Array2<f32> {
        let mut outputs = self.buffers(x.nrows());
        self.forward_into(x, &mut outputs);
        outputs.pop().expect("a layer")
    }

    /// The forward pass writing each layer's output into `outputs` ([`Self::buffers`]; hidden
    /// ones after their ReLU; the dueling head's Q last) without allocating; returns the last,
    /// `[batch, actions]`.
    pub(crate) fn forward_into<'a>(&self, x: ArrayView2<f32>, outputs: &'a mut [Array2<f32>]) -> &'a Array2<f32> {
        let last = self.layers.len() - 1;
        for (i, (w, b)) in self.layers.iter().enumerate() {
            let (done, rest) = outputs.split_at_mut(i);
            let input = done.last().map_or(x, |h| h.view());
            let h = &mut rest[0];
            if input.nrows() == 1 {
                one_row(input, w, b, h);
            } else {
                general_mat_mul(1.0, &input, w, 0.0, h);
                *h += b;
            }
            if i < last {
                h.mapv_inplace(|v| v.max(0.0));
            }
        }
        if self.dueling {
            let (head, q) = outputs.split_at_mut(last + 1);
            dueling_q(&head[last], &mut q[0]);
            return &outputs[last + 1];
        }
        &outputs[last]
    }

    /// Polyak averaging: self ← tau · other + (1 − tau) · self.
    pub(crate) fn blend(&mut self, other: &Mlp, tau: f32) {
        for ((w, b), (ow, ob)) in self.layers.iter_mut().zip(&other.layers) {
            w.zip_mut_with(ow, |a, o| *a = tau * o + (1.0 - tau) * *a);
            b.zip_mut_with(ob, |a, o| *a = tau * o + (1.0 - tau) * *a);
        }
    }
}
