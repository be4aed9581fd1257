//! Servers of a test's own, started by `scripts/services` on other loopback addresses with a
//! state folder of their own, for tests that kill nodes or change how the servers run. One set
//! runs at a time (each is several JVMs on a small machine); stopped and deleted on drop.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use contract_rl_pipeline::{Login, PipelineConfig};

use crate::support;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub(crate) struct PrivateServices {
    host: &'static str,
    state: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl PrivateServices {
    /// `scripts/services up ARGS` with node 1 on `host`, waiting for the previous set to go.
    pub(crate) fn up(host: &'static str, args: &[&str]) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let services = Self {
            host,
            state: tempfile::tempdir().unwrap(),
            _turn: turn,
        };
        services.run(&[&["up"], args].concat());
        services
    }

    /// Runs `scripts/services ARGS` on this set, asserting success.
    pub(crate) fn run(&self, args: &[&str]) {
        let status = self.command(args).status().unwrap();
        assert!(status.success(), "scripts/services {args:?} on {}", self.host);
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(support::repo("scripts/services"));
        command
            .args(args)
            .env("CONTRACT_RL_STATE", self.state.path())
            .env("CONTRACT_RL_HOST", self.host);
        command
    }

    pub(crate) fn state(&self) -> &Path {
        self.state.path()
    }

    /// The address of node `i` (1-based).
    pub(crate) fn host(&self, i: u8) -> String {
        let (prefix, last) = self.host.rsplit_once('.').unwrap();
        format!("{prefix}.{}", last.parse::<u8>().unwrap() + i - 1)
    }

    /// A pipeline config on nodes 1 to `nodes` of this set, isolated like `isolated_pipeline`.
    pub(crate) fn pipeline(&self, name: &str, nodes: u8) -> PipelineConfig {
        let hosts: Vec<String> = (1..=nodes).map(|i| self.host(i)).collect();
        PipelineConfig {
            brokers: hosts.iter().map(|h| format!("{h}:9092")).collect::<Vec<_>>().join(","),
            cassandra_nodes: hosts.iter().map(|h| format!("{h}:9042")).collect(),
            replication_factor: u32::from(nodes),
            ..crate::isolated_pipeline(name)
        }
    }

    /// The variables of `credentials.env` (secure mode).
    pub(crate) fn credentials(&self) -> HashMap<String, String> {
        std::fs::read_to_string(self.state.path().join("credentials.env"))
            .expect("credentials.env")
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The login of `credentials.env` for `service` (KAFKA or CASSANDRA).
    pub(crate) fn login(&self, service: &str) -> Login {
        let credentials = self.credentials();
        Login {
            user: credentials[&format!("{service}_USERNAME")].clone(),
            password: credentials[&format!("{service}_PASSWORD")].clone(),
        }
    }

    /// SIGKILL of a server by its pid file name (`cassandra`, `kafka-2`): no drain, no flush,
    /// no final commit-log sync.
    pub(crate) fn kill(&self, name: &str) {
        let pid = std::fs::read_to_string(self.state.path().join(format!("{name}.pid"))).unwrap();
        let status = Command::new("kill").args(["-9", pid.trim()]).status().unwrap();
        assert!(status.success());
        let proc = Path::new("/proc").join(pid.trim());
        let deadline = Instant::now() + Duration::from_secs(30);
        while proc.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateServices {
    fn drop(&mut self) {
        let _ = self.command(&["down"]).status();
    }
}
