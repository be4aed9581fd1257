"""The contract-rl pipeline as an Airflow DAG: ingest a batch of users into Kafka, sink it into
Cassandra until caught up, snapshot the table to Parquet, check the env on the snapshot, run the
experiment as N shard tasks in parallel, merge them, compare and export for Power BI.

Every task runs the `contract-rl` binary and fails when it fails. Nothing assumes one machine:
every path comes from the params (put `work_dir` on storage all workers share, e.g. NFS or a
mounted bucket, the only state the tasks share), so the Celery or Kubernetes executor can run the
shard tasks on different workers. Every task is safe to retry:
- ingest: the generator is seeded, so a retry sends the same users again; the sink writes by
  user_id (an upsert), so Cassandra ends with each user once;
- sink: offsets are committed only after the rows are written, so a retry resumes where the
  failed attempt stopped and rewrites at most what it had not committed (upserts again);
- snapshot, check, run, merge, compare, export: each writes only its own files and a rerun
  overwrites them. From the same snapshot the shards, merge, compare and export write the same
  tables again (manifest timings and `charts/SPS` aside). A rerun of `snapshot` reads the table
  as it is then, with any users other runs added to a shared keyspace; `merge` refuses shards
  run on a snapshot rewritten since (its SHA-256 is in each shard).
"""

from __future__ import annotations

import shlex
from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param, task

PARAMS = {
    "repo": Param(".", type="string", description="the contract-rl checkout (envs/, experiments/) on every worker"),
    "binary": Param("contract-rl", type="string", description="the contract-rl binary (a path, or a name on PATH)"),
    "work_dir": Param("/tmp/contract-rl-airflow", type="string", description="shared folder for the snapshot and results"),
    "users": Param(5000, type="integer", minimum=1, description="users to ingest"),
    "seed": Param("airflow", type="string", description="the generator's seed"),
    "topic": Param("users_created", type="string"),
    "group": Param("contract-rl-sink", type="string", description="the sink's consumer group"),
    "keyspace": Param("workbench", type="string"),
    "env_file": Param("envs/contract-choice.toml", type="string", description="the env file to check the snapshot with"),
    "experiment": Param("experiments/quickstart.toml", type="string", description="the experiment file"),
    "shards": Param(3, type="integer", minimum=1, maximum=64, description="shard tasks of the experiment"),
}

DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(seconds=10)}


def command(*args: str) -> str:
    """`binary args...` in the checkout, for BashOperator; the binary and paths come from the
    params, quoted."""
    return " ".join(["cd {{ params.repo | quote }} &&", "{{ params.binary | quote }}", *args])


SERVICES = "--topic {{ params.topic | quote }} --keyspace {{ params.keyspace | quote }}"
SNAPSHOT = "{{ (params.work_dir ~ '/snapshot.parquet') | quote }}"
RESULTS = "{{ params.work_dir | quote }}/results"

with DAG(
    dag_id="contract_pipeline",
    description="users → Kafka → Cassandra → Parquet snapshot → sharded experiment → comparison and Power BI export",
    schedule=None,
    catchup=False,
    params=PARAMS,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=False,
    user_defined_filters={"quote": lambda v: shlex.quote(str(v))},
    tags=["contract-rl"],
) as dag:
    ingest = BashOperator(
        task_id="ingest",
        bash_command=command("-q ingest --users {{ params.users }} --seed {{ params.seed | quote }}", SERVICES),
    )
    sink = BashOperator(
        task_id="sink",
        bash_command=command("-q sink --until-caught-up --group {{ params.group | quote }}", SERVICES),
    )
    snapshot = BashOperator(
        task_id="snapshot",
        bash_command=command("snapshot --out", SNAPSHOT, SERVICES),
    )
    check = BashOperator(
        task_id="check_snapshot",
        bash_command=command("check-env {{ params.env_file | quote }} --snapshot", SNAPSHOT, "--episodes 5"),
    )

    @task
    def shard_commands(params: dict | None = None) -> list[str]:
        """One `run --shard I/N` command per shard."""
        n, work = int(params["shards"]), params["work_dir"]
        run = [params["binary"], "-q", "run", params["experiment"], "--snapshot", f"{work}/snapshot.parquet"]
        return [
            f"cd {shlex.quote(params['repo'])} && "
            + shlex.join([*run, "--shard", f"{i}/{n}", "--out", f"{work}/results/shard-{i}-of-{n}"])
            for i in range(1, n + 1)
        ]

    shards = BashOperator.partial(task_id="run_shard").expand(bash_command=shard_commands())
    merge = BashOperator(
        task_id="merge",
        bash_command=command(
            "-q merge",
            RESULTS + "/shard-*-of-{{ params.shards }}",
            "--out",
            RESULTS + "/merged",
        ),
    )
    compare = BashOperator(
        task_id="compare",
        bash_command=command("compare", RESULTS + "/merged", "--out", RESULTS + "/comparison"),
    )
    export = BashOperator(
        task_id="export_powerbi",
        bash_command=command("export powerbi", RESULTS + "/merged", "--snapshot", SNAPSHOT, "--out", RESULTS + "/powerbi"),
    )

    ingest >> sink >> snapshot >> check >> shards >> merge >> compare >> export
