//! DQN for contract-rl on burn's pure-Rust CPU backend ([`Dqn`], with its [`ReplayBuffer`]),
//! and [`DqnAgents`], the agent factory that adds the `dqn` kind to the core's.

mod dqn;
mod replay;

use std::sync::Arc;

use contract_rl_core::agents::{Agent, AgentConfig, AgentError, AgentFactory, AgentRng, CoreAgents, DqnConfig};
use contract_rl_core::env::EnvModel;
use rand::SeedableRng;

pub use dqn::{CHECKPOINT_EXTENSION, Dqn, QNetwork};
pub use replay::{Batch, ReplayBuffer};

/// Builds every agent kind: `dqn` here, the others through [`CoreAgents`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DqnAgents;

impl DqnAgents {
    /// A DQN for `model`'s env; with a `checkpoint`, loaded from it. It sees only the sizes of
    /// the env's observations and actions, never the model.
    fn dqn(config: &DqnConfig, model: &EnvModel, total_steps: u64, rng: &mut AgentRng) -> Result<Dqn, AgentError> {
        let mut agent = Dqn::new(config.clone(), model.dense_len(), model.n_actions(), total_steps, rng);
        if let Some(path) = &config.checkpoint {
            agent.load(path).map_err(|e| AgentError::Checkpoint {
                path: path.clone(),
                source: e.into(),
            })?;
        }
        Ok(agent)
    }
}

impl AgentFactory for DqnAgents {
    /// A DQN with a checkpoint is loaded once here, so a missing, corrupt or mismatched file
    /// stops the experiment before any run starts.
    fn check(&self, config: &AgentConfig, model: &Arc<EnvModel>) -> Result<(), AgentError> {
        match config {
            AgentConfig::Dqn(c) if c.checkpoint.is_some() => {
                Self::dqn(c, model, 1, &mut AgentRng::seed_from_u64(0)).map(drop)
            }
            AgentConfig::Dqn(_) => Ok(()),
            other => CoreAgents.check(other, model),
        }
    }

    fn build(
        &self,
        config: &AgentConfig,
        model: &Arc<EnvModel>,
        total_steps: u64,
        rng: &mut AgentRng,
    ) -> Result<Box<dyn Agent>, AgentError> {
        match config {
            AgentConfig::Dqn(c) => Ok(Box::new(Self::dqn(c, model, total_steps, rng)?)),
            other => CoreAgents.build(other, model, total_steps, rng),
        }
    }
}
