//! `run --shard I/N` and `merge`: sharded-then-merged equals unsharded, byte for byte.

use std::path::Path;

use crate::{contract_rl, support};

fn run(args: &[&str]) {
    let run = contract_rl(&[&["-q", "run"], args].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

#[test]
fn three_shards_merged_equal_the_unsharded_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // The lifetime experiment, shrunk: random, Q-learning and DQN (which saves checkpoints),
    // 2 seeds: 6 runs, 2 per shard.
    let experiment = support::lifetime_experiment_file("experiments/lifetime.toml", dir.path(), "x.toml", |t| {
        support::shrink(t, &[1, 2], 4, 2, 2);
    });
    let experiment = experiment.to_str().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    run(&[experiment, "--out", &path("whole")]);
    for i in 1..=3 {
        run(&[
            experiment,
            "--shard",
            &format!("{i}/3"),
            "--out",
            &path(&format!("shard{i}")),
        ]);
    }
    // Two shards are not the experiment, and nothing is written.
    let partial = contract_rl(&["merge", &path("shard1"), &path("shard3"), "--out", &path("merged")]);
    let stderr = String::from_utf8_lossy(&partial.stderr);
    assert_eq!(partial.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[1, 3] of 3"), "{stderr}");
    assert!(!dir.path().join("merged").exists());

    let merge = contract_rl(&[
        "-q",
        "merge",
        &path("shard3"),
        &path("shard1"),
        &path("shard2"),
        "--out",
        &path("merged"),
    ]);
    assert!(merge.status.success(), "{}", String::from_utf8_lossy(&merge.stderr));
    let read = |folder: &str, file: &str| std::fs::read(dir.path().join(folder).join(file)).unwrap();
    for file in [
        "episodes.parquet",
        "evals.parquet",
        "recommendations.parquet",
        "summary.parquet",
        "summary.md",
        "comparison.parquet",
        "comparison.md",
    ] {
        assert!(read("whole", file) == read("merged", file), "{file} differs");
    }
    // The shards' saved networks are copied as they are (burn gives each parameter a random
    // id, so a checkpoint of the same network differs from run to run in those bytes only;
    // the equal evaluations above are the networks' equality). DQN runs are places 5 and 6 of
    // 6: shards 2 and 3.
    for (shard, seed) in [("shard2", 1), ("shard3", 2)] {
        let file = format!("checkpoints/dqn-seed{seed}.bpk");
        assert!(read(shard, &file) == read("merged", &file), "{file} not copied as is");
    }
    assert!(Path::new(&path("merged")).join("report.html").is_file());

    // Shard numbers are checked by the command line.
    let bad = contract_rl(&["run", experiment, "--shard", "4/3"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1 <= I <= N"));
}
