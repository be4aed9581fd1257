//! Bad env files, experiment files and snapshots stop before any work, with a message that
//! names the file, the field and what is allowed.

mod common;

use std::path::Path;

use contract_rl::env::EnvConfig;
use contract_rl::experiment::Experiment;
use toml::Value;

fn env_error(edit: impl FnOnce(&mut toml::Table)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = common::edited_toml(&common::env_file(), dir.path(), "bad-env.toml", edit);
    let message = EnvConfig::load(&path)
        .expect_err("the edited env must be refused")
        .to_string();
    assert!(message.contains("bad-env.toml"), "the file is named: {message}");
    message
}

fn contract(table: &mut toml::Table, i: usize) -> &mut toml::Table {
    table["contracts"].as_array_mut().unwrap()[i].as_table_mut().unwrap()
}

#[test]
fn a_misspelled_key_is_named_with_the_allowed_ones() {
    let message = env_error(|t| {
        let len = t.remove("episode_len").unwrap();
        t.insert("episode_lenght".into(), len);
    });
    assert!(message.contains("episode_lenght"), "{message}");
    assert!(message.contains("episode_len"), "{message}");
}

#[test]
fn a_wrong_type_is_named() {
    let message = env_error(|t| {
        t.insert("episode_len".into(), Value::String("100".into()));
    });
    assert!(message.contains("episode_len"), "{message}");
    assert!(message.contains("invalid type: string \"100\""), "{message}");
}

#[test]
fn a_negative_margin_is_refused() {
    let message = env_error(|t| {
        contract(t, 1).insert("margin".into(), Value::Float(-3.0));
    });
    assert!(message.contains("contracts[1].margin"), "{message}");
    assert!(message.contains(">= 0"), "{message}");
}

#[test]
fn a_quota_outside_the_unit_interval_is_refused() {
    let message = env_error(|t| {
        contract(t, 3).insert("quota".into(), Value::Float(1.5));
    });
    assert!(message.contains("contracts[3].quota"), "{message}");
    assert!(message.contains("[0, 1]"), "{message}");
}

#[test]
fn an_empty_catalogue_is_refused() {
    let message = env_error(|t| {
        t.insert("contracts".into(), Value::Array(vec![]));
    });
    assert!(message.contains("contracts"), "{message}");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn a_coefficient_for_an_unknown_feature_lists_the_features() {
    let message = env_error(|t| {
        let response = contract(t, 0)["response"].as_table_mut().unwrap();
        response["coefficients"]
            .as_table_mut()
            .unwrap()
            .insert("income".into(), Value::Float(0.5));
    });
    assert!(
        message.contains("contracts[0].response.coefficients.income"),
        "{message}"
    );
    assert!(
        message.contains("age_sq") && message.contains("region.nordics"),
        "{message}"
    );
}

#[test]
fn bucket_edges_must_increase() {
    let message = env_error(|t| {
        let state = t["state"].as_table_mut().unwrap();
        state.insert(
            "age_edges_years".into(),
            Value::Array(vec![Value::Float(45.0), Value::Float(30.0)]),
        );
    });
    assert!(message.contains("state.age_edges_years"), "{message}");
    assert!(message.contains("strictly increasing"), "{message}");
}

#[test]
fn an_unknown_nat_in_a_region_lists_the_allowed_codes() {
    let message = env_error(|t| {
        let regions = t["regions"].as_table_mut().unwrap();
        regions["nordics"]
            .as_array_mut()
            .unwrap()
            .push(Value::String("SE".into()));
    });
    assert!(message.contains("regions.nordics"), "{message}");
    assert!(message.contains("\"SE\"") && message.contains("DK"), "{message}");
}

#[test]
fn a_catalogue_without_an_open_contract_is_refused() {
    let message = env_error(|t| {
        for i in 0..5 {
            contract(t, i).insert("min_age_years".into(), Value::Integer(30));
        }
    });
    assert!(message.contains("open to every user"), "{message}");
}

fn experiment_error(dir: &Path, edit: impl FnOnce(&mut toml::Table)) -> String {
    let path = common::experiment_file(dir, edit);
    Experiment::load(&path, None)
        .expect_err("the edited experiment must be refused")
        .to_string()
}

#[test]
fn a_misspelled_agent_hyperparameter_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let message = experiment_error(dir.path(), |t| {
        let agents = t["agents"].as_array_mut().unwrap();
        let q = agents.last_mut().unwrap().as_table_mut().unwrap();
        q.insert("epsilon_strt".into(), Value::Float(0.5));
    });
    assert!(
        message.contains("experiment.toml") && message.contains("epsilon_strt"),
        "{message}"
    );
    assert!(message.contains("epsilon_start"), "{message}");
}

#[test]
fn an_unknown_agent_kind_lists_the_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let message = experiment_error(dir.path(), |t| {
        let agents = t["agents"].as_array_mut().unwrap();
        agents[0]
            .as_table_mut()
            .unwrap()
            .insert("kind".into(), Value::String("ppo".into()));
    });
    assert!(message.contains("ppo") && message.contains("q_learning"), "{message}");
}

#[test]
fn an_out_of_range_hyperparameter_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let message = experiment_error(dir.path(), |t| {
        let agents = t["agents"].as_array_mut().unwrap();
        let q = agents.last_mut().unwrap().as_table_mut().unwrap();
        q.insert("gamma".into(), Value::Float(1.2));
    });
    assert!(
        message.contains("agents[4].gamma") && message.contains("[0, 1]"),
        "{message}"
    );
}

#[test]
fn a_missing_snapshot_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let message = experiment_error(dir.path(), |t| {
        t.insert("snapshot".into(), Value::String("/nonexistent/users.parquet".into()));
    });
    assert!(message.contains("/nonexistent/users.manifest.json"), "{message}");
}

#[test]
fn a_corrupted_snapshot_is_refused_by_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("users.parquet");
    let mut bytes = std::fs::read(common::sample_snapshot()).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x5A;
    std::fs::write(&copy, bytes).unwrap();
    std::fs::copy(
        common::repo("data/snapshots/sample.manifest.json"),
        dir.path().join("users.manifest.json"),
    )
    .unwrap();
    let message = experiment_error(dir.path(), |t| {
        t.insert("snapshot".into(), Value::String(copy.display().to_string()));
    });
    assert!(
        message.contains("users.parquet") && message.contains("SHA-256"),
        "{message}"
    );
}
