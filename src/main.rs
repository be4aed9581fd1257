//! The `contract-rl` binary: parses the command line, calls the library, and maps errors to
//! exit codes by type in one place ([`exit_code`]): 0 success, 1 failure at run time, 2 bad
//! input (a config, snapshot, checkpoint, argument, or a missing keyspace, table or topic),
//! 3 checks that did not pass.

mod cli;
mod commands;
mod workloads;

use std::process::ExitCode;

use clap::Parser;
use contract_rl_core::config::ConfigError;
use contract_rl_core::env::EnvError;
use contract_rl_core::source::GeneratorError;
use contract_rl_parquet::{CompareError, ExportError, LoadError, ShardError, SnapshotError};
use contract_rl_pipeline::{HttpError, PipelineError};

use cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", message(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// The error and its causes, each cause once: library errors already name their source in
/// their own message, context added at the edge does not.
fn message(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// 2 when the user's input is wrong (nothing was done), 128 + the signal when interrupted (130
/// for SIGINT, 143 for SIGTERM), 1 for failures while working.
fn exit_code(error: &anyhow::Error) -> u8 {
    let interrupted = error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<PipelineError>() {
            Some(PipelineError::Interrupted { signal }) => Some(*signal),
            _ => None,
        });
    if let Some(signal) = interrupted {
        return 128 + signal as u8;
    }
    let bad_input = error.chain().any(|cause| {
        cause.is::<ConfigError>()
            || cause.is::<CompareError>()
            || cause
                .downcast_ref::<ExportError>()
                .is_some_and(ExportError::is_bad_input)
            || cause.downcast_ref::<ShardError>().is_some_and(ShardError::is_bad_input)
            || cause.is::<EnvError>()
            || cause.is::<GeneratorError>()
            || cause
                .downcast_ref::<SnapshotError>()
                .is_some_and(SnapshotError::is_bad_input)
            || cause.downcast_ref::<LoadError>().is_some_and(|e| match e {
                LoadError::Experiment(e) => e.is_bad_input(),
                LoadError::Snapshot(_) => true,
            })
            || cause
                .downcast_ref::<PipelineError>()
                .is_some_and(PipelineError::is_bad_input)
            || cause
                .downcast_ref::<HttpError>()
                .is_some_and(|e| matches!(e, HttpError::Certificate(_)))
    });
    if bad_input { 2 } else { 1 }
}
