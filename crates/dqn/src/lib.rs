//! DQN for contract-rl ([`Dqn`], with its [`ReplayBuffer`]): gradient steps written out on
//! `ndarray` or by burn's pure-Rust CPU backend, checkpoints in burn's format;
//! and [`DqnAgents`], the agent factory that adds the `dqn` kind to the core's.

mod burn_learner;
mod dqn;
mod mlp;
mod ndarray_learner;
mod replay;

use contract_rl_core::agents::{Agent, AgentConfig, AgentError, AgentFactory, AgentRng, CoreAgents, DqnConfig};
use contract_rl_core::env::{EnvKind, Spaces};
use rand::SeedableRng;

pub use dqn::{CHECKPOINT_EXTENSION, Dqn};
pub use replay::{Batch, ReplayBuffer};

/// Builds every agent kind: `dqn` here, the others through [`CoreAgents`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DqnAgents;

impl DqnAgents {
    /// A DQN for an env of `spaces`; with a `checkpoint`, loaded from it. It sees only the sizes
    /// of the env's observations and actions, never the model.
    fn dqn(config: &DqnConfig, spaces: Spaces, total_steps: u64, rng: &mut AgentRng) -> Result<Dqn, AgentError> {
        let mut agent = Dqn::new(config.clone(), spaces.dense_len, spaces.n_actions, total_steps, rng);
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
    fn check(&self, config: &AgentConfig, env: &EnvKind) -> Result<(), AgentError> {
        match config {
            AgentConfig::Dqn(c) if c.checkpoint.is_some() => {
                Self::dqn(c, env.spaces(), 1, &mut AgentRng::seed_from_u64(0)).map(drop)
            }
            AgentConfig::Dqn(_) => Ok(()),
            other => CoreAgents.check(other, env),
        }
    }

    fn build(
        &self,
        config: &AgentConfig,
        env: &EnvKind,
        total_steps: u64,
        rng: &mut AgentRng,
    ) -> Result<Box<dyn Agent>, AgentError> {
        match config {
            AgentConfig::Dqn(c) => Ok(Box::new(Self::dqn(c, env.spaces(), total_steps, rng)?)),
            other => CoreAgents.build(other, env, total_steps, rng),
        }
    }
}
