//! Experiments through files: the same config gives byte-identical tables, the results folder
//! holds every promised table and column (including `metrics.parquet`), the quickstart's
//! promise holds, and bad snapshots stop the run before any work.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::Path;

use contract_rl_core::agents::CoreAgents;
use contract_rl_core::env::Split;
use contract_rl_core::experiment::RunOptions;
use contract_rl_parquet::{Build, LoadedExperiment, table};
use toml::Value;

const BUILD: Build = Build {
    version: "test",
    commit: Some("0123456789abcdef"),
};

/// A small version of the quickstart: two seeds, a short budget.
fn small_experiment(dir: &Path) -> LoadedExperiment {
    let path = support::experiment_file(dir, |t| support::shrink(t, &[3, 4], 300, 100, 5));
    LoadedExperiment::load(&path, None, &CoreAgents).unwrap()
}

fn run_into(loaded: &LoadedExperiment, out: &Path) {
    let results = loaded
        .experiment
        .run(&CoreAgents, &RunOptions::default(), &|_| {})
        .unwrap();
    loaded.write_results(out, &results, BUILD).unwrap();
}

#[test]
fn the_same_config_gives_byte_identical_tables() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = small_experiment(dir.path());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // Runs go in parallel on rayon's pool, so scheduling differs between the two.
    run_into(&loaded, &a);
    run_into(&loaded, &b);
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
    let out = dir.path().join("results");
    run_into(&small_experiment(dir.path()), &out);

    let evals = table::read(&out.join("evals.parquet")).unwrap();
    let schema = evals.schema();
    for (column, dtype) in [
        ("agent", "str"),
        ("seed", "i64"),
        ("step", "i64"),
        ("expected_return", "f64"),
        ("myopic_oracle_expected_return", "f64"),
        ("online_optimum_expected_return", "f64"),
        ("hindsight_expected_return", "f64"),
        ("regret", "f64"),
        ("acceptance_rate", "f64"),
        ("mix_premium", "f64"),
        ("offers_left_premium", "f64"),
        ("share_premium_d1", "f64"),
        ("share_monthly_d10", "f64"),
    ] {
        assert_eq!(
            schema.get(column).map(|d| d.to_string()),
            Some(dtype.to_owned()),
            "{column}"
        );
    }
    // 6 agents x 2 seeds; q_learning is evaluated on validation campaigns at 0, 100, 200 and
    // 300 episodes, the others once, and every run once on the test campaigns at the end.
    assert_eq!(evals.height(), (4 + 1) * 2 + 5 * (1 + 1) * 2);
    let splits = evals.column("split").unwrap().str().unwrap();
    assert_eq!(splits.iter().filter(|s| *s == Some("test")).count(), 6 * 2);
    assert_eq!(
        splits.iter().filter(|s| *s == Some("validation")).count(),
        4 * 2 + 5 * 2
    );
    let column = |name: &str| -> Vec<f64> {
        evals
            .column(name)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .map(Option::unwrap)
            .collect()
    };
    let (expected, hindsight) = (column("expected_return"), column("hindsight_expected_return"));
    assert!(
        expected.iter().zip(&hindsight).all(|(e, h)| e <= &(h + 1e-9)),
        "nothing beats the hindsight optimum"
    );
    // Each decile's shares add up to one offer.
    for decile in 1..=10 {
        let names = ["monthly", "annual_12m", "biennial_24m", "premium", "youth"];
        let sums: Vec<f64> = (0..evals.height())
            .map(|row| names.iter().map(|c| column(&format!("share_{c}_d{decile}"))[row]).sum())
            .collect();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-9), "decile {decile}: {sums:?}");
    }
    let left = column("offers_left_premium");
    assert!(left.iter().all(|l| (0.0..=10.0).contains(l)), "{left:?}");

    let episodes = table::read(&out.join("episodes.parquet")).unwrap();
    assert_eq!(episodes.height(), 300 * 2, "only the learner trains");
    assert_eq!(table::read(&out.join("summary.parquet")).unwrap().height(), 6);

    // 30,000 steps per run, a record every 10,000 (the default): 3 records of 4 metrics, 2 seeds.
    let metrics = table::read(&out.join("metrics.parquet")).unwrap();
    assert_eq!(metrics.height(), 3 * 4 * 2);
    let names: std::collections::BTreeSet<String> = metrics
        .column("metric")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|m| m.unwrap().to_owned())
        .collect();
    let expected = ["charts/SPS", "charts/epsilon", "losses/q_values", "losses/td_loss"];
    assert_eq!(names, expected.iter().map(|s| s.to_string()).collect());
    let agents = metrics.column("agent").unwrap().str().unwrap();
    assert!(agents.iter().all(|a| a == Some("q_learning")));
    let values = metrics.column("value").unwrap().f64().unwrap();
    assert!(values.iter().all(|v| v.unwrap().is_finite()));

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seeds"], serde_json::json!([3, 4]));
    assert_eq!(manifest["snapshot"]["rows"], 20_000);
    assert_eq!(manifest["build"]["commit"], "0123456789abcdef");
    assert_eq!(manifest["runs"].as_array().unwrap().len(), 12);
    assert!(manifest["runs"][10]["train_steps_per_sec"].as_f64().unwrap() > 0.0);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("Probability of improvement"));
}

#[test]
fn quickstart_q_learning_reaches_ninety_percent_of_the_myopic_oracle() {
    let loaded = LoadedExperiment::load(&support::repo("experiments/quickstart.toml"), None, &CoreAgents).unwrap();
    let experiment = &loaded.experiment;
    let summary = experiment.summary(&experiment.run(&CoreAgents, &RunOptions::default(), &|_| {}).unwrap());
    let q = summary.agent("q_learning").unwrap();
    let random = summary.agent("random").unwrap();
    let single = summary.agent("best_single").unwrap();
    assert!(q.pct_of_myopic >= 90.0, "{}", summary.table());
    assert!(
        q.ci_low > random.ci_high && q.ci_low > single.ci_high,
        "{}",
        summary.table()
    );
    assert_eq!(q.runs, 10);
    let beats_random = summary.improvement("q_learning", "random").unwrap();
    assert_eq!((beats_random.probability, beats_random.ci_low), (1.0, 1.0));
}

fn load_error(dir: &Path, edit: impl FnOnce(&mut toml::Table)) -> String {
    let path = support::experiment_file(dir, edit);
    LoadedExperiment::load(&path, None, &CoreAgents)
        .expect_err("the edited experiment must be refused")
        .to_string()
}

#[test]
fn a_missing_snapshot_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let message = load_error(dir.path(), |t| {
        t.insert("snapshot".into(), Value::String("/nonexistent/users.parquet".into()));
    });
    assert!(message.contains("/nonexistent/users.manifest.json"), "{message}");
}

#[test]
fn a_corrupted_snapshot_is_refused_by_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("users.parquet");
    let mut bytes = std::fs::read(support::sample_snapshot()).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x5A;
    std::fs::write(&copy, bytes).unwrap();
    std::fs::copy(
        support::repo("data/snapshots/sample.manifest.json"),
        dir.path().join("users.manifest.json"),
    )
    .unwrap();
    let message = load_error(dir.path(), |t| {
        t.insert("snapshot".into(), Value::String(copy.display().to_string()));
    });
    assert!(
        message.contains("users.parquet") && message.contains("SHA-256"),
        "{message}"
    );
}

#[test]
fn the_sample_snapshot_holds_exactly_the_generated_users() {
    let snapshot = contract_rl_parquet::snapshot::read(&support::sample_snapshot()).unwrap();
    assert_eq!(snapshot.records, support::sample_records());
}

/// Two writers replace one snapshot over and over while a reader reads it: every read finds a
/// manifest that describes its file, and no temporary file is left behind.
#[test]
fn concurrent_writers_never_leave_a_manifest_that_does_not_describe_its_file() {
    use contract_rl_core::source::{Generator, generate_records};
    use contract_rl_parquet::snapshot::{self, Producer};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.parquet");
    let sets: Vec<_> = [("a", 3000), ("b", 50)]
        .into_iter()
        .map(|(seed, n)| generate_records(&Generator::new(seed, &[]).unwrap(), n).0)
        .collect();
    let producer = || Producer {
        command: "test".into(),
        version: "0".into(),
        params: serde_json::Value::Null,
    };
    snapshot::write(&path, &sets[0], producer()).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let writers: Vec<_> = sets
            .iter()
            .map(|records| {
                scope.spawn(|| {
                    for _ in 0..15 {
                        snapshot::write(&path, records, producer()).unwrap();
                    }
                })
            })
            .collect();
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let snapshot = snapshot::read(&path).unwrap_or_else(|e| panic!("read {reads}: {e}"));
                assert!([3000, 50].contains(&snapshot.records.len()));
                reads += 1;
            }
            reads
        });
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        reader.join().unwrap()
    });
    assert!(reads > 0);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".shared.parquet.lock", "shared.manifest.json", "shared.parquet"]
    );
}

#[test]
fn compare_combines_folders_of_the_same_campaigns_and_refuses_others_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = |name: &str, agents: &[&str], eval_seed: i64| {
        let path = support::experiment_file(dir.path(), |t| {
            support::shrink(t, &[3, 4, 5, 6], 60, 30, 3);
            let kept: Vec<Value> = t["agents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| agents.contains(&a["kind"].as_str().unwrap()))
                .cloned()
                .collect();
            t.insert("agents".into(), Value::Array(kept));
            t["evaluation"]
                .as_table_mut()
                .unwrap()
                .insert("seed".into(), Value::Integer(eval_seed));
        });
        let loaded = LoadedExperiment::load(&path, None, &CoreAgents).unwrap();
        let out = dir.path().join(name);
        run_into(&loaded, &out);
        out
    };
    let a = experiment("a", &["random", "q_learning"], 7);
    let b = experiment("b", &["q_learning", "myopic_oracle"], 7);

    // `run` writes the comparison of its own folder, with the summary's figures.
    let own = table::read(&a.join("comparison.parquet")).unwrap();
    let summary = table::read(&a.join("summary.parquet")).unwrap();
    let value = |frame: &polars::prelude::DataFrame, statistic: &str, agent: &str| {
        let statistics = frame.column("statistic").unwrap().str().unwrap().clone();
        let agents = frame.column("agent").unwrap().str().unwrap().clone();
        let values = frame.column("value").unwrap().f64().unwrap().clone();
        (0..frame.height())
            .find(|&i| statistics.get(i) == Some(statistic) && agents.get(i) == Some(agent))
            .map(|i| values.get(i).unwrap())
            .unwrap_or_else(|| panic!("no {statistic} of {agent}"))
    };
    let summary_iqm = summary
        .column("iqm_expected_return")
        .unwrap()
        .f64()
        .unwrap()
        .get(1)
        .unwrap();
    assert_eq!(value(&own, "iqm", "q_learning"), summary_iqm);

    let combined = contract_rl_parquet::compare(&[a.clone(), b.clone()]).unwrap();
    let names: Vec<&str> = combined.agents.iter().map(|x| x.agent.as_str()).collect();
    // Folders in order, each in its experiment's agent order; a name in both gets its folder.
    let (in_a, in_b) = (
        format!("{}/q_learning", a.display()),
        format!("{}/q_learning", b.display()),
    );
    assert_eq!(names, ["random", in_a.as_str(), "myopic_oracle", in_b.as_str()]);
    assert!(combined.agents.iter().all(|x| x.runs == 4));
    // The same runs give the same scores whichever folder they came from.
    assert_eq!(combined.agents[1].mean.value, combined.agents[3].mean.value);
    // An agent's figures are those of its own folder's comparison, intervals included.
    let own_iqm = |statistic: &str, column: &str| {
        let frame = &own;
        let statistics = frame.column("statistic").unwrap().str().unwrap().clone();
        let agents = frame.column("agent").unwrap().str().unwrap().clone();
        let values = frame.column(column).unwrap().f64().unwrap().clone();
        (0..frame.height())
            .find(|&i| statistics.get(i) == Some(statistic) && agents.get(i) == Some("q_learning"))
            .map(|i| values.get(i).unwrap())
            .unwrap()
    };
    let iqm = combined.agents[1].iqm;
    assert_eq!(
        (iqm.value, iqm.ci_low, iqm.ci_high),
        (
            own_iqm("iqm", "value"),
            own_iqm("iqm", "ci95_low"),
            own_iqm("iqm", "ci95_high")
        )
    );
    assert_eq!(combined.improvement[2][0].value, 1.0);
    let out = dir.path().join("both");
    contract_rl_parquet::write_comparison(&out, "both", &combined).unwrap();
    let frame = table::read(&out.join("comparison.parquet")).unwrap();
    // Per agent: 3 aggregates, 4 probabilities of improvement, the profile's points.
    assert_eq!(frame.height(), 4 * (3 + 4 + contract_rl_core::report::PROFILE_POINTS));
    let markdown = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(markdown.contains(&format!("| {in_b} | 4 |")), "{markdown}");

    // On validation, each run's last validation evaluation (what tuning reads).
    let tuning = contract_rl_parquet::compare_on(std::slice::from_ref(&a), Split::Validation).unwrap();
    assert!(tuning.markdown("a").contains("on the validation campaigns"));
    let evals = table::read(&a.join("evals.parquet")).unwrap();
    let text = |name: &str| evals.column(name).unwrap().str().unwrap().clone();
    let int = |name: &str| evals.column(name).unwrap().i64().unwrap().clone();
    let (splits, agents, episodes) = (text("split"), text("agent"), int("episode"));
    let scores = evals.column("expected_return").unwrap().f64().unwrap().clone();
    let last_episode = (0..evals.height())
        .filter(|&i| splits.get(i) == Some("validation"))
        .filter_map(|i| episodes.get(i))
        .max()
        .unwrap();
    assert!(last_episode > 0, "validation ran during training");
    let mut expected: Vec<f64> = (0..evals.height())
        .filter(|&i| {
            splits.get(i) == Some("validation")
                && agents.get(i) == Some("q_learning")
                && episodes.get(i) == Some(last_episode)
        })
        .map(|i| scores.get(i).unwrap())
        .collect();
    let q = tuning.agents.iter().find(|x| x.agent == "q_learning").unwrap();
    assert_eq!(q.runs, 4);
    expected.sort_by(f64::total_cmp);
    let iqm = contract_rl_core::report::stats::iqm(&expected);
    assert_eq!(q.iqm.value, iqm);
    assert_ne!(q.iqm.value, combined.agents[1].iqm.value, "not the test scores");

    let error = contract_rl_parquet::compare(&[a.clone(), a.clone()])
        .unwrap_err()
        .to_string();
    assert!(error.contains("given twice"), "{error}");

    let c = experiment("c", &["random"], 8);
    let error = contract_rl_parquet::compare(&[a.clone(), c.clone()])
        .unwrap_err()
        .to_string();
    assert!(error.contains("differ in evaluation"), "{error}");
    let error = contract_rl_parquet::compare(&[a, dir.path().join("nowhere")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("nowhere/manifest.json"), "{error}");
}
