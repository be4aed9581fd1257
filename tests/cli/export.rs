//! `export powerbi`, checked by outside readers (pyarrow and DuckDB, from the virtual environment
//! `scripts/readers` makes), and its refusals.

use std::path::Path;

use contract_rl_parquet::table::Table;

use crate::{check_with_reader, contract_rl, support};

/// Runs `run` on `experiment` into `out`.
fn run(experiment: &Path, out: &Path) {
    let run = contract_rl(&[
        "-q",
        "run",
        experiment.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

/// The rows each exported table should have, from the results folders' own files.
fn expected_rows(folders: &[&Path]) -> serde_json::Value {
    let (mut agents, mut contracts, mut episodes, mut evals, mut mix, mut recommendations) = (0, 0, 0, 0, 0, 0);
    for dir in folders {
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        agents += manifest["config"]["agents"].as_array().unwrap().len();
        let table = |name: &str| Table::read(&dir.join(name)).unwrap();
        let e = table("evals.parquet");
        let actions = e
            .frame
            .get_column_names()
            .iter()
            .filter(|c| c.starts_with("mix_"))
            .count();
        contracts += actions;
        evals += e.frame.height();
        mix += e.frame.height() * actions;
        episodes += table("episodes.parquet").frame.height();
        let roles = table("recommendations.parquet").strings("role").unwrap();
        recommendations += roles.iter().filter(|r| *r == "agent").count();
    }
    serde_json::json!({
        "dim_run": folders.len(),
        "dim_agent": agents,
        "dim_contract": contracts,
        "dim_segment": 4 * 5 * 4,
        "dim_user": 20_000,
        "fact_training_episodes": episodes,
        "fact_evaluations": evals,
        "fact_evaluation_mix": mix,
        "fact_recommendations": recommendations,
    })
}

#[test]
fn the_power_bi_export_reads_back_with_pyarrow_and_duckdb_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    // Both envs' results, on the committed sample: quickstart as shipped, lifetime shrunk.
    let quickstart = dir.path().join("quickstart");
    run(&support::repo("experiments/quickstart.toml"), &quickstart);
    let lifetime = dir.path().join("lifetime");
    let experiment = support::lifetime_experiment_file("experiments/lifetime.toml", dir.path(), "l.toml", |t| {
        support::shrink(t, &[1, 2], 4, 2, 2);
    });
    run(&experiment, &lifetime);

    let snapshot = support::sample_snapshot();
    let export = |out: &Path| {
        let export = contract_rl(&[
            "export",
            "powerbi",
            quickstart.to_str().unwrap(),
            lifetime.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    };
    let out = dir.path().join("powerbi");
    export(&out);
    // 6 agents × 10 seeds × 50 test campaigns × 100 users.
    assert_eq!(expected_rows(&[&quickstart])["fact_recommendations"], 300_000);
    let expected = expected_rows(&[&quickstart, &lifetime]);
    check_with_reader(
        "powerbi.py",
        &[out.as_os_str(), snapshot.as_os_str(), expected.to_string().as_ref()],
    );

    // The same export twice gives the same bytes.
    let again = dir.path().join("again");
    export(&again);
    for file in std::fs::read_dir(&out).unwrap() {
        let name = file.unwrap().file_name();
        assert!(
            std::fs::read(out.join(&name)).unwrap() == std::fs::read(again.join(&name)).unwrap(),
            "{name:?} differs between two exports"
        );
    }
}

#[test]
fn the_export_refuses_another_snapshot_a_folder_twice_other_splits_and_bad_bands_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    run(&support::repo("experiments/quickstart.toml"), &results);
    // The same results as if run with other held-out shares.
    let resplit = dir.path().join("resplit");
    std::fs::create_dir(&resplit).unwrap();
    for file in std::fs::read_dir(&results).unwrap() {
        let file = file.unwrap().path();
        if file.is_file() {
            std::fs::copy(&file, resplit.join(file.file_name().unwrap())).unwrap();
        }
    }
    let manifest = std::fs::read_to_string(resplit.join("manifest.json")).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    manifest["env"]["test_fraction"] = 0.25.into();
    std::fs::write(resplit.join("manifest.json"), manifest.to_string()).unwrap();
    let other = dir.path().join("other.parquet");
    let generate = contract_rl(&["generate", "--users", "300", "--out", other.to_str().unwrap()]);
    assert!(generate.status.success());
    let sample = support::sample_snapshot();
    let out = dir.path().join("powerbi");
    let (results, resplit) = (results.to_str().unwrap(), resplit.to_str().unwrap());
    let spelled_otherwise = format!("{results}/");
    for (args, says) in [
        (
            vec![results, "--snapshot", other.to_str().unwrap()],
            "replayed the snapshot with SHA-256",
        ),
        (
            vec![results, &spelled_otherwise, "--snapshot", sample.to_str().unwrap()],
            "is given twice",
        ),
        (
            vec![results, resplit, "--snapshot", sample.to_str().unwrap()],
            "differ in env.test_fraction",
        ),
        (
            vec![results, "--snapshot", sample.to_str().unwrap(), "--age-edges", "60,45"],
            "--age-edges: band edges must be increasing",
        ),
    ] {
        let export = contract_rl(&[&["export", "powerbi", "--out", out.to_str().unwrap()], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&export.stderr);
        assert_eq!(export.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}
