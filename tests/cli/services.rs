//! The ingest path against the real Kafka and Cassandra started by `scripts/services up`
//! (`scripts/test` starts them). These tests fail, not skip, when the servers are absent.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract_rl_core::record::UserRecord;
use contract_rl_core::source::{Generator, generate_records};
use contract_rl_pipeline::{
    self as pipeline, DEAD_LETTER_ORIGIN_HEADER, DEAD_LETTER_REASON_HEADER, PipelineConfig, Progress, Schema,
    SinkOptions, Source, Store, dead_letter_topic, encode,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use crate::{contract_rl, isolated_pipeline, service_args, support, tls, without_lineage};

fn silent() -> Progress {
    Arc::new(|_| {})
}

pub(crate) fn generated(seed: &str, n: usize) -> Vec<UserRecord> {
    let (records, rejected) = generate_records(&Generator::new(seed, &[]).unwrap(), n);
    assert!(rejected.is_empty());
    records
}

pub(crate) async fn ingest(config: &PipelineConfig, seed: &str, n: u64) -> pipeline::IngestReport {
    let source = Source::Generator(Generator::new(seed, &[]).unwrap());
    pipeline::ingest(config, &source, n, 5000, &silent(), std::future::pending())
        .await
        .expect("ingest")
}

async fn sink_until_caught_up(config: &PipelineConfig) -> pipeline::SinkReport {
    let options = SinkOptions {
        until_caught_up: true,
        ..SinkOptions::default()
    };
    pipeline::run_sink(config, &options, &silent(), std::future::pending())
        .await
        .expect("sink")
}

/// Every row of the table, keyed by user_id, failing on a duplicate.
pub(crate) async fn rows(store: &Store) -> HashMap<Uuid, UserRecord> {
    let mut rows = HashMap::new();
    for r in store.scan().await.expect("scan") {
        assert!(rows.insert(r.user_id, r).is_none(), "a user_id appears twice");
    }
    rows
}

/// Asserts that the table holds exactly `expected` (lineage aside) and that lineage is set.
pub(crate) async fn assert_table_holds(store: &Store, expected: &[UserRecord]) {
    let rows = rows(store).await;
    assert_eq!(rows.len(), expected.len(), "row count");
    assert_eq!(store.count().await.unwrap(), expected.len() as u64);
    for record in expected {
        let row = rows
            .get(&record.user_id)
            .unwrap_or_else(|| panic!("{} is missing", record.user_id));
        assert!(row.kafka_partition.is_some() && row.kafka_offset.is_some() && row.ingested_at.is_some());
        assert_eq!(&without_lineage(row.clone()), record, "a field differs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_users_reach_cassandra_exactly_once_and_the_snapshot_equals_them() {
    let config = isolated_pipeline("e2e");
    let users = generated("e2e", 10_000);
    let report = ingest(&config, "e2e", 10_000).await;
    assert_eq!((report.produced, report.dead_lettered), (10_000, 0));
    let sunk = sink_until_caught_up(&config).await;
    assert_eq!((sunk.written, sunk.dead_lettered), (10_000, 0));

    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    assert_table_holds(&store, &users).await;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pipeline.parquet");
    let manifest = pipeline::export_snapshot(&config, &out).await.unwrap();
    assert_eq!(manifest.rows, 10_000);
    let snap = contract_rl_parquet::snapshot::read(&out).unwrap().records;
    let order: Vec<(Option<i32>, Option<i64>)> = snap.iter().map(|r| (r.kafka_partition, r.kafka_offset)).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "ordered by (partition, offset)");
    let mut from_snapshot: Vec<UserRecord> = snap.into_iter().map(without_lineage).collect();
    let mut expected = users.clone();
    from_snapshot.sort_by_key(|r| r.user_id);
    expected.sort_by_key(|r| r.user_id);
    assert_eq!(from_snapshot, expected);

    let status = pipeline::status(&config).await.unwrap();
    assert_eq!(
        (status.messages(), status.lag(), status.rows, status.dead_letters),
        (10_000, 0, 10_000, 0)
    );
}

pub(crate) fn spawn_sink(config: &PipelineConfig, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_contract-rl"))
        .arg("sink")
        .args(service_args(config))
        .args(["-q"])
        .args(extra)
        .args(if extra.contains(&"--batch-size") {
            &[][..]
        } else {
            &["--batch-size", "500"][..]
        })
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts")
}

/// Waits until the table holds at least `rows` rows while `sink` keeps running.
pub(crate) async fn wait_for_rows(store: &Store, sink: &mut Child, rows: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.count().await.unwrap() < rows {
        assert!(Instant::now() < deadline, "the sink made no progress");
        assert!(sink.try_wait().unwrap().is_none(), "the sink exited early");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the table holds at least `rows` rows, then kills the sink with SIGKILL.
async fn kill_when(store: &Store, sink: &mut Child, rows: u64) {
    wait_for_rows(store, sink, rows).await;
    sink.kill().unwrap(); // SIGKILL: no clean shutdown, no final commit
    sink.wait().unwrap();
}

/// Sends `signal` (e.g. `-TERM`) to `child`.
pub(crate) fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Sends `(key, payload)` messages to `config.topic` (to `partition` if given, else by key) with
/// an idempotent producer and the extra `settings`, and waits until they are delivered.
pub(crate) fn produce_payloads(
    config: &PipelineConfig,
    messages: &[(String, Vec<u8>)],
    settings: &[(&str, &str)],
    partition: Option<i32>,
) {
    let mut client = ClientConfig::new();
    // Idempotent, so a retried send (a slow broker under a busy CI) cannot write a message twice:
    // tests read exact offsets back.
    client
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true");
    for (key, value) in settings {
        client.set(*key, *value);
    }
    let producer: ThreadedProducer<_> = client.create().unwrap();
    for (key, payload) in messages {
        let mut record = BaseRecord::to(&config.topic).key(key).payload(payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sink_killed_twice_mid_stream_loses_nothing_and_a_rerun_duplicates_nothing() {
    let mut config = isolated_pipeline("crash");
    config.partitions = 3;
    let users = generated("crash", 40_000);
    ingest(&config, "crash", 40_000).await;
    let store = Store::connect(&config, Schema::Create).await.unwrap();

    let mut sink = spawn_sink(&config, &[]);
    kill_when(&store, &mut sink, 5_000).await;
    let mut sink = spawn_sink(&config, &[]);
    let after_first = store.count().await.unwrap();
    kill_when(&store, &mut sink, after_first + 10_000).await;
    let status = pipeline::status(&config).await.unwrap();
    assert!(status.lag() > 0, "the kills left work to do");

    let finished = spawn_sink(&config, &["--until-caught-up"]).wait_with_output().unwrap();
    assert!(finished.status.success());
    assert_table_holds(&store, &users).await;

    // Ingesting the same seed again sends every user a second time: still one row each.
    ingest(&config, "crash", 40_000).await;
    sink_until_caught_up(&config).await;
    assert_table_holds(&store, &users).await;
    let status = pipeline::status(&config).await.unwrap();
    assert_eq!((status.messages(), status.lag()), (80_000, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_messages_are_dead_lettered_with_a_reason_and_the_sink_goes_on() {
    let config = isolated_pipeline("dlq");
    pipeline::create_topics(&config).await.unwrap();
    let users = generated("dlq", 4);
    let to_json = |r: &UserRecord| -> serde_json::Value { serde_json::from_slice(&encode(r)).unwrap() };
    let mut gb = users[1].clone();
    gb.nat = "GB".into();
    gb.postcode = "SW1A 1AA".into();
    let mut no_uuid = to_json(&users[2]);
    no_uuid.as_object_mut().unwrap().remove("user_id");
    let mut far = to_json(&users[3]);
    far["latitude"] = 123.4.into();
    let messages: Vec<(String, Vec<u8>)> = vec![
        (users[0].user_id.to_string(), encode(&users[0])),
        ("broken".into(), b"{\"user_id\": \"8d9e".to_vec()),
        (gb.user_id.to_string(), encode(&gb)),
        ("no-uuid".into(), serde_json::to_vec(&no_uuid).unwrap()),
        (users[3].user_id.to_string(), serde_json::to_vec(&far).unwrap()),
    ];
    produce_payloads(&config, &messages, &[], None);

    let report = sink_until_caught_up(&config).await;
    assert_eq!((report.written, report.dead_lettered), (2, 3));
    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    assert_table_holds(&store, &[users[0].clone(), gb]).await;

    let reasons = read_dead_letters(&config, 3);
    let find = |key: &str| {
        reasons
            .get(key)
            .unwrap_or_else(|| panic!("no dead letter for {key}: {reasons:?}"))
            .reason()
    };
    assert!(find("broken").contains("undecodable"), "{reasons:?}");
    assert!(find("no-uuid").contains("user_id"), "{reasons:?}");
    assert!(
        find(&users[3].user_id.to_string()).contains("latitude 123.4 is outside"),
        "{reasons:?}"
    );
    assert_eq!(pipeline::status(&config).await.unwrap().dead_letters, 3);
}

/// One message of the dead-letter topic.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    pub(crate) headers: HashMap<String, String>,
    pub(crate) payload: Vec<u8>,
}

impl DeadLetter {
    pub(crate) fn reason(&self) -> &str {
        self.headers.get(DEAD_LETTER_REASON_HEADER).map_or("", String::as_str)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Reads `n` messages of the dead-letter topic, by key.
pub(crate) fn read_dead_letters(config: &PipelineConfig, n: usize) -> HashMap<String, DeadLetter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", format!("{}-reader", config.group))
        .create()
        .unwrap();
    let topic = dead_letter_topic(&config.topic);
    let mut list = TopicPartitionList::new();
    for p in 0..config.partitions {
        list.add_partition_offset(&topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut letters = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while letters.len() < n && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let payload = message.payload().unwrap_or_default().to_vec();
            letters.insert(key, DeadLetter { headers, payload });
        }
    }
    letters
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_sink_cleanly() {
    let config = isolated_pipeline("sigterm");
    ingest(&config, "sigterm", 500).await;
    let store = Store::connect(&config, Schema::Create).await.unwrap();
    let mut sink = spawn_sink(&config, &[]);
    wait_for_rows(&store, &mut sink, 500).await;
    signal(&sink, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = sink.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the sink ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        pipeline::status(&config).await.unwrap().lag(),
        0,
        "the last batch was committed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_ingests_from_a_randomuser_compatible_api() {
    let config = isolated_pipeline("api");
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let page: u32 = request
                .url()
                .split("page=")
                .nth(1)
                .and_then(|p| p.split('&').next()?.parse().ok())
                .unwrap();
            // Two pages of 40 users, then an empty page: the source ends there.
            let body = if page <= 2 {
                let mut answer = serde_json::to_value(Generator::new("api", &[]).unwrap().page(40, page)).unwrap();
                answer["results"][3]["location"]["coordinates"]["latitude"] = "-95.0".into();
                answer.to_string()
            } else {
                serde_json::json!({"results": [], "info": {"seed": "api", "results": 40, "page": page, "version": "1.4"}}).to_string()
            };
            let _ = request.respond(tiny_http::Response::from_string(body));
        }
    });
    let url = format!("http://127.0.0.1:{port}/api/1.4/");
    let run = Command::new(env!("CARGO_BIN_EXE_contract-rl"))
        .args([
            "ingest",
            "--users",
            "500",
            "--page-size",
            "40",
            "--seed",
            "api",
            "--api-url",
            &url,
            "-q",
        ])
        .args(service_args(&config))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        stdout.contains("produced 78 users") && stdout.contains("2 rejected documents"),
        "{stdout}"
    );
    assert!(stdout.contains("the source ran out of users"), "{stdout}");
    sink_until_caught_up(&config).await;
    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    let rows = rows(&store).await;
    assert_eq!(rows.len(), 78);
    assert!(rows.values().all(|r| r.source == "api"));
    assert_eq!(pipeline::status(&config).await.unwrap().dead_letters, 2);
    // The rejected documents reached the dead-letter topic without their login secrets.
    for (key, letter) in read_dead_letters(&config, 2) {
        let (reason, payload) = (letter.reason(), letter.text());
        assert!(reason.contains("latitude"), "{key}: {reason}");
        assert_eq!(letter.headers[DEAD_LETTER_ORIGIN_HEADER], "ingest");
        assert!(
            payload.contains("\"login\"") && payload.contains("\"uuid\""),
            "{payload}"
        );
        for secret in ["password", "salt", "md5", "sha1", "sha256"] {
            assert!(!payload.contains(&format!("\"{secret}\"")), "{secret} in {payload}");
        }
    }
}

#[test]
fn the_service_state_folder_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let state = std::env::var_os("CONTRACT_RL_STATE").map_or_else(|| support::repo(".state"), Into::into);
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{} is {mode:o}", state.display());
}

/// Runs `snapshot` against `config`'s keyspace, expecting exit 2 and no file; returns stderr.
fn snapshot_refused(config: &PipelineConfig) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.parquet");
    let run = contract_rl(&[
        "snapshot",
        "--keyspace",
        &config.keyspace,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        !out.exists() && !out.with_extension("manifest.json").exists(),
        "a file was written"
    );
    String::from_utf8_lossy(&run.stderr).into_owned()
}

/// Whether `topic` has `partitions` partitions, each with a leader.
fn led(consumer: &BaseConsumer, topic: &str, partitions: i32) -> bool {
    consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .is_ok_and(|m| {
            m.topics().iter().any(|t| {
                t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            })
        })
}

/// Whether Cassandra has a keyspace of that name, asked through the driver.
async fn keyspace_exists(config: &PipelineConfig) -> bool {
    let error = Store::connect(config, Schema::Existing).await.err();
    !matches!(error, Some(pipeline::PipelineError::Missing { what: "keyspace", .. }))
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_and_monitor_name_what_is_missing_and_create_nothing() {
    let config = isolated_pipeline("readonly");
    let stderr = snapshot_refused(&config);
    assert!(
        stderr.contains("keyspace") && stderr.contains(&config.keyspace),
        "{stderr}"
    );
    assert!(!keyspace_exists(&config).await, "snapshot created the keyspace");

    let mut args = vec!["monitor".to_owned()];
    args.extend(service_args(&config));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = contract_rl(&args);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("topic") && stderr.contains(&config.topic), "{stderr}");
    assert!(!keyspace_exists(&config).await, "monitor created the keyspace");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    assert!(
        metadata.topics().iter().all(|t| !t.name().starts_with(&config.topic)),
        "monitor created a topic"
    );

    // With the topics there (and led), monitor reaches Cassandra: it names the keyspace and
    // creates none.
    pipeline::create_topics(&config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !led(&consumer, &config.topic, config.partitions)
        || !led(&consumer, &dead_letter_topic(&config.topic), config.partitions)
    {
        assert!(Instant::now() < deadline, "the new topics never got leaders");
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = contract_rl(&args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("keyspace") && stderr.contains(&config.keyspace),
        "{stderr}"
    );
    assert!(!keyspace_exists(&config).await, "monitor created the keyspace");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_of_a_keyspace_without_the_users_table_names_the_table() {
    let config = isolated_pipeline("notable");
    // A keyspace that exists but holds no users table.
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(&config.cassandra_nodes)
        .build()
        .await
        .unwrap();
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
                config.keyspace
            ),
            (),
        )
        .await
        .unwrap();
    let stderr = snapshot_refused(&config);
    assert!(
        stderr.contains(&format!("table \"{}.users\"", config.keyspace)),
        "{stderr}"
    );
    let tables = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
            (config.keyspace.clone(),),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    assert_eq!(tables.rows_num(), 0, "snapshot created the table");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_ingests_over_https_from_a_server_it_is_told_to_trust() {
    let config = isolated_pipeline("https");
    let page = Generator::new("https", &[]).unwrap().page(30, 1);
    let (url, certificate) = tls::serve_tls(serde_json::to_string(&page).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.pem");
    std::fs::write(&ca, certificate).unwrap();
    let mut args: Vec<String> = [
        "ingest",
        "--users",
        "30",
        "--page-size",
        "30",
        "--seed",
        "https",
        "--api-url",
        &url,
        "--api-ca-cert",
        ca.to_str().unwrap(),
        "-q",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(service_args(&config));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = contract_rl(&args);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("produced 30 users"), "{stdout}");
    sink_until_caught_up(&config).await;
    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    let rows = rows(&store).await;
    let expected: Vec<UserRecord> = page
        .results
        .iter()
        .map(|u| UserRecord::from_api(u, "api").unwrap())
        .collect();
    assert_eq!(rows.len(), 30);
    for record in &expected {
        assert_eq!(without_lineage(rows[&record.user_id].clone()), *record);
    }

    // Without the certificate the same server is refused: a failure at run time, not exit 2.
    let mut refused: Vec<&str> = vec!["ingest", "--users", "1", "--api-url", &url, "--api-attempts", "1", "-q"];
    let isolated = service_args(&config);
    refused.extend(isolated.iter().map(String::as_str));
    let run = contract_rl(&refused);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr)
            .to_lowercase()
            .contains("certificate"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// A randomuser-compatible API answering each page of its seed after `delay`; counts requests.
fn slow_api(delay: Duration) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    fake_api(delay, |results, page| {
        Generator::new("slow", &[]).unwrap().page(results, page)
    })
}

/// A local API answering a request for `results` users of `page` with `answer(results, page)`
/// after `delay`; counts requests.
fn fake_api(
    delay: Duration,
    answer: impl Fn(u32, u32) -> contract_rl_core::record::ApiResponse + Send + 'static,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&requests);
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let query = |key: &str| -> u32 {
                request
                    .url()
                    .split(&format!("{key}="))
                    .nth(1)
                    .and_then(|v| v.split('&').next()?.parse().ok())
                    .unwrap()
            };
            let page = answer(query("results"), query("page"));
            std::thread::sleep(delay);
            let _ = request.respond(tiny_http::Response::from_string(serde_json::to_string(&page).unwrap()));
        }
    });
    (format!("http://127.0.0.1:{port}/api/1.4/"), requests)
}

/// The arguments of `command` taking 400 users in pages of 10 from the API at `url` into the
/// topics and keyspace of `config`, with `extra`.
fn slow_ingest_args(command: &str, url: &str, config: &PipelineConfig, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        command,
        "--users",
        "400",
        "--page-size",
        "10",
        "--seed",
        "slow",
        "--api-url",
        url,
        "-q",
    ]
    .iter()
    .chain(extra)
    .map(|a| a.to_string())
    .collect();
    args.extend(service_args(config));
    args
}

/// Starts the binary with `args`, sends `signal` once the API has had `requests` requests, and
/// returns its exit status and stderr.
fn interrupt(args: &[String], requests: &std::sync::atomic::AtomicUsize, which: &str) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_contract-rl"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while requests.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the binary never asked for a second page");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, which);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn sigterm_stops_ingest_with_143_after_delivering_what_it_sent() {
    let config = isolated_pipeline("ingest_term");
    let (url, requests) = slow_api(Duration::from_millis(400));
    let args = slow_ingest_args("ingest", &url, &config, &[]);
    let (code, stderr) = interrupt(&args, &requests, "-TERM");
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by signal 15"), "{stderr}");
    // The pages fetched before the signal reached the topic.
    let delivered = messages_in_topic(&config);
    assert!((10..400).contains(&delivered), "{delivered} messages delivered");
    assert_eq!(delivered % 10, 0, "whole pages: {delivered}");
}

#[test]
fn an_interrupted_pipeline_exits_130_and_leaves_the_previous_snapshot_alone() {
    let config = isolated_pipeline("pipeline_int");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("users.parquet");
    let made = contract_rl(&["generate", "--users", "50", "--out", out.to_str().unwrap()]);
    assert!(made.status.success());
    let before = (
        std::fs::read(&out).unwrap(),
        std::fs::read(out.with_extension("manifest.json")).unwrap(),
    );
    let (url, requests) = slow_api(Duration::from_millis(400));
    let args = slow_ingest_args("pipeline", &url, &config, &["--out", out.to_str().unwrap()]);
    let (code, stderr) = interrupt(&args, &requests, "-INT");
    assert_eq!(code, Some(130), "{stderr}");
    let after = (
        std::fs::read(&out).unwrap(),
        std::fs::read(out.with_extension("manifest.json")).unwrap(),
    );
    assert!(before == after, "the previous snapshot was replaced");
}

/// Messages in `config`'s topic.
fn messages_in_topic(config: &PipelineConfig) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .unwrap();
    (0..config.partitions)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(&config.topic, p, Duration::from_secs(10))
                .unwrap();
            high - low
        })
        .sum()
}

/// Messages in `config`'s topic once it holds `expected` (or after 10 s): on a loaded machine a
/// just-created partition's end offset can be read before it shows the last acknowledged write.
pub(crate) fn messages_in_topic_settled(config: &PipelineConfig, expected: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let messages = messages_in_topic(config);
        if messages == expected || Instant::now() > deadline {
            return messages;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_source_that_ignores_page_stops_the_ingest_before_any_duplicate() {
    let config = isolated_pipeline("ignores_page");
    let (url, _) = fake_api(Duration::ZERO, |results, _page| {
        Generator::new("same", &[]).unwrap().page(results, 1)
    });
    let mut args = slow_ingest_args("ingest", &url, &config, &[]);
    args[2] = "30".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = contract_rl(&args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("page 2 repeats user"), "{stderr}");
    assert_eq!(
        messages_in_topic_settled(&config, 10),
        10,
        "only the first page was produced"
    );
}

#[test]
fn short_pages_are_counted_and_said() {
    let config = isolated_pipeline("short_pages");
    let (url, _) = fake_api(Duration::ZERO, |results, page| {
        let mut answer = Generator::new("short", &[]).unwrap().page(results, page);
        answer.results.truncate(7);
        answer
    });
    let mut args = slow_ingest_args("ingest", &url, &config, &[]);
    args[2] = "21".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = contract_rl(&args);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("produced 21 users"), "{stdout}");
    assert!(stdout.contains("3 pages held fewer users than asked"), "{stdout}");
    assert_eq!(messages_in_topic_settled(&config, 21), 21);
}

/// `pipeline` sinks while it ingests: rows reach Cassandra before the source has served its last
/// page, and the snapshot holds every user once the sink has caught up with the ingest's end.
#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_writes_rows_while_it_still_ingests() {
    let config = isolated_pipeline("streaming");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("streamed.parquet");
    let (url, requests) = slow_api(Duration::from_millis(100));
    let args = slow_ingest_args("pipeline", &url, &config, &["--out", out.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_contract-rl"))
        .args(&args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows_while_ingesting = loop {
        assert!(Instant::now() < deadline, "no row reached Cassandra");
        if let Ok(store) = Store::connect(&config, Schema::Existing).await
            && let rows = store.count().await.unwrap()
            && rows > 0
        {
            break (rows, requests.load(std::sync::atomic::Ordering::SeqCst));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        rows_while_ingesting.1 < 40,
        "rows appeared only after all 40 pages: {rows_while_ingesting:?}"
    );
    assert!(child.wait().unwrap().success());
    let snapshot = contract_rl_parquet::snapshot::read(&out).unwrap();
    assert_eq!(snapshot.records.len(), 400);
    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    assert_eq!(rows(&store).await.len(), 400);
}
