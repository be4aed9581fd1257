//! Criterion medians of the workloads in `src/workloads.rs` (shared with `contract-rl bench rl`):
//! single-thread env steps of both envs on the sample snapshot, tabular Q-learning, DQN training
//! (one run, and ten on both cores) and a DQN gradient step with either learner, replay sampling,
//! the bid-price solve, a snapshot load, the statistics of a 6-agent × 10-seed comparison and a
//! Power BI export. Targets and figures:
//! BENCHMARKS.md.

#[path = "../src/workloads.rs"]
#[allow(dead_code)] // `bench rl`'s part of the shared file
mod workloads;

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn throughput(c: &mut Criterion) {
    let scratch = tempfile::tempdir().unwrap();
    let inputs = workloads::Inputs {
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        scratch: scratch.path().to_owned(),
    };
    for mut workload in workloads::workloads(&inputs) {
        let (group, function) = workload.name.split_once('/').expect("group/function");
        let mut group = c.benchmark_group(group);
        group.throughput(Throughput::Elements(workload.per_run));
        if workload.slow {
            group.sample_size(10);
        }
        group.bench_function(function, |b| b.iter(|| (workload.run)()));
        group.finish();
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
