//! Commands without services: outputs, and exit codes that mean something.

use toml::Value;

use crate::{contract_rl, support};

#[test]
fn generate_writes_the_same_snapshot_for_the_same_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let mut hashes = Vec::new();
    for name in ["a.parquet", "b.parquet"] {
        let out = dir.path().join(name);
        let run = contract_rl(&[
            "generate",
            "--users",
            "700",
            "--seed",
            "cli",
            "--nat",
            "FR,GB",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.with_extension("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["rows"], 700);
        hashes.push(manifest["sha256"].as_str().unwrap().to_owned());
    }
    assert_eq!(hashes[0], hashes[1]);
}

#[test]
fn the_committed_sample_is_what_generate_makes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sample.parquet");
    let run = contract_rl(&[
        "generate",
        "--users",
        "20000",
        "--seed",
        "contract-rl",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    let committed = std::fs::read(support::sample_snapshot()).unwrap();
    assert!(
        std::fs::read(out).unwrap() == committed,
        "data/snapshots/sample.parquet is stale: regenerate it"
    );
}

#[test]
fn check_env_passes_on_the_default_env() {
    let run = contract_rl(&["check-env", "envs/contract-choice.toml", "--episodes", "5"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(stdout.contains("10 passed, 0 failed"), "{stdout}");
}

#[test]
fn check_env_references_and_run_take_the_customer_lifetime_env() {
    let run = contract_rl(&["check-env", "envs/customer-lifetime.toml", "--episodes", "2"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(
        stdout.contains("customer-lifetime: Discrete(4) actions") && stdout.contains("10 passed, 0 failed"),
        "{stdout}"
    );

    let run = contract_rl(&[
        "references",
        "envs/customer-lifetime.toml",
        "--campaigns",
        "1",
        "--replays",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    for row in [
        "| myopic oracle |",
        "| bid-price (OR policy) |",
        "| Bayes bound |",
        "| upper bound (latents revealed) |",
        "| bid-price v1 |",
        "| zero-price bid-price |",
        "| rule: cheapest offer once |",
        "| rule: cheapest offer always |",
    ] {
        assert!(stdout.contains(row), "{stdout}");
    }

    // The lifetime experiment, shrunk: every agent kind it lists trains and is reported beside
    // the env's own references.
    let dir = tempfile::tempdir().unwrap();
    let experiment = support::lifetime_experiment_file("experiments/lifetime.toml", dir.path(), "x.toml", |t| {
        support::shrink(t, &[1], 6, 3, 2);
    });
    let out = dir.path().join("results");
    let run = contract_rl(&[
        "-q",
        "run",
        experiment.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let again = dir.path().join("again");
    let rerun = contract_rl(&[
        "-q",
        "run",
        experiment.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(rerun.status.success());
    for file in ["episodes.parquet", "evals.parquet", "summary.parquet", "summary.md"] {
        let read = |dir: &std::path::Path| std::fs::read(dir.join(file)).unwrap();
        assert!(
            read(&out) == read(&again),
            "{file} differs between two runs of one config"
        );
    }
    for row in [
        "| *bid-price (OR policy)* (reference) |",
        "| *Bayes bound* (reference) |",
        "| *upper bound (latents revealed)* (reference) |",
        "| *rule: cheapest offer once* (reference) |",
        "| dqn | 1 |",
        "| lagrangian_q | 1 |",
        "| lagrangian_dqn | 1 |",
    ] {
        assert!(stdout.contains(row), "{stdout}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for section in [
        "## Learning curves",
        "## Learners over training",
        "| stock_left | budget_left |",
    ] {
        assert!(summary.contains(section), "{summary}");
    }
    let summary = contract_rl_parquet::table::read(&out.join("summary.parquet")).unwrap();
    for column in [
        "iqm_return",
        "pct_of_bid_price",
        "diff_vs_bid_price",
        "pct_of_bayes_bound",
        "pct_of_upper_bound",
        "upper_bound_return",
        "bid_price_v1_return",
        "rule_once_return",
        "mix_no_offer",
    ] {
        assert!(
            summary.column(column).is_ok(),
            "{column}: {:?}",
            summary.get_column_names()
        );
    }
    let evals = contract_rl_parquet::table::read(&out.join("evals.parquet")).unwrap();
    // The four learners: before training, twice during it, and on the test users; random
    // (which does not train) before and on the test users.
    assert_eq!(evals.height(), 4 * 4 + 2);
    for column in [
        "bid_price_return",
        "bayes_bound_return",
        "zero_price_return",
        "stock_left",
        "budget_left",
        "share_premium_24m_d10",
    ] {
        assert!(evals.column(column).is_ok(), "{column}: {:?}", evals.get_column_names());
    }

    // Agents that read the contract-choice model are refused by name, before any work.
    let experiment = support::lifetime_experiment_file("experiments/quickstart.toml", dir.path(), "y.toml", |_| {});
    let out = dir.path().join("refused");
    let run = contract_rl(&["run", experiment.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("agents[1] (best_single)") && stderr.contains("defined on the contract-choice env only"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing was written");
}

#[test]
fn bad_input_exits_with_code_two_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let env = support::edited_toml(&support::env_file(), dir.path(), "env.toml", |t| {
        t.insert("test_fraction".into(), toml::Value::Float(1.5));
    });
    let run = contract_rl(&["check-env", env.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("env.toml: test_fraction: must be in (0, 1)"),
        "{stderr}"
    );

    let run = contract_rl(&["generate", "--users", "5", "--nat", "XX", "--out", "/tmp/never.parquet"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown nat \"XX\""));
}

#[test]
fn a_bad_experiment_exits_with_code_two_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::experiment_file(dir.path(), |t| {
        t.insert("seeds".into(), Value::Array(vec![]));
    });
    let out = dir.path().join("results");
    let run = contract_rl(&["run", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("experiment.toml: seeds"), "{stderr}");
    assert!(!out.exists(), "nothing was written");
}

#[test]
fn a_bad_dqn_agent_exits_with_code_two_before_any_work() {
    for (key, value, expected) in [
        ("checkpoint", "nowhere.bpk", ["agents[0]", "nowhere.bpk"]),
        (
            "learner",
            "torch",
            ["experiment.toml", "learner: `torch` is none of `ndarray`, `burn`"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = support::experiment_file(dir.path(), |t| {
            t.insert("agents".into(), support::one_agent("dqn", &[(key, value.into())]));
        });
        let out = dir.path().join("results");
        let run = contract_rl(&["run", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(run.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(expected.iter().all(|e| stderr.contains(e)), "{key}: {stderr}");
        assert!(!out.exists(), "nothing was written");
    }
}

#[test]
fn run_and_compare_write_every_file_and_run_names_its_build() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::experiment_file(dir.path(), |t| support::shrink(t, &[1], 20, 10, 2));
    let out = dir.path().join("results");
    // Run from a folder that is no git checkout: the commit comes from the build.
    let run = crate::contract_rl_in(
        dir.path(),
        &["-q", "run", path.to_str().unwrap(), "--out", out.to_str().unwrap()],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for file in [
        "episodes.parquet",
        "evals.parquet",
        "metrics.parquet",
        "summary.parquet",
        "summary.md",
        "recommendations.parquet",
        "comparison.md",
        "comparison.parquet",
        "plots/learning_curves.svg",
        "plots/learning_curves.png",
        "plots/final_performance.svg",
        "plots/performance_profiles.png",
        "plots/training_diagnostics.svg",
        "plots/regret.svg",
        "plots/offers_by_segment.svg",
        "report.html",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(support::repo(""))
        .output()
        .unwrap();
    let commit = String::from_utf8_lossy(&commit.stdout).trim().to_owned();
    assert_eq!(manifest["build"]["commit"], commit.as_str());
    assert_eq!(manifest["build"]["version"], env!("CARGO_PKG_VERSION"));

    let comparison = dir.path().join("comparison");
    let compare = contract_rl(&["compare", out.to_str().unwrap(), "--out", comparison.to_str().unwrap()]);
    assert!(compare.status.success(), "{}", String::from_utf8_lossy(&compare.stderr));
    for file in ["comparison.md", "plots/final_performance.svg", "report.html"] {
        assert!(comparison.join(file).is_file(), "{file}");
    }
}

#[test]
fn compare_names_a_folder_that_is_no_results_folder_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("comparison");
    let missing = dir.path().join("never-ran");
    let run = contract_rl(&["compare", missing.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("never-ran/manifest.json"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn bench_rl_prints_every_headline_rate() {
    let run = contract_rl(&["bench", "rl"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for (workload, unit) in [
        ("env/step", "env steps/s"),
        ("env/step_batched_64", "env steps/s"),
        ("lifetime_env/step", "env steps/s"),
        ("lifetime_credit/step", "env steps/s"),
        ("q_learning/train_step", "env steps/s"),
        ("q_learning/train_step_10_seeds_batched", "env steps/s"),
        ("dqn/gradient_step_batch64", "gradient steps/s"),
        ("dqn/gradient_step_batch64_burn", "gradient steps/s"),
        ("dqn/train_env_step", "env steps/s"),
        ("dqn/train_env_step_burn", "env steps/s"),
        ("dqn/train_env_step_10_seeds", "env steps/s"),
        ("dqn/train_env_step_10_seeds_burn", "env steps/s"),
        ("replay/sample_batch64", "minibatches/s"),
        ("snapshot/load", "users/s"),
        ("stats/compare_6_agents_10_seeds", "comparisons/s"),
        ("export/powerbi_quickstart", "exports/s"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(workload))
            .unwrap_or_default();
        assert!(line.ends_with(unit), "{workload}: {stdout}");
    }
    // Outside a checkout it says what is missing instead of failing on a path.
    let dir = tempfile::tempdir().unwrap();
    let run = crate::contract_rl_in(dir.path(), &["bench", "rl"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--root"));
}

#[test]
fn the_compose_file_and_dockerfile_agree_with_the_project_defaults_and_workspace() {
    let defaults = contract_rl_pipeline::PipelineConfig::default();
    let port = |address: &str| address.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let mut members: Vec<String> = std::fs::read_dir(support::repo("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| format!("crates/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    members.sort();
    assert!(members.len() >= 5, "{members:?}");
    let facts = serde_json::json!({
        "kafka_port": port(&defaults.brokers),
        "cql_port": port(&defaults.cassandra_nodes[0]),
        "topic": defaults.topic,
        "group": defaults.group,
        "keyspace": defaults.keyspace,
        "members": members,
    });
    crate::check_with_reader("compose.py", &[facts.to_string().as_ref()]);
}
