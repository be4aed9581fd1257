"""Checks docker-compose.yml, the Dockerfile and the Airflow DAG against the project's defaults
and workspace (no Docker engine runs here, so the files are read, not started). Usage:
compose.py DEFAULTS_JSON, with the defaults' topic, group, keyspace, Kafka and CQL ports and the
workspace members' paths. Exits non-zero with every failed check listed."""

import ast
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
defaults = json.loads(sys.argv[1])
failures: list[str] = []


def check(ok: bool, message: str) -> None:
    if not ok:
        failures.append(message)


compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
services = compose["services"]
check(set(services) == {"kafka", "cassandra", "kafka-ui", "airflow", "workbench"}, f"services {sorted(services)}")

# The host sees Kafka and Cassandra on the project's ports, as scripts/services serves them.
kafka, cassandra = services["kafka"], services["cassandra"]
check(f"127.0.0.1:{defaults['kafka_port']}:{defaults['kafka_port']}" in kafka["ports"], f"kafka ports {kafka['ports']}")
check(f"127.0.0.1:{defaults['cql_port']}:{defaults['cql_port']}" in cassandra["ports"],
      f"cassandra ports {cassandra['ports']}")
advertised = dict(part.split("://") for part in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(","))
check(advertised.get("PLAINTEXT") == f"127.0.0.1:{defaults['kafka_port']}", f"host listener {advertised}")
internal = advertised.get("INTERNAL")
check(internal is not None, "no INTERNAL listener for the other containers")

# The containers reach both through the stack's names.
check(services["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == internal, "kafka-ui's brokers")
for name in ["airflow", "workbench"]:
    env = services[name]["environment"]
    check(env.get("KAFKA_BROKERS") == internal, f"{name}: KAFKA_BROKERS {env.get('KAFKA_BROKERS')}, expected {internal}")
    check(env.get("CASSANDRA_NODES") == f"cassandra:{defaults['cql_port']}", f"{name}: CASSANDRA_NODES")

# Airflow has the repository's DAG folder mounted where it reads DAGs.
mounts = [v.split(":") for v in services["airflow"]["volumes"]]
dags = [m for m in mounts if m[1] == "/opt/airflow/dags"]
check(len(dags) == 1 and (REPO / dags[0][0] / "contract_pipeline.py").is_file() if dags else False,
      f"airflow mounts {mounts}, expected ./orchestration/airflow/dags at /opt/airflow/dags")

# The Dockerfile: its stages, the images compose builds, and the workspace in the build stage.
dockerfile = (REPO / "Dockerfile").read_text()
stages = re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.M)
check(stages == ["build", "runtime", "airflow"], f"stages {stages}")
for name, target in [("airflow", "airflow"), ("workbench", "runtime")]:
    build = services[name].get("build", {})
    check(build.get("target") == target and build.get("context") == ".", f"{name} builds {build}")
build_stage = dockerfile.split("FROM ")[1]
copied = [p for line in re.findall(r"^COPY (?!--from)(.+)$", build_stage, re.M) for p in line.split()[:-1]]
for member in defaults["members"] + ["src", "benches", "Cargo.toml", "Cargo.lock", "build.rs"]:
    check(any(member == c or member.startswith(c.rstrip("/") + "/") for c in copied),
          f"the build stage does not copy {member} (copies {copied})")
check("cargo build --release --locked --bin contract-rl" in build_stage, "the build stage does not build the binary")
for stage in ["runtime", "airflow"]:
    body = dockerfile.split(f" AS {stage}")[1].split("\nFROM ")[0]
    for path in ["envs", "experiments", "data/snapshots/sample.parquet", "/src/target/release/contract-rl"]:
        check(path in body, f"the {stage} stage lacks {path}")
    check("chown 50000:0 /work" in body, f"the {stage} stage does not give /work to Airflow's user")
# .dockerignore leaves out nothing any stage copies from the context.
ignored = [l.strip().rstrip("/") for l in (REPO / ".dockerignore").read_text().splitlines()
           if l.strip() and not l.startswith("#")]
sources = [p for line in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+)$", dockerfile, re.M) for p in line.split()[:-1]]
for source in sources:
    check(not any(source == i or source.startswith(i + "/") for i in ignored),
          f".dockerignore {ignored} leaves out {source}, which the Dockerfile copies")

# The DAG's defaults are the project's.
tree = ast.parse((REPO / "orchestration/airflow/dags/contract_pipeline.py").read_text())
params = {}
for node in ast.walk(tree):
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Param":
                params[key.value] = value.args[0].value
for name in ["topic", "group", "keyspace"]:
    check(params.get(name) == defaults[name], f"the DAG's {name} default {params.get(name)!r}, expected {defaults[name]!r}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"ok: {len(services)} services, {len(stages)} stages, {len(defaults['members'])} members")
