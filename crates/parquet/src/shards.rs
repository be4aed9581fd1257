//! Sharded experiments: `run --shard I/N` runs a deterministic part of an experiment's (agent,
//! seed) runs into a shard folder (`shard.cbor`: the runs as the runner returned them, with the
//! experiment and snapshot they belong to); `merge` assembles the N shards of one experiment into
//! the results folder an unsharded run writes, byte for byte but for the manifest's timings.
//!
//! The resolved config names the snapshot by path only, so the shards also record the SHA-256 of
//! its bytes: a snapshot rewritten in place between shard runs, or before the merge, is refused.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use contract_rl_core::agents::AgentFactory;
use contract_rl_core::experiment::{Results, Shard};
use contract_rl_core::report::Summary;
use serde::{Deserialize, Serialize};

use crate::results::{Build, LoadError, LoadedExperiment, ResultsError};

/// The shard file of a shard folder.
pub const SHARD_FILE: &str = "shard.cbor";

/// What a shard folder holds: which experiment (by file and resolved config), on which snapshot
/// bytes, and which part.
#[derive(Debug, Serialize, Deserialize)]
struct ShardFile {
    /// The experiment file as `run` was given it (relative to the working directory, like the
    /// paths the resolved config records), and the snapshot it was run on when not its own.
    config: PathBuf,
    snapshot: Option<PathBuf>,
    config_sha256: String,
    /// SHA-256 of the snapshot's Parquet bytes, as verified when the experiment was loaded.
    snapshot_sha256: String,
    shard: Shard,
    results: Results,
}

/// Why shards could not be written or merged.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A shard folder lacks its file, or holds one this version cannot read.
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    /// Two shards are of different experiments or shard counts.
    #[error("{first} and {other} differ in {what}: merge the shards of one `run --shard I/N` only")]
    Mismatch {
        first: PathBuf,
        other: PathBuf,
        what: &'static str,
    },
    /// Shards are missing or given twice.
    #[error("the shards given are {given:?} of {count} (numbered from 1): every shard exactly once is needed")]
    Incomplete { given: Vec<usize>, count: usize },
    /// The experiment changed since the shards were run.
    #[error("{config} changed since its shards were run (resolved config SHA-256 {now}, shards {then})")]
    Changed { config: PathBuf, now: String, then: String },
    /// The snapshot was rewritten since the shards were run (its path is unchanged).
    #[error(
        "{snapshot} changed since the shards were run (SHA-256 {now}, shards {then}): run the shards again on this snapshot"
    )]
    SnapshotChanged {
        snapshot: PathBuf,
        now: String,
        then: String,
    },
    /// The experiment the shards name cannot be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The shard or the merged results could not be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
}

impl ShardError {
    /// Whether the error is the user's input (folders, a changed experiment or snapshot), not a
    /// failure while writing.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Results(_))
    }
}

fn unreadable(path: &Path, message: impl ToString) -> ShardError {
    ShardError::Unreadable {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Writes the runs of `shard` of the experiment loaded from `config` (on `snapshot` when given)
/// into the shard folder `out`.
pub fn write_shard(
    out: &Path,
    loaded: &LoadedExperiment,
    config: &Path,
    snapshot: Option<&Path>,
    shard: Shard,
    results: Results,
) -> Result<(), ShardError> {
    let file = ShardFile {
        config: config.to_owned(),
        snapshot: snapshot.map(Path::to_owned),
        config_sha256: loaded.config_sha256(),
        snapshot_sha256: loaded.snapshot.sha256.clone(),
        shard,
        results,
    };
    let path = out.join(SHARD_FILE);
    let io = |source| ResultsError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(out).map_err(io)?;
    let writer = File::create(&path).map_err(io)?;
    ciborium::into_writer(&file, std::io::BufWriter::new(writer))
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    Ok(())
}

/// Reads the shard folders `dirs` (every shard of one experiment, once, all run on the same
/// snapshot bytes), loads their experiment (its file as `run` was given it, from the working
/// directory), checks that neither its resolved config nor its snapshot's bytes changed since,
/// and only then writes the results folder `out` as the unsharded run would.
pub fn merge(dirs: &[PathBuf], out: &Path, factory: &dyn AgentFactory, build: Build) -> Result<Summary, ShardError> {
    let mut shards: Vec<(&PathBuf, ShardFile)> = Vec::new();
    for dir in dirs {
        let path = dir.join(SHARD_FILE);
        let reader =
            File::open(&path).map_err(|e| unreadable(&path, format!("{e}: is this a folder of `run --shard`?")))?;
        let file: ShardFile =
            ciborium::from_reader(std::io::BufReader::new(reader)).map_err(|e| unreadable(&path, e))?;
        if let Some((first, expected)) = shards.first() {
            for (what, same) in [
                ("experiment", expected.config_sha256 == file.config_sha256),
                ("snapshot contents", expected.snapshot_sha256 == file.snapshot_sha256),
                ("shard count", expected.shard.count == file.shard.count),
            ] {
                if !same {
                    return Err(ShardError::Mismatch {
                        first: (*first).clone(),
                        other: dir.clone(),
                        what,
                    });
                }
            }
        }
        shards.push((dir, file));
    }
    let Some((_, first)) = shards.first() else {
        return Err(ShardError::Incomplete {
            given: Vec::new(),
            count: 0,
        });
    };
    let count = first.shard.count;
    let mut given: Vec<usize> = shards.iter().map(|(_, f)| f.shard.index + 1).collect();
    given.sort_unstable();
    if given != (1..=count).collect::<Vec<_>>() {
        return Err(ShardError::Incomplete { given, count });
    }
    let loaded = LoadedExperiment::load(&first.config, first.snapshot.as_deref(), factory)?;
    let now = loaded.config_sha256();
    if now != first.config_sha256 {
        return Err(ShardError::Changed {
            config: first.config.clone(),
            now,
            then: first.config_sha256.clone(),
        });
    }
    if loaded.snapshot.sha256 != first.snapshot_sha256 {
        return Err(ShardError::SnapshotChanged {
            snapshot: loaded.experiment.config().snapshot.clone(),
            now: loaded.snapshot.sha256.clone(),
            then: first.snapshot_sha256.clone(),
        });
    }
    copy_checkpoints(shards.iter().map(|(dir, _)| dir.as_path()), out)?;
    // Every run back in its place: shard `index` holds places index, index + count, ...
    let mut parts: Vec<_> = shards.into_iter().map(|(_, f)| f).collect();
    parts.sort_by_key(|f| f.shard.index);
    let started_at: DateTime<Utc> = parts.iter().map(|f| f.results.started_at).min().expect("a shard");
    let finished_at: DateTime<Utc> = parts.iter().map(|f| f.results.finished_at).max().expect("a shard");
    let mut queues: Vec<_> = parts.into_iter().map(|f| f.results.runs.into_iter()).collect();
    let runs = (0..).map_while(|place| queues[place % count].next()).collect();
    let results = Results {
        runs,
        started_at,
        finished_at,
    };
    Ok(loaded.write_results(out, &results, build)?)
}

/// Copies the shards' saved agents (`checkpoints/`) into the results folder `out`.
fn copy_checkpoints<'a>(shards: impl Iterator<Item = &'a Path>, out: &Path) -> Result<(), ShardError> {
    for dir in shards {
        let Ok(entries) = std::fs::read_dir(dir.join("checkpoints")) else {
            continue;
        };
        let target = out.join("checkpoints");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ShardError::Results(ResultsError::Io { path, source })
        };
        std::fs::create_dir_all(&target).map_err(io(&target))?;
        for entry in entries {
            let from = entry.map_err(io(dir))?.path();
            let to = target.join(from.file_name().expect("a file in the folder"));
            std::fs::copy(&from, &to).map_err(io(&to))?;
        }
    }
    Ok(())
}
