//! The `contract-rl` binary: parses the command line, calls the library, maps errors to exit
//! codes (0 success, 1 failure at run time, 2 bad input such as a config or snapshot, 3 checks
//! that did not pass).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use contract_rl::env::{EnvConfig, EnvModel, check_env};
use contract_rl::experiment::{Experiment, RunOptions};
use contract_rl::snapshot::{self, Producer};
use contract_rl::source::{Generator, generate_records};

/// A reinforcement-learning workbench: user records → Parquet snapshots → a contract-choice
/// env → tabular and deep agents beside baselines and oracles.
#[derive(Debug, Parser)]
#[command(name = "contract-rl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only results and errors (no progress bars).
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate users with the embedded randomuser.me 1.4 generator into a Parquet snapshot
    /// (FILE.parquet plus FILE.manifest.json).
    Generate {
        /// How many users.
        #[arg(long, default_value_t = 20_000)]
        users: usize,
        /// The API's `seed`: the same seed, users and nat give the same snapshot.
        #[arg(long, default_value = "contract-rl")]
        seed: String,
        /// Restrict to these nationalities (comma-separated, e.g. FR,DE,GB); all 21 when absent.
        #[arg(long, value_delimiter = ',')]
        nat: Vec<String>,
        /// Output Parquet file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check an env file on a snapshot as Gymnasium's check_env does: spaces, seeding, masks,
    /// rewards, termination, determinism. Exit code 3 when a check fails.
    CheckEnv {
        /// The env file, e.g. envs/contract-choice.toml.
        env: PathBuf,
        /// The snapshot to replay.
        #[arg(long, default_value = "data/snapshots/sample.parquet")]
        snapshot: PathBuf,
        /// Random campaigns per split.
        #[arg(long, default_value_t = 20)]
        episodes: usize,
    },
    /// Run an experiment: every (agent, seed) in parallel, then held-out evaluation, summary
    /// and result tables in the output folder.
    Run {
        /// The experiment file, e.g. experiments/quickstart.toml.
        config: PathBuf,
        /// Results folder (default: results/<name>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replay this snapshot instead of the one the experiment names.
        #[arg(long)]
        snapshot: Option<PathBuf>,
    },
}

/// An error that means the user's input is wrong (exit code 2), not a failure while working.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn bad_input(error: impl std::fmt::Display) -> anyhow::Error {
    BadInput(error.to_string()).into()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Generate { users, seed, nat, out } => {
            let generator = Generator::new(&seed, &nat).map_err(bad_input)?;
            let (records, rejected) = generate_records(&generator, users);
            for r in &rejected {
                tracing::warn!(index = r.index, reason = %r.reason, "rejected document");
            }
            let producer = Producer {
                command: "generate".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                params: serde_json::json!({ "users": users, "seed": seed, "nat": nat }),
            };
            let manifest = snapshot::write(&out, &records, producer).context("writing the snapshot")?;
            println!(
                "wrote {} users to {} (sha256 {}), manifest {}; {} rejected",
                manifest.rows,
                out.display(),
                &manifest.sha256[..16],
                snapshot::manifest_path(&out).display(),
                rejected.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckEnv {
            env,
            snapshot,
            episodes,
        } => {
            let config = EnvConfig::load(&env).map_err(bad_input)?;
            let records = snapshot::read(&snapshot).map_err(bad_input)?.records;
            let model = Arc::new(EnvModel::build(config, &records).map_err(bad_input)?);
            let checks = check_env(&model, episodes);
            for c in &checks {
                println!("[{}] {}: {}", if c.passed { "ok" } else { "FAIL" }, c.name, c.detail);
            }
            let failed = checks.iter().filter(|c| !c.passed).count();
            println!("{} passed, {failed} failed", checks.len() - failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Run { config, out, snapshot } => {
            let experiment = Experiment::load(&config, snapshot.as_deref()).map_err(bad_input)?;
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(&experiment.config().name));
            let options = RunOptions { progress: !cli.quiet };
            let results = experiment.run(&options);
            let summary = experiment.write_results(&out, &results).context("writing results")?;
            print!("{}", summary.table());
            println!("results in {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
