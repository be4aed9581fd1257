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
