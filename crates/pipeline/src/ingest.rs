//! Ingest: pages from a source → validated records → Kafka `users_created`, keyed by
//! `user_id`; rejected documents → `users_created.dlq` with the reason. The producer is
//! flushed before returning, and any undelivered message is an error.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::kafka::{create_topics, kafka_error, producer};
use crate::{PipelineConfig, PipelineError, Progress};
use contract_rl_core::source::MAX_RESULTS_PER_PAGE;
use uuid::Uuid;

use crate::source::Source;

/// What an ingest did.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    /// The topic records went to (dead letters to `<topic>.dlq`).
    pub topic: String,
    /// Valid records sent to the topic.
    pub produced: u64,
    /// Rejected documents sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Whether the source ran out of users before `users` were read.
    pub source_exhausted: bool,
    /// Pages that held fewer users than asked (the source may have skipped users).
    pub short_pages: u64,
    /// Wall-clock seconds, flush included.
    pub seconds: f64,
    /// Per partition of the topic, the offset after the last record delivered (where a sink
    /// has caught up with this ingest).
    pub ends: BTreeMap<i32, i64>,
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "produced {} users to {} and {} rejected documents to {}.dlq in {:.1}s ({:.0} users/s)",
            self.produced,
            self.topic,
            self.dead_lettered,
            self.topic,
            self.seconds,
            (self.produced + self.dead_lettered) as f64 / self.seconds
        )?;
        if self.source_exhausted {
            write!(f, "; the source ran out of users")?;
        }
        if self.short_pages > 0 {
            write!(
                f,
                "; {} pages held fewer users than asked (the source may skip users)",
                self.short_pages
            )?;
        }
        Ok(())
    }
}

/// Reads `users` documents from `source` in pages of `page_size` and produces them. When `stop`
/// resolves with a signal number (e.g. [`crate::shutdown_signal`]) it stops after the page in
/// hand, delivers what it queued, and fails with [`PipelineError::Interrupted`].
pub async fn ingest(
    config: &PipelineConfig,
    source: &Source,
    users: u64,
    page_size: u32,
    progress: &Progress,
    stop: impl Future<Output = i32> + Send + 'static,
) -> Result<IngestReport, PipelineError> {
    config.validate()?;
    let page_size = page_size.clamp(1, MAX_RESULTS_PER_PAGE);
    let start = Instant::now();
    create_topics(config).await?;
    let source = source.clone();
    let config = config.clone();
    // librdkafka and the HTTP client block: run the loop off the async runtime, and let a task
    // watch for the stop.
    let progress = progress.clone();
    let stopped = Arc::new(AtomicI32::new(0));
    let watcher = {
        let stopped = Arc::clone(&stopped);
        tokio::spawn(async move { stopped.store(stop.await, Ordering::SeqCst) })
    };
    let report = tokio::task::spawn_blocking(move || {
        let mut producer = producer(&config)?;
        let (mut produced, mut dead_lettered, mut read) = (0u64, 0u64, 0u64);
        let (mut source_exhausted, mut short_pages) = (false, 0);
        // Every user id produced so far (16 bytes each): a source that ignores `page` serves
        // the same users again, which must not become duplicates.
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut page = 1;
        while read < users {
            if stopped.load(Ordering::SeqCst) != 0 {
                break;
            }
            let documents = source.page(page_size, page)?;
            if documents.is_empty() {
                tracing::warn!(page, read, "the source has no more users");
                source_exhausted = true;
                break;
            }
            if let Some(again) = documents
                .iter()
                .filter_map(|d| d.as_ref().ok())
                .find(|r| seen.contains(&r.user_id))
            {
                producer.flush(Duration::from_secs(120))?;
                return Err(PipelineError::RepeatedUsers {
                    page,
                    user_id: again.user_id,
                });
            }
            if documents.len() < page_size as usize {
                tracing::warn!(
                    page,
                    got = documents.len(),
                    asked = page_size,
                    "a short page: the source may skip users"
                );
                short_pages += 1;
            }
            seen.extend(documents.iter().filter_map(|d| d.as_ref().ok()).map(|r| r.user_id));
            let taken = documents.len().min((users - read) as usize);
            for document in documents.into_iter().take(taken) {
                match document {
                    Ok(record) => {
                        producer
                            .send(&record)
                            .map_err(kafka_error(&config, "queueing a record"))?;
                        produced += 1;
                    }
                    Err(rejected) => {
                        let key = rejected.document["login"]["uuid"].as_str().unwrap_or_default();
                        let payload = serde_json::to_vec(&rejected.document).expect("documents serialise");
                        producer
                            .send_dead_letter(key.as_bytes(), &payload, &rejected.reason.to_string(), "ingest")
                            .map_err(kafka_error(&config, "queueing a dead letter"))?;
                        dead_lettered += 1;
                    }
                }
            }
            read += taken as u64;
            progress(taken as u64);
            page += 1;
        }
        producer.flush(Duration::from_secs(120))?;
        match stopped.load(Ordering::SeqCst) {
            0 => {}
            signal => return Err(PipelineError::Interrupted { signal }),
        }
        Ok(IngestReport {
            topic: config.topic.clone(),
            produced,
            dead_lettered,
            source_exhausted,
            short_pages,
            seconds: start.elapsed().as_secs_f64(),
            ends: producer.ends(),
        })
    })
    .await
    .expect("the ingest task does not panic");
    watcher.abort();
    report
}
