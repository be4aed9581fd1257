//! Playing campaigns: one loop for training (exploring, learning) and evaluation (greedy, on
//! held-out users), returning the episode's statistics; and a sweep of tabular learners trained
//! side by side on a [`VectorEnv`].

use super::credit::UserCredit;
use crate::agents::{Agent, AgentRng, Credit, QLearning, Transition};
use crate::env::{Campaigns, Env, EnvKind, MAX_CONTRACTS, Observation, ResetInfo, Split, VectorEnv};

/// Whether a campaign trains the agent or evaluates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exploratory actions; the agent learns from every transition.
    Train,
    /// Greedy actions; the agent does not learn.
    Eval,
}

/// Statistics of one campaign.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpisodeStats {
    /// Sum of sampled rewards.
    pub return_: f64,
    /// Sum of expected rewards of the offers made (no sampling noise).
    pub expected_return: f64,
    /// Number of steps.
    pub length: u32,
    /// Accepted offers.
    pub accepted: u32,
    /// Offers made of each contract.
    pub offers: [u32; MAX_CONTRACTS],
}

/// What an evaluation keeps of a campaign besides its statistics, to explain a policy: who
/// each decision was about, what was offered, and the shared resources left at the end.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Trace {
    /// The user of each decision, in campaign order.
    pub users: Vec<u32>,
    /// The action taken at each decision.
    pub actions: Vec<u8>,
    /// The expected reward of each decision's offer, as the env reports it.
    pub expected_rewards: Vec<f64>,
    /// The shared resources left after the last decision ([`crate::env::EnvKind::resource_names`]).
    pub resources_left: Vec<f64>,
}

impl Trace {
    /// Records one decision.
    pub fn push(&mut self, user: u32, action: usize, expected_reward: f64) {
        self.users.push(user);
        self.actions.push(action as u8);
        self.expected_rewards.push(expected_reward);
    }
}

/// Plays one campaign of `env` (reset with `seed`, or continuing its RNG when `None`).
pub fn play_episode<E: Env + ?Sized>(
    env: &mut E,
    agent: &mut dyn Agent,
    rng: &mut AgentRng,
    seed: Option<u64>,
    mode: Mode,
) -> EpisodeStats {
    let start = env.reset(seed);
    play(env, start, agent, rng, mode, None)
}

/// Plays the campaign `env` was just reset to (`start`), writing its [`Trace`] into `trace` when
/// given. Training feeds the agent the env's steps, or each user's own transitions for agents
/// that take per-user credit.
fn play<E: Env + ?Sized>(
    env: &mut E,
    (mut obs, info): (Observation, ResetInfo),
    agent: &mut dyn Agent,
    rng: &mut AgentRng,
    mode: Mode,
    mut trace: Option<&mut Trace>,
) -> EpisodeStats {
    agent.begin_episode(&obs, &info);
    let mut credit = (mode == Mode::Train && agent.credit() == Credit::PerUser).then(UserCredit::default);
    let mut user_transitions = Vec::new();
    let mut stats = EpisodeStats {
        return_: 0.0,
        expected_return: 0.0,
        length: 0,
        accepted: 0,
        offers: [0; MAX_CONTRACTS],
    };
    loop {
        let action = match mode {
            Mode::Train => agent.act(&obs, rng),
            Mode::Eval => agent.act_greedy(&obs, rng),
        };
        let before = credit.is_some().then(|| UserCredit::before_step(env));
        let step = env
            .step(action)
            .unwrap_or_else(|e| panic!("the agent chose an action the env refused: {e}"));
        stats.return_ += step.reward;
        stats.expected_return += step.info.expected_reward;
        stats.length += 1;
        stats.accepted += u32::from(step.info.accepted);
        stats.offers[action] += 1;
        if let Some(trace) = trace.as_deref_mut() {
            trace.push(obs.user, action, step.info.expected_reward);
        }
        if let (Some(credit), Some(before)) = (credit.as_mut(), before) {
            credit.after_step(env, before, &obs, action, &step, &mut user_transitions);
            for t in user_transitions.drain(..) {
                agent.observe_user(&t, rng);
            }
        } else if mode == Mode::Train {
            let transition = Transition {
                obs,
                action,
                reward: step.reward,
                next_obs: step.obs,
                terminated: step.terminated,
                truncated: step.truncated,
            };
            agent.observe(&transition, rng);
        }
        if step.terminated || step.truncated {
            if let Some(trace) = trace {
                trace.resources_left = env.resources_left();
            }
            agent.end_episode(&step.obs, mode == Mode::Train);
            return stats;
        }
        obs = step.obs;
    }
}

/// Trains `agents[i]` with `rngs[i]` on campaign `i` of `env` for `rounds` steps: a sweep of
/// tabular learners (seeds, step sizes, ε schedules) fed by one env call per step. Every call
/// starts new campaigns. Learner `i` ends as training on campaign `i`'s single env would leave it
/// after as many steps ([`play_episode`] when `rounds` ends the campaigns; a test checks it bit
/// for bit, campaigns ending at different steps included).
///
/// # Panics
/// When there is not one learner and one RNG per campaign, or a learner picks an action its mask
/// refuses.
pub fn train_q_learners(env: &mut dyn VectorEnv, agents: &mut [QLearning], rngs: &mut [AgentRng], rounds: u64) {
    let n = env.len();
    assert!(
        agents.len() == n && rngs.len() == n,
        "one learner and one RNG per campaign"
    );
    env.reset();
    let (mut actions, mut states) = (vec![0; n], vec![0; n]);
    for _ in 0..rounds {
        states.copy_from_slice(env.states());
        for (((action, agent), rng), (&state, &mask)) in actions
            .iter_mut()
            .zip(&mut *agents)
            .zip(&mut *rngs)
            .zip(states.iter().zip(env.masks()))
        {
            *action = agent.act_in(state, mask, rng);
        }
        env.step(&actions)
            .unwrap_or_else(|e| panic!("a learner chose an action the env refused: {e}"));
        let (next_states, next_masks) = (env.states(), env.masks());
        let (rewards, terminated) = (env.rewards(), env.terminated());
        for (i, (agent, rng)) in agents.iter_mut().zip(&mut *rngs).enumerate() {
            let next = (!terminated[i]).then(|| (next_states[i], next_masks[i]));
            agent.learn(states[i], actions[i], rewards[i], next, rng);
        }
    }
}

/// Evaluates `agent` greedily on `episodes` campaigns of `split` (campaign i reset with seed
/// `seed + i`, one replay: on customer lifetime the fixed cohort i), so every agent meets the
/// same campaigns.
pub fn evaluate(
    kind: &EnvKind,
    agent: &mut dyn Agent,
    rng: &mut AgentRng,
    split: Split,
    episodes: usize,
    seed: u64,
) -> Vec<EpisodeStats> {
    evaluate_traced(kind, agent, rng, split, episodes, seed).0
}

/// [`evaluate`], with each campaign's [`Trace`].
pub fn evaluate_traced(
    kind: &EnvKind,
    agent: &mut dyn Agent,
    rng: &mut AgentRng,
    split: Split,
    episodes: usize,
    seed: u64,
) -> (Vec<EpisodeStats>, Vec<Trace>) {
    let which = Campaigns {
        campaigns: episodes,
        replays: 1,
        seed,
    };
    evaluate_campaigns(kind, agent, rng, split, &which)
}

/// Evaluates `agent` greedily on `which` campaigns of `split` ([`Env::reset_campaign`] with
/// each replay's seed), campaign after campaign, with the [`Trace`] of each replay. Every agent
/// and reference meets the same campaigns and draws.
pub fn evaluate_campaigns(
    kind: &EnvKind,
    agent: &mut dyn Agent,
    rng: &mut AgentRng,
    split: Split,
    which: &Campaigns,
) -> (Vec<EpisodeStats>, Vec<Trace>) {
    let mut env = kind.make(split, which.seed);
    which
        .replays()
        .map(|(campaign, replay)| {
            let start = env.reset_campaign(campaign, which.seed_of(campaign, replay));
            let mut trace = Trace::default();
            let stats = play(env.as_mut(), start, agent, rng, Mode::Eval, Some(&mut trace));
            (stats, trace)
        })
        .unzip()
}
