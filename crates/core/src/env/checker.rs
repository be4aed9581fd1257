//! The env checker: what Gymnasium's `check_env` verifies, for every env kind.
//!
//! Spaces, observations inside them after reset and every step, reset determinism under a seed
//! and difference under another, finite rewards, episodes that terminate exactly once (and are
//! never truncated by the env), valid non-empty masks that refuse masked actions, and
//! bit-identical trajectories from the same seed and actions.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::contract_choice::{EnvError, Observation, Split, Step};
use super::kind::{Env, EnvKind};

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
pub fn check_env(kind: &EnvKind, episodes: usize) -> Vec<Check> {
    let mut checks = vec![spaces(kind)];
    for split in Split::ALL {
        checks.push(reset_determinism(kind, split));
        checks.push(rollouts(kind, split, episodes));
        checks.push(masked_actions_refused(kind, split));
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

/// Users of each split, and the most steps a campaign may take: exactly its length for
/// contract choice, at most one decision per user and month for customer lifetime.
fn shape(kind: &EnvKind) -> ([usize; 3], usize, bool) {
    match kind {
        EnvKind::ContractChoice(m) => (Split::ALL.map(|s| m.split(s).len()), m.episode_len(), true),
        EnvKind::CustomerLifetime(m) => (
            Split::ALL.map(|s| m.split(s).len()),
            m.config().cohort * m.config().months,
            false,
        ),
    }
}

fn spaces(kind: &EnvKind) -> Check {
    let s = kind.spaces();
    let (users, _, _) = shape(kind);
    let result = if s.n_actions == 0 || s.n_actions > 16 {
        Err(format!("{} actions do not fit the 16-bit mask", s.n_actions))
    } else if s.n_states == 0 || s.n_states > u32::MAX as usize {
        Err(format!("{} tabular states does not fit a u32 index", s.n_states))
    } else {
        Ok(format!(
            "{}: Discrete({}) actions, {} tabular states, dense observation of {} values, {} train / {} validation / {} test users",
            kind.name(),
            s.n_actions,
            s.n_states,
            s.dense_len,
            users[0],
            users[1],
            users[2],
        ))
    };
    check("spaces", result)
}

/// Checks an observation against the spaces; `terminal` relaxes the mask check.
fn observation_ok(kind: &EnvKind, obs: &Observation, terminal: bool) -> Result<(), String> {
    let s = kind.spaces();
    if obs.state as usize >= s.n_states {
        return Err(format!("state {} outside 0..{}", obs.state, s.n_states));
    }
    if obs.mask.0 >> s.n_actions != 0 {
        return Err(format!("mask {:#b} allows actions beyond {}", obs.mask.0, s.n_actions));
    }
    if let Some(model) = kind.contract_choice() {
        if obs.user as usize >= model.n_users() || obs.t as usize > model.episode_len() {
            return Err(format!("user {} or t {} out of range", obs.user, obs.t));
        }
        if obs.mask.0 & !model.eligible(obs.user).0 != 0 {
            return Err(format!("mask {:#b} allows an ineligible contract", obs.mask.0));
        }
    }
    if !terminal && obs.mask.count() == 0 {
        return Err(format!("no valid action for user {} at t {}", obs.user, obs.t));
    }
    let dense = obs.dense();
    if dense.len() != s.dense_len {
        return Err(format!(
            "dense observation of {} values, not {}",
            dense.len(),
            s.dense_len
        ));
    }
    if let Some(v) = dense.iter().find(|v| !v.is_finite()) {
        return Err(format!("dense observation holds {v}"));
    }
    Ok(())
}

/// Plays one campaign with uniformly random valid actions drawn from `rng`.
fn rollout(
    kind: &EnvKind,
    env: &mut dyn Env,
    seed: Option<u64>,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<(Observation, Step)>, String> {
    let (_, most, exact) = shape(kind);
    let (mut obs, _) = env.reset(seed);
    observation_ok(kind, &obs, false)?;
    let mut trajectory = Vec::new();
    for t in 0..most {
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
        if exact && step.terminated != (t + 1 == most) {
            return Err(format!(
                "t {t}: terminated = {} with episode_len {most}",
                step.terminated
            ));
        }
        observation_ok(kind, &step.obs, step.terminated)?;
        trajectory.push((obs, step));
        obs = step.obs;
        if step.terminated {
            break;
        }
    }
    if !trajectory.last().is_some_and(|(_, step)| step.terminated) {
        return Err(format!("no termination within {most} steps"));
    }
    match env.step(obs.mask.nth(0).unwrap_or(0)) {
        Err(EnvError::EpisodeOver) => Ok(trajectory),
        other => Err(format!("stepping after the end gave {other:?}")),
    }
}

fn reset_determinism(kind: &EnvKind, split: Split) -> Check {
    let result = (|| {
        let mut a = kind.make(split, 1);
        let mut b = kind.make(split, 2);
        let run = |env: &mut dyn Env, seed| rollout(kind, env, Some(seed), &mut ChaCha8Rng::seed_from_u64(7));
        if run(a.as_mut(), 123)? != run(b.as_mut(), 123)? {
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

fn rollouts(kind: &EnvKind, split: Split, episodes: usize) -> Check {
    let result = (|| {
        let mut a = kind.make(split, 99);
        let mut b = kind.make(split, 99);
        let mut steps = 0;
        for episode in 0..episodes {
            let mut rng_a = ChaCha8Rng::seed_from_u64(episode as u64);
            let mut rng_b = ChaCha8Rng::seed_from_u64(episode as u64);
            let ta = rollout(kind, a.as_mut(), None, &mut rng_a)?;
            let tb = rollout(kind, b.as_mut(), None, &mut rng_b)?;
            if ta != tb {
                return Err(format!(
                    "episode {episode}: two envs with the same seed and actions diverged"
                ));
            }
            steps += ta.len();
        }
        Ok(format!(
            "{split:?}: {episodes} random campaigns, {steps} steps: observations in their spaces, non-empty masks, finite rewards, terminated exactly once at the end, never truncated, identical across two same-seed envs"
        ))
    })();
    check("rollouts", result)
}

fn masked_actions_refused(kind: &EnvKind, split: Split) -> Check {
    let n_actions = kind.spaces().n_actions;
    let result = (|| {
        let mut env = kind.make(split, 5);
        let mut refused = 0;
        for _ in 0..20 {
            let (obs, _) = env.reset(None);
            for action in (0..n_actions).filter(|a| !obs.mask.contains(*a)) {
                match env.step(action) {
                    Err(EnvError::InvalidAction { .. }) => refused += 1,
                    other => return Err(format!("masked action {action} gave {other:?}")),
                }
            }
        }
        match env.step(n_actions) {
            Err(EnvError::InvalidAction { .. }) => {}
            other => return Err(format!("out-of-range action gave {other:?}")),
        }
        Ok(format!(
            "{split:?}: {refused} masked actions and an out-of-range action were refused"
        ))
    })();
    check("masked actions", result)
}
