//! One short function per command, grouped along the data flow; `run` dispatches.

mod bench;
mod data;
mod experiment;
mod services;

use std::process::ExitCode;

use contract_rl_parquet::Bands;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{BenchCommand, Cli, Command, ExportCommand};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Generate { users, seed, nat, out } => data::generate(users, &seed, &nat, &out),
        Command::CheckEnv {
            env,
            snapshot,
            episodes,
        } => data::check_env(&env, &snapshot, episodes),
        Command::References {
            env,
            snapshot,
            campaigns,
            replays,
            resolve_months,
            seed,
        } => data::references(&env, &snapshot, campaigns, replays, resolve_months, seed),
        Command::Run {
            config,
            out,
            snapshot,
            shard,
        } => experiment::run(&config, out, snapshot.as_deref(), shard, quiet),
        Command::Merge { dirs, out } => experiment::merge(&dirs, &out),
        Command::Compare { dirs, split, out } => experiment::compare(&dirs, split.into(), &out),
        Command::Export {
            what:
                ExportCommand::PowerBi {
                    dirs,
                    snapshot,
                    age_edges,
                    seniority_edges,
                    out,
                },
        } => {
            let bands = Bands {
                age_edges_years: age_edges,
                seniority_edges_years: seniority_edges,
            };
            experiment::export_powerbi(&dirs, &snapshot, &bands, &out)
        }
        Command::Ingest { users, services } => services::ingest(&users, &services, quiet),
        Command::Sink {
            until_caught_up,
            batch_size,
            services,
        } => services::sink(until_caught_up, batch_size, &services, quiet),
        Command::Snapshot { out, services } => services::snapshot(&out, &services),
        Command::Pipeline { users, out, services } => services::pipeline(&users, &out, &services, quiet),
        Command::Monitor {
            watch,
            interval_secs,
            services,
        } => services::monitor(watch, interval_secs, &services),
        Command::Bench {
            what: BenchCommand::Ingest { users, services },
        } => services::bench_ingest(users, &services, quiet),
        Command::Bench {
            what: BenchCommand::Rl { root },
        } => bench::bench_rl(&root),
    }
}

/// A progress bar over `total` items (a spinner when unknown), hidden when `quiet`.
fn progress_bar(quiet: bool, total: Option<u64>, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(n) => (
            ProgressBar::new(n),
            format!("{what:>8} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"),
        ),
        None => (
            ProgressBar::no_length(),
            format!("{what:>8} {{spinner}} {{pos}} messages ({{per_sec}})"),
        ),
    };
    bar.with_style(
        ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    )
}
