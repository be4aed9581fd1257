//! The binary as a user runs it: outputs, and exit codes that mean something.

mod common;

use std::process::Command;

fn contract_rl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_contract-rl"))
        .args(args)
        .current_dir(common::repo(""))
        .output()
        .expect("the binary runs")
}

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
    let committed = std::fs::read(common::sample_snapshot()).unwrap();
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
    assert!(stdout.contains("7 passed, 0 failed"), "{stdout}");
}

#[test]
fn bad_input_exits_with_code_two_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::edited_toml(&common::env_file(), dir.path(), "env.toml", |t| {
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
