//! Commands on data without services: `generate`, `check-env` and `references`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use contract_rl_core::env::lifetime::{CampaignReferences, LifetimeConfig, LifetimeModel, evaluate_references};
use contract_rl_core::env::{EnvFile, Split, check_env as checks};
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
    let file = EnvFile::load(env)?;
    let records = snapshot::read(snapshot)?.records;
    let kind = file.build(&records).with_context(|| snapshot.display().to_string())?;
    let results = checks(&kind, episodes);
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

/// `references`: the customer-lifetime references on the test campaigns, each as its mean
/// return with a 95% interval over the replays and as a share of the bound and of the bid-price
/// policy.
pub fn references(
    env: &Path,
    snapshot: &Path,
    campaigns: usize,
    episodes: u64,
    resolve_months: usize,
    seed: u64,
) -> anyhow::Result<ExitCode> {
    let config = LifetimeConfig::load(env)?;
    let records = snapshot::read(snapshot)?.records;
    let model = Arc::new(LifetimeModel::build(config, &records).with_context(|| snapshot.display().to_string())?);
    let available = model.campaigns(Split::Test);
    if campaigns > available {
        anyhow::bail!(
            "--campaigns: the test split of {} has {available} campaigns of {} users; ask for at most {available}",
            snapshot.display(),
            model.config().cohort
        );
    }
    let start = std::time::Instant::now();
    let runs = evaluate_references(&model, Split::Test, campaigns, episodes, seed, resolve_months);
    let seconds = start.elapsed().as_secs_f64();
    let of = |f: fn(&CampaignReferences) -> f64| {
        let values: Vec<f64> = runs.iter().map(f).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        (mean, 1.96 * sd / n.sqrt())
    };
    let rows = [
        (
            "myopic oracle",
            "the latents and the response model; not churn, fatigue or scarcity",
            of(|r| r.myopic),
        ),
        (
            "bid-price",
            "the models; latents only through each user's history",
            of(|r| r.bid_price),
        ),
        (
            "upper bound",
            "everything; the relaxation of stock and budget",
            of(|r| r.bound),
        ),
    ];
    let (bound, bid_price) = (rows[2].2.0, rows[1].2.0);
    println!(
        "{} test campaigns × {episodes} replays of {} users over {} months ({seconds:.1} s)",
        campaigns,
        model.config().cohort,
        model.config().months
    );
    println!("| reference | mean return | 95% interval | % of bound | % of bid-price | knows |");
    println!("|---|---:|---:|---:|---:|---|");
    for (name, knows, (mean, half)) in rows {
        println!(
            "| {name} | {mean:.0} | ± {half:.0} | {:.1} | {:.1} | {knows} |",
            100.0 * mean / bound,
            100.0 * mean / bid_price
        );
    }
    Ok(ExitCode::SUCCESS)
}
