//! Commands on the real services: `ingest`, `sink`, `snapshot`, `pipeline`, `monitor`, `bench
//! ingest`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use contract_rl_pipeline::{self as pipeline, Progress, SinkOptions};
use indicatif::ProgressBar;

use super::progress_bar;
use crate::cli::{ServiceArgs, UserArgs};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// A progress callback advancing `bar`.
fn advancing(bar: &ProgressBar) -> Progress {
    let bar = bar.clone();
    Arc::new(move |n| bar.inc(n))
}

/// `ingest`: the source into Kafka.
pub fn ingest(users: &UserArgs, services: &ServiceArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let config = services.config()?;
    let source = users.source()?;
    let bar = progress_bar(quiet, Some(users.users), "ingest");
    let report = runtime()?.block_on(pipeline::ingest(
        &config,
        &source,
        users.users,
        users.page_size,
        &advancing(&bar),
        pipeline::shutdown_signal(),
    ))?;
    bar.finish_and_clear();
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// `sink`: Kafka into Cassandra until stopped or caught up.
pub fn sink(until_caught_up: bool, batch_size: usize, services: &ServiceArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let config = services.config()?;
    let options = SinkOptions {
        until_caught_up,
        batch_size,
        ..SinkOptions::default()
    };
    let bar = progress_bar(quiet, None, "sink");
    let report = runtime()?.block_on(pipeline::run_sink(
        &config,
        &options,
        &advancing(&bar),
        pipeline::shutdown_signal(),
    ))?;
    bar.finish_and_clear();
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// `snapshot`: the Cassandra table into a Parquet snapshot.
pub fn snapshot(out: &Path, services: &ServiceArgs) -> anyhow::Result<ExitCode> {
    let config = services.config()?;
    let manifest = runtime()?.block_on(pipeline::export_snapshot(&config, out))?;
    println!(
        "wrote {} users from {}.users to {} (sha256 {})",
        manifest.rows,
        config.keyspace,
        out.display(),
        &manifest.sha256[..16]
    );
    Ok(ExitCode::SUCCESS)
}

/// `pipeline`: ingest, sink until caught up, snapshot.
pub fn pipeline(users: &UserArgs, out: &Path, services: &ServiceArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let config = services.config()?;
    let source = users.source()?;
    let (ingest_bar, sink_bar) = (
        progress_bar(quiet, Some(users.users), "ingest"),
        progress_bar(quiet, None, "sink"),
    );
    let report = runtime()?.block_on(pipeline::pipeline(
        &config,
        &source,
        users.users,
        users.page_size,
        out,
        (&advancing(&ingest_bar), &advancing(&sink_bar)),
    ))?;
    ingest_bar.finish_and_clear();
    sink_bar.finish_and_clear();
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// `monitor`: offsets, lag, dead letters and rows, once or every `interval_secs`.
pub fn monitor(watch: bool, interval_secs: u64, services: &ServiceArgs) -> anyhow::Result<ExitCode> {
    let config = services.config()?;
    let runtime = runtime()?;
    loop {
        println!("{}", runtime.block_on(pipeline::status(&config))?);
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(interval_secs));
        println!();
    }
}

/// `bench ingest`: the ingest path's rates beside a Cassandra ceiling.
pub fn bench_ingest(users: u64, services: &ServiceArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let config = services.config()?;
    let bar = progress_bar(quiet, None, "bench");
    let bench = runtime()?.block_on(pipeline::bench_ingest(&config, users, &advancing(&bar)))?;
    bar.finish_and_clear();
    println!("{bench}");
    Ok(ExitCode::SUCCESS)
}
