//! `run`: an experiment into its results folder; `compare`: results folders side by side;
//! `export powerbi`: results folders as a star schema.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use contract_rl_core::env::Split;
use contract_rl_core::experiment::RunOptions;
use contract_rl_core::experiment::Shard;
use contract_rl_core::report::Summary;
use contract_rl_dqn::DqnAgents;
use contract_rl_parquet::{Bands, Build, LoadedExperiment, write_comparison, write_shard};

use super::progress_bar;

/// The build, for results manifests.
const BUILD: Build = Build {
    version: env!("CARGO_PKG_VERSION"),
    commit: non_empty(option_env!("CONTRACT_RL_COMMIT")),
};

/// `commit`, unless empty (a Docker build without its `COMMIT` argument sets the variable empty).
const fn non_empty(commit: Option<&'static str>) -> Option<&'static str> {
    match commit {
        Some(c) if !c.is_empty() => Some(c),
        _ => None,
    }
}

/// `run`: every (agent, seed) in parallel (or a shard's), then the results folder and the
/// summary (or the shard folder).
pub fn run(
    config: &Path,
    out: Option<PathBuf>,
    snapshot: Option<&Path>,
    shard: Option<Shard>,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let loaded = LoadedExperiment::load(config, snapshot, &DqnAgents)?;
    let experiment = &loaded.experiment;
    let out = out.unwrap_or_else(|| {
        let results = PathBuf::from("results").join(&experiment.config().name);
        match shard {
            Some(s) => results.join(format!("shard-{}-of-{}", s.index + 1, s.count)),
            None => results,
        }
    });
    let options = RunOptions {
        checkpoints: Some(out.join("checkpoints")),
        shard,
    };
    let bar = progress_bar(quiet, Some(experiment.total_episodes(shard)), "train");
    let results = experiment.run(&DqnAgents, &options, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    if let Some(shard) = shard {
        let runs = results.runs.len();
        write_shard(&out, &loaded, config, snapshot, shard, results)?;
        println!(
            "shard {}/{}: {} runs in {}",
            shard.index + 1,
            shard.count,
            runs,
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let summary = loaded.write_results(&out, &results, BUILD).context("writing results")?;
    finish(&out, &summary)
}

/// Plots and `report.html` of the results folder `out`, and its summary printed.
fn finish(out: &Path, summary: &Summary) -> anyhow::Result<ExitCode> {
    contract_rl_report::plot_results(out).context("plotting results")?;
    contract_rl_report::write_report(out).context("writing report.html")?;
    print!("{}", summary.table());
    println!("results in {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// `merge`: the shard folders `dirs` into the results folder `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<ExitCode> {
    let summary = contract_rl_parquet::merge(dirs, out, &DqnAgents, BUILD)?;
    finish(out, &summary)
}

/// `compare`: the agents of `dirs` on `split`'s campaigns into `out`, printing the aggregates;
/// the plots and report.html for the test campaigns only (validation scores are for tuning).
pub fn compare(dirs: &[PathBuf], split: Split, out: &Path) -> anyhow::Result<ExitCode> {
    let comparison = contract_rl_parquet::compare_on(dirs, split)?;
    let title = format!(
        "Comparison of {}",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    write_comparison(out, &title, &comparison).context("writing the comparison")?;
    if split == Split::Test {
        contract_rl_report::plot_comparison(out).context("plotting the comparison")?;
        contract_rl_report::write_report(out).context("writing report.html")?;
    }
    let markdown = comparison.markdown(&title);
    let table = markdown
        .split("\n\n")
        .find(|part| part.starts_with("| agent"))
        .unwrap_or_default();
    println!("{table}");
    println!("comparison in {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// `export powerbi`: the results folders `dirs` on `snapshot` into `out`, listing the files.
pub fn export_powerbi(dirs: &[PathBuf], snapshot: &Path, bands: &Bands, out: &Path) -> anyhow::Result<ExitCode> {
    for (path, rows) in contract_rl_parquet::export_powerbi(dirs, snapshot, bands, out)? {
        println!("{rows:>10} rows  {}", path.display());
    }
    println!(
        "Power BI star schema in {} (open it with powerbi/contract-rl.pq)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
