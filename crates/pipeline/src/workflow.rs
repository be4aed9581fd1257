//! The `pipeline` workflow: ingest a batch while the sink writes it, until the sink has caught
//! up with the ingest's end, then export the table to a snapshot, with one report of the whole.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use contract_rl_parquet::SnapshotManifest;

use crate::cassandra::export_snapshot;
use crate::ingest::{IngestReport, ingest};
use crate::kafka::create_topics;
use crate::sink::{SinkOptions, SinkReport, run_sink, shutdown_signal};
use crate::source::Source;
use crate::{PipelineConfig, PipelineError, Progress};

/// What a `pipeline` run did.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    pub ingested: IngestReport,
    pub sunk: SinkReport,
    /// The snapshot written, and where.
    pub snapshot: SnapshotManifest,
    pub snapshot_path: String,
    /// Wall-clock seconds of the whole.
    pub seconds: f64,
}

impl std::fmt::Display for PipelineReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (i, s) = (&self.ingested, &self.sunk);
        writeln!(f, "pipeline report")?;
        writeln!(
            f,
            "  produced        {:>9} users to {} ({:.1}s)",
            i.produced, i.topic, i.seconds
        )?;
        writeln!(
            f,
            "  dead-lettered   {:>9} at the source, {} at the sink",
            i.dead_lettered, s.dead_lettered
        )?;
        writeln!(
            f,
            "  written         {:>9} upserts to {}.users ({:.1}s)",
            s.written, s.keyspace, s.seconds
        )?;
        writeln!(
            f,
            "  snapshot        {:>9} users in {}",
            self.snapshot.rows, self.snapshot_path
        )?;
        write!(
            f,
            "  total           {:>9.1} s, {:.0} users/s",
            self.seconds,
            i.produced as f64 / self.seconds
        )
    }
}

/// Ingests `users` users from `source` in pages of `page_size` while sinking them, and writes
/// the table to a snapshot at `out` once the sink has caught up. SIGINT or SIGTERM stops it with
/// [`PipelineError::Interrupted`] and leaves any snapshot at `out` untouched.
pub async fn pipeline(
    config: &PipelineConfig,
    source: &Source,
    users: u64,
    page_size: u32,
    out: &Path,
    progress: (&Progress, &Progress),
) -> Result<PipelineReport, PipelineError> {
    let start = Instant::now();
    let (ingested, sunk) = ingest_and_sink(config, source, users, page_size, progress).await?;
    // An interrupted sink has not caught up: the previous snapshot stays as it was.
    if let Some(signal) = sunk.stopped_by {
        return Err(PipelineError::Interrupted { signal });
    }
    let snapshot = export_snapshot(config, out).await?;
    Ok(PipelineReport {
        ingested,
        sunk,
        snapshot,
        snapshot_path: out.display().to_string(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Ingests and sinks at once: the ingest produces on its own task while the sink writes, and
/// the sink stops once the ingest has ended and the group has caught up with it.
pub async fn ingest_and_sink(
    config: &PipelineConfig,
    source: &Source,
    users: u64,
    page_size: u32,
    progress: (&Progress, &Progress),
) -> Result<(IngestReport, SinkReport), PipelineError> {
    // Topics first, so the sink's subscription finds them from its start.
    create_topics(config).await?;
    let end = Arc::new(OnceLock::new());
    let producing = tokio::spawn({
        let (config, source, progress, end) = (config.clone(), source.clone(), progress.0.clone(), end.clone());
        async move {
            let ingested = ingest(&config, &source, users, page_size, &progress, shutdown_signal()).await;
            // A failed ingest has nothing more to wait for: the sink stops, the error is returned.
            end.get_or_init(|| ingested.as_ref().map(|i| i.ends.clone()).unwrap_or_default());
            ingested
        }
    });
    let options = SinkOptions {
        until_caught_up: true,
        ingest_end: Some(end),
        ..SinkOptions::default()
    };
    let sunk = run_sink(config, &options, progress.1, shutdown_signal()).await;
    if sunk.is_err() {
        producing.abort();
    }
    let ingested = match producing.await {
        Ok(ingested) => ingested,
        Err(aborted) if aborted.is_cancelled() => return Err(sunk.expect_err("aborted after a sink error")),
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    };
    Ok((ingested?, sunk?))
}
