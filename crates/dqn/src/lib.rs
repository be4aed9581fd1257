//! DQN for contract-rl ([`Dqn`], with its [`ReplayBuffer`]) and its per-user form under resource
//! prices ([`LagrangianDqn`]): gradient steps written out on `ndarray` or by burn's pure-Rust
//! CPU backend, checkpoints in burn's format; and [`DqnAgents`], the agent factory that adds the
//! `dqn` and `lagrangian_dqn` kinds to the core's.

mod afterstate;
mod burn_learner;
mod dqn;
mod lagrangian;
mod learner;
mod mlp;
mod ndarray_learner;
mod priorities;
mod qfunction;
mod replay;

use contract_rl_core::agents::{
    Agent, AgentConfig, AgentError, AgentFactory, AgentRng, CoreAgents, DqnConfig, DqnHead, LagrangianDqnConfig,
    RewardBaseline, coupled,
};
use contract_rl_core::env::{EnvKind, Spaces};
use rand::SeedableRng;

pub use dqn::{CHECKPOINT_EXTENSION, Dqn};
pub use lagrangian::LagrangianDqn;
pub use replay::{Batch, ReplayBuffer, Stored, Uses};

/// Builds every agent kind: `dqn` here, the others through [`CoreAgents`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DqnAgents;

impl DqnAgents {
    /// Whether `env` states what `config`'s options need: fixed-length campaigns for the
    /// per-step baseline, afterstates for the afterstate head.
    fn supports(config: &DqnConfig, env: &EnvKind) -> Result<(), AgentError> {
        let spaces = env.spaces();
        let unsupported = |option, needs| AgentError::UnsupportedOption {
            option,
            needs,
            env: env.name(),
        };
        if config.baseline == RewardBaseline::PerStep && spaces.steps_per_campaign.is_none() {
            return Err(unsupported(
                "baseline = \"per_step\"",
                "campaigns of one fixed number of steps (the shaping is policy-invariant only then)",
            ));
        }
        if config.head == DqnHead::Afterstate && spaces.afterstate.is_none() {
            return Err(unsupported(
                "head = \"afterstate\"",
                "decisions whose effect on the campaign is known before the answer",
            ));
        }
        Ok(())
    }

    /// A DQN for an env of `spaces`; with a `checkpoint`, loaded from it. It sees only the sizes
    /// of the env's observations and actions and the rules of its campaigns, never the model.
    fn dqn(config: &DqnConfig, spaces: Spaces, total_steps: u64, rng: &mut AgentRng) -> Result<Dqn, AgentError> {
        let mut agent = Dqn::new(config.clone(), &spaces, total_steps, rng);
        if let Some(path) = &config.checkpoint {
            agent.load(path).map_err(|e| AgentError::Checkpoint {
                path: path.clone(),
                source: e.into(),
            })?;
        }
        Ok(agent)
    }

    /// A `lagrangian_dqn` for `env`; with a checkpoint, loaded from it (network and prices).
    fn lagrangian(
        config: &LagrangianDqnConfig,
        env: &EnvKind,
        total_steps: u64,
        rng: &mut AgentRng,
    ) -> Result<LagrangianDqn, AgentError> {
        coupled(env, "lagrangian_dqn")?;
        let mut agent = LagrangianDqn::new(config.clone(), env.spaces(), total_steps, rng);
        if let Some(path) = &config.dqn.checkpoint {
            agent.load(path)?;
        }
        Ok(agent)
    }
}

impl AgentFactory for DqnAgents {
    /// A DQN with a checkpoint is loaded once here, so a missing, corrupt or mismatched file
    /// stops the experiment before any run starts.
    fn check(&self, config: &AgentConfig, env: &EnvKind) -> Result<(), AgentError> {
        match config {
            AgentConfig::Dqn(c) => {
                Self::supports(c, env)?;
                match c.checkpoint {
                    Some(_) => Self::dqn(c, env.spaces(), 1, &mut AgentRng::seed_from_u64(0)).map(drop),
                    None => Ok(()),
                }
            }
            AgentConfig::LagrangianDqn(c) if c.dqn.checkpoint.is_some() => {
                Self::lagrangian(c, env, 1, &mut AgentRng::seed_from_u64(0)).map(drop)
            }
            AgentConfig::LagrangianDqn(_) => coupled(env, "lagrangian_dqn").map(drop),
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
            AgentConfig::LagrangianDqn(c) => Ok(Box::new(Self::lagrangian(c, env, total_steps, rng)?)),
            other => CoreAgents.build(other, env, total_steps, rng),
        }
    }
}
