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
use contract_rl::pipeline::{self, PipelineConfig, SinkOptions};
use contract_rl::snapshot::{self, Producer};
use contract_rl::source::{ApiClient, Generator, Source, generate_records};
use indicatif::{ProgressBar, ProgressStyle};

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
    /// Read users from the generator (default) or a randomuser-compatible API and produce them to
    /// Kafka; rejected documents go to the dead-letter topic with the reason.
    Ingest {
        #[command(flatten)]
        users: UserArgs,
        #[command(flatten)]
        services: ServiceArgs,
    },
    /// Consume the topic into Cassandra (upserts by user_id, offsets committed after the
    /// writes); runs until SIGINT/SIGTERM, or with --until-caught-up until there is no lag.
    Sink {
        /// Exit once every partition is committed up to its end.
        #[arg(long)]
        until_caught_up: bool,
        /// Most messages per batch (one offset commit per batch).
        #[arg(long, default_value_t = SinkOptions::default().batch_size)]
        batch_size: usize,
        #[command(flatten)]
        services: ServiceArgs,
    },
    /// Export the Cassandra table to a Parquet snapshot (same schema as `generate`), ordered by
    /// (kafka_partition, kafka_offset).
    Snapshot {
        /// Output Parquet file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        services: ServiceArgs,
    },
    /// Ingest, sink until caught up, then snapshot, with a final report.
    Pipeline {
        #[command(flatten)]
        users: UserArgs,
        /// Output Parquet file.
        #[arg(long, default_value = "data/snapshots/pipeline.parquet")]
        out: PathBuf,
        #[command(flatten)]
        services: ServiceArgs,
    },
    /// Topic end offsets, consumer lag per partition, dead letters and Cassandra row count.
    Monitor {
        /// Refresh every --interval-secs until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between readings with --watch.
        #[arg(long, default_value_t = 2)]
        interval_secs: u64,
        #[command(flatten)]
        services: ServiceArgs,
    },
    /// Measure the ingest path: producer, sink and end-to-end users/s beside a ceiling (direct
    /// concurrent upserts into Cassandra), on fresh topics and keyspaces.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
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

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The ingest path against the running Kafka and Cassandra.
    Ingest {
        /// Users per measurement.
        #[arg(long, default_value_t = 200_000)]
        users: u64,
        #[command(flatten)]
        services: ServiceArgs,
    },
}

/// Which users to ingest.
#[derive(Debug, clap::Args)]
struct UserArgs {
    /// How many users.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// The API's `seed`: the same seed gives the same users.
    #[arg(long, default_value = "contract-rl")]
    seed: String,
    /// Restrict to these nationalities (comma-separated); all 21 when absent.
    #[arg(long, value_delimiter = ',')]
    nat: Vec<String>,
    /// Fetch from this randomuser-compatible API (e.g. https://randomuser.me/api/1.4/)
    /// instead of the embedded generator.
    #[arg(long)]
    api_url: Option<String>,
    /// Users per request (the API serves at most 5000).
    #[arg(long, default_value_t = 5000)]
    page_size: u32,
    /// Seconds before an API request times out (it is then retried with backoff).
    #[arg(long, default_value_t = 30)]
    api_timeout_secs: u64,
    /// Tries per API page before giving up.
    #[arg(long, default_value_t = 6)]
    api_attempts: u32,
}

impl UserArgs {
    fn source(&self) -> anyhow::Result<Source> {
        Ok(match &self.api_url {
            None => Source::Generator(Generator::new(&self.seed, &self.nat).map_err(bad_input)?),
            Some(url) => Source::Api {
                client: ApiClient::new(
                    url,
                    std::time::Duration::from_secs(self.api_timeout_secs),
                    self.api_attempts,
                    std::time::Duration::from_millis(500),
                ),
                seed: self.seed.clone(),
                nats: self.nat.clone(),
            },
        })
    }
}

/// Where Kafka and Cassandra are; the defaults match `scripts/services up`.
#[derive(Debug, clap::Args)]
struct ServiceArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value_t = PipelineConfig::default().brokers)]
    brokers: String,
    /// Topic of user records (dead letters go to <topic>.dlq).
    #[arg(long, default_value_t = PipelineConfig::default().topic)]
    topic: String,
    /// Partitions of the topics when they are created.
    #[arg(long, default_value_t = PipelineConfig::default().partitions)]
    partitions: i32,
    /// The sink's consumer group.
    #[arg(long, default_value_t = PipelineConfig::default().group)]
    group: String,
    /// Cassandra contact points (comma-separated host:port). Credentials, if needed, come from
    /// CASSANDRA_USERNAME and CASSANDRA_PASSWORD.
    #[arg(long, env = "CASSANDRA_NODES", value_delimiter = ',', default_values_t = PipelineConfig::default().cassandra_nodes)]
    cassandra: Vec<String>,
    /// Keyspace of the users table.
    #[arg(long, default_value_t = PipelineConfig::default().keyspace)]
    keyspace: String,
    /// Replication factor of the keyspace when it is created.
    #[arg(long, default_value_t = PipelineConfig::default().replication_factor)]
    replication_factor: u32,
    /// Cassandra writes in flight at once.
    #[arg(long, default_value_t = PipelineConfig::default().concurrency)]
    concurrency: usize,
}

impl ServiceArgs {
    fn config(&self) -> anyhow::Result<PipelineConfig> {
        let config = PipelineConfig {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            partitions: self.partitions,
            group: self.group.clone(),
            cassandra_nodes: self.cassandra.clone(),
            keyspace: self.keyspace.clone(),
            replication_factor: self.replication_factor,
            concurrency: self.concurrency,
            ..PipelineConfig::default()
        };
        config.validate().map_err(bad_input)?;
        Ok(config)
    }
}

fn progress(quiet: bool, total: Option<u64>, what: &str) -> ProgressBar {
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// An error that means the user's input is wrong (exit code 2), not a failure while working.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
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
        Command::Ingest { users, services } => {
            let config = services.config()?;
            let source = users.source()?;
            let bar = progress(cli.quiet, Some(users.users), "ingest");
            let report = runtime()?.block_on(pipeline::ingest(&config, &source, users.users, users.page_size, &bar))?;
            bar.finish_and_clear();
            println!(
                "produced {} users to {} and {} rejected documents to {}.dlq in {:.1}s ({:.0} users/s){}",
                report.produced,
                config.topic,
                report.dead_lettered,
                config.topic,
                report.seconds,
                (report.produced + report.dead_lettered) as f64 / report.seconds,
                if report.source_exhausted {
                    "; the source ran out of users"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Sink {
            until_caught_up,
            batch_size,
            services,
        } => {
            let config = services.config()?;
            let options = SinkOptions {
                until_caught_up,
                batch_size,
                ..SinkOptions::default()
            };
            let bar = progress(cli.quiet, None, "sink");
            let report =
                runtime()?.block_on(pipeline::run_sink(&config, &options, &bar, pipeline::shutdown_signal()))?;
            bar.finish_and_clear();
            println!(
                "wrote {} users to {}.users and {} messages to {}.dlq in {} batches, {:.1}s",
                report.written, config.keyspace, report.dead_lettered, config.topic, report.batches, report.seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Snapshot { out, services } => {
            let config = services.config()?;
            let manifest = runtime()?.block_on(pipeline::export_snapshot(&config, &out))?;
            println!(
                "wrote {} users from {}.users to {} (sha256 {})",
                manifest.rows,
                config.keyspace,
                out.display(),
                &manifest.sha256[..16]
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Pipeline { users, out, services } => {
            let config = services.config()?;
            let source = users.source()?;
            let runtime = runtime()?;
            let start = std::time::Instant::now();
            let bar = progress(cli.quiet, Some(users.users), "ingest");
            let ingested = runtime.block_on(pipeline::ingest(&config, &source, users.users, users.page_size, &bar))?;
            bar.finish_and_clear();
            let bar = progress(cli.quiet, None, "sink");
            let options = SinkOptions {
                until_caught_up: true,
                ..SinkOptions::default()
            };
            let sunk = runtime.block_on(pipeline::run_sink(&config, &options, &bar, pipeline::shutdown_signal()))?;
            bar.finish_and_clear();
            let manifest = runtime.block_on(pipeline::export_snapshot(&config, &out))?;
            let seconds = start.elapsed().as_secs_f64();
            println!("pipeline report");
            println!(
                "  produced        {:>9} users to {} ({:.1}s)",
                ingested.produced, config.topic, ingested.seconds
            );
            println!(
                "  dead-lettered   {:>9} at the source, {} at the sink",
                ingested.dead_lettered, sunk.dead_lettered
            );
            println!(
                "  written         {:>9} upserts to {}.users ({:.1}s)",
                sunk.written, config.keyspace, sunk.seconds
            );
            println!("  snapshot        {:>9} users in {}", manifest.rows, out.display());
            println!(
                "  total           {seconds:>9.1} s, {:.0} users/s",
                ingested.produced as f64 / seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor {
            watch,
            interval_secs,
            services,
        } => {
            let config = services.config()?;
            let runtime = runtime()?;
            loop {
                let status = runtime.block_on(pipeline::status(&config))?;
                println!("{status}");
                if !watch {
                    return Ok(ExitCode::SUCCESS);
                }
                std::thread::sleep(std::time::Duration::from_secs(interval_secs));
                println!();
            }
        }
        Command::Bench {
            what: BenchCommand::Ingest { users, services },
        } => {
            let config = services.config()?;
            let bar = progress(cli.quiet, None, "bench");
            let bench = runtime()?.block_on(pipeline::bench_ingest(&config, users, &bar))?;
            bar.finish_and_clear();
            println!("ingest bench, {users} users (users/s; medians need several runs):");
            println!(
                "  producer     {:>9.0}   generate, validate, produce, flush",
                bench.producer
            );
            println!(
                "  sink         {:>9.0}   drain the backlog into Cassandra, commit",
                bench.sink
            );
            println!(
                "  end to end   {:>9.0}   ingest then sink, as `pipeline` does",
                bench.end_to_end
            );
            println!(
                "  ceiling      {:>9.0}   concurrent upserts straight into Cassandra (concurrency {})",
                bench.ceiling, config.concurrency
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config, out, snapshot } => {
            let experiment = Experiment::load(&config, snapshot.as_deref()).map_err(bad_input)?;
            let out = out.unwrap_or_else(|| PathBuf::from("results").join(&experiment.config().name));
            let options = RunOptions {
                progress: !cli.quiet,
                checkpoints: Some(out.join("checkpoints")),
            };
            let results = experiment.run(&options)?;
            let summary = experiment.write_results(&out, &results).context("writing results")?;
            print!("{}", summary.table());
            println!("results in {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
