//! Experiments end to end: reproducible tables, the results folder, and the quickstart's
//! promise that tabular Q-learning gets close to the myopic oracle on held-out users.

mod common;

use contract_rl::experiment::{Experiment, RunOptions};
use contract_rl::table;
use toml::Value;

/// Shrinks an experiment table to `seeds`, `train_episodes` per run, and `eval_episodes`
/// held-out campaigns every `every` episodes.
fn shrink(t: &mut toml::Table, seeds: &[i64], train_episodes: i64, every: i64, eval_episodes: i64) {
    t.insert(
        "seeds".into(),
        Value::Array(seeds.iter().map(|s| Value::Integer(*s)).collect()),
    );
    t["budget"]
        .as_table_mut()
        .unwrap()
        .insert("train_episodes".into(), Value::Integer(train_episodes));
    let eval = t["evaluation"].as_table_mut().unwrap();
    eval.insert("every_episodes".into(), Value::Integer(every));
    eval.insert("episodes".into(), Value::Integer(eval_episodes));
}

/// A small version of the quickstart: two seeds, a short budget.
fn small_experiment(dir: &std::path::Path) -> Experiment {
    let path = common::experiment_file(dir, |t| shrink(t, &[3, 4], 300, 100, 5));
    Experiment::load(&path, None).unwrap()
}

#[test]
fn the_same_config_gives_byte_identical_tables() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = small_experiment(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // Runs go in parallel on rayon's pool, so scheduling differs between the two.
    experiment
        .write_results(&a, &experiment.run(&RunOptions::default()).unwrap())
        .unwrap();
    experiment
        .write_results(&b, &experiment.run(&RunOptions::default()).unwrap())
        .unwrap();
    for file in ["episodes.parquet", "evals.parquet", "summary.parquet", "summary.md"] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(x == y, "{file} differs between two runs of the same config");
    }
}

#[test]
fn the_results_folder_holds_every_table_with_the_promised_columns() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = small_experiment(dir.path());
    let out = dir.path().join("results");
    let results = experiment.run(&RunOptions::default()).unwrap();
    experiment.write_results(&out, &results).unwrap();

    let evals = table::read(&out.join("evals.parquet")).unwrap();
    let schema = evals.schema();
    for (column, dtype) in [
        ("agent", "str"),
        ("seed", "i64"),
        ("step", "i64"),
        ("expected_return", "f64"),
        ("myopic_oracle_expected_return", "f64"),
        ("hindsight_expected_return", "f64"),
        ("regret", "f64"),
        ("acceptance_rate", "f64"),
        ("mix_premium", "f64"),
    ] {
        assert_eq!(
            schema.get(column).map(|d| d.to_string()),
            Some(dtype.to_owned()),
            "{column}"
        );
    }
    // 5 agents x 2 seeds; q_learning is evaluated at 0, 100, 200, 300 episodes, the others once.
    assert_eq!(evals.height(), 4 * 2 + 4 * 2);
    let regret = evals.column("regret").unwrap().f64().unwrap();
    assert!(
        regret.iter().all(|r| r.unwrap() >= -1e-9),
        "nothing beats the hindsight optimum"
    );

    let episodes = table::read(&out.join("episodes.parquet")).unwrap();
    assert_eq!(episodes.height(), 300 * 2, "only the learner trains");
    assert_eq!(table::read(&out.join("summary.parquet")).unwrap().height(), 5);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seeds"], serde_json::json!([3, 4]));
    assert_eq!(manifest["snapshot"]["rows"], 20_000);
    assert_eq!(manifest["runs"].as_array().unwrap().len(), 10);
    assert!(manifest["runs"][8]["train_steps_per_sec"].as_f64().unwrap() > 0.0);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("Probability of improvement"));
}

#[test]
fn quickstart_q_learning_reaches_ninety_percent_of_the_myopic_oracle() {
    let experiment = Experiment::load(&common::repo("experiments/quickstart.toml"), None).unwrap();
    let summary = experiment.summary(&experiment.run(&RunOptions::default()).unwrap());
    let q = summary.agent("q_learning").unwrap();
    let random = summary.agent("random").unwrap();
    let single = summary.agent("best_single").unwrap();
    assert!(q.pct_of_myopic_oracle >= 90.0, "{}", summary.table());
    assert!(
        q.ci_low > random.ci_high && q.ci_low > single.ci_high,
        "{}",
        summary.table()
    );
    assert!(q.runs >= 5);
}

#[test]
fn a_saved_dqn_is_evaluated_by_run_exactly_as_it_was_trained() {
    let (train_dir, eval_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dqn = |extra: &[(&str, Value)]| {
        let mut agent = toml::Table::new();
        agent.insert("kind".into(), "dqn".into());
        agent.insert("hidden".into(), Value::Array(vec![Value::Integer(16)]));
        agent.insert("learning_starts".into(), Value::Integer(500));
        for (k, v) in extra {
            agent.insert((*k).into(), v.clone());
        }
        Value::Array(vec![Value::Table(agent)])
    };
    let small = |t: &mut toml::Table| shrink(t, &[1], 40, 40, 5);
    let train = common::experiment_file(train_dir.path(), |t| {
        small(t);
        t.insert("agents".into(), dqn(&[]));
    });
    let experiment = Experiment::load(&train, None).unwrap();
    let checkpoints = train_dir.path().join("checkpoints");
    let options = RunOptions {
        progress: false,
        checkpoints: Some(checkpoints.clone()),
    };
    let trained = experiment.run(&options).unwrap();
    let saved = checkpoints.join("dqn-seed1.bpk");
    assert!(saved.is_file());

    let evaluate = common::experiment_file(eval_dir.path(), |t| {
        small(t);
        let path = Value::String(saved.display().to_string());
        t.insert(
            "agents".into(),
            dqn(&[("name", "dqn-saved".into()), ("checkpoint", path)]),
        );
    });
    let experiment = Experiment::load(&evaluate, None).unwrap();
    let evaluated = experiment.run(&RunOptions::default()).unwrap();
    let run = &evaluated.runs[0];
    assert!(run.episodes.is_empty(), "a loaded agent is evaluated, not trained");
    assert_eq!(run.evals.len(), 1);
    assert_eq!(run.evals[0].campaigns, trained.runs[0].evals.last().unwrap().campaigns);
}

#[test]
fn a_missing_checkpoint_stops_the_run_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::experiment_file(dir.path(), |t| {
        let mut agent = toml::Table::new();
        agent.insert("kind".into(), "dqn".into());
        agent.insert("checkpoint".into(), "nowhere.bpk".into());
        t.insert("agents".into(), Value::Array(vec![Value::Table(agent)]));
    });
    let message = Experiment::load(&path, None).unwrap_err().to_string();
    assert!(
        message.contains("agents[0].checkpoint") && message.contains("nowhere.bpk"),
        "{message}"
    );
}
