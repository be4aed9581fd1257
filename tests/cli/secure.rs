//! Secure mode (`scripts/services up --secure`): the pipeline runs with the generated login from
//! the environment, and clients without it are refused by Kafka and Cassandra alike.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use contract_rl_pipeline::{Login, PipelineConfig, Schema, Store};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::private::PrivateServices;
use crate::service_args;
use crate::services::{assert_table_holds, generated};

/// Metadata of the topic through a client with `config`'s Kafka settings and `login`.
fn kafka_metadata(config: &PipelineConfig, login: Option<&Login>) -> Result<(), String> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    if let Some(login) = login {
        client
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", "SCRAM-SHA-256")
            .set("sasl.username", &login.user)
            .set("sasl.password", &login.password);
    }
    let consumer: BaseConsumer = client.create().map_err(|e| e.to_string())?;
    consumer
        .fetch_metadata(Some(&config.topic), Duration::from_secs(5))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn secure_mode_runs_the_pipeline_with_its_login_and_refuses_clients_without_it() {
    let services = PrivateServices::up("127.0.0.3", &["--secure"]);
    let credentials = services.state().join("credentials.env");
    let mode = std::fs::metadata(&credentials).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "credentials.env is for its owner alone");
    let secrets: Vec<String> = services
        .credentials()
        .into_iter()
        .filter(|(k, _)| k.ends_with("_PASSWORD"))
        .map(|(_, v)| v)
        .collect();

    let mut config = services.pipeline("secure", 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("secure.parquet");
    let pipeline = |with_login: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_contract-rl"));
        command
            .args(["pipeline", "--users", "2000", "--seed", "secure", "-q", "--out"])
            .arg(&out)
            .args(service_args(&config))
            .env_remove("KAFKA_USERNAME")
            .env_remove("KAFKA_PASSWORD")
            .env_remove("CASSANDRA_USERNAME")
            .env_remove("CASSANDRA_PASSWORD");
        if with_login {
            command.envs(services.credentials());
        }
        command.output().unwrap()
    };

    // Without the login the binary is refused before it writes anything.
    let refused = pipeline(false);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("KAFKA_USERNAME"),
        "the error says what is missing: {stderr}"
    );
    assert!(!out.exists());

    // With it, the whole pipeline; nothing it prints shows a password.
    let run = pipeline(true);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{printed}");
    assert!(
        secrets.iter().all(|s| !printed.contains(s.as_str())),
        "a password was printed"
    );
    let snapshot = contract_rl_parquet::snapshot::read(&out).unwrap();
    assert_eq!(snapshot.records.len(), 2000);

    // Ground truth through independent clients: with the login, the table holds every user;
    // without it, or with the login of another service's default, both servers refuse.
    config.kafka_login = Some(services.login("KAFKA"));
    config.cassandra_login = Some(services.login("CASSANDRA"));
    let store = Store::connect(&config, Schema::Existing).await.unwrap();
    assert_table_holds(&store, &generated("secure", 2000)).await;
    kafka_metadata(&config, config.kafka_login.as_ref()).expect("the login is accepted");

    let anonymous = PipelineConfig {
        kafka_login: None,
        cassandra_login: None,
        ..config.clone()
    };
    let error = Store::connect(&anonymous, Schema::Existing)
        .await
        .err()
        .expect("anonymous CQL refused");
    assert!(error.to_string().contains("uthenticat"), "{error}");
    let default_superuser = PipelineConfig {
        cassandra_login: Some(Login {
            user: "cassandra".into(),
            password: "cassandra".into(),
        }),
        ..anonymous.clone()
    };
    assert!(
        Store::connect(&default_superuser, Schema::Existing).await.is_err(),
        "Cassandra's well-known default superuser is gone"
    );
    kafka_metadata(&anonymous, None).expect_err("anonymous Kafka client refused");
    let wrong = Login {
        password: "not-the-password".into(),
        ..services.login("KAFKA")
    };
    kafka_metadata(&anonymous, Some(&wrong)).expect_err("a wrong Kafka password refused");
}
