//! Commands on data without services: `generate`, `check-env` and `references`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use contract_rl_core::env::lifetime::{
    CampaignReferences, LifetimeConfig, LifetimeModel, POLICIES, Replay, evaluate_references,
};
use contract_rl_core::env::{Campaigns, EnvFile, Split, check_env as checks};
use contract_rl_core::experiment::labels_of;
use contract_rl_core::report::Named;
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
/// return with a 95% interval over the campaigns' replays, as shares of the bounds and of the
/// bid-price policy, and as a paired difference to the bid-price policy on the same replays.
pub fn references(
    env: &Path,
    snapshot: &Path,
    campaigns: usize,
    replays: usize,
    resolve_months: usize,
    seed: u64,
) -> anyhow::Result<ExitCode> {
    let config = LifetimeConfig::load(env)?;
    let records = snapshot::read(snapshot)?.records;
    let model = Arc::new(LifetimeModel::build(config, &records).with_context(|| snapshot.display().to_string())?);
    let available = model.campaigns(Split::Test);
    if campaigns > available {
        anyhow::bail!(
            "--campaigns: the test split of {} has {available} disjoint campaigns of {} users; ask for at most {available}",
            snapshot.display(),
            model.config().cohort
        );
    }
    let start = std::time::Instant::now();
    let which = Campaigns {
        campaigns,
        replays,
        seed,
    };
    let runs = evaluate_references(&model, Split::Test, &which, resolve_months);
    let seconds = start.elapsed().as_secs_f64();
    let labels = labels_of("customer-lifetime").expect("the lifetime env is labelled");
    // Each reference's mean over each campaign's replays, in campaign order.
    let per_campaign = |key: &str| -> Vec<f64> {
        let value = |c: &CampaignReferences, r: &Replay| match POLICIES.iter().position(|p| *p == key) {
            Some(i) => r.returns[i],
            None if key == labels.bound.key => c.bayes_bound,
            None if labels.second_bound.is_some_and(|b| b.key == key) => r.upper_bound,
            None => unreachable!("{key} is no reference of the lifetime env"),
        };
        runs.iter()
            .map(|c| c.replays.iter().map(|r| value(c, r)).sum::<f64>() / c.replays.len() as f64)
            .collect()
    };
    let rows: Vec<(Named, Vec<f64>)> = [labels.myopic, labels.online, labels.bound]
        .into_iter()
        .chain(labels.second_bound)
        .chain(labels.others.iter().copied())
        .map(|named| (named, per_campaign(named.key)))
        .collect();
    // Means and 95% intervals over the campaigns (a campaign's replays are not independent of
    // each other: they share its cohort).
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let half_width = |v: &[f64]| {
        let (m, n) = (mean(v), v.len() as f64);
        1.96 * (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt() / n.sqrt()
    };
    let of = |key: &str| mean(&per_campaign(key));
    let bid_price = per_campaign(labels.online.key);
    let (bound, upper) = (
        of(labels.bound.key),
        labels.second_bound.map_or(f64::NAN, |b| of(b.key)),
    );
    println!(
        "{campaigns} test campaigns × {replays} replays of {} users over {} months ({seconds:.1} s); \
         means and 95% intervals over the campaigns",
        model.config().cohort,
        model.config().months
    );
    println!(
        "| reference | mean return | 95% interval | % of {} | % of upper bound | % of {} | paired Δ vs {} | knows |",
        labels.bound.label, labels.online.label, labels.online.label
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for (named, v) in rows {
        let m = mean(&v);
        let paired: Vec<f64> = v.iter().zip(&bid_price).map(|(a, b)| a - b).collect();
        println!(
            "| {} | {m:.0} | ± {:.0} | {:.1} | {:.1} | {:.1} | {:+.0} ± {:.0} | {} |",
            named.label,
            half_width(&v),
            100.0 * m / bound,
            100.0 * m / upper,
            100.0 * m / mean(&bid_price),
            mean(&paired),
            half_width(&paired),
            named.knows
        );
    }
    Ok(ExitCode::SUCCESS)
}
