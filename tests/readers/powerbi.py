"""Checks a Power BI export with readers that share no code with the workbench: pyarrow for the
files' types, DuckDB for keys and joins. Usage: powerbi.py EXPORT_DIR SNAPSHOT EXPECTED_JSON,
where EXPECTED_JSON maps each table to the row count the caller expects. Also checks the
repository's powerbi/ folder (M queries, TMDL relationships, DAX measures) against the export.
Exits non-zero with every failed check listed."""

import json
import re
import sys
from pathlib import Path

import tomllib

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

export, snapshot, expected = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
REPO = Path(__file__).resolve().parents[2]
failures: list[str] = []


def check(ok: bool, message: str) -> None:
    if not ok:
        failures.append(message)


def power_bi_type(t: pa.DataType) -> bool:
    """The types Power BI's Parquet connector reads well: signed 64-bit integers, float64,
    plain UTF-8 text, booleans and UTC timestamps."""
    return (
        t == pa.int64()
        or t == pa.float64()
        or t == pa.string()
        or t == pa.bool_()
        or (pa.types.is_timestamp(t) and t.tz == "UTC")
    )


files = sorted(export.glob("*.parquet"))
names = [f.stem for f in files]
check(set(names) == set(expected), f"tables {names}, expected {sorted(expected)}")
check(all(n.startswith(("dim_", "fact_")) for n in names), f"names not dim_/fact_: {names}")
tables = {f.stem: pq.read_table(f) for f in files}

# Types, row counts and each dimension's own key.
for name, table in tables.items():
    for field in table.schema:
        check(power_bi_type(field.type), f"{name}.{field.name} is {field.type}")
    check(table.num_rows == expected.get(name), f"{name}: {table.num_rows} rows, expected {expected.get(name)}")
    if name.startswith("dim_"):
        key = name.removeprefix("dim_") + "_key"
        check(key in table.column_names, f"{name} has no {key}")
        if key in table.column_names:
            values = table.column(key).to_pylist()
            check(None not in values and len(set(values)) == len(values), f"{name}.{key} is not a unique key")

# Referential integrity: every key a fact holds exists in its dimension.
db = duckdb.connect()
for name in tables:
    db.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{export / (name + '.parquet')}')")
references = 0
for name, table in tables.items():
    for column in table.column_names:
        if not column.endswith("_key") or column == name.removeprefix("dim_") + "_key":
            continue
        dimension = "dim_" + column.removesuffix("_key").split("_")[-1]
        check(dimension in tables, f"{name}.{column}: no {dimension}")
        if dimension not in tables:
            continue
        own = dimension.removeprefix("dim_") + "_key"
        (orphans,) = db.execute(
            f"SELECT count(*) FROM {name} f WHERE f.{column} IS NOT NULL "
            f"AND f.{column} NOT IN (SELECT {own} FROM {dimension})"
        ).fetchone()
        check(orphans == 0, f"{name}.{column}: {orphans} keys not in {dimension}")
        references += 1
check(references == 17, f"{references} key columns checked, expected 17")

# The facts joined to every dimension they reference keep every row.
joins = {
    "fact_recommendations": "JOIN dim_run USING (run_key) JOIN dim_agent USING (agent_key, run_key) "
    "JOIN dim_user u USING (user_key) JOIN dim_segment s ON s.segment_key = f.segment_key "
    "JOIN dim_contract c ON c.contract_key = f.contract_key AND c.run_key = f.run_key "
    "AND u.segment_key = f.segment_key",
    "fact_evaluations": "JOIN dim_run USING (run_key) JOIN dim_agent USING (agent_key, run_key)",
    "fact_evaluation_mix": "JOIN dim_run USING (run_key) JOIN dim_agent USING (agent_key, run_key) "
    "JOIN dim_contract USING (contract_key, run_key)",
    "fact_training_episodes": "JOIN dim_run USING (run_key) JOIN dim_agent USING (agent_key, run_key)",
}
for fact, join in joins.items():
    (rows,) = db.execute(f"SELECT count(*) FROM {fact} f {join}").fetchone()
    check(rows == expected[fact], f"{fact} joined to its dimensions: {rows} rows, expected {expected[fact]}")

def count(query: str) -> int:
    return db.execute(query).fetchone()[0]


# A fact's keys of run-scoped dimensions belong to its own run.
for column in ["myopic_contract_key", "online_contract_key"]:
    n = count(f"SELECT count(*) FROM fact_recommendations f JOIN dim_contract c ON c.contract_key = f.{column} "
              "WHERE c.run_key <> f.run_key")
    check(n == 0, f"fact_recommendations.{column}: {n} keys of another run's contracts")

# Segments: each user's segment row holds their bands and region, and the region is their
# nationality's in the env file.
n = count("SELECT count(*) FROM dim_user u JOIN dim_segment s USING (segment_key) WHERE u.age_band <> s.age_band "
          "OR u.region <> s.region OR u.seniority_band <> s.seniority_band")
check(n == 0, f"{n} users whose segment row disagrees with their bands")
regions = tomllib.loads((REPO / "envs/contract-choice.toml").read_text())["regions"]
region_of = {nat: region for region, nats in regions.items() for nat in nats}
nats = pq.read_table(snapshot, columns=["nat"]).column("nat").to_pylist()
wrong = [u for u in tables["dim_user"].select(["user_key", "region"]).to_pylist()
         if u["region"] != region_of[nats[u["user_key"] - 1]]]
check(not wrong, f"{len(wrong)} users in another region than their nationality's, e.g. {wrong[:2]}")

# The references' offers beside each agent's: on contract choice at every decision, with the
# oracle agents making the very offers of the references they are; on customer lifetime none.
choice = "FROM fact_recommendations f JOIN dim_run r USING (run_key) JOIN dim_agent a USING (agent_key, run_key) " \
         "WHERE r.env_kind = 'contract-choice'"
lifetime = "FROM fact_recommendations f JOIN dim_run r USING (run_key) WHERE r.env_kind = 'customer-lifetime'"
check(count(f"SELECT count(*) {choice}") > 0, "no contract-choice recommendations")
for condition, what in [
    ("f.myopic_contract_key IS NULL OR f.online_contract_key IS NULL OR f.expected_reward IS NULL",
     "reference offers or expected rewards missing"),
    ("f.matches_online IS DISTINCT FROM (f.contract_key = f.online_contract_key)", "matches_online wrong"),
    ("a.agent = 'online_oracle' AND f.contract_key <> f.online_contract_key", "online_oracle is not the online reference"),
    ("a.agent = 'myopic_oracle' AND f.contract_key <> f.myopic_contract_key", "myopic_oracle is not the myopic reference"),
]:
    n = count(f"SELECT count(*) {choice} AND ({condition})")
    check(n == 0, f"contract choice: {n} rows with {what}")
check(count(f"SELECT count(*) {choice} AND NOT f.matches_online") > 0, "every agent always matches the online reference")
n = count(f"SELECT count(*) {lifetime} AND (f.myopic_contract_key IS NOT NULL OR f.online_contract_key IS NOT NULL "
          "OR f.expected_reward IS NOT NULL OR f.matches_online IS NOT NULL)")
check(n == 0, f"customer lifetime: {n} rows with reference offers or expected rewards")

# No personal data: no personal column, and no value of one anywhere in the export.
personal = ["user_id", "first_name", "last_name", "email", "username", "phone", "cell", "street",
            "postcode", "latitude", "longitude", "picture", "dob", "registered", "city"]
people = pq.read_table(snapshot, columns=personal)
for name, table in tables.items():
    check(not set(table.column_names) & set(personal), f"{name} has personal columns")
strings = {v for c in personal for v in people.column(c).to_pylist() if isinstance(v, str) and len(v) > 3}
# Coordinates identify as a pair (a lone number matches some coordinate by chance).
places = set(zip(people.column("latitude").to_pylist(), people.column("longitude").to_pylist()))
check(len(strings) > 50_000, f"only {len(strings)} personal values to look for")
for name, table in tables.items():
    for column in table.column_names:
        values = set(table.column(column).to_pylist())
        leaked = values & strings if pa.types.is_string(table.schema.field(column).type) else set()
        leaked |= {v for v in values if isinstance(v, str) and "@" in v}
        check(not leaked, f"{name}.{column} holds personal values, e.g. {sorted(map(str, leaked))[:3]}")
    floats = [c for c in table.column_names if table.schema.field(c).type == pa.float64()]
    for a in floats:
        for b in floats:
            pairs = set(zip(table.column(a).to_pylist(), table.column(b).to_pylist())) & places
            check(a == b or not pairs, f"{name}.({a}, {b}) holds users' coordinates, e.g. {sorted(pairs)[:2]}")

# Each user's bands hold their age and seniority in the snapshot row the key stands for.
def within(band: str, years: int) -> bool:
    span = band.split(" ", 1)[1]
    if span.startswith("<"):
        return years < float(span[1:])
    if span.endswith("+"):
        return years >= float(span[:-1])
    low, high = span.split("-")
    return float(low) <= years <= float(high)


bands = pq.read_table(snapshot, columns=["age", "seniority_years"]).to_pylist()
users = tables["dim_user"].select(["user_key", "age_band", "seniority_band"]).to_pylist()
wrong = [u for u in users if not (within(u["age_band"], bands[u["user_key"] - 1]["age"])
                                  and within(u["seniority_band"], bands[u["user_key"] - 1]["seniority_years"]))]
check(not wrong, f"{len(wrong)} users in bands that do not hold their age or seniority, e.g. {wrong[:2]}")

# The powerbi/ folder agrees with the export: a Power Query per table typing every column as the
# file does, a relationship per foreign key to its dimension, and DAX that names real columns.
folder = REPO / "powerbi"
m_types = {pa.int64(): "Int64.Type", pa.float64(): "type number", pa.string(): "type text",
           pa.bool_(): "type logical"}


def m_type(t: pa.DataType) -> str:
    return "type datetimezone" if pa.types.is_timestamp(t) else m_types.get(t, str(t))


pq_text = (folder / "contract-rl.pq").read_text()
queries = dict(re.findall(r"^shared (\w+) = (.*?);$", pq_text, re.M | re.S))
check("ExportFolder" in queries and "IsParameterQuery = true" in queries.get("ExportFolder", ""),
      "contract-rl.pq has no ExportFolder text parameter")
for name, table in tables.items():
    query = queries.get(name, "")
    check(f'ExportFolder & "\\{name}.parquet"' in query, f"contract-rl.pq: no query {name} reading {name}.parquet")
    typed = query.partition("Table.TransformColumnTypes(")[2]
    columns = re.findall(r'\{"(\w+)", (Int64\.Type|type \w+)\}', typed)
    want = [(f.name, m_type(f.type)) for f in table.schema]
    check(sorted(columns) == sorted(want) and len(columns) == len(set(columns)),
          f"contract-rl.pq {name}: types {sorted(set(columns) ^ set(want))} differ from the file's")

# TMDL: `relationship <name>` then tab-indented `property: value` lines.
relationships = []
for block in re.split(r"^(?=relationship )", (folder / "relationships.tmdl").read_text(), flags=re.M):
    if block.strip():
        props = dict(re.findall(r"^\s+(\w+): (\S+)$", block, re.M))
        relationships.append((props.get("fromColumn"), props.get("toColumn"), props.get("isActive", "true") == "true"))
foreign = {f"{name}.{column}": "dim_{0}.{0}_key".format(column.removesuffix("_key").split("_")[-1])
           for name, table in tables.items() for column in table.column_names
           if column.endswith("_key") and column != name.removeprefix("dim_") + "_key"}
declared = {source: target for source, target, _ in relationships}
check(len(declared) == len(relationships), "relationships.tmdl declares a column twice")
check(declared == foreign, f"relationships.tmdl differs from the keys: "
      f"{sorted(set(declared.items()) ^ set(foreign.items()))}")
# Each fact filtered by each of its dimensions through one active relationship, and only one
# active filter path from any table to another (Power BI refuses ambiguous models).
active: dict[str, list[str]] = {}
for source, target, on in relationships:
    if on and source and target:
        active.setdefault(target.split(".")[0], []).append(source.split(".")[0])
for fact, dimension in {(s.split(".")[0], t.split(".")[0]) for s, t in foreign.items() if s.startswith("fact_")}:
    check(active.get(dimension, []).count(fact) == 1,
          f"relationships.tmdl: {fact} not filtered by {dimension} through exactly one active relationship")


def reached(start: str, depth: int = 0) -> list[str]:
    return [] if depth > len(tables) else [
        end for nxt in active.get(start, []) for end in [nxt, *reached(nxt, depth + 1)]]


for start in tables:
    ends = reached(start)
    twice = sorted({end for end in ends if ends.count(end) > 1})
    check(not twice, f"relationships.tmdl: more than one active path from {start} to {twice}")

dax = (folder / "measures.dax").read_text()
measures = set(re.findall(r"MEASURE \w+\[([^\]]+)\]", dax))
for name, column in re.findall(r"\b(\w+)\[([^\]]+)\]", dax):
    check(name in tables and (column in tables[name].column_names or column in measures),
          f"measures.dax: {name}[{column}] is not a column of the export")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"ok: {len(tables)} tables, {references} key columns, {sum(t.num_rows for t in tables.values())} rows; "
      f"powerbi/ agrees: {len(queries) - 1} queries, {len(relationships)} relationships, {len(measures)} measures")
