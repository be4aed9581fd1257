//! The Airflow DAG (`orchestration/airflow/dags/contract_pipeline.py`) run by real Airflow
//! (`airflow dags test`, from the virtual environment `scripts/readers` makes) against the real
//! Kafka and Cassandra `scripts/test` starts.

use std::path::Path;
use std::process::{Command, Output};

use contract_rl_parquet::table::Table;

use crate::{isolated_pipeline, support, venv_program};

/// `airflow args...` with its own home (metadata database, logs) in `home` and the repository's
/// DAGs.
fn run_airflow(home: &Path, args: &[&str]) -> Output {
    Command::new(venv_program("CONTRACT_RL_AIRFLOW", "venv-airflow/bin/airflow"))
        .args(args)
        .env("AIRFLOW_HOME", home)
        .env(
            "AIRFLOW__CORE__DAGS_FOLDER",
            support::repo("orchestration/airflow/dags"),
        )
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .output()
        .expect("airflow runs")
}

fn log(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn airflow_runs_the_dag_from_ingest_to_the_power_bi_export() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("airflow");
    let migrate = run_airflow(&home, &["db", "migrate"]);
    assert!(migrate.status.success(), "{}", log(&migrate));

    let config = isolated_pipeline("airflow");
    let work = dir.path().join("work");
    let users = 2_000;
    let conf = |experiment: &str, work: &Path| {
        serde_json::json!({
            "repo": support::repo("").display().to_string(),
            "binary": env!("CARGO_BIN_EXE_contract-rl"),
            "work_dir": work.display().to_string(),
            "users": users,
            "topic": config.topic,
            "group": config.group,
            "keyspace": config.keyspace,
            "experiment": experiment,
            "shards": 3,
        })
        .to_string()
    };
    let dags_test = |experiment: &str, work: &Path| {
        run_airflow(
            &home,
            &["dags", "test", "contract_pipeline", "-c", &conf(experiment, work)],
        )
    };
    let run = dags_test("experiments/quickstart.toml", &work);
    assert!(run.status.success(), "{}", log(&run));

    // The snapshot holds every user the DAG ingested, read back from Cassandra.
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("snapshot.manifest.json")).unwrap()).unwrap();
    assert_eq!(snapshot["rows"], users);
    // Three shards, merged: every (agent, seed) run of the quickstart, on that snapshot.
    let results = work.join("results");
    for i in 1..=3 {
        assert!(results.join(format!("shard-{i}-of-3/shard.cbor")).is_file());
    }
    let evals = Table::read(&results.join("merged/evals.parquet")).unwrap();
    let runs = evals.strings("split").unwrap().iter().filter(|s| *s == "test").count();
    assert_eq!(runs, 6 * 10, "one test evaluation per (agent, seed)");
    assert!(results.join("merged/report.html").is_file());
    assert!(results.join("comparison/comparison.md").is_file());
    // The Power BI export of the merged results, with the DAG's users.
    let users_dim = Table::read(&results.join("powerbi/dim_user.parquet")).unwrap();
    assert_eq!(users_dim.frame.height(), users);
    let recommendations = Table::read(&results.join("powerbi/fact_recommendations.parquet")).unwrap();
    assert_eq!(recommendations.frame.height(), 6 * 10 * 50 * 100);

    // A task whose command fails fails the run (after its retries), and nothing after it runs:
    // the shards fail on the missing experiment; merge, compare and export never start.
    let failed_work = dir.path().join("failed");
    let run = dags_test("experiments/missing.toml", &failed_work);
    assert!(!run.status.success(), "{}", log(&run));
    assert!(failed_work.join("snapshot.parquet").is_file());
    let failed_runs = json(&run_airflow(
        &home,
        &[
            "dags",
            "list-runs",
            "contract_pipeline",
            "--state",
            "failed",
            "-o",
            "json",
        ],
    ));
    let run_id = failed_runs[0]["run_id"].as_str().expect("the failed run's id");
    let states = json(&run_airflow(
        &home,
        &["tasks", "states-for-dag-run", "contract_pipeline", run_id, "-o", "json"],
    ));
    let states_of = |task: &str| -> Vec<String> {
        states
            .as_array()
            .expect("task instances")
            .iter()
            .filter(|t| t["task_id"] == task)
            .map(|t| t["state"].as_str().unwrap_or("none").to_owned())
            .collect()
    };
    assert_eq!(states_of("check_snapshot"), ["success"], "{states}");
    assert!(
        !states_of("run_shard").is_empty() && states_of("run_shard").iter().all(|s| s == "failed"),
        "{states}"
    );
    for task in ["merge", "compare", "export_powerbi"] {
        assert_eq!(states_of(task), ["upstream_failed"], "{task}: {states}");
    }
    assert!(!failed_work.join("results/merged").exists());
}

/// The JSON an `airflow ... -o json` command printed (after any log lines).
fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", log(output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON line in {}", log(output)))
}
