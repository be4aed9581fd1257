//! The core on the sample's users, without Parquet: the default env passes the checker and
//! the choice of contract matters; the tabular state encoding is injective; bad env and
//! experiment files are refused with messages naming the file and field; the runner records
//! learning diagnostics and refuses agents this crate cannot build.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use contract_rl_core::agents::{
    Agent, AgentRng, BestSingleContract, CoreAgents, HindsightOracle, MyopicOracle, OnlineOracle, QLearning,
    QLearningConfig, RandomAgent, Transition,
};
use contract_rl_core::env::lifetime::{CustomerLifetimeEnv, LifetimeConfig, LifetimeModel};
use contract_rl_core::env::{
    ContractChoiceBatch, ContractChoiceEnv, Env, EnvConfig, EnvModel, Split, Step, SyncVectorEnv, VectorEnv, check_env,
    features::bucket,
};
use contract_rl_core::experiment::{
    EpisodeStats, Experiment, ExperimentError, Mode, RunOptions, evaluate, offer_mix, play_episode, train_q_learners,
};
use rand::SeedableRng;
use toml::Value;

const CAMPAIGNS: usize = 50;

fn held_out(agent: &mut dyn Agent) -> Vec<EpisodeStats> {
    let model = support::sample_model();
    evaluate(
        &model.into(),
        agent,
        &mut AgentRng::seed_from_u64(0),
        Split::Test,
        CAMPAIGNS,
        77,
    )
}

fn mean_expected(stats: &[EpisodeStats]) -> f64 {
    stats.iter().map(|s| s.expected_return).sum::<f64>() / stats.len() as f64
}

#[test]
fn the_default_env_passes_every_check() {
    let checks = check_env(&support::sample_model().into(), 10);
    let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
    for expected in ["spaces", "reset determinism", "rollouts", "masked actions"] {
        assert!(names.contains(&expected), "no {expected:?} check in {names:?}");
    }
    // One spaces check, then three per split.
    assert_eq!(checks.len(), 10, "{names:?}");
    for c in &checks {
        assert!(c.passed, "{}: {}", c.name, c.detail);
    }
}

#[test]
fn two_envs_with_the_same_seed_roll_out_identically_and_another_seed_differs() {
    let model = support::sample_model();
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

/// The default env with three quotas (the first contract's 5 per campaign, the second's zero, the
/// default's) and four quota buckets besides "exhausted".
fn three_quotas() -> Arc<EnvModel> {
    let mut config = EnvConfig::load(&support::env_file()).unwrap();
    config.contracts[0].quota = Some(0.05);
    config.contracts[1].quota = Some(0.0);
    config.state.quota_remaining_edges = vec![0.25, 0.5, 0.75];
    Arc::new(EnvModel::build(config, &support::sample_records()).unwrap())
}

/// Campaign `i`'s last step as `vector` reports it, and as the single env's `step` does: rewards'
/// bits and flags.
fn last_steps(vector: &dyn VectorEnv, i: usize, step: &Step) -> [(u64, u64, bool, bool); 2] {
    [
        (
            vector.rewards()[i].to_bits(),
            vector.expected_rewards()[i].to_bits(),
            vector.accepted()[i],
            vector.terminated()[i],
        ),
        (
            step.reward.to_bits(),
            step.info.expected_reward.to_bits(),
            step.info.accepted,
            step.terminated,
        ),
    ]
}

#[test]
fn each_campaign_of_the_batched_env_follows_the_single_env_with_its_seed() {
    for (model, split) in [support::sample_model(), three_quotas()]
        .into_iter()
        .flat_map(|m| Split::ALL.map(|s| (Arc::clone(&m), s)))
    {
        let seeds: Vec<u64> = (0..16).map(|i| 1000 + 7 * i).collect();
        let mut batch = ContractChoiceBatch::new(Arc::clone(&model), split, &seeds);
        let mut singles: Vec<ContractChoiceEnv> = seeds
            .iter()
            .map(|&s| ContractChoiceEnv::new(Arc::clone(&model), split, s))
            .collect();
        batch.reset();
        let mut obs: Vec<_> = singles.iter_mut().map(|env| env.reset(None).0).collect();
        // 3.5 campaigns of 100 users; cycling through the allowed actions exhausts the quota.
        for round in 0..350 {
            for (i, o) in obs.iter().enumerate() {
                assert_eq!(batch.observation(i), *o, "{split:?} campaign {i}, round {round}");
            }
            let actions: Vec<usize> = obs
                .iter()
                .enumerate()
                .map(|(i, o)| o.mask.nth((round + i) % o.mask.count() as usize).unwrap())
                .collect();
            batch.step(&actions).unwrap();
            for (i, env) in singles.iter_mut().enumerate() {
                let step = env.step(actions[i]).unwrap();
                let [here, single] = last_steps(&batch, i, &step);
                assert_eq!(here, single, "{split:?} campaign {i}, round {round}");
                obs[i] = if step.terminated { env.reset(None).0 } else { step.obs };
            }
        }
        let mut dense = vec![0.0; seeds.len() * model.dense_len()];
        batch.write_dense(&mut dense);
        for (i, row) in dense.chunks_exact(model.dense_len()).enumerate() {
            assert_eq!(row, obs[i].dense(), "{split:?} campaign {i}");
        }
    }
}

fn lifetime_model() -> Arc<LifetimeModel> {
    let config = LifetimeConfig::load(&support::repo("envs/customer-lifetime.toml")).unwrap();
    Arc::new(LifetimeModel::build(config, &support::sample_records()).unwrap())
}

#[test]
fn each_campaign_of_a_sync_vector_env_follows_its_single_lifetime_env() {
    let model = lifetime_model();
    let seeds = [5, 6, 7];
    let single = |s| CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, s);
    let mut vector = SyncVectorEnv::new(seeds.map(single).to_vec());
    let mut singles = seeds.map(single);
    vector.reset();
    let mut obs = singles.each_mut().map(|env| env.reset(None).0);
    let (mut ends, mut round) = ([0; 3], 0);
    // Until every campaign has ended once and started again.
    while ends.contains(&0) {
        let actions: Vec<usize> = obs
            .iter()
            .map(|o| o.mask.nth(round % o.mask.count() as usize).unwrap())
            .collect();
        vector.step(&actions).unwrap();
        for (i, env) in singles.iter_mut().enumerate() {
            let step = env.step(actions[i]).unwrap();
            let [here, single] = last_steps(&vector, i, &step);
            assert_eq!(here, single, "campaign {i}, round {round}");
            ends[i] += u32::from(step.terminated);
            obs[i] = if step.terminated { env.reset(None).0 } else { step.obs };
            assert_eq!(vector.observation(i), obs[i], "campaign {i}, round {round}");
            assert_eq!(
                (vector.users()[i], vector.states()[i], vector.masks()[i]),
                (obs[i].user, obs[i].state, obs[i].mask)
            );
        }
        round += 1;
    }
    let mut dense = vec![0.0; seeds.len() * obs[0].dense().len()];
    vector.write_dense(&mut dense);
    assert_eq!(dense, obs.iter().flat_map(|o| o.dense().to_vec()).collect::<Vec<_>>());
    let actions = vec![0; seeds.len()];
    let mut refused = actions.clone();
    refused[1] = 15;
    let before: Vec<_> = (0..seeds.len()).map(|i| vector.observation(i)).collect();
    assert!(vector.step(&refused).unwrap_err().to_string().contains("15"));
    assert_eq!(
        (0..seeds.len()).map(|i| vector.observation(i)).collect::<Vec<_>>(),
        before
    );
    vector.step(&actions).unwrap();
}

#[test]
fn a_q_sweep_on_a_vector_env_learns_bit_for_bit_what_single_env_training_learns() {
    // Plain and Double Q, on both env kinds.
    let agent = |i: usize, n_states, n_actions| {
        let config = QLearningConfig {
            double_q: i % 2 == 1,
            ..QLearningConfig::default()
        };
        QLearning::new(config, n_states, n_actions, 2_000)
    };
    let tables = |agents: &[QLearning], n_states: usize| -> Vec<Vec<u64>> {
        agents
            .iter()
            .map(|a| {
                (0..n_states as u32)
                    .flat_map(|s| a.q_values(s).iter().map(|q| q.to_bits()))
                    .collect()
            })
            .collect()
    };
    let rngs = |n: usize| {
        (0..n as u64)
            .map(|i| AgentRng::seed_from_u64(40 + i))
            .collect::<Vec<_>>()
    };
    let seeds = [11, 12, 13, 14];

    // Contract choice, one and three quotas: 3 campaigns of 100 users per learner.
    for model in [support::sample_model(), three_quotas()] {
        let (n_states, n_actions) = (model.n_states(), model.n_actions());
        let mut single: Vec<QLearning> = (0..4).map(|i| agent(i, n_states, n_actions)).collect();
        for ((learner, rng), seed) in single.iter_mut().zip(&mut rngs(4)).zip(seeds) {
            let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Train, seed);
            for _ in 0..3 {
                play_episode(&mut env, learner, rng, None, Mode::Train);
            }
        }
        let mut swept: Vec<QLearning> = (0..4).map(|i| agent(i, n_states, n_actions)).collect();
        let mut batch = ContractChoiceBatch::new(Arc::clone(&model), Split::Train, &seeds);
        train_q_learners(&mut batch, &mut swept, &mut rngs(4), 300);
        assert_eq!(tables(&swept, n_states), tables(&single, n_states));
        assert_ne!(tables(&swept, n_states)[0], tables(&swept, n_states)[2], "seeds differ");
    }

    // Customer lifetime: campaigns of different lengths, ending at different steps.
    const ROUNDS: u64 = 5_000;
    let model = lifetime_model();
    let (n_states, n_actions) = (model.n_states(), model.n_actions());
    let env = |seed| CustomerLifetimeEnv::new(Arc::clone(&model), Split::Train, seed);
    let mut single: Vec<QLearning> = (0..4).map(|i| agent(i, n_states, n_actions)).collect();
    let mut ends = Vec::new();
    for ((learner, rng), seed) in single.iter_mut().zip(&mut rngs(4)).zip(seeds) {
        ends.push(train_alone(&mut env(seed), learner, rng, ROUNDS));
    }
    assert!(ends.iter().all(|e| !e.is_empty()) && ends[0] != ends[1], "{ends:?}");
    let mut swept: Vec<QLearning> = (0..4).map(|i| agent(i, n_states, n_actions)).collect();
    let mut vector = SyncVectorEnv::new(seeds.map(env).to_vec());
    train_q_learners(&mut vector, &mut swept, &mut rngs(4), ROUNDS);
    assert_eq!(tables(&swept, n_states), tables(&single, n_states));
}

/// Trains `learner` on `env` for `steps` steps through the `Agent` API, resetting when a campaign
/// ends; returns the steps that ended one.
fn train_alone(env: &mut impl Env, learner: &mut QLearning, rng: &mut AgentRng, steps: u64) -> Vec<u64> {
    let (mut obs, mut ends) = (env.reset(None).0, Vec::new());
    for k in 0..steps {
        let action = learner.act(&obs, rng);
        let step = env.step(action).unwrap();
        let transition = Transition {
            obs,
            action,
            reward: step.reward,
            next_obs: step.obs,
            terminated: step.terminated,
            truncated: step.truncated,
        };
        learner.observe(&transition, rng);
        obs = if step.terminated {
            ends.push(k);
            env.reset(None).0
        } else {
            step.obs
        };
    }
    ends
}

#[test]
fn the_batched_env_refuses_a_masked_action_before_any_campaign_moves() {
    let model = support::sample_model();
    let mut batch = ContractChoiceBatch::new(model, Split::Train, &[1, 2, 3]);
    batch.reset();
    let before = (0..3).map(|i| batch.observation(i)).collect::<Vec<_>>();
    let mut actions: Vec<usize> = batch.masks().iter().map(|m| m.nth(0).unwrap()).collect();
    actions[2] = (0..16).find(|&a| !batch.masks()[2].contains(a)).unwrap();
    let error = batch.step(&actions).unwrap_err().to_string();
    assert!(error.contains(&actions[2].to_string()), "{error}");
    assert_eq!((0..3).map(|i| batch.observation(i)).collect::<Vec<_>>(), before);
}

#[test]
fn the_myopic_oracle_uses_several_contracts_and_beats_the_best_single_one_by_ten_percent() {
    let model = support::sample_model();
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
    let model = support::sample_model();
    let myopic = mean_expected(&held_out(&mut MyopicOracle::new(Arc::clone(&model))));
    let hindsight = mean_expected(&held_out(&mut HindsightOracle::new(Arc::clone(&model))));
    assert!(
        hindsight > myopic * 1.01,
        "hindsight {hindsight:.1} vs myopic {myopic:.1}"
    );
}

#[test]
fn oracles_and_baselines_only_offer_contracts_the_mask_allows() {
    let model = support::sample_model();
    let agents: Vec<Box<dyn Agent>> = vec![
        Box::new(RandomAgent),
        Box::new(BestSingleContract::new(&model)),
        Box::new(MyopicOracle::new(Arc::clone(&model))),
        Box::new(OnlineOracle::new(Arc::clone(&model))),
        Box::new(HindsightOracle::new(Arc::clone(&model))),
    ];
    let mut rng = AgentRng::seed_from_u64(0);
    for mut agent in agents {
        let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Test, 3);
        let mut offers = 0;
        for _ in 0..10 {
            let (mut obs, info) = env.reset(None);
            agent.begin_episode(&obs, &info);
            loop {
                let action = agent.act_greedy(&obs, &mut rng);
                assert!(
                    obs.mask.contains(action),
                    "action {action} outside mask {:#b}",
                    obs.mask.0
                );
                let step = env.step(action).unwrap();
                offers += 1;
                if step.terminated {
                    break;
                }
                obs = step.obs;
            }
        }
        assert_eq!(offers, 10 * model.episode_len());
    }
}

/// The state index computed from its parts independently of the env: age, seniority, gender
/// and region of the user, a bucket per quota'd contract, the campaign-progress bucket.
#[test]
fn the_tabular_state_encoding_is_injective() {
    let model = support::sample_model();
    let records = support::sample_records();
    let config = model.config();
    let region_of_nat = config.region_of_nat();
    let nats = contract_rl_core::record::NATIONALITIES;
    let caps = model.offer_caps().to_vec();
    let mut seen: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut rng = AgentRng::seed_from_u64(9);
    let mut env = ContractChoiceEnv::new(Arc::clone(&model), Split::Train, 1);
    for _ in 0..400 {
        let (mut obs, _) = env.reset(None);
        loop {
            let user = &records[obs.user as usize];
            let s = &config.state;
            let mut parts = vec![
                bucket(f64::from(user.age), &s.age_edges_years),
                bucket(f64::from(user.seniority_years), &s.seniority_edges_years),
                usize::from(user.gender == "female"),
                region_of_nat[nats.iter().position(|n| *n == user.nat).unwrap()],
            ];
            for (a, cap) in caps.iter().enumerate() {
                if let Some(cap) = cap {
                    let left = obs.offers_left[a];
                    parts.push(if left == 0 {
                        0
                    } else {
                        1 + bucket(f64::from(left) / f64::from(*cap), &s.quota_remaining_edges)
                    });
                }
            }
            parts.push(bucket(f64::from(obs.t) / model.episode_len() as f64, &s.progress_edges));
            assert!((obs.state as usize) < model.n_states());
            let previous = seen.entry(obs.state).or_insert_with(|| parts.clone());
            assert_eq!(*previous, parts, "state {} stands for two situations", obs.state);
            let step = env.step(RandomAgent.act(&obs, &mut rng)).unwrap();
            if step.terminated {
                break;
            }
            obs = step.obs;
        }
    }
    assert!(seen.len() > 100, "only {} states visited", seen.len());
}

fn env_error(edit: impl FnOnce(&mut toml::Table)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = support::edited_toml(&support::env_file(), dir.path(), "bad-env.toml", edit);
    let message = EnvConfig::load(&path)
        .expect_err("the edited env must be refused")
        .to_string();
    assert!(message.contains("bad-env.toml"), "the file is named: {message}");
    message
}

fn contract(table: &mut toml::Table, i: usize) -> &mut toml::Table {
    table["contracts"].as_array_mut().unwrap()[i].as_table_mut().unwrap()
}

#[test]
fn a_misspelled_key_is_named_with_the_allowed_ones() {
    let message = env_error(|t| {
        let len = t.remove("episode_len").unwrap();
        t.insert("episode_lenght".into(), len);
    });
    assert!(message.contains("episode_lenght"), "{message}");
    assert!(message.contains("episode_len"), "{message}");
}

#[test]
fn a_wrong_type_is_named() {
    let message = env_error(|t| {
        t.insert("episode_len".into(), Value::String("100".into()));
    });
    assert!(message.contains("episode_len"), "{message}");
    assert!(message.contains("invalid type: string \"100\""), "{message}");
}

#[test]
fn a_negative_margin_is_refused() {
    let message = env_error(|t| {
        contract(t, 1).insert("margin".into(), Value::Float(-3.0));
    });
    assert!(message.contains("contracts[1].margin"), "{message}");
    assert!(message.contains(">= 0"), "{message}");
}

#[test]
fn a_quota_outside_the_unit_interval_is_refused() {
    let message = env_error(|t| {
        contract(t, 3).insert("quota".into(), Value::Float(1.5));
    });
    assert!(message.contains("contracts[3].quota"), "{message}");
    assert!(message.contains("[0, 1]"), "{message}");
}

#[test]
fn an_empty_catalogue_is_refused() {
    let message = env_error(|t| {
        t.insert("contracts".into(), Value::Array(vec![]));
    });
    assert!(message.contains("contracts"), "{message}");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn a_coefficient_for_an_unknown_feature_lists_the_features() {
    let message = env_error(|t| {
        let response = contract(t, 0)["response"].as_table_mut().unwrap();
        response["coefficients"]
            .as_table_mut()
            .unwrap()
            .insert("income".into(), Value::Float(0.5));
    });
    assert!(
        message.contains("contracts[0].response.coefficients.income"),
        "{message}"
    );
    assert!(
        message.contains("age_sq") && message.contains("region.nordics"),
        "{message}"
    );
}

#[test]
fn bucket_edges_must_increase() {
    let message = env_error(|t| {
        let state = t["state"].as_table_mut().unwrap();
        state.insert(
            "age_edges_years".into(),
            Value::Array(vec![Value::Float(45.0), Value::Float(30.0)]),
        );
    });
    assert!(message.contains("state.age_edges_years"), "{message}");
    assert!(message.contains("strictly increasing"), "{message}");
}

#[test]
fn an_unknown_nat_in_a_region_lists_the_allowed_codes() {
    let message = env_error(|t| {
        let regions = t["regions"].as_table_mut().unwrap();
        regions["nordics"]
            .as_array_mut()
            .unwrap()
            .push(Value::String("SE".into()));
    });
    assert!(message.contains("regions.nordics"), "{message}");
    assert!(message.contains("\"SE\"") && message.contains("DK"), "{message}");
}

#[test]
fn a_catalogue_without_an_open_contract_is_refused() {
    let message = env_error(|t| {
        for i in 0..5 {
            contract(t, i).insert("min_age_years".into(), Value::Integer(30));
        }
    });
    assert!(message.contains("open to every user"), "{message}");
}

/// Loads an edited quickstart and builds it on the sample's users with the core's agents.
fn experiment(dir: &Path, edit: impl FnOnce(&mut toml::Table)) -> Result<Experiment, ExperimentError> {
    let path = support::experiment_file(dir, edit);
    let (config, env) = Experiment::load_config(&path)?;
    Experiment::new(&path, config, env, &support::sample_records(), &CoreAgents)
}

fn experiment_error(edit: impl FnOnce(&mut toml::Table)) -> String {
    let dir = tempfile::tempdir().unwrap();
    experiment(dir.path(), edit)
        .expect_err("the edited experiment must be refused")
        .to_string()
}

fn last_agent(t: &mut toml::Table) -> &mut toml::Table {
    let agents = t["agents"].as_array_mut().unwrap();
    agents.last_mut().unwrap().as_table_mut().unwrap()
}

#[test]
fn a_misspelled_agent_hyperparameter_is_named() {
    let message = experiment_error(|t| {
        last_agent(t).insert("epsilon_strt".into(), Value::Float(0.5));
    });
    assert!(
        message.contains("experiment.toml") && message.contains("epsilon_strt"),
        "{message}"
    );
    assert!(message.contains("epsilon_start"), "{message}");
}

#[test]
fn an_unknown_agent_kind_lists_the_kinds() {
    let message = experiment_error(|t| {
        let agents = t["agents"].as_array_mut().unwrap();
        agents[0]
            .as_table_mut()
            .unwrap()
            .insert("kind".into(), Value::String("ppo".into()));
    });
    assert!(message.contains("ppo") && message.contains("q_learning"), "{message}");
}

#[test]
fn an_out_of_range_hyperparameter_is_named() {
    let message = experiment_error(|t| {
        last_agent(t).insert("gamma".into(), Value::Float(1.2));
    });
    assert!(
        message.contains("agents[5].gamma") && message.contains("[0, 1]"),
        "{message}"
    );
}

#[test]
fn zero_steps_between_diagnostics_is_refused() {
    let message = experiment_error(|t| {
        let mut section = toml::Table::new();
        section.insert("every_steps".into(), Value::Integer(0));
        t.insert("diagnostics".into(), Value::Table(section));
    });
    assert!(message.contains("diagnostics.every_steps"), "{message}");
}

#[test]
fn a_dqn_needs_the_dqn_crate_and_says_so_before_any_work() {
    let message = experiment_error(|t| {
        t.insert("agents".into(), support::one_agent("dqn", &[]));
    });
    assert!(
        message.contains("agents[0]") && message.contains("contract-rl-dqn"),
        "{message}"
    );
}

#[test]
fn q_learning_records_its_diagnostics_as_it_trains() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = experiment(dir.path(), |t| {
        support::shrink(t, &[1], 300, 100, 2);
        t.insert("agents".into(), support::one_agent("q_learning", &[]));
        let mut section = toml::Table::new();
        section.insert("every_steps".into(), Value::Integer(5_000));
        t.insert("diagnostics".into(), Value::Table(section));
    })
    .unwrap();
    let results = experiment.run(&CoreAgents, &RunOptions::default(), &|_| {}).unwrap();
    let metrics = &results.runs[0].metrics;
    // 300 campaigns of 100 users: a record every 5,000 steps.
    let steps: Vec<u64> = metrics.iter().map(|m| m.step).collect();
    assert_eq!(steps, (1..=6).map(|i| i * 5_000).collect::<Vec<_>>());
    for m in metrics {
        let d = m.diagnostics;
        assert!(d.td_loss.is_finite() && d.td_loss > 0.0, "{d:?}");
        assert!(d.q_values.is_finite(), "{d:?}");
        assert!(m.steps_per_sec > 0.0);
    }
    let epsilons: Vec<f64> = metrics.iter().map(|m| m.diagnostics.epsilon).collect();
    assert!(epsilons.windows(2).all(|w| w[1] <= w[0]), "ε decays: {epsilons:?}");
    assert!(epsilons[0] < 1.0 && *epsilons.last().unwrap() < epsilons[0]);
}

#[test]
fn agents_that_do_not_learn_record_no_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = experiment(dir.path(), |t| support::shrink(t, &[1], 10, 10, 2)).unwrap();
    let results = experiment.run(&CoreAgents, &RunOptions::default(), &|_| {}).unwrap();
    for run in &results.runs {
        assert_eq!(run.metrics.is_empty(), run.agent != "q_learning", "{}", run.agent);
    }
}

#[test]
fn the_online_oracle_sits_between_the_myopic_oracle_and_the_hindsight_optimum() {
    let model = support::sample_model();
    let kind = Arc::clone(&model).into();
    let campaigns = |agent: &mut dyn Agent| {
        evaluate(&kind, agent, &mut AgentRng::seed_from_u64(0), Split::Test, 200, 5)
            .iter()
            .map(|s| s.expected_return)
            .collect::<Vec<f64>>()
    };
    let online = campaigns(&mut OnlineOracle::new(Arc::clone(&model)));
    let hindsight = campaigns(&mut HindsightOracle::new(Arc::clone(&model)));
    let myopic = campaigns(&mut MyopicOracle::new(Arc::clone(&model)));
    for (i, (o, h)) in online.iter().zip(&hindsight).enumerate() {
        assert!(o <= &(h + 1e-9), "campaign {i}: online {o} above hindsight {h}");
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&online) > mean(&myopic),
        "online {} vs myopic {}",
        mean(&online),
        mean(&myopic)
    );
    // The DP's own value of a campaign drawn from the population agrees with what it reaches.
    let value = OnlineOracle::new(Arc::clone(&model))
        .optimal_value(Split::Test)
        .unwrap();
    assert!(
        (mean(&online) - value).abs() < 0.02 * value,
        "{} vs {value}",
        mean(&online)
    );
}

#[test]
fn the_three_splits_are_disjoint_cover_every_user_and_ignore_row_order() {
    use std::collections::BTreeSet;
    let config = EnvConfig::load(&support::env_file()).unwrap();
    let mut records = support::sample_records();
    let ids = |model: &EnvModel, split: Split| -> BTreeSet<uuid::Uuid> {
        model.split(split).iter().map(|&u| model.user_id(u)).collect()
    };
    let forward = EnvModel::build(config.clone(), &records).unwrap();
    records.reverse();
    let backward = EnvModel::build(config.clone(), &records).unwrap();
    let mut all = BTreeSet::new();
    for split in Split::ALL {
        let users = ids(&forward, split);
        assert_eq!(users, ids(&backward, split), "{split:?} depends on row order");
        assert!(users.is_disjoint(&all), "{split:?} overlaps another split");
        all.extend(users);
    }
    assert_eq!(all.len(), records.len());
    let share = |split| ids(&forward, split).len() as f64 / records.len() as f64;
    assert!((share(Split::Test) - 0.2).abs() < 0.02 && (share(Split::Validation) - 0.2).abs() < 0.02);
    // Test users stay test users whatever the validation share.
    let mut wider = config;
    wider.validation_fraction = 0.4;
    let wider = EnvModel::build(wider, &records).unwrap();
    assert_eq!(ids(&wider, Split::Test), ids(&forward, Split::Test));
}

#[test]
fn a_quota_share_that_is_no_whole_number_of_offers_names_the_nearest_valid_ones() {
    let message = env_error(|t| {
        contract(t, 3).insert("quota".into(), Value::Float(0.105));
    });
    assert!(message.contains("contracts[3].quota"), "{message}");
    assert!(message.contains("0.1 and 0.11"), "{message}");
}

#[test]
fn a_tabular_state_space_too_large_to_hold_is_refused() {
    let message = env_error(|t| {
        let edges: Vec<Value> = (1..=600).map(|i| Value::Float(f64::from(i) / 10.0)).collect();
        let state = t["state"].as_table_mut().unwrap();
        state.insert("age_edges_years".into(), Value::Array(edges.clone()));
        state.insert("seniority_edges_years".into(), Value::Array(edges));
    });
    assert!(
        message.contains("state") && message.contains("tabular state has more than"),
        "{message}"
    );
}
