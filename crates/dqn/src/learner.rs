//! What trains the online network: the gradient step written out on `ndarray`
//! ([`crate::ndarray_learner`], the default) or burn's autodiff and Adam
//! ([`crate::burn_learner`], the reference); [`crate::qfunction::learner`] builds the one a
//! config names.

use contract_rl_core::agents::DqnConfig;

use crate::mlp::Mlp;
use crate::replay::Batch;

/// One learner of the online network.
pub(crate) trait Learner: Send {
    /// The online network's current weights.
    fn mlp(&self) -> &Mlp;

    /// Replaces the online network's weights (the optimiser's moments stay).
    fn set_mlp(&mut self, mlp: Mlp);

    /// One gradient step at `learning_rate` of the loss between Q(s, a) of `batch` and the
    /// targets `y` (each row's loss times its weight in `batch.weights`, when there are any);
    /// writes Q(s, a) − y of each row into `residuals` and returns the loss and the mean
    /// Q(s, a), both before the step.
    fn train(
        &mut self,
        batch: &Batch,
        y: &[f32],
        learning_rate: f64,
        config: &DqnConfig,
        residuals: &mut Vec<f32>,
    ) -> (f32, f32);
}
