//! Helpers shared by every crate's integration tests (each includes this file with
//! `#[path]`): the committed env, sample and experiments, edited copies of them in temporary
//! folders, and the sample's users made in memory (no Parquet needed).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use contract_rl_core::env::{EnvConfig, EnvModel};
use contract_rl_core::record::UserRecord;
use contract_rl_core::source::{Generator, generate_records};
use toml::Value;

/// A path inside the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("envs").is_dir())
        .expect("the repository root")
        .join(path)
}

/// The default env file.
pub fn env_file() -> PathBuf {
    repo("envs/contract-choice.toml")
}

/// The committed sample snapshot.
pub fn sample_snapshot() -> PathBuf {
    repo("data/snapshots/sample.parquet")
}

/// The users of the committed sample, made by the generator (`generate --users 20000 --seed
/// contract-rl` wrote the sample; a CLI test checks the bytes).
pub fn sample_records() -> Vec<UserRecord> {
    generate_records(&Generator::new("contract-rl", &[]).unwrap(), 20_000).0
}

/// The default env built on the sample's users.
pub fn sample_model() -> Arc<EnvModel> {
    let config = EnvConfig::load(&env_file()).expect("the default env file is valid");
    Arc::new(EnvModel::build(config, &sample_records()).expect("the sample is big enough"))
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

/// The repository's experiment file `experiment` pointed at the customer-lifetime env and the
/// sample snapshot, edited by `edit`, written to `dir/name`.
pub fn lifetime_experiment_file(
    experiment: &str,
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut toml::Table),
) -> PathBuf {
    edited_toml(&repo(experiment), dir, name, |t| {
        t.insert(
            "env".into(),
            repo("envs/customer-lifetime.toml").display().to_string().into(),
        );
        t.insert("snapshot".into(), sample_snapshot().display().to_string().into());
        edit(t)
    })
}

/// Shrinks an experiment table to `seeds`, `train_episodes` per run, and `eval_episodes`
/// held-out campaigns (one replay each) every `every` episodes.
pub fn shrink(t: &mut toml::Table, seeds: &[i64], train_episodes: i64, every: i64, eval_episodes: i64) {
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
    eval.insert("replays".into(), Value::Integer(1));
}

/// A `[[agents]]` list of one agent of `kind` with `fields`.
pub fn one_agent(kind: &str, fields: &[(&str, Value)]) -> Value {
    let mut agent = toml::Table::new();
    agent.insert("kind".into(), kind.into());
    for (k, v) in fields {
        agent.insert((*k).into(), v.clone());
    }
    Value::Array(vec![Value::Table(agent)])
}
