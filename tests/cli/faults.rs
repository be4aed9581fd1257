//! The ingest path under faults, against real servers: a Cassandra node killed mid-sink, poison
//! messages, a stale sink. Ground truth is what the topic holds, read back from Kafka, and what
//! the table holds, read back from Cassandra.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use contract_rl_pipeline::{PipelineConfig, Schema, Store};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::services::{assert_table_holds, generated, ingest, rows, spawn_sink};
use crate::{isolated_pipeline, support};

/// A Cassandra node of its own on another loopback address, started by `scripts/services`, for
/// tests that kill it. Stopped (and its state deleted) on drop.
struct PrivateCassandra {
    host: &'static str,
    state: tempfile::TempDir,
}

impl PrivateCassandra {
    fn up(host: &'static str) -> Self {
        let node = Self {
            host,
            state: tempfile::tempdir().unwrap(),
        };
        node.services("up");
        node
    }

    fn services(&self, command: &str) {
        let status = Command::new(support::repo("scripts/services"))
            .args([command, "cassandra"])
            .env("CONTRACT_RL_STATE", self.state.path())
            .env("CONTRACT_RL_HOST", self.host)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "scripts/services {command} cassandra on {}",
            self.host
        );
    }

    fn node(&self) -> String {
        format!("{}:9042", self.host)
    }

    /// SIGKILL: no drain, no flush, no final commit-log sync.
    fn kill(&self) {
        let pid = std::fs::read_to_string(self.state.path().join("cassandra.pid")).unwrap();
        let status = Command::new("kill").args(["-9", pid.trim()]).status().unwrap();
        assert!(status.success());
        wait_gone(pid.trim());
    }
}

impl Drop for PrivateCassandra {
    fn drop(&mut self) {
        let _ = Command::new(support::repo("scripts/services"))
            .arg("down")
            .env("CONTRACT_RL_STATE", self.state.path())
            .env("CONTRACT_RL_HOST", self.host)
            .status();
    }
}

fn wait_gone(pid: &str) {
    let proc = Path::new("/proc").join(pid);
    let deadline = Instant::now() + Duration::from_secs(30);
    while proc.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client of `config`'s group that reads offsets without joining it.
fn group_reader(config: &PipelineConfig) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .create()
        .unwrap()
}

/// Per partition, the offset the group committed (0 when none), read from Kafka alone.
fn committed(consumer: &BaseConsumer, config: &PipelineConfig) -> HashMap<i32, i64> {
    let mut list = TopicPartitionList::new();
    for p in 0..config.partitions {
        list.add_partition(&config.topic, p);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10)).unwrap();
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => (e.partition(), o),
            _ => (e.partition(), 0),
        })
        .collect()
}

/// kill -9 of Cassandra while the sink writes: every message whose offset the group committed
/// (the sink's acknowledgement) is in the table when the node comes back, before any replay
/// from Kafka; after catching up the table equals the topic.
#[tokio::test(flavor = "multi_thread")]
async fn writes_acknowledged_before_cassandra_is_killed_survive_it() {
    let node = PrivateCassandra::up("127.0.0.2");
    let mut config = isolated_pipeline("durable");
    config.cassandra_nodes = vec![node.node()];
    let users = generated("durable", 60_000);
    ingest(&config, "durable", 60_000).await;
    let store = Store::connect(&config, Schema::Create).await.unwrap();

    let mut sink = spawn_sink(&config, &[]);
    // Kill the node right after the sink commits a batch: its writes were acknowledged
    // moments ago, the most likely ones not to be durable yet.
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.count().await.unwrap() < 20_000 {
        assert!(Instant::now() < deadline, "the sink made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reader = group_reader(&config);
    let before: i64 = committed(&reader, &config).values().sum();
    while committed(&reader, &config).values().sum::<i64>() == before {
        assert!(Instant::now() < deadline, "the sink committed nothing more");
    }
    drop(store);
    node.kill();
    // The sink retries its writes, then exits non-zero without committing the failed batch.
    let status = sink.wait().unwrap();
    assert!(!status.success(), "the sink cannot succeed without Cassandra");
    let acknowledged = committed(&reader, &config);
    let acknowledged_total: i64 = acknowledged.values().sum();
    assert!(acknowledged_total >= 20_000 - 3 * 500, "{acknowledged:?}");

    node.services("up");
    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    let mut lost = 0;
    let mut present: HashMap<i32, Vec<i64>> = HashMap::new();
    for row in rows(&store).await.into_values() {
        present
            .entry(row.kafka_partition.unwrap())
            .or_default()
            .push(row.kafka_offset.unwrap());
    }
    for (partition, &upto) in &acknowledged {
        let offsets = present.remove(partition).unwrap_or_default();
        let kept = offsets.iter().filter(|&&o| o < upto).count() as i64;
        lost += upto - kept;
    }
    eprintln!("acknowledged {acknowledged_total}, lost {lost}");
    assert_eq!(
        lost, 0,
        "acknowledged messages missing from the table after kill -9 ({acknowledged_total} acknowledged)"
    );

    let finished = spawn_sink(&config, &["--until-caught-up"]).wait_with_output().unwrap();
    assert!(finished.status.success());
    assert_table_holds(&store, &users).await;
}
