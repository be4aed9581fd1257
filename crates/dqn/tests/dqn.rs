//! DQN through the runner: a saved network is evaluated exactly as it was trained, a missing,
//! corrupt or mismatched checkpoint stops the experiment before any run starts, and training
//! records its diagnostics.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use contract_rl_core::env::Split;
use contract_rl_core::experiment::{Experiment, ExperimentError, RunOptions};
use contract_rl_dqn::DqnAgents;
use toml::Value;

/// An edited quickstart on the sample's users, with one DQN of `fields`, 1 seed, 40 campaigns.
fn experiment(dir: &Path, fields: &[(&str, Value)]) -> Result<Experiment, ExperimentError> {
    let path = support::experiment_file(dir, |t| {
        support::shrink(t, &[1], 40, 40, 5);
        let mut all = vec![
            ("hidden", Value::Array(vec![Value::Integer(16)])),
            ("learning_starts", Value::Integer(500)),
        ];
        all.extend(fields.iter().cloned());
        t.insert("agents".into(), support::one_agent("dqn", &all));
        let mut diagnostics = toml::Table::new();
        diagnostics.insert("every_steps".into(), Value::Integer(1_000));
        t.insert("diagnostics".into(), Value::Table(diagnostics));
    });
    let (config, env) = Experiment::load_config(&path)?;
    Experiment::new(&path, config, env, &support::sample_records(), &DqnAgents)
}

/// Trains the small DQN of `fields` once and returns its checkpoint (in `dir`) with the run's
/// results.
fn trained_with(dir: &Path, fields: &[(&str, Value)]) -> (PathBuf, contract_rl_core::experiment::Results) {
    let experiment = experiment(dir, fields).unwrap();
    let options = RunOptions {
        checkpoints: Some(dir.join("checkpoints")),
        ..RunOptions::default()
    };
    let results = experiment.run(&DqnAgents, &options, &|_| {}).unwrap();
    (dir.join("checkpoints/dqn-seed1.bpk"), results)
}

fn trained(dir: &Path) -> (PathBuf, contract_rl_core::experiment::Results) {
    trained_with(dir, &[])
}

fn checkpoint(path: &Path) -> [(&'static str, Value); 2] {
    [
        ("name", "dqn-saved".into()),
        ("checkpoint", Value::String(path.display().to_string())),
    ]
}

/// For the Q head, and for the afterstate head (two networks in one checkpoint, with the
/// dueling and n-step options of the Q head alike).
#[test]
fn a_saved_dqn_is_evaluated_exactly_as_it_was_trained() {
    for options in [
        vec![],
        vec![("head", Value::from("afterstate"))],
        vec![("dueling", Value::from(true)), ("n_steps", Value::from(3))],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (saved, trained) = trained_with(dir.path(), &options);
        assert!(saved.is_file());
        let eval_dir = tempfile::tempdir().unwrap();
        let mut fields = checkpoint(&saved).to_vec();
        fields.extend(options.iter().cloned());
        let experiment = experiment(eval_dir.path(), &fields).unwrap();
        let evaluated = experiment.run(&DqnAgents, &RunOptions::default(), &|_| {}).unwrap();
        let run = &evaluated.runs[0];
        assert!(run.episodes.is_empty(), "a loaded agent is evaluated, not trained");
        assert_eq!(run.evals.len(), 2, "once on validation, once on test");
        let final_validation = trained.runs[0]
            .evals
            .iter()
            .rfind(|e| e.split == Split::Validation)
            .unwrap();
        assert_eq!(run.evals[0].campaigns, final_validation.campaigns, "{options:?}");
        assert_eq!(run.test_eval().campaigns, trained.runs[0].test_eval().campaigns);
    }
}

/// An option that does not hold for its env or its other options stops the experiment before
/// any run, naming the field and why.
#[test]
fn options_that_cannot_hold_stop_the_experiment_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |fields: &[(&str, Value)]| match experiment(dir.path(), fields) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{fields:?} was accepted"),
    };
    let message = refused(&[("baseline", "per_step".into()), ("gamma", 0.9.into())]);
    assert!(
        message.contains("baseline") && message.contains("gamma = 1"),
        "{message}"
    );
    let message = refused(&[("head", "afterstate".into()), ("dueling", true.into())]);
    assert!(
        message.contains("dueling") && message.contains("afterstate"),
        "{message}"
    );
    let message = refused(&[("head", "afterstate_value".into())]);
    assert!(message.contains("`q`, `afterstate`"), "{message}");
    // The customer-lifetime env's campaigns vary in length and state no afterstates.
    for (field, value, why) in [
        ("baseline", "per_step", "one fixed number of steps"),
        ("head", "afterstate", "known before the answer"),
    ] {
        let path = support::lifetime_experiment_file("experiments/lifetime.toml", dir.path(), "lifetime.toml", |t| {
            support::shrink(t, &[0], 2, 2, 1);
            t.insert(
                "agents".into(),
                support::one_agent("dqn", &[(field, Value::from(value))]),
            );
        });
        let (config, env) = Experiment::load_config(&path).unwrap();
        let message = match Experiment::new(&path, config, env, &support::sample_records(), &DqnAgents) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{field} = {value} was accepted on the lifetime env"),
        };
        assert!(
            message.contains(why) && message.contains("customer-lifetime"),
            "{message}"
        );
    }
}

#[test]
fn training_records_loss_q_values_and_epsilon() {
    let dir = tempfile::tempdir().unwrap();
    let (_, results) = trained(dir.path());
    let metrics = &results.runs[0].metrics;
    // 4,000 steps, a record every 1,000; learning starts at 500.
    assert_eq!(metrics.len(), 4);
    for m in metrics {
        let d = m.diagnostics;
        assert!(d.td_loss.is_finite() && d.td_loss >= 0.0, "{d:?}");
        assert!(d.q_values.is_finite(), "{d:?}");
    }
    assert!(metrics[3].diagnostics.epsilon < metrics[0].diagnostics.epsilon);
}

/// The error of an experiment whose DQN loads `path`; it must come before any run.
fn checkpoint_error(path: &Path, fields: &[(&str, Value)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut all = checkpoint(path).to_vec();
    all.extend(fields.iter().cloned());
    match experiment(dir.path(), &all) {
        Err(e @ ExperimentError::Agent { .. }) => {
            assert!(e.is_bad_input());
            e.to_string()
        }
        other => panic!("expected the checkpoint to be refused, got {other:?}"),
    }
}

#[test]
fn a_missing_checkpoint_stops_the_experiment_before_work() {
    let message = checkpoint_error(Path::new("/nowhere/dqn.bpk"), &[]);
    assert!(
        message.contains("agents[0]") && message.contains("/nowhere/dqn.bpk"),
        "{message}"
    );
}

#[test]
fn a_corrupt_checkpoint_stops_the_experiment_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let (saved, _) = trained(dir.path());
    let mut bytes = std::fs::read(&saved).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&saved, bytes).unwrap();
    let message = checkpoint_error(&saved, &[]);
    assert!(message.contains("dqn-seed1.bpk"), "{message}");
}

#[test]
fn a_checkpoint_of_another_shape_stops_the_experiment_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let (saved, _) = trained(dir.path());
    let message = checkpoint_error(&saved, &[("hidden", Value::Array(vec![Value::Integer(32)]))]);
    assert!(message.contains("dqn-seed1.bpk"), "{message}");
}

/// The lifetime experiment, shrunk: every agent kind it lists, 2 seeds, 30 campaigns, 4
/// campaigns of 2 replays per evaluation, small networks.
fn lifetime_experiment(dir: &Path) -> Experiment {
    let path = support::lifetime_experiment_file("experiments/lifetime.toml", dir, "lifetime.toml", |t| {
        support::shrink(t, &[0, 1], 30, 15, 4);
        t["evaluation"]
            .as_table_mut()
            .unwrap()
            .insert("replays".into(), Value::Integer(2));
        for agent in t["agents"].as_array_mut().unwrap() {
            let agent = agent.as_table_mut().unwrap();
            let network = match agent["kind"].as_str().unwrap() {
                "dqn" => agent,
                "lagrangian_dqn" => agent.get_mut("dqn").unwrap().as_table_mut().unwrap(),
                _ => continue,
            };
            network.insert("hidden".into(), Value::Array(vec![Value::Integer(16)]));
            network.insert("learning_starts".into(), Value::Integer(500));
        }
    });
    let (config, env) = Experiment::load_config(&path).unwrap();
    Experiment::new(&path, config, env, &support::sample_records(), &DqnAgents).unwrap()
}

/// Mean and standard error.
fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn on_the_lifetime_env_each_bound_is_above_what_it_bounds_through_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = lifetime_experiment(dir.path());
    let results = experiment.run(&DqnAgents, &RunOptions::default(), &|_| {}).unwrap();
    let agents: Vec<&str> = results.runs.iter().map(|r| r.agent.as_str()).collect();
    assert_eq!(
        agents,
        [
            "random",
            "random",
            "q_learning",
            "q_learning",
            "dqn",
            "dqn",
            "lagrangian_q",
            "lagrangian_q",
            "lagrangian_dqn",
            "lagrangian_dqn"
        ]
    );
    for split in [Split::Validation, Split::Test] {
        let references = experiment.references(split);
        let upper = references.second_bound.as_ref().unwrap();
        assert_eq!((references.bound.len(), upper.len()), (4, 4));
        for (i, (bayes, upper)) in references.bound.iter().zip(upper).enumerate() {
            assert!(
                bayes < upper,
                "{split:?} campaign {i}: Bayes bound {bayes} above the upper bound {upper}"
            );
            let online = references.online[i];
            assert!(
                references.myopic[i] < *upper && online < *upper,
                "{split:?} campaign {i}"
            );
            // Every agent's mean over the campaign's replays: the upper bound, with room to spare.
            for run in &results.runs {
                for eval in run.evals.iter().filter(|e| e.split == split) {
                    let got = (eval.campaigns[2 * i].return_ + eval.campaigns[2 * i + 1].return_) / 2.0;
                    assert!(
                        got < *upper,
                        "{} seed {} after {} episodes, {split:?} campaign {i}: {got} vs bound {upper}",
                        run.agent,
                        run.seed,
                        eval.episode
                    );
                }
            }
        }
        // The Bayes bound holds in expectation for every policy that does not see the latents:
        // the agents' and the references' means over campaigns and replays stay below it but for
        // sampling noise (3 standard errors).
        let bound: f64 = references.bound.iter().sum::<f64>() / 4.0;
        let finals = results
            .runs
            .iter()
            .map(|r| r.evals.iter().rfind(|e| e.split == split).unwrap());
        for campaigns in finals.map(|e| e.campaigns.iter().map(|c| c.return_).collect::<Vec<_>>()) {
            let (mean, se) = mean_and_se(&campaigns);
            assert!(
                mean - 3.0 * se < bound,
                "{split:?}: an agent's {mean} ± {se} above the Bayes bound {bound}"
            );
        }
        for (label, values) in [("bid-price", &references.online)]
            .into_iter()
            .chain(references.others.iter().map(|v| ("another reference", v)))
        {
            let gaps: Vec<f64> = references.bound.iter().zip(values).map(|(b, v)| b - v).collect();
            let (gap, se) = mean_and_se(&gaps);
            assert!(
                gap + 3.0 * se > 0.0,
                "{split:?}: {label} {gap} ± {se} below the Bayes bound"
            );
        }
    }
    // The OR policy beats the myopic one by at least 10% on the test campaigns.
    let test = experiment.references(Split::Test).means();
    assert!(test.online >= 1.1 * test.myopic, "{test:?}");
}
