//! `run --shard I/N` and `merge`: sharded-then-merged equals unsharded, byte for byte; shards
//! run on a snapshot since rewritten in place, or on two versions of it, are refused.

use std::path::Path;

use contract_rl_parquet::snapshot::{manifest_path, read_manifest};

use crate::{contract_rl, support};

fn run(args: &[&str]) {
    let run = contract_rl(&[&["-q", "run"], args].concat());
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

#[test]
fn three_shards_merged_equal_the_unsharded_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // The lifetime experiment, shrunk: random, Q-learning, DQN, lagrangian_q and lagrangian_dqn
    // (the DQNs save checkpoints, lagrangian_dqn's with its prices beside), 2 seeds: 10 runs.
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
    // The shards' saved networks (and lagrangian_dqn's prices) are copied as they are, and
    // equal the unsharded run's (a checkpoint's bytes are its weights'). The DQN runs are
    // places 4 and 5 of 0..10 (shards 2 and 3), lagrangian_dqn's 8 and 9 (shards 3 and 1).
    for (shard, file) in [
        ("shard2", "dqn-seed1.bpk"),
        ("shard3", "dqn-seed2.bpk"),
        ("shard3", "lagrangian_dqn-seed1.bpk"),
        ("shard3", "lagrangian_dqn-seed1.prices.json"),
        ("shard1", "lagrangian_dqn-seed2.bpk"),
        ("shard1", "lagrangian_dqn-seed2.prices.json"),
    ] {
        let file = format!("checkpoints/{file}");
        assert!(read(shard, &file) == read("merged", &file), "{file} not copied as is");
        assert!(read("whole", &file) == read("merged", &file), "{file} differs");
    }
    assert!(Path::new(&path("merged")).join("report.html").is_file());

    // Shard numbers are checked by the command line.
    let bad = contract_rl(&["run", experiment, "--shard", "4/3"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1 <= I <= N"));
}

#[test]
fn merge_refuses_shards_whose_snapshot_was_rewritten_in_place_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    // A copy of the sample, later rewritten in place with other valid users: the resolved
    // config names the snapshot by path, so it is the same before and after.
    let snapshot = dir.path().join("users.parquet");
    let sample = support::sample_snapshot();
    std::fs::copy(&sample, &snapshot).unwrap();
    std::fs::copy(manifest_path(&sample), manifest_path(&snapshot)).unwrap();
    let experiment = support::experiment_file(dir.path(), |t| {
        t.insert("snapshot".into(), snapshot.display().to_string().into());
        t.insert("agents".into(), support::one_agent("random", &[]));
        support::shrink(t, &[1, 2], 4, 2, 2);
    });
    let experiment = experiment.to_str().unwrap();
    let sha256 = || read_manifest(&snapshot).unwrap().sha256;
    let before = sha256();
    for i in 1..=2 {
        run(&[
            experiment,
            "--shard",
            &format!("{i}/2"),
            "--out",
            &path(&format!("before{i}")),
        ]);
    }
    // Other users, as many as the sample: the shards' user indices still fit, so only the
    // snapshot's hash tells the two apart.
    let generate = contract_rl(&["generate", "--seed", "other", "--out", snapshot.to_str().unwrap()]);
    assert!(
        generate.status.success(),
        "{}",
        String::from_utf8_lossy(&generate.stderr)
    );
    let after = sha256();
    assert_ne!(before, after);
    run(&[experiment, "--shard", "2/2", "--out", &path("after2")]);

    // Shards that agree with each other but not with the snapshot now at their path, and shards
    // run on either side of the rewrite.
    let changed = format!(
        "{} changed since the shards were run (SHA-256 {after}, shards {before})",
        snapshot.display()
    );
    for (shards, says) in [
        (["before1", "before2"], changed.as_str()),
        (["before1", "after2"], "differ in snapshot contents"),
    ] {
        let merge = contract_rl(&["merge", &path(shards[0]), &path(shards[1]), "--out", &path("merged")]);
        let stderr = String::from_utf8_lossy(&merge.stderr);
        assert_eq!(merge.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!dir.path().join("merged").exists());
    }
}
