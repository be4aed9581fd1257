//! The reference learner: the Q-network on burn's autodiff `flex` device, trained by burn's
//! loss, backward pass and Adam with per-tensor gradient clipping. [`QNetwork`] is also the
//! checkpoint format of both learners (burnpack).

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::nn::loss::{HuberLossConfig, MseLoss, Reduction};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use contract_rl_core::agents::DqnConfig;
use ndarray::{Array1, Array2};

use crate::learner::Learner;
use crate::mlp::Mlp;
use crate::replay::Batch;

/// The Q-network as a burn module: Linear → ReLU → ... → Linear.
#[derive(Module, Debug)]
pub(crate) struct QNetwork {
    layers: Vec<Linear>,
}

impl QNetwork {
    /// The network holding `mlp`'s weights, on `device`. Parameters are numbered in order
    /// (burn would draw random ids), so a checkpoint's bytes depend on the weights only.
    pub(crate) fn from_mlp(mlp: &Mlp, device: &Device) -> Self {
        fn numbered<const D: usize>(values: TensorData, id: usize, device: &Device) -> Param<Tensor<D>> {
            let mut param = Param::from_data(values, device);
            param.id = ParamId::from(id as u64);
            param
        }
        let layers = mlp
            .layers
            .iter()
            .enumerate()
            .map(|(i, (w, b))| Linear {
                weight: numbered(
                    TensorData::new(w.iter().copied().collect(), w.shape().to_vec()),
                    2 * i,
                    device,
                ),
                bias: Some(numbered(
                    TensorData::new(b.to_vec(), b.shape().to_vec()),
                    2 * i + 1,
                    device,
                )),
            })
            .collect();
        Self { layers }
    }

    /// # Shapes
    /// - `x`: `[batch, inputs]`
    /// - output: `[batch, actions]`
    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = burn::tensor::activation::relu(x);
            }
        }
        x
    }

    /// A plain-array copy of the weights, with a dueling head when `dueling`.
    pub(crate) fn to_mlp(&self, dueling: bool) -> Mlp {
        let values = |data: TensorData| data.try_to_vec::<f32>().expect("f32 parameters");
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let [inputs, outputs] = l.weight.dims();
                let weight = values(l.weight.val().into_data());
                let bias = values(l.bias.as_ref().expect("layers have biases").val().into_data());
                (
                    Array2::from_shape_vec((inputs, outputs), weight).expect("weight shape"),
                    Array1::from_vec(bias),
                )
            })
            .collect();
        Mlp { layers, dueling }
    }
}

/// The dueling head on the last layer's outputs `[batch, 1 + actions]`: (V + A) − mean(A).
fn dueling_q(head: Tensor<2>) -> Tensor<2> {
    let [b, k] = head.dims();
    let v = head.clone().slice([0..b, 0..1]);
    let a = head.slice([0..b, 1..k]);
    (v + a.clone()) - a.mean_dim(1)
}

/// burn's training of the online network, with a plain copy refreshed after every step.
pub(crate) struct BurnLearner {
    device: Device,
    online: QNetwork,
    optimizer: ModuleOptimizer,
    mlp: Mlp,
}

impl BurnLearner {
    pub(crate) fn new(mlp: Mlp, config: &DqnConfig) -> Self {
        let device = Device::flex().autodiff();
        let optimizer = AdamConfig::new()
            .with_epsilon(config.adam_epsilon)
            .with_grad_clipping(Some(GradientClippingConfig::Norm(config.max_grad_norm)))
            .init();
        Self {
            online: QNetwork::from_mlp(&mlp, &device),
            device,
            optimizer,
            mlp,
        }
    }
}

impl Learner for BurnLearner {
    fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    fn set_mlp(&mut self, mlp: Mlp) {
        self.online = QNetwork::from_mlp(&mlp, &self.device);
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
        let (b, d) = (y.len(), self.mlp.inputs());
        let obs = Tensor::<2>::from_data(TensorData::new(batch.obs.clone(), [b, d]), &self.device);
        let actions = Tensor::<2, Int>::from_data(TensorData::new(batch.actions.clone(), [b, 1]), &self.device);
        let mut q = self.online.forward(obs);
        if self.mlp.dueling {
            q = dueling_q(q);
        }
        let q = q.gather(1, actions).reshape([b]);
        let q_mean: f32 = q.clone().detach().mean().into_scalar();
        let y = Tensor::<1>::from_data(TensorData::new(y.to_vec(), [b]), &self.device);
        residuals.clear();
        residuals.extend(
            (q.clone().detach() - y.clone())
                .into_data()
                .as_slice::<f32>()
                .expect("f32 residuals"),
        );
        let loss = if batch.weights.is_empty() {
            match config.huber_delta {
                Some(delta) => HuberLossConfig::new(delta).init().forward(q, y, Reduction::Mean),
                None => MseLoss::new().forward(q, y, Reduction::Mean),
            }
        } else {
            let weights = Tensor::<1>::from_data(TensorData::new(batch.weights.clone(), [b]), &self.device);
            let each = match config.huber_delta {
                Some(delta) => HuberLossConfig::new(delta).init().forward_no_reduction(q, y),
                None => MseLoss::new().forward_no_reduction(q, y),
            };
            (each * weights).mean()
        };
        let loss_value: f32 = loss.clone().detach().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &self.online);
        self.online = self.optimizer.step(learning_rate, self.online.clone(), grads);
        self.mlp = self.online.to_mlp(self.mlp.dueling);
        (loss_value, q_mean)
    }
}
