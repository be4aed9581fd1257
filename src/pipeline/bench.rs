//! `contract-rl bench ingest`: producer, sink and end-to-end rates on fresh topics and
//! keyspaces, beside a ceiling: the rate of concurrent upserts straight into the same kind of
//! table through the same driver, with no Kafka in the way.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};
use indicatif::ProgressBar;

use super::cassandra::Store;
use super::ingest::ingest;
use super::sink::{SinkOptions, run_sink};
use super::{PipelineConfig, PipelineError};
use crate::source::{Generator, Source, generate_records};

/// Rates measured by one bench run, in users per second.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestBench {
    /// Users per run.
    pub users: u64,
    /// Ingest alone: generate, validate, produce, flush.
    pub producer: f64,
    /// Sink alone, draining the produced backlog into Cassandra.
    pub sink: f64,
    /// The `pipeline` command's path: ingest, then sink until caught up.
    pub end_to_end: f64,
    /// Concurrent upserts straight into Cassandra, no Kafka.
    pub ceiling: f64,
}

/// Runs the bench with `users` users on topics, group and keyspaces named after `config`'s
/// with a `_bench_<time>` suffix, so that nothing else is touched.
pub async fn bench_ingest(
    config: &PipelineConfig,
    users: u64,
    bar: &ProgressBar,
) -> Result<IngestBench, PipelineError> {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let run = PipelineConfig {
        topic: format!("{}_bench_{stamp}", config.topic),
        group: format!("{}_bench_{stamp}", config.group),
        keyspace: format!("{}_bench_{stamp}", config.keyspace),
        ..config.clone()
    };
    let generator = Generator::new("bench", &[]).expect("no nat filter");
    let produced = ingest(&run, &Source::Generator(generator.clone()), users, 5000, bar).await?;
    let options = SinkOptions {
        until_caught_up: true,
        ..SinkOptions::default()
    };
    let sunk = run_sink(&run, &options, bar, std::future::pending()).await?;

    let ceiling_config = PipelineConfig {
        keyspace: format!("{}_ceiling_{stamp}", config.keyspace),
        ..config.clone()
    };
    let store = Store::connect(&ceiling_config).await?;
    let (records, _) = generate_records(&generator, users as usize);
    let start = Instant::now();
    stream::iter(&records)
        .map(|r| store.upsert(r))
        .buffer_unordered(config.concurrency)
        .try_collect::<()>()
        .await?;
    let ceiling_seconds = start.elapsed().as_secs_f64();
    let n = users as f64;
    Ok(IngestBench {
        users,
        producer: n / produced.seconds,
        sink: n / sunk.seconds,
        end_to_end: n / (produced.seconds + sunk.seconds),
        ceiling: n / ceiling_seconds,
    })
}
