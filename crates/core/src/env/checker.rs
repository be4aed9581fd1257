//! The env checker: what Gymnasium's `check_env` verifies, for the contract-choice env.
//!
//! Spaces, observations inside them after reset and every step, reset determinism under a seed
//! and difference under another, finite rewards, boolean flags that end the campaign exactly
//! once, valid non-empty masks that refuse masked actions, and bit-identical trajectories from
//! the same seed and actions.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::contract_choice::{ContractChoiceEnv, EnvError, EnvModel, Observation, Split, Step};

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was verified.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// Figures or the first failure.
    pub detail: String,
}

/// Runs every check on every split with `episodes` random-policy campaigns each.
pub fn check_env(model: &Arc<EnvModel>, episodes: usize) -> Vec<Check> {
    let mut checks = vec![spaces(model)];
    for split in Split::ALL {
        checks.push(reset_determinism(model, split));
        checks.push(rollouts(model, split, episodes));
        checks.push(masked_actions_refused(model, split));
    }
    checks
}

fn check(name: &'static str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check {
            name,
            passed: true,
            detail,
        },
        Err(detail) => Check {
            name,
            passed: false,
            detail,
        },
    }
}

fn spaces(model: &EnvModel) -> Check {
    let result = if model.n_actions() == 0 {
        Err("no actions".into())
    } else if model.n_states() == 0 || model.n_states() > u32::MAX as usize {
        Err(format!("{} tabular states does not fit a u32 index", model.n_states()))
    } else {
        Ok(format!(
            "Discrete({}) actions, {} tabular states, dense observation of {} values ({}), {} train / {} validation / {} test users",
            model.n_actions(),
            model.n_states(),
            model.dense_len(),
            model.dense_names().join(", "),
            model.split(Split::Train).len(),
            model.split(Split::Validation).len(),
            model.split(Split::Test).len(),
        ))
    };
    check("spaces", result)
}

/// Checks an observation against the spaces; `terminal` relaxes the mask check.
fn observation_ok(model: &EnvModel, obs: &Observation, terminal: bool) -> Result<(), String> {
    if obs.state as usize >= model.n_states() {
        return Err(format!("state {} outside 0..{}", obs.state, model.n_states()));
    }
    if obs.user as usize >= model.n_users() || obs.t as usize > model.episode_len() {
        return Err(format!("user {} or t {} out of range", obs.user, obs.t));
    }
    if obs.mask.0 & !model.eligible(obs.user).0 != 0 {
        return Err(format!("mask {:#b} allows an ineligible contract", obs.mask.0));
    }
    if !terminal && obs.mask.count() == 0 {
        return Err(format!("no valid action for user {} at t {}", obs.user, obs.t));
    }
    let dense = obs.dense();
    if dense.len() != model.dense_names().len() {
        return Err(format!(
            "dense observation of {} values but {} names",
            dense.len(),
            model.dense_names().len()
        ));
    }
    if let Some(v) = dense.iter().find(|v| !v.is_finite()) {
        return Err(format!("dense observation holds {v}"));
    }
    Ok(())
}

/// Plays one campaign with uniformly random valid actions drawn from `rng`.
fn rollout(
    env: &mut ContractChoiceEnv,
    seed: Option<u64>,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<(Observation, Step)>, String> {
    let model = Arc::clone(env.model());
    let (mut obs, _) = env.reset(seed);
    observation_ok(&model, &obs, false)?;
    let mut trajectory = Vec::with_capacity(model.episode_len());
    for t in 0..model.episode_len() {
        let action = obs
            .mask
            .nth(rng.random_range(0..obs.mask.count() as usize))
            .expect("non-empty mask");
        let step = env.step(action).map_err(|e| format!("t {t}: {e}"))?;
        if !step.reward.is_finite() {
            return Err(format!("t {t}: reward {} is not finite", step.reward));
        }
        if step.truncated {
            return Err(format!("t {t}: the env truncated by itself"));
        }
        if step.terminated != (t + 1 == model.episode_len()) {
            return Err(format!(
                "t {t}: terminated = {} with episode_len {}",
                step.terminated,
                model.episode_len()
            ));
        }
        observation_ok(&model, &step.obs, step.terminated)?;
        trajectory.push((obs, step));
        obs = step.obs;
    }
    match env.step(obs.mask.nth(0).unwrap_or(0)) {
        Err(EnvError::EpisodeOver) => Ok(trajectory),
        other => Err(format!("stepping after the end gave {other:?}")),
    }
}

fn reset_determinism(model: &Arc<EnvModel>, split: Split) -> Check {
    let result = (|| {
        let mut a = ContractChoiceEnv::new(Arc::clone(model), split, 1);
        let mut b = ContractChoiceEnv::new(Arc::clone(model), split, 2);
        let run = |env: &mut ContractChoiceEnv, seed| rollout(env, Some(seed), &mut ChaCha8Rng::seed_from_u64(7));
        if run(&mut a, 123)? != run(&mut b, 123)? {
            return Err("reset(seed=123) twice gave different trajectories".to_owned());
        }
        let first = a.reset(Some(123)).0;
        let differing = (124..134).filter(|s| b.reset(Some(*s)).0 != first).count();
        if differing == 0 {
            return Err("ten other seeds all gave the same first observation as seed 123".to_owned());
        }
        Ok(format!(
            "{split:?}: reset(seed=123) twice gives the same trajectory bit for bit; {differing}/10 other seeds start elsewhere"
        ))
    })();
    check("reset determinism", result)
}

fn rollouts(model: &Arc<EnvModel>, split: Split, episodes: usize) -> Check {
    let result = (|| {
        let mut a = ContractChoiceEnv::new(Arc::clone(model), split, 99);
        let mut b = ContractChoiceEnv::new(Arc::clone(model), split, 99);
        let mut steps = 0;
        for episode in 0..episodes {
            let mut rng_a = ChaCha8Rng::seed_from_u64(episode as u64);
            let mut rng_b = ChaCha8Rng::seed_from_u64(episode as u64);
            let ta = rollout(&mut a, None, &mut rng_a)?;
            let tb = rollout(&mut b, None, &mut rng_b)?;
            if ta != tb {
                return Err(format!(
                    "episode {episode}: two envs with the same seed and actions diverged"
                ));
            }
            steps += ta.len();
        }
        Ok(format!(
            "{split:?}: {episodes} random campaigns, {steps} steps: observations in their spaces, non-empty masks, finite rewards, terminated exactly at the end, never truncated, identical across two same-seed envs"
        ))
    })();
    check("rollouts", result)
}

fn masked_actions_refused(model: &Arc<EnvModel>, split: Split) -> Check {
    let result = (|| {
        let mut env = ContractChoiceEnv::new(Arc::clone(model), split, 5);
        let mut refused = 0;
        for _ in 0..20 {
            let (obs, _) = env.reset(None);
            for action in (0..model.n_actions()).filter(|a| !obs.mask.contains(*a)) {
                match env.step(action) {
                    Err(EnvError::InvalidAction { .. }) => refused += 1,
                    other => return Err(format!("masked action {action} gave {other:?}")),
                }
            }
        }
        match env.step(model.n_actions()) {
            Err(EnvError::InvalidAction { .. }) => {}
            other => return Err(format!("out-of-range action gave {other:?}")),
        }
        Ok(format!(
            "{split:?}: {refused} masked offers and an out-of-range action were refused"
        ))
    })();
    check("masked actions", result)
}
