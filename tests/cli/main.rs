//! The `contract-rl` binary as a user runs it: outputs and exit codes ([`commands`]), and the
//! ingest path against the real Kafka and Cassandra that `scripts/test` starts ([`services`]).

#[path = "../support/mod.rs"]
mod support;
#[path = "../support/tls.rs"]
mod tls;

mod airflow;
mod commands;
mod export;
mod faults;
mod private;
mod secure;
mod services;
mod shards;

use std::path::Path;
use std::process::{Command, Output};

use contract_rl_core::record::UserRecord;
use contract_rl_pipeline::PipelineConfig;

/// Runs the binary in the repository with `args`.
fn contract_rl(args: &[&str]) -> Output {
    contract_rl_in(&support::repo(""), args)
}

/// Runs the binary in `dir` with `args`.
fn contract_rl_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_contract-rl"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// The Python with pyarrow and DuckDB: `CONTRACT_RL_PYTHON` (set by `scripts/test`), else the
/// virtual environment `scripts/readers` makes. A test that needs it fails when it is missing.
fn readers_python() -> std::path::PathBuf {
    venv_program("CONTRACT_RL_PYTHON", "venv-readers/bin/python")
}

/// A program of a virtual environment `scripts/readers` makes: the variable `var` (set by
/// `scripts/test`), else `relative` in `~/.cache/contract-rl`. The test fails when it is missing.
fn venv_program(var: &str, relative: &str) -> std::path::PathBuf {
    let program = std::env::var_os(var).map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/contract-rl").join(relative)
        },
        std::path::PathBuf::from,
    );
    assert!(
        program.exists(),
        "{} is missing: run `eval \"$(scripts/readers)\"` first (scripts/test does)",
        program.display()
    );
    program
}

/// Runs the outside reader `tests/readers/<script>` with `args` under [`readers_python`] and
/// fails the test with its report unless it passes.
fn check_with_reader(script: &str, args: &[&std::ffi::OsStr]) {
    let check = Command::new(readers_python())
        .arg(support::repo(&format!("tests/readers/{script}")))
        .args(args)
        .output()
        .expect("the reader runs");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A pipeline config on the servers of `scripts/services` with a topic, group and keyspace of
/// its own, so that tests do not see each other's data.
fn isolated_pipeline(name: &str) -> PipelineConfig {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let unique = format!("{name}_{}_{}", std::process::id(), nanos % 1_000_000_000);
    PipelineConfig {
        topic: format!("users_created_{unique}"),
        group: format!("sink_{unique}"),
        keyspace: format!("t_{unique}"),
        concurrency: 64,
        ..PipelineConfig::default()
    }
}

/// The service arguments of the binary for `config`.
fn service_args(config: &PipelineConfig) -> Vec<String> {
    vec![
        "--brokers".into(),
        config.brokers.clone(),
        "--cassandra".into(),
        config.cassandra_nodes.join(","),
        "--topic".into(),
        config.topic.clone(),
        "--group".into(),
        config.group.clone(),
        "--keyspace".into(),
        config.keyspace.clone(),
    ]
}

/// A record without its lineage, for comparing what reached Cassandra with what was produced.
fn without_lineage(mut record: UserRecord) -> UserRecord {
    record.ingested_at = None;
    record.kafka_partition = None;
    record.kafka_offset = None;
    record
}
