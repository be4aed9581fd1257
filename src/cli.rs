//! The command line: every command, its arguments and their help texts.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use contract_rl_core::env::lifetime::BidPrice;
use contract_rl_core::experiment::Shard;
use contract_rl_core::source::Generator;
use contract_rl_pipeline::{
    ApiClient, DEFAULT_MAX_RETRY_AFTER, HttpError, PipelineConfig, PipelineError, SaslMechanism, SinkOptions, Source,
};

/// A reinforcement-learning workbench: user records → Parquet snapshots → a contract-choice
/// env → tabular and deep agents beside baselines and oracles.
#[derive(Debug, Parser)]
#[command(name = "contract-rl", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print only results and errors (no progress bars).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Play the customer-lifetime env's references (the myopic oracle, the Bayes-correct bid-price
    /// policy and its previous version and zero-price ablation, two one-line rules) and its bounds
    /// (for the policies that do not see the latents, and for all) on replays of the test
    /// campaigns of a snapshot, and compare them.
    References {
        /// The env file, e.g. envs/customer-lifetime.toml.
        env: PathBuf,
        /// The snapshot to replay.
        #[arg(long, default_value = "data/snapshots/sample.parquet")]
        snapshot: PathBuf,
        /// Test campaigns (cohorts) to play, from the first.
        #[arg(long, default_value_t = 10, value_parser = at_least_one)]
        campaigns: usize,
        /// Replays of each campaign (other latents, answers and churn; the same for every
        /// reference).
        #[arg(long, default_value_t = 5, value_parser = at_least_one)]
        replays: usize,
        /// Months between two solves of the bid prices.
        #[arg(long, default_value_t = BidPrice::RESOLVE_MONTHS, value_parser = at_least_one)]
        resolve_months: usize,
        /// Seed of the first replay.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Read users from the generator (default) or a randomuser-compatible API and produce them to
    /// Kafka; rejected documents go to the dead-letter topic with the reason. Creates the topic
    /// and its dead-letter topic if missing.
    Ingest {
        #[command(flatten)]
        users: UserArgs,
        #[command(flatten)]
        services: ServiceArgs,
    },
    /// Consume the topic into Cassandra (upserts by user_id, offsets committed after the
    /// writes); runs until SIGINT/SIGTERM, or with --until-caught-up until there is no lag.
    /// Creates the topics, the keyspace and the users table if missing.
    Sink {
        /// Exit once every partition is committed up to its end.
        #[arg(long)]
        until_caught_up: bool,
        /// Most messages per batch (one offset commit per batch), at least 1.
        #[arg(long, default_value_t = SinkOptions::default().batch_size, value_parser = at_least_one)]
        batch_size: usize,
        #[command(flatten)]
        services: ServiceArgs,
    },
    /// Export the Cassandra table to a Parquet snapshot (same schema as `generate`), ordered by
    /// (kafka_partition, kafka_offset). Read-only: a missing keyspace or table is an error
    /// (exit 2) and nothing is created.
    Snapshot {
        /// Output Parquet file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        services: ServiceArgs,
    },
    /// Ingest, sink until caught up, then snapshot, with a final report. Creates the topics,
    /// the keyspace and the table if missing.
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
    /// Read-only: a missing topic, keyspace or table is an error (exit 2); nothing is created.
    Monitor {
        /// Refresh every --interval-secs until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between readings with --watch, at least 1.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
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
        /// Run only shard I of N (from 1) of the (agent, seed) runs into a shard folder (default
        /// results/<name>/shard-I-of-N/); `merge` assembles the N shards.
        #[arg(long, value_parser = parse_shard, value_name = "I/N")]
        shard: Option<Shard>,
    },
    /// Assemble the shard folders of one `run --shard I/N` (every shard once) into the results
    /// folder the unsharded run writes.
    Merge {
        /// Shard folders written by `run --shard`.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Results folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare the agents of one or more results folders (same env, snapshot and evaluation
    /// campaigns): IQM, median and mean with 95% bootstrap intervals, the probability of
    /// improvement between every pair and performance profiles, into comparison.md and
    /// comparison.parquet.
    Compare {
        /// Results folders written by `run`.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The campaigns whose final scores are compared: `test` (with plots and report.html),
        /// or `validation`, each run's last validation evaluation, for tuning (tables only).
        #[arg(long, value_enum, default_value_t = Campaigns::Test)]
        split: Campaigns,
        /// Output folder.
        #[arg(long, default_value = "results/comparison")]
        out: PathBuf,
    },
    /// Export results folders for other tools.
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Results folders and the snapshot they replayed as a star schema of Parquet files for
    /// Power BI Desktop (dim_*.parquet, fact_*.parquet; no personal data). See powerbi/README.md.
    #[command(name = "powerbi")]
    PowerBi {
        /// Results folders written by `run`, all on the same snapshot and user splits.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The snapshot the experiments replayed (checked against their manifests).
        #[arg(long)]
        snapshot: PathBuf,
        /// Edges between the segments' age bands, in years.
        #[arg(long, value_delimiter = ',', default_value = "33,45,60")]
        age_edges: Vec<f64>,
        /// Edges between the segments' seniority bands, in years.
        #[arg(long, value_delimiter = ',', default_value = "8,14,19")]
        seniority_edges: Vec<f64>,
        /// Output folder.
        #[arg(long, default_value = "results/powerbi")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The RL side's headline speeds (env steps, learners, replay, snapshot load, statistics,
    /// export) in a few seconds: medians of a few runs, single thread but for the snapshot load,
    /// the export and DQN's ten runs at once. Criterion's full suite:
    /// `cargo bench --bench throughput`.
    Rl {
        /// The repository checkout whose envs, experiments and sample snapshot to use.
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
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
pub struct UserArgs {
    /// How many users.
    #[arg(long, default_value_t = 10_000)]
    pub users: u64,
    /// The API's `seed`: the same seed gives the same users.
    #[arg(long, default_value = "contract-rl")]
    seed: String,
    /// Restrict to these nationalities (comma-separated); all 21 when absent.
    #[arg(long, value_delimiter = ',')]
    nat: Vec<String>,
    /// Fetch from this randomuser-compatible API (e.g. https://randomuser.me/api/1.4/)
    /// instead of the embedded generator. HTTPS uses Mozilla's root certificates.
    #[arg(long)]
    api_url: Option<String>,
    /// Trust the certificates in this PEM file (a private CA or a self-signed server) instead
    /// of Mozilla's roots for --api-url.
    #[arg(long, requires = "api_url")]
    api_ca_cert: Option<PathBuf>,
    /// Users per request (the API serves at most 5000).
    #[arg(long, default_value_t = 5000)]
    pub page_size: u32,
    /// Seconds before an API request times out (it is then retried with backoff).
    #[arg(long, default_value_t = 30)]
    api_timeout_secs: u64,
    /// Tries per API page before giving up.
    #[arg(long, default_value_t = 6)]
    api_attempts: u32,
    /// Longest wait, in seconds, when the API answers `Retry-After`.
    #[arg(long, default_value_t = DEFAULT_MAX_RETRY_AFTER.as_secs())]
    api_max_retry_after_secs: u64,
}

impl UserArgs {
    /// The source these arguments name.
    pub fn source(&self) -> anyhow::Result<Source> {
        Ok(match &self.api_url {
            None => Source::Generator(Generator::new(&self.seed, &self.nat)?),
            Some(url) => {
                let mut client = ApiClient::new(
                    url,
                    Duration::from_secs(self.api_timeout_secs),
                    self.api_attempts,
                    Duration::from_millis(500),
                )
                .with_max_retry_after(Duration::from_secs(self.api_max_retry_after_secs));
                if let Some(path) = &self.api_ca_cert {
                    let pem =
                        std::fs::read(path).map_err(|e| HttpError::Certificate(format!("{}: {e}", path.display())))?;
                    client = client.trusting(&pem).with_context(|| path.display().to_string())?;
                }
                Source::Api {
                    client,
                    seed: self.seed.clone(),
                    nats: self.nat.clone(),
                }
            }
        })
    }
}

/// Where Kafka and Cassandra are; the defaults match `scripts/services up`.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
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
    /// CASSANDRA_USERNAME and CASSANDRA_PASSWORD (never from arguments, which others can read).
    #[arg(long, env = "CASSANDRA_NODES", value_delimiter = ',', default_values_t = PipelineConfig::default().cassandra_nodes)]
    cassandra: Vec<String>,
    /// Keyspace of the users table.
    #[arg(long, default_value_t = PipelineConfig::default().keyspace)]
    keyspace: String,
    /// Replication factor of the topics and the keyspace when they are created (3 on the
    /// cluster of `scripts/services up --nodes 3`); topics get min.insync.replicas of a majority.
    #[arg(long, default_value_t = PipelineConfig::default().replication_factor)]
    replication_factor: u32,
    /// SASL mechanism of the Kafka login in KAFKA_USERNAME and KAFKA_PASSWORD, when they are set.
    #[arg(long, env = "KAFKA_SASL_MECHANISM", default_value_t = SaslMechanism::default())]
    kafka_sasl_mechanism: SaslMechanism,
    /// Cassandra writes in flight at once.
    #[arg(long, default_value_t = PipelineConfig::default().concurrency)]
    concurrency: usize,
}

impl ServiceArgs {
    /// The pipeline config these arguments name, validated.
    pub fn config(&self) -> Result<PipelineConfig, PipelineError> {
        let config = PipelineConfig {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            partitions: self.partitions,
            group: self.group.clone(),
            cassandra_nodes: self.cassandra.clone(),
            keyspace: self.keyspace.clone(),
            replication_factor: self.replication_factor,
            kafka_sasl_mechanism: self.kafka_sasl_mechanism,
            concurrency: self.concurrency,
            ..PipelineConfig::default()
        }
        .with_logins_from_env()?;
        config.validate()?;
        Ok(config)
    }
}

/// A count of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("must be a whole number of at least 1, got {text:?}")),
    }
}

/// "2/3" → shard index 1 of 3.
fn parse_shard(text: &str) -> Result<Shard, String> {
    let (i, n) = text.split_once('/').ok_or("expected I/N, e.g. 2/3")?;
    let (i, n): (usize, usize) = (
        i.parse().map_err(|_| format!("I in I/N: {i:?} is not a number"))?,
        n.parse().map_err(|_| format!("N in I/N: {n:?} is not a number"))?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(format!("expected 1 <= I <= N, got {i}/{n}"));
    }
    Ok(Shard { index: i - 1, count: n })
}

/// The evaluation campaigns `compare` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Campaigns {
    Test,
    Validation,
}

impl From<Campaigns> for contract_rl_core::env::Split {
    fn from(c: Campaigns) -> Self {
        match c {
            Campaigns::Test => Self::Test,
            Campaigns::Validation => Self::Validation,
        }
    }
}
