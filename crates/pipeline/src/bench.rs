//! `contract-rl bench ingest`: producer, sink and end-to-end rates on fresh topics and
//! keyspaces, beside a ceiling: the rate of concurrent upserts straight into the same kind of
//! table through the same driver, with no Kafka in the way.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};

use crate::cassandra::{Schema, Store};
use crate::ingest::ingest;
use crate::sink::{SinkOptions, run_sink};
use crate::workflow::ingest_and_sink;
use crate::{PipelineConfig, PipelineError, Progress};
use contract_rl_core::source::{Generator, generate_records};

use crate::source::Source;

/// Rates measured by one bench run, in users per second.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestBench {
    /// Users per run.
    pub users: u64,
    /// Ingest alone: generate, validate, produce, flush.
    pub producer: f64,
    /// Sink alone, draining the produced backlog into Cassandra.
    pub sink: f64,
    /// The `pipeline` command's path on fresh topics: ingest and sink at once, until caught up.
    pub end_to_end: f64,
    /// Concurrent upserts straight into Cassandra, no Kafka.
    pub ceiling: f64,
    /// Cassandra writes in flight in the sink and the ceiling.
    pub concurrency: usize,
}

impl std::fmt::Display for IngestBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ingest bench, {} users (users/s; medians need several runs):",
            self.users
        )?;
        writeln!(
            f,
            "  producer     {:>9.0}   generate, validate, produce, flush",
            self.producer
        )?;
        writeln!(
            f,
            "  sink         {:>9.0}   drain the backlog into Cassandra, commit",
            self.sink
        )?;
        writeln!(
            f,
            "  end to end   {:>9.0}   ingest and sink at once, as `pipeline` does: {:.0}% of the ceiling",
            self.end_to_end,
            100.0 * self.end_to_end / self.ceiling
        )?;
        write!(
            f,
            "  ceiling      {:>9.0}   concurrent upserts straight into Cassandra (concurrency {})",
            self.ceiling, self.concurrency
        )
    }
}

/// Runs the bench with `users` users on topics, group and keyspaces named after `config`'s
/// with `_bench_<time>` suffixes, so that nothing else is touched.
pub async fn bench_ingest(
    config: &PipelineConfig,
    users: u64,
    progress: &Progress,
) -> Result<IngestBench, PipelineError> {
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let fresh = |part: &str| PipelineConfig {
        topic: format!("{}_bench_{part}_{stamp}", config.topic),
        group: format!("{}_bench_{part}_{stamp}", config.group),
        keyspace: format!("{}_bench_{part}_{stamp}", config.keyspace),
        ..config.clone()
    };
    let generator = Generator::new("bench", &[]).expect("no nat filter");
    let source = Source::Generator(generator.clone());
    let apart = fresh("apart");
    let produced = ingest(&apart, &source, users, 5000, progress, std::future::pending()).await?;
    let options = SinkOptions {
        until_caught_up: true,
        ..SinkOptions::default()
    };
    let sunk = run_sink(&apart, &options, progress, std::future::pending()).await?;
    let start = Instant::now();
    ingest_and_sink(&fresh("streamed"), &source, users, 5000, (progress, progress)).await?;
    let streamed_seconds = start.elapsed().as_secs_f64();

    let ceiling_config = PipelineConfig {
        keyspace: format!("{}_ceiling_{stamp}", config.keyspace),
        ..config.clone()
    };
    let store = Store::connect(&ceiling_config, Schema::Create).await?;
    let (records, _) = generate_records(&generator, users as usize);
    let start = Instant::now();
    let timestamp = chrono::Utc::now().timestamp_micros();
    stream::iter(&records)
        .map(|r| store.upsert(r, timestamp))
        .buffer_unordered(config.concurrency)
        .try_collect::<()>()
        .await?;
    let ceiling_seconds = start.elapsed().as_secs_f64();
    let n = users as f64;
    Ok(IngestBench {
        users,
        producer: n / produced.seconds,
        sink: n / sunk.seconds,
        end_to_end: n / streamed_seconds,
        ceiling: n / ceiling_seconds,
        concurrency: config.concurrency,
    })
}
