//! The default env on the committed sample snapshot: it passes the checker, and the choice of
//! contract matters (the properties the env was designed to have).

mod common;

use std::sync::Arc;

use contract_rl::agents::{Agent, AgentRng, BestSingleContract, HindsightOracle, MyopicOracle, RandomAgent};
use contract_rl::env::{ContractChoiceEnv, Split, check_env};
use contract_rl::experiment::{EpisodeStats, evaluate, offer_mix};
use rand::SeedableRng;

const CAMPAIGNS: usize = 50;

fn held_out(agent: &mut dyn Agent) -> Vec<EpisodeStats> {
    let model = common::sample_model();
    evaluate(&model, agent, &mut AgentRng::seed_from_u64(0), CAMPAIGNS, 77)
}

fn mean_expected(stats: &[EpisodeStats]) -> f64 {
    stats.iter().map(|s| s.expected_return).sum::<f64>() / stats.len() as f64
}

#[test]
fn the_default_env_passes_every_check() {
    let checks = check_env(&common::sample_model(), 10);
    assert!(checks.len() >= 7);
    for c in &checks {
        assert!(c.passed, "{}: {}", c.name, c.detail);
    }
}

#[test]
fn two_envs_with_the_same_seed_roll_out_identically_and_another_seed_differs() {
    let model = common::sample_model();
    let rollout = |seed| {
        let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Train, 0);
        let mut agent = RandomAgent;
        let mut rng = AgentRng::seed_from_u64(5);
        let (mut obs, _) = env.reset(Some(seed));
        let mut rewards = Vec::new();
        loop {
            let step = env.step(agent.act(&obs, &mut rng)).unwrap();
            rewards.push(step.reward.to_bits());
            if step.terminated {
                return rewards;
            }
            obs = step.obs;
        }
    };
    assert_eq!(rollout(11), rollout(11));
    assert_ne!(rollout(11), rollout(12));
}

#[test]
fn the_myopic_oracle_uses_several_contracts_and_beats_the_best_single_one_by_ten_percent() {
    let model = common::sample_model();
    let myopic = held_out(&mut MyopicOracle::new(Arc::clone(&model)));
    let used = offer_mix(&myopic, model.n_actions())
        .iter()
        .filter(|share| **share > 0.01)
        .count();
    assert!(used >= 3, "the myopic oracle uses {used} contracts");
    let single = mean_expected(&held_out(&mut BestSingleContract::new(&model)));
    let oracle = mean_expected(&myopic);
    assert!(oracle >= 1.10 * single, "myopic {oracle:.1} vs best single {single:.1}");
}

#[test]
fn a_quota_binds_so_the_hindsight_optimum_beats_the_myopic_oracle() {
    let model = common::sample_model();
    let myopic = mean_expected(&held_out(&mut MyopicOracle::new(Arc::clone(&model))));
    let hindsight = mean_expected(&held_out(&mut HindsightOracle::new(Arc::clone(&model))));
    assert!(
        hindsight > myopic * 1.01,
        "hindsight {hindsight:.1} vs myopic {myopic:.1}"
    );
}

#[test]
fn oracles_and_baselines_never_offer_a_masked_contract() {
    let model = common::sample_model();
    let agents: Vec<Box<dyn Agent>> = vec![
        Box::new(RandomAgent),
        Box::new(BestSingleContract::new(&model)),
        Box::new(MyopicOracle::new(Arc::clone(&model))),
        Box::new(HindsightOracle::new(Arc::clone(&model))),
    ];
    for mut agent in agents {
        // `evaluate` panics if the env refuses an action.
        let stats = held_out(agent.as_mut());
        assert_eq!(stats.len(), CAMPAIGNS);
    }
}
