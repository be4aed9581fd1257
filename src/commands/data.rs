//! Commands on data without services: `generate` and `check-env`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use contract_rl_core::env::{EnvConfig, EnvModel, check_env as checks};
use contract_rl_core::source::{Generator, generate_records};
use contract_rl_parquet::snapshot::{self, Producer};

/// `generate`: users from the embedded generator into a snapshot.
pub fn generate(users: usize, seed: &str, nat: &[String], out: &Path) -> anyhow::Result<ExitCode> {
    let generator = Generator::new(seed, nat)?;
    let (records, rejected) = generate_records(&generator, users);
    for r in &rejected {
        tracing::warn!(index = r.index, reason = %r.reason, "rejected document");
    }
    let producer = Producer {
        command: "generate".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        params: serde_json::json!({ "users": users, "seed": seed, "nat": nat }),
    };
    let manifest = snapshot::write(out, &records, producer).context("writing the snapshot")?;
    println!(
        "wrote {} users to {} (sha256 {}), manifest {}; {} rejected",
        manifest.rows,
        out.display(),
        &manifest.sha256[..16],
        snapshot::manifest_path(out).display(),
        rejected.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `check-env`: the env checker on a snapshot; exit 3 when a check fails.
pub fn check_env(env: &Path, snapshot: &Path, episodes: usize) -> anyhow::Result<ExitCode> {
    let config = EnvConfig::load(env)?;
    let records = snapshot::read(snapshot)?.records;
    let model = Arc::new(EnvModel::build(config, &records).with_context(|| snapshot.display().to_string())?);
    let results = checks(&model, episodes);
    for c in &results {
        println!("[{}] {}: {}", if c.passed { "ok" } else { "FAIL" }, c.name, c.detail);
    }
    let failed = results.iter().filter(|c| !c.passed).count();
    println!("{} passed, {failed} failed", results.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
