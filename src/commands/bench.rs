//! `bench rl`: the workbench's headline speeds in a few seconds, without criterion.

use std::path::Path;
use std::process::ExitCode;

use crate::workloads::{Inputs, median_seconds, scratch, workloads};

/// Timed runs of each workload (the fast ones after an untimed run); the slow ones take 3.
const RUNS: usize = 5;
const SLOW_RUNS: usize = 3;

/// `bench rl`: the median of a few runs of each headline workload, on the checkout in `root`.
pub fn bench_rl(root: &Path) -> anyhow::Result<ExitCode> {
    let sample = root.join("data/snapshots/sample.parquet");
    anyhow::ensure!(
        sample.exists(),
        "{} is missing: run `bench rl` in the repository checkout, or pass it with --root",
        sample.display()
    );
    let inputs = Inputs {
        root: root.to_owned(),
        scratch: scratch("bench-rl"),
    };
    println!("{:<38} {:>14} {:>26}", "workload", "median per run", "rate");
    for mut workload in workloads(&inputs).into_iter().filter(|w| w.headline) {
        let runs = if workload.slow { SLOW_RUNS } else { RUNS };
        let seconds = median_seconds(&mut workload, runs);
        println!(
            "{:<38} {:>14} {:>26}",
            workload.name,
            duration(seconds),
            format!("{} {}/s", si(workload.per_run as f64 / seconds), workload.unit),
        );
    }
    std::fs::remove_dir_all(&inputs.scratch).ok();
    println!(
        "medians of {RUNS} runs ({SLOW_RUNS} for DQN and the export); criterion's: cargo bench --bench throughput"
    );
    Ok(ExitCode::SUCCESS)
}

fn duration(seconds: f64) -> String {
    match seconds {
        s if s >= 1.0 => format!("{s:.2} s"),
        s if s >= 1e-3 => format!("{:.1} ms", s * 1e3),
        s => format!("{:.1} µs", s * 1e6),
    }
}

/// 26.3 M, 18.0 k, 412.
fn si(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{:.1} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.1}"),
    }
}
