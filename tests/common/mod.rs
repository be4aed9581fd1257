//! Helpers shared by the integration tests: the committed env, sample snapshot and experiment,
//! and edited copies of them in temporary folders.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use contract_rl::env::{EnvConfig, EnvModel};
use contract_rl::snapshot;

/// A path inside the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The default env file.
pub fn env_file() -> PathBuf {
    repo("envs/contract-choice.toml")
}

/// The committed sample snapshot.
pub fn sample_snapshot() -> PathBuf {
    repo("data/snapshots/sample.parquet")
}

/// The default env built on the sample snapshot.
pub fn sample_model() -> Arc<EnvModel> {
    let config = EnvConfig::load(&env_file()).expect("the default env file is valid");
    let records = snapshot::read(&sample_snapshot())
        .expect("the sample snapshot is valid")
        .records;
    Arc::new(EnvModel::build(config, &records).expect("the sample is big enough"))
}

/// Parses a TOML file of the repository, lets `edit` change it, and writes it to `dir/name`.
pub fn edited_toml(source: &Path, dir: &Path, name: &str, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    let mut table: toml::Table = std::fs::read_to_string(source).unwrap().parse().unwrap();
    edit(&mut table);
    let path = dir.join(name);
    std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
    path
}

/// An experiment file in `dir` that uses the repository's env and sample snapshot, edited by
/// `edit`, starting from experiments/quickstart.toml.
pub fn experiment_file(dir: &Path, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    edited_toml(&repo("experiments/quickstart.toml"), dir, "experiment.toml", |t| {
        t.insert("env".into(), env_file().display().to_string().into());
        t.insert("snapshot".into(), sample_snapshot().display().to_string().into());
        edit(t)
    })
}

/// A pipeline config on the servers of `scripts/services` with a topic, group and keyspace of
/// its own, so that tests do not see each other's data.
pub fn isolated_pipeline(name: &str) -> contract_rl::pipeline::PipelineConfig {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let unique = format!("{name}_{}_{}", std::process::id(), nanos % 1_000_000_000);
    contract_rl::pipeline::PipelineConfig {
        topic: format!("users_created_{unique}"),
        group: format!("sink_{unique}"),
        keyspace: format!("t_{unique}"),
        concurrency: 64,
        ..contract_rl::pipeline::PipelineConfig::default()
    }
}

/// The service arguments of the binary for `config`.
pub fn service_args(config: &contract_rl::pipeline::PipelineConfig) -> Vec<String> {
    vec![
        "--topic".into(),
        config.topic.clone(),
        "--group".into(),
        config.group.clone(),
        "--keyspace".into(),
        config.keyspace.clone(),
    ]
}

/// A record without its lineage, for comparing what reached Cassandra with what was produced.
pub fn without_lineage(mut record: contract_rl::record::UserRecord) -> contract_rl::record::UserRecord {
    record.ingested_at = None;
    record.kafka_partition = None;
    record.kafka_offset = None;
    record
}
