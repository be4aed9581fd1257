//! The ingest path under faults, against real servers: a Cassandra node killed mid-sink, poison
//! messages, a stale sink. Ground truth is what the topic holds, read back from Kafka, and what
//! the table holds, read back from Cassandra.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use contract_rl_core::record::UserRecord;
use contract_rl_pipeline::{
    self as pipeline, DEAD_LETTER_BYTES_HEADER, DEAD_LETTER_ORIGIN_HEADER, DEAD_LETTER_PAYLOAD_LIMIT,
    DEAD_LETTER_REASON_LIMIT, DEAD_LETTER_TRUNCATED_HEADER, PipelineConfig, Schema, Store, encode, write_timestamp,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage, Timestamp};

use crate::private::PrivateServices;
use crate::services::{
    assert_table_holds, generated, ingest, messages_in_topic_settled, produce_payloads, read_dead_letters, rows,
    signal, spawn_sink, wait_for_rows,
};
use crate::{isolated_pipeline, service_args};

/// A client of `config`'s group that reads offsets without joining it.
fn group_reader(config: &PipelineConfig) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .create()
        .unwrap()
}

/// Per partition, the offset the group committed (0 when none), read from Kafka alone.
fn committed(reader: &BaseConsumer, config: &PipelineConfig) -> HashMap<i32, i64> {
    pipeline::offsets_with(reader, config, &config.topic)
        .unwrap()
        .into_iter()
        .map(|(partition, _, _, done)| (partition, done.unwrap_or(0)))
        .collect()
}

/// kill -9 of Cassandra while the sink writes: every message whose offset the group committed
/// (the sink's acknowledgement) is in the table when the node comes back, before any replay
/// from Kafka; after catching up the table equals the topic.
#[tokio::test(flavor = "multi_thread")]
async fn writes_acknowledged_before_cassandra_is_killed_survive_it() {
    let node = PrivateServices::up("127.0.0.2", &["cassandra"]);
    let mut config = isolated_pipeline("durable");
    config.cassandra_nodes = node.pipeline("durable", 1).cassandra_nodes;
    let users = generated("durable", 60_000);
    ingest(&config, "durable", 60_000).await;
    let store = Store::connect(&config, Schema::Create).await.unwrap();

    let mut sink = spawn_sink(&config, &[]);
    // Kill the node right after the sink commits a batch: its writes were acknowledged
    // moments ago, the most likely ones not to be durable yet.
    wait_for_rows(&store, &mut sink, 20_000).await;
    let reader = group_reader(&config);
    let before: i64 = committed(&reader, &config).values().sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed(&reader, &config).values().sum::<i64>() == before {
        assert!(Instant::now() < deadline, "the sink committed nothing more");
    }
    drop(store);
    node.kill("cassandra");
    // The sink retries its writes, then exits non-zero without committing the failed batch.
    let status = sink.wait().unwrap();
    assert!(!status.success(), "the sink cannot succeed without Cassandra");
    let acknowledged = committed(&reader, &config);
    let acknowledged_total: i64 = acknowledged.values().sum();
    assert!(acknowledged_total >= 20_000 - 3 * 500, "{acknowledged:?}");

    node.run(&["up", "cassandra"]);
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
    assert_eq!(
        lost, 0,
        "acknowledged messages missing from the table after kill -9 ({acknowledged_total} acknowledged)"
    );

    let finished = spawn_sink(&config, &["--until-caught-up"]).wait_with_output().unwrap();
    assert!(finished.status.success());
    assert_table_holds(&store, &users).await;
}

/// Sends `records` to `config.topic`, keyed by user id as `ingest` does, and waits for delivery.
fn produce(config: &PipelineConfig, records: &[UserRecord]) {
    let messages: Vec<(String, Vec<u8>)> = records.iter().map(|r| (r.user_id.to_string(), encode(r))).collect();
    produce_payloads(config, &messages, &[], None);
}

/// The same users with another city: a newer version of each.
fn second_versions(users: &[UserRecord]) -> Vec<UserRecord> {
    users
        .iter()
        .map(|u| UserRecord {
            city: format!("{} v2", u.city),
            ..u.clone()
        })
        .collect()
}

/// The write-time rule on the real table: the later message of a user wins whatever the order
/// of the writes.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_message_written_last_leaves_the_newer_row() {
    let config = isolated_pipeline("timestamps");
    let store = Store::connect(&config, Schema::Create).await.unwrap();
    let old = generated("timestamps", 1).remove(0);
    let new = second_versions(std::slice::from_ref(&old)).remove(0);
    let message = |offset: i64, millis: i64| {
        OwnedMessage::new(
            None,
            None,
            config.topic.clone(),
            Timestamp::CreateTime(millis),
            0,
            offset,
            None,
        )
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Same millisecond, later offset; then a later millisecond whose offset wraps modulo 1000.
    for (older, newer) in [
        (message(998, now), message(999, now)),
        (message(1999, now), message(2000, now + 1)),
    ] {
        store.upsert(&new, write_timestamp(&newer)).await.unwrap();
        store.upsert(&old, write_timestamp(&older)).await.unwrap();
        let rows = rows(&store).await;
        assert_eq!(
            rows[&old.user_id].city,
            new.city,
            "{:?} over {:?}",
            older.offset(),
            newer.offset()
        );
    }
}

/// A sink stopped (SIGSTOP) while it holds a batch loses its partitions to another member, which
/// writes newer versions; resumed, the stale sink writes its old batch, and every row still holds
/// the newer version.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_sink_resumed_after_a_rebalance_cannot_put_older_versions_back() {
    let config = isolated_pipeline("stale");
    pipeline::create_topics(&config).await.unwrap();
    let first = generated("stale", 3_000);
    produce(&config, &first);
    let store = Store::connect(&config, Schema::Create).await.unwrap();

    let mut stale = spawn_sink(&config, &["--batch-size", "300"]);
    wait_for_rows(&store, &mut stale, 600).await;
    signal(&stale, "-STOP");
    let held = 3_000 - store.count().await.unwrap();
    assert!(held > 0, "the sink wrote everything before it was stopped");

    let second = second_versions(&first);
    produce(&config, &second);
    // The other member gets every partition once the stopped one misses its session timeout.
    let fresh = spawn_sink(&config, &["--until-caught-up"]).wait_with_output().unwrap();
    assert!(fresh.status.success());
    let rows_now = rows(&store).await;
    assert!(second.iter().all(|u| rows_now[&u.user_id].city == u.city));

    signal(&stale, "-CONT");
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&stale, "-TERM");
    stale.wait().unwrap();
    let rows = rows(&store).await;
    let older = second.iter().filter(|u| rows[&u.user_id].city != u.city).count();
    assert_eq!(
        older, 0,
        "rows put back to an older version ({held} users were unwritten when the sink stopped)"
    );
}

/// Poison of every size: a non-JSON megabyte, an invalid 600 KB record whose reason would quote
/// its bad value, a 5 MB message and a valid 20 MB record (beyond Cassandra's frame and mutation
/// limits) on a topic that allows 25 MB messages. Each ends in the dead-letter topic (a bounded
/// reason, a truncated copy, its origin and size) and the sink goes on to the good record after them.
#[tokio::test(flavor = "multi_thread")]
async fn poison_of_any_size_is_dead_lettered_and_the_sink_goes_on() {
    let config = isolated_pipeline("poison");
    const TOPIC_LIMIT: &str = "26214400";
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .unwrap();
    let topic = NewTopic::new(&config.topic, config.partitions, TopicReplication::Fixed(1))
        .set("max.message.bytes", TOPIC_LIMIT);
    for result in admin.create_topics(&[topic], &AdminOptions::new()).await.unwrap() {
        result.unwrap();
    }
    let users = generated("poison", 3);
    let mut invalid = serde_json::from_slice::<serde_json::Value>(&encode(&users[0])).unwrap();
    invalid["nat"] = "Z".repeat(600_000).into();
    let huge = UserRecord {
        street: "a".repeat(20 << 20),
        ..users[1].clone()
    };
    let poison: Vec<(String, Vec<u8>)> = vec![
        ("not-json".into(), vec![b'x'; 1_000_000]),
        ("invalid".into(), serde_json::to_vec(&invalid).unwrap()),
        ("five-mb".into(), vec![7u8; 5 << 20]),
        ("twenty-mb-valid".into(), encode(&huge)),
    ];
    let good = (users[2].user_id.to_string(), encode(&users[2]));
    let messages: Vec<_> = poison.iter().cloned().chain([good]).collect();
    produce_payloads(&config, &messages, &[("message.max.bytes", TOPIC_LIMIT)], Some(0));

    let sink = spawn_sink(&config, &["--until-caught-up"]).wait_with_output().unwrap();
    assert!(sink.status.success(), "the sink stopped on poison");
    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    assert_table_holds(&store, &users[2..]).await;

    let letters = read_dead_letters(&config, poison.len());
    assert_eq!(letters.len(), poison.len(), "{:?}", letters.keys());
    for (offset, (key, payload)) in poison.iter().enumerate() {
        let letter = &letters[key];
        let header = |name: &str| letter.headers[name].as_str();
        assert!(
            letter.reason().len() <= DEAD_LETTER_REASON_LIMIT,
            "{key}: reason of {} bytes",
            letter.reason().len()
        );
        assert_eq!(
            header(DEAD_LETTER_ORIGIN_HEADER),
            format!("{}/0@{offset}", config.topic)
        );
        assert_eq!(header(DEAD_LETTER_BYTES_HEADER), payload.len().to_string());
        assert_eq!(header(DEAD_LETTER_TRUNCATED_HEADER), "true");
        assert_eq!(
            letter.payload,
            payload[..DEAD_LETTER_PAYLOAD_LIMIT],
            "{key}: the copy is the payload's start"
        );
    }
    assert!(
        letters["not-json"].reason().contains("undecodable"),
        "{}",
        letters["not-json"].reason()
    );
    assert!(
        letters["invalid"].reason().contains("nat"),
        "{}",
        letters["invalid"].reason()
    );
    for key in ["five-mb", "twenty-mb-valid"] {
        assert!(
            letters[key].reason().contains("larger than"),
            "{key}: {}",
            letters[key].reason()
        );
    }
}

/// Values at the edges of their types keep every bit through Kafka, Cassandra and the snapshot:
/// 17-digit coordinates and the last millisecond of year 9999.
#[tokio::test(flavor = "multi_thread")]
async fn edge_values_keep_every_bit_from_the_topic_to_the_snapshot() {
    let config = isolated_pipeline("fidelity");
    pipeline::create_topics(&config).await.unwrap();
    let mut users = generated("fidelity", 40);
    let last_millisecond: chrono::DateTime<chrono::Utc> = "9999-12-31T23:59:59.999Z".parse().unwrap();
    // 17-digit doubles that a decoder without correct rounding brings back one ulp off.
    let off_by_an_ulp = [
        10.938_711_676_632_721,
        -57.179_661_383_605_676,
        -52.566_874_043_881_036,
        13.346_133_595_589_677,
        -13.336_664_635_114_445,
    ];
    for (i, user) in users.iter_mut().enumerate() {
        user.latitude = off_by_an_ulp[i % off_by_an_ulp.len()];
        user.longitude = off_by_an_ulp[(i + 2) % off_by_an_ulp.len()];
        user.registered = last_millisecond;
    }
    produce(&config, &users);
    let sink = spawn_sink(&config, &["--until-caught-up"]).wait_with_output().unwrap();
    assert!(sink.status.success());
    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    assert_table_holds(&store, &users).await;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("edges.parquet");
    pipeline::export_snapshot(&config, &out).await.unwrap();
    let snapshot = contract_rl_parquet::snapshot::read(&out).unwrap().records;
    let by_id: HashMap<_, _> = snapshot.iter().map(|r| (r.user_id, r)).collect();
    for user in &users {
        let back = by_id[&user.user_id];
        assert_eq!(
            back.latitude.to_bits(),
            user.latitude.to_bits(),
            "{} vs {}",
            back.latitude,
            user.latitude
        );
        assert_eq!(back.longitude.to_bits(), user.longitude.to_bits());
        assert_eq!(back.registered, last_millisecond);
    }
}

/// The id of the broker that leads the `__consumer_offsets` partition of `config.group`, i.e.
/// coordinates the group (Kafka's rule: `Utils.abs` of the group id's Java hash code modulo the
/// partitions).
fn group_coordinator(config: &PipelineConfig) -> i32 {
    let hash = config
        .group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some("__consumer_offsets"), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions();
    let partition = if hash == i32::MIN {
        0
    } else {
        hash.unsigned_abs() as usize % partitions.len()
    };
    partitions.iter().find(|p| p.id() == partition as i32).unwrap().leader()
}

/// The pid-file name of node `id` of a service (`kafka`, `kafka-2`, ...).
fn node_name(service: &str, id: i32) -> String {
    if id == 1 {
        service.to_owned()
    } else {
        format!("{service}-{id}")
    }
}

/// On `scripts/services up --nodes 3` (three brokers in one KRaft quorum, three Cassandra nodes;
/// topics and keyspace at replication factor 3, min.insync.replicas 2, QUORUM writes): kill -9
/// of the broker coordinating the sink's group while `pipeline` ingests and sinks, then of one
/// Cassandra node while it still sinks. The pipeline finishes, the topic holds every user once and the table equals it.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_and_a_cassandra_node_killed_mid_pipeline_lose_nothing_and_duplicate_nothing() {
    const USERS: usize = 20_000;
    let cluster = PrivateServices::up("127.0.1.1", &["--nodes", "3"]);
    let config = cluster.pipeline("cluster", 3);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cluster.parquet");
    let mut pipeline = Command::new(env!("CARGO_BIN_EXE_contract-rl"))
        .args(["pipeline", "--users", &USERS.to_string(), "--seed", "cluster", "-q"])
        .args(["--replication-factor", "3", "--concurrency", "64", "--out"])
        .arg(&out)
        .args(service_args(&config))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let store = loop {
        assert!(pipeline.try_wait().unwrap().is_none(), "the pipeline exited early");
        // The table exists once every node knows it (each answers some of the count).
        if let Ok(store) = Store::connect(&config, Schema::Existing).await
            && store.count().await.is_ok()
        {
            break store;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    wait_for_rows(&store, &mut pipeline, 1).await;
    // The broker that coordinates the sink's group: its death moves the group's offsets too.
    let coordinator = group_coordinator(&config);
    cluster.kill(&node_name("kafka", coordinator));
    wait_for_rows(&store, &mut pipeline, USERS as u64 / 3).await;
    cluster.kill("cassandra-3");
    let status = pipeline.wait().unwrap();
    assert!(status.success(), "the pipeline survives one broker and one node");

    assert_eq!(
        messages_in_topic_settled(&config, USERS as i64),
        USERS as i64,
        "no duplicate, no loss in the topic"
    );
    let table = rows(&store).await;
    if table.len() != USERS {
        let mut missing: Vec<(i32, i64)> = topic_positions(&config)
            .into_iter()
            .filter(|(user, _)| !table.contains_key(user))
            .map(|(_, position)| position)
            .collect();
        missing.sort_unstable();
        panic!(
            "{} users are missing from the table; their (partition, offsets): {}",
            missing.len(),
            runs(&missing)
        );
    }
    assert_table_holds(&store, &generated("cluster", USERS)).await;
    let snapshot = contract_rl_parquet::snapshot::read(&out).unwrap();
    assert_eq!(snapshot.records.len(), USERS);
}

/// Where each user's message is in `config`'s topic, read back with a client of its own.
fn topic_positions(config: &PipelineConfig) -> HashMap<uuid::Uuid, (i32, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", format!("{}_reader", config.group))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&config.topic]).unwrap();
    let total: i64 = (0..config.partitions)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(&config.topic, p, Duration::from_secs(10))
                .unwrap();
            high - low
        })
        .sum();
    let mut positions = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (positions.len() as i64) < total && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let user: uuid::Uuid = std::str::from_utf8(m.key().unwrap()).unwrap().parse().unwrap();
            positions.insert(user, (m.partition(), m.offset()));
        }
    }
    positions
}

/// Sorted (partition, offset) pairs as runs: `p0: 10-19, 40-41; p2: 7`.
fn runs(positions: &[(i32, i64)]) -> String {
    let mut text = String::new();
    let mut i = 0;
    while i < positions.len() {
        let (partition, start) = positions[i];
        let mut end = start;
        while i + 1 < positions.len() && positions[i + 1] == (partition, end + 1) {
            end += 1;
            i += 1;
        }
        text.push_str(&format!("p{partition}: {start}-{end}; "));
        i += 1;
    }
    text
}
