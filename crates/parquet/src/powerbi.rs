//! `export powerbi`: results folders and the snapshot they replayed as a star schema of Parquet
//! files that Power BI Desktop's Parquet connector reads as is.
//!
//! Dimensions `dim_run`, `dim_agent`, `dim_contract`, `dim_segment` and `dim_user`; facts
//! `fact_training_episodes`, `fact_evaluations`, `fact_evaluation_mix` and
//! `fact_recommendations`, joined on integer keys named `<dimension>_key` in both. Columns are
//! signed 64-bit integers, float64, UTF-8 text, booleans and UTC timestamps only. Users carry a
//! surrogate key, their segment and split, never a name, email, phone, username, address,
//! coordinates or uuid.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use contract_rl_core::agents::AgentConfig;
use contract_rl_core::env::features::bucket;
use contract_rl_core::env::{bands as band_names, region_of_nat, split_of};
use contract_rl_core::record::{NATIONALITIES, UserRecord};
use polars::prelude::*;
use serde::Deserialize;

use crate::snapshot::{self, SnapshotError};
use crate::table::{self, Table, TableError};

/// Why an export could not be made; nothing is written then.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The snapshot is missing or corrupted.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A results folder lacks a file or holds one this version cannot read.
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    /// A results folder replayed another snapshot than the one given.
    #[error(
        "{folder} replayed the snapshot with SHA-256 {expected} (manifest.json snapshot.sha256), but {snapshot} has {actual}: pass the snapshot the experiment ran on"
    )]
    OtherSnapshot {
        folder: PathBuf,
        expected: String,
        snapshot: PathBuf,
        actual: String,
    },
    /// Two folders split users or group nationalities differently, so they cannot share
    /// `dim_user`.
    #[error("{first} and {other} differ in env.{field}: one export needs the same user splits and regions")]
    OtherUsers {
        first: PathBuf,
        other: PathBuf,
        field: &'static str,
    },
    /// The same folder was given twice.
    #[error("{0} is given twice")]
    GivenTwice(PathBuf),
    /// No results folder was given.
    #[error("no results folder to export")]
    NoFolders,
    /// Band edges that are not increasing finite numbers.
    #[error("{flag}: band edges must be increasing finite numbers of years, got {edges:?}")]
    Bands { flag: &'static str, edges: Vec<f64> },
    /// A table of a results folder is unreadable or lacks a column.
    #[error(transparent)]
    Read(#[from] TableError),
    /// A table could not be written.
    #[error(transparent)]
    Write(TableError),
}

impl ExportError {
    /// Whether the error is the user's input (folders, snapshot), not a failure while writing.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Write(_))
    }
}

/// The part of a results folder's `manifest.json` the export uses.
#[derive(Debug, Deserialize)]
struct Manifest {
    experiment: String,
    config_sha256: String,
    config: ConfigView,
    env: EnvView,
    score: String,
    references: Vec<ReferenceView>,
    snapshot: SnapshotView,
    build: BuildView,
    seeds: Vec<u64>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct ConfigView {
    agents: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ReferenceView {
    column: String,
}

#[derive(Debug, Deserialize)]
struct SnapshotView {
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct BuildView {
    version: String,
    commit: Option<String>,
}

/// The part of an env config (either kind) the export uses.
#[derive(Debug, Deserialize)]
struct EnvView {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    test_fraction: f64,
    validation_fraction: f64,
    regions: BTreeMap<String, Vec<String>>,
    contracts: Vec<ContractView>,
}

#[derive(Debug, Deserialize)]
struct ContractView {
    name: String,
    margin: f64,
    offer_cost: f64,
    #[serde(default)]
    quota: Option<f64>,
    #[serde(default)]
    months: Option<i64>,
}

/// One results folder, read and checked.
struct Folder {
    dir: PathBuf,
    manifest: Manifest,
    agents: Vec<AgentConfig>,
    /// The actions in the env's order (the `mix_<action>` columns of `evals.parquet`).
    actions: Vec<String>,
    episodes: Table,
    evals: Table,
    recommendations: Table,
}

/// The age and seniority bands of `dim_segment`: the export's own, so that segments mean the same
/// in every run and env it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Bands {
    /// Edges between age bands, in years.
    pub age_edges_years: Vec<f64>,
    /// Edges between seniority bands, in years.
    pub seniority_edges_years: Vec<f64>,
}

impl Default for Bands {
    /// The contract-choice env's state buckets: ages 33 (youth offers), 45 and 60; seniorities
    /// 8, 14 and 19 years.
    fn default() -> Self {
        Self {
            age_edges_years: vec![33.0, 45.0, 60.0],
            seniority_edges_years: vec![8.0, 14.0, 19.0],
        }
    }
}

impl Bands {
    fn validate(&self) -> Result<(), ExportError> {
        for (flag, edges) in [
            ("--age-edges", &self.age_edges_years),
            ("--seniority-edges", &self.seniority_edges_years),
        ] {
            if edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
                return Err(ExportError::Bands {
                    flag,
                    edges: edges.clone(),
                });
            }
        }
        Ok(())
    }
}

/// How users are split and segmented; every folder of one export must split them alike.
struct Users<'a> {
    env: &'a EnvView,
    bands: &'a Bands,
    ages: Vec<String>,
    regions: Vec<&'a str>,
    seniorities: Vec<String>,
}

impl<'a> Users<'a> {
    fn new(env: &'a EnvView, bands: &'a Bands) -> Self {
        Self {
            env,
            bands,
            ages: band_names("age", &bands.age_edges_years),
            regions: env.regions.keys().map(String::as_str).collect(),
            seniorities: band_names("seniority", &bands.seniority_edges_years),
        }
    }

    /// The first field in which `other` splits users or groups nationalities differently.
    fn differs(&self, other: &EnvView) -> Option<&'static str> {
        let env = self.env;
        [
            ("test_fraction", env.test_fraction == other.test_fraction),
            (
                "validation_fraction",
                env.validation_fraction == other.validation_fraction,
            ),
            ("regions", env.regions == other.regions),
        ]
        .into_iter()
        .find(|(_, same)| !same)
        .map(|(field, _)| field)
    }

    /// The segment key of a user (1-based; see [`Self::segments`]).
    fn segment_key(&self, user: &UserRecord, region_of: &[usize; NATIONALITIES.len()]) -> i64 {
        let age = bucket(f64::from(user.age), &self.bands.age_edges_years);
        let seniority = bucket(f64::from(user.seniority_years), &self.bands.seniority_edges_years);
        let nat = NATIONALITIES
            .iter()
            .position(|n| *n == user.nat)
            .expect("snapshot records hold validated nationalities");
        ((age * self.regions.len() + region_of[nat]) * self.seniorities.len() + seniority) as i64 + 1
    }

    /// Every (age band, region, seniority band), in [`Self::segment_key`] order.
    fn segment_rows(&self) -> Vec<(&str, &str, &str)> {
        let mut rows = Vec::new();
        for age in &self.ages {
            for region in &self.regions {
                for seniority in &self.seniorities {
                    rows.push((age.as_str(), *region, seniority.as_str()));
                }
            }
        }
        rows
    }

    /// `dim_segment`: every age band × region × seniority band, keyed as [`Self::segment_key`].
    fn segments(&self) -> PolarsResult<DataFrame> {
        let rows = self.segment_rows();
        df!(
            "segment_key" => (1..=rows.len() as i64).collect::<Vec<_>>(),
            "segment" => rows.iter().map(|(a, r, s)| format!("{a} · {r} · {s}")).collect::<Vec<_>>(),
            "age_band" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "region" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "seniority_band" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )
    }

    /// `dim_user`: one row per snapshot record, keyed by its row number from 1, with its
    /// segment and split and nothing that identifies the person.
    fn users(&self, records: &[UserRecord]) -> PolarsResult<DataFrame> {
        let region_of = region_of_nat(&self.env.regions);
        let segment: Vec<i64> = records.iter().map(|u| self.segment_key(u, &region_of)).collect();
        let rows = self.segment_rows();
        let of = |k: &i64| rows[*k as usize - 1];
        df!(
            "user_key" => (1..=records.len() as i64).collect::<Vec<_>>(),
            "segment_key" => segment.clone(),
            "age_band" => segment.iter().map(|k| of(k).0).collect::<Vec<_>>(),
            "region" => segment.iter().map(|k| of(k).1).collect::<Vec<_>>(),
            "seniority_band" => segment.iter().map(|k| of(k).2).collect::<Vec<_>>(),
            "split" => records
                .iter()
                .map(|u| split_of(&u.user_id, self.env.test_fraction, self.env.validation_fraction).name())
                .collect::<Vec<_>>(),
        )
    }
}

fn unreadable(path: &Path, message: impl ToString) -> ExportError {
    ExportError::Unreadable {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

impl Folder {
    fn read(dir: &Path) -> Result<Self, ExportError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| unreadable(&path, format!("{e}: is this a results folder of `run`?")))?;
        let agents = manifest
            .config
            .agents
            .iter()
            .map(|a| serde_json::from_value(a.clone()).map_err(|e| unreadable(&path, format!("config.agents: {e}"))))
            .collect::<Result<_, _>>()?;
        let read = |name: &str| Table::read(&dir.join(name)).map_err(ExportError::from);
        let evals = read("evals.parquet")?;
        let actions = evals
            .frame
            .get_column_names()
            .into_iter()
            .filter_map(|c| c.strip_prefix("mix_").map(str::to_owned))
            .collect();
        Ok(Self {
            dir: dir.to_owned(),
            agents,
            actions,
            episodes: read("episodes.parquet")?,
            recommendations: read("recommendations.parquet")?,
            evals,
            manifest,
        })
    }
}

/// Keys handed out across the whole export.
#[derive(Default)]
struct Keys {
    /// One per folder; `run_key` is the position from 1.
    runs: Vec<Run>,
    /// `dim_agent`'s rows; `agent_key` is the position from 1.
    agents: Vec<AgentRow>,
    /// `dim_contract`'s rows; `contract_key` is the position from 1.
    contracts: Vec<ContractRow>,
}

/// A run's keys, for its facts.
struct Run {
    /// `run_key`.
    key: i64,
    /// Agent name → agent key.
    agents: HashMap<String, i64>,
    /// Action name → contract key.
    contracts: HashMap<String, i64>,
}

/// A row of `dim_agent` (its columns, `run` the `run_key`).
struct AgentRow {
    run: i64,
    name: String,
    kind: String,
    learns: bool,
    hyperparameters: String,
}

/// A row of `dim_contract` (its columns, `run` the `run_key`; `offer` is false for
/// `no_offer`, which has no margin).
struct ContractRow {
    run: i64,
    name: String,
    offer: bool,
    margin: Option<f64>,
    offer_cost: f64,
    quota: Option<f64>,
    months: Option<i64>,
}

impl Keys {
    fn add(&mut self, folder: &Folder) -> &Run {
        let run = self.runs.len() as i64 + 1;
        let mut agents = HashMap::new();
        for (config, value) in folder.agents.iter().zip(&folder.manifest.config.agents) {
            self.agents.push(AgentRow {
                run,
                name: config.name(),
                kind: value["kind"].as_str().unwrap_or_default().to_owned(),
                learns: config.learns(),
                hyperparameters: hyperparameters(value),
            });
            agents.insert(config.name(), self.agents.len() as i64);
        }
        let mut contracts = HashMap::new();
        for action in &folder.actions {
            let contract = folder.manifest.env.contracts.iter().find(|c| c.name == *action);
            self.contracts.push(ContractRow {
                run,
                name: action.clone(),
                offer: contract.is_some(),
                margin: contract.map(|c| c.margin),
                offer_cost: contract.map_or(0.0, |c| c.offer_cost),
                quota: contract.and_then(|c| c.quota),
                months: contract.and_then(|c| c.months),
            });
            contracts.insert(action.clone(), self.contracts.len() as i64);
        }
        self.runs.push(Run {
            key: run,
            agents,
            contracts,
        });
        self.runs.last().expect("just pushed")
    }
}

/// An agent's settings without its kind, name and checkpoint (a path on the machine that ran
/// it), as compact JSON text.
fn hyperparameters(agent: &serde_json::Value) -> String {
    let mut settings = agent.as_object().cloned().unwrap_or_default();
    for key in ["kind", "name", "checkpoint"] {
        settings.remove(key);
    }
    serde_json::Value::Object(settings).to_string()
}

/// Exports the results folders `dirs`, all run on `snapshot`, into `out` as the star schema;
/// returns each file written with its row count. Everything is read and checked before
/// anything is written.
pub fn export_powerbi(
    dirs: &[PathBuf],
    snapshot: &Path,
    bands: &Bands,
    out: &Path,
) -> Result<Vec<(PathBuf, usize)>, ExportError> {
    bands.validate()?;
    if dirs.is_empty() {
        return Err(ExportError::NoFolders);
    }
    let snap = snapshot::read(snapshot)?;
    if let Some(dir) = crate::compare::repeated(dirs) {
        return Err(ExportError::GivenTwice(dir.clone()));
    }
    let mut folders: Vec<Folder> = Vec::new();
    for dir in dirs {
        let folder = Folder::read(dir)?;
        if folder.manifest.snapshot.sha256 != snap.manifest.sha256 {
            return Err(ExportError::OtherSnapshot {
                folder: dir.clone(),
                expected: folder.manifest.snapshot.sha256,
                snapshot: snapshot.to_owned(),
                actual: snap.manifest.sha256,
            });
        }
        if let Some(first) = folders.first()
            && let Some(field) = Users::new(&first.manifest.env, bands).differs(&folder.manifest.env)
        {
            return Err(ExportError::OtherUsers {
                first: first.dir.clone(),
                other: dir.clone(),
                field,
            });
        }
        folders.push(folder);
    }
    let users = Users::new(&folders[0].manifest.env, bands);
    let region_of = region_of_nat(&users.env.regions);
    let segment_of: Vec<i64> = snap.records.iter().map(|u| users.segment_key(u, &region_of)).collect();

    let mut keys = Keys::default();
    let mut facts = Facts::default();
    for folder in &folders {
        let run = keys.add(folder);
        facts.add(folder, run, &segment_of)?;
    }
    let mut tables = vec![
        ("dim_run", runs(&folders)),
        ("dim_agent", keys.agents()),
        ("dim_contract", keys.contracts()),
        ("dim_segment", users.segments()),
        ("dim_user", users.users(&snap.records)),
    ];
    tables.extend(facts.frames());
    write_all(out, tables)
}

/// Writes every table into a scratch folder beside `out`, then moves them into `out`: a failed
/// write leaves `out` as it was, never half new and half old.
fn write_all(out: &Path, tables: Vec<(&str, PolarsResult<DataFrame>)>) -> Result<Vec<(PathBuf, usize)>, ExportError> {
    let name = out.file_name().map_or("powerbi".into(), |n| n.to_string_lossy());
    let scratch = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| ExportError::Write(TableError::Io { path, source })
    };
    let written = (|| {
        let mut written = Vec::new();
        for (name, frame) in tables {
            let mut frame = frame.expect("equal-length columns of fixed types");
            let file = format!("{name}.parquet");
            table::write(&scratch.join(&file), &mut frame).map_err(ExportError::Write)?;
            written.push((file, frame.height()));
        }
        std::fs::create_dir_all(out).map_err(io(out))?;
        written
            .into_iter()
            .map(|(file, rows)| {
                let path = out.join(&file);
                std::fs::rename(scratch.join(&file), &path).map_err(io(&path))?;
                Ok((path, rows))
            })
            .collect()
    })();
    std::fs::remove_dir_all(&scratch).ok();
    written
}

/// `dim_run`: one row per results folder.
fn runs(folders: &[Folder]) -> PolarsResult<DataFrame> {
    let text = |f: fn(&Folder) -> String| folders.iter().map(f).collect::<Vec<_>>();
    let millis = |f: fn(&Manifest) -> DateTime<Utc>| {
        Series::new(
            "".into(),
            folders
                .iter()
                .map(|x| f(&x.manifest).timestamp_millis())
                .collect::<Vec<_>>(),
        )
        .cast(&table::utc_millis())
    };
    df!(
        "run_key" => (1..=folders.len() as i64).collect::<Vec<_>>(),
        "experiment" => text(|f| f.manifest.experiment.clone()),
        "results_folder" => text(|f| f.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        "env" => text(|f| f.manifest.env.name.clone()),
        "env_kind" => text(|f| f.manifest.env.kind.clone().unwrap_or_else(|| "contract-choice".to_owned())),
        "score" => text(|f| f.manifest.score.clone()),
        "config_sha256" => text(|f| f.manifest.config_sha256.clone()),
        "snapshot_sha256" => text(|f| f.manifest.snapshot.sha256.clone()),
        "version" => text(|f| f.manifest.build.version.clone()),
        "commit" => folders.iter().map(|f| f.manifest.build.commit.clone()).collect::<Vec<_>>(),
        "seeds" => text(|f| f.manifest.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
        "n_seeds" => folders.iter().map(|f| f.manifest.seeds.len() as i64).collect::<Vec<_>>(),
        "started_at" => millis(|m| m.started_at)?,
        "finished_at" => millis(|m| m.finished_at)?,
    )
}

impl Keys {
    /// `dim_agent`: one row per agent of each run.
    fn agents(&self) -> PolarsResult<DataFrame> {
        let a = &self.agents;
        df!(
            "agent_key" => (1..=a.len() as i64).collect::<Vec<_>>(),
            "run_key" => a.iter().map(|r| r.run).collect::<Vec<_>>(),
            "agent" => a.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            "kind" => a.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
            "learns" => a.iter().map(|r| r.learns).collect::<Vec<_>>(),
            "hyperparameters" => a.iter().map(|r| r.hyperparameters.as_str()).collect::<Vec<_>>(),
        )
    }

    /// `dim_contract`: one row per action of each run's env ("no_offer" included where the env
    /// has it).
    fn contracts(&self) -> PolarsResult<DataFrame> {
        let c = &self.contracts;
        df!(
            "contract_key" => (1..=c.len() as i64).collect::<Vec<_>>(),
            "run_key" => c.iter().map(|r| r.run).collect::<Vec<_>>(),
            "contract" => c.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            "is_offer" => c.iter().map(|r| r.offer).collect::<Vec<_>>(),
            "margin" => c.iter().map(|r| r.margin).collect::<Vec<_>>(),
            "offer_cost" => c.iter().map(|r| r.offer_cost).collect::<Vec<_>>(),
            "quota" => c.iter().map(|r| r.quota).collect::<Vec<_>>(),
            "months" => c.iter().map(|r| r.months).collect::<Vec<_>>(),
        )
    }
}

/// The fact tables, folder by folder.
#[derive(Default)]
struct Facts {
    episodes: Vec<DataFrame>,
    evaluations: Vec<DataFrame>,
    mix: Vec<DataFrame>,
    recommendations: Vec<DataFrame>,
}

/// Column `name` of `table` as `as_`, cast to `dtype` (so every folder stacks alike).
fn typed(table: &Table, name: &str, as_: &str, dtype: &DataType) -> Result<Column, ExportError> {
    let column = table.column(name)?.cast(dtype).map_err(|source| TableError::Column {
        path: table.path.clone(),
        column: name.to_owned(),
        source,
    })?;
    Ok(column.with_name(as_.into()))
}

/// Columns of `table` under their own names, each with its type.
fn columns_of(table: &Table, names: &[(&str, DataType)]) -> Result<Vec<Column>, ExportError> {
    names
        .iter()
        .map(|(name, dtype)| typed(table, name, name, dtype))
        .collect()
}

fn keyed(name: &str, keys: Vec<i64>) -> Column {
    Column::new(name.into(), keys)
}

fn frame(columns: Vec<Column>) -> DataFrame {
    DataFrame::new_infer_height(columns).expect("equal-length columns")
}

impl Run {
    /// The key of agent `name`, which `path` holds rows of.
    fn agent_key(&self, name: &str, path: &Path) -> Result<i64, ExportError> {
        self.agents
            .get(name)
            .copied()
            .ok_or_else(|| unreadable(path, format!("agent {name:?} is not in manifest.json")))
    }

    /// `run_key` and `agent_key` of each row of `table` (by its `agent` column).
    fn keys(&self, table: &Table) -> Result<Vec<Column>, ExportError> {
        let keys = table
            .strings("agent")?
            .iter()
            .map(|a| self.agent_key(a, &table.path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![
            keyed("run_key", vec![self.key; keys.len()]),
            keyed("agent_key", keys),
        ])
    }
}

/// `fact_training_episodes` of one run.
fn episodes(t: &Table, run: &Run) -> Result<DataFrame, ExportError> {
    use DataType::{Float64, Int64};
    let mut columns = run.keys(t)?;
    columns.extend(columns_of(
        t,
        &[
            ("seed", Int64),
            ("episode", Int64),
            ("step", Int64),
            ("return", Float64),
            ("expected_return", Float64),
            ("length", Int64),
            ("acceptance_rate", Float64),
        ],
    )?);
    Ok(frame(columns))
}

/// `fact_evaluations` and `fact_evaluation_mix` of one run.
fn evaluations(folder: &Folder, run: &Run) -> Result<(DataFrame, Vec<DataFrame>), ExportError> {
    use DataType::{Float64, Int64, String};
    let (t, m) = (&folder.evals, &folder.manifest);
    let mut head = run.keys(t)?;
    head.extend(columns_of(
        t,
        &[("seed", Int64), ("split", String), ("episode", Int64), ("step", Int64)],
    )?);
    let mut scores = head.clone();
    scores.push(typed(t, &m.score, "score", &Float64)?);
    for (reference, as_) in m.references.iter().zip(["myopic_score", "online_score", "bound_score"]) {
        scores.push(typed(t, &reference.column, as_, &Float64)?);
    }
    scores.extend(columns_of(
        t,
        &[
            ("expected_return", Float64),
            ("return", Float64),
            ("regret", Float64),
            ("acceptance_rate", Float64),
        ],
    )?);
    let mix = folder
        .actions
        .iter()
        .map(|action| {
            let mut columns = head.clone();
            columns.insert(2, keyed("contract_key", vec![run.contracts[action]; t.frame.height()]));
            columns.push(typed(t, &format!("mix_{action}"), "share", &Float64)?);
            Ok(frame(columns))
        })
        .collect::<Result<_, ExportError>>()?;
    Ok((frame(scores), mix))
}

impl Facts {
    fn add(&mut self, folder: &Folder, run: &Run, segment_of: &[i64]) -> Result<(), ExportError> {
        self.episodes.push(episodes(&folder.episodes, run)?);
        let (evaluations, mix) = evaluations(folder, run)?;
        self.evaluations.push(evaluations);
        self.mix.extend(mix);
        self.recommendations.push(recommendations(folder, run, segment_of)?);
        Ok(())
    }

    /// The fact tables, each folder's rows after the previous folder's.
    fn frames(self) -> Vec<(&'static str, PolarsResult<DataFrame>)> {
        let stack = |frames: Vec<DataFrame>| {
            let mut frames = frames.into_iter();
            let mut all = frames.next().expect("at least one folder");
            for frame in frames {
                all.vstack_mut_owned(frame)?;
            }
            Ok(all)
        };
        vec![
            ("fact_training_episodes", stack(self.episodes)),
            ("fact_evaluations", stack(self.evaluations)),
            ("fact_evaluation_mix", stack(self.mix)),
            ("fact_recommendations", stack(self.recommendations)),
        ]
    }
}

/// A decision of a campaign: (campaign, position in it).
type Decision = (Option<i64>, Option<i64>);

/// The columns of `fact_recommendations`.
#[derive(Default)]
struct Recommendations {
    agent: Vec<i64>,
    seed: Vec<Option<i64>>,
    campaign: Vec<Option<i64>>,
    decision: Vec<Option<i64>>,
    user: Vec<i64>,
    segment: Vec<i64>,
    contract: Vec<i64>,
    expected_reward: Vec<Option<f64>>,
    myopic: Vec<Option<i64>>,
    online: Vec<Option<i64>>,
    matches_online: Vec<Option<bool>>,
}

/// `fact_recommendations` of one run: each agent's offer at every decision of the test
/// campaigns. On contract choice, where every policy meets a campaign's users in the same
/// order, with its expected reward and the myopic and online references' offers at the same
/// decision. On customer lifetime both stay empty: who is up for a decision, and when, depends
/// on the policy, and the env reports no expected reward of an offer (its effect runs through
/// later months).
fn recommendations(folder: &Folder, run: &Run, segment_of: &[i64]) -> Result<DataFrame, ExportError> {
    let t = &folder.recommendations;
    let (policy, role, action) = (t.strings("policy")?, t.strings("role")?, t.strings("action")?);
    let (seed, campaign, decision, user) = (
        t.ints("seed")?,
        t.ints("campaign")?,
        t.ints("decision")?,
        t.ints("user")?,
    );
    let expected_reward = t.floats("expected_reward")?;
    let contract = |i: usize| {
        run.contracts
            .get(&action[i])
            .copied()
            .ok_or_else(|| unreadable(&t.path, format!("action {:?} is not in evals.parquet", action[i])))
    };
    let contract_choice = folder.manifest.env.kind.is_none();
    // The references' offer at each decision.
    let mut choices: [HashMap<Decision, i64>; 2] = Default::default();
    for i in 0..t.frame.height() {
        if let Some(r) = ["myopic", "online"].iter().position(|r| *r == role[i]) {
            choices[r].insert((campaign[i], decision[i]), contract(i)?);
        }
    }
    let mut out = Recommendations::default();
    for i in (0..t.frame.height()).filter(|&i| role[i] == "agent") {
        let row = user[i]
            .filter(|&u| u >= 0 && (u as usize) < segment_of.len())
            .ok_or_else(|| unreadable(&t.path, format!("user {:?} is not a row of the snapshot", user[i])))?;
        let own = contract(i)?;
        let reference = |r: usize| {
            contract_choice
                .then(|| choices[r].get(&(campaign[i], decision[i])).copied())
                .flatten()
        };
        out.agent.push(run.agent_key(&policy[i], &t.path)?);
        out.seed.push(seed[i]);
        out.campaign.push(campaign[i]);
        out.decision.push(decision[i]);
        out.user.push(row + 1);
        out.segment.push(segment_of[row as usize]);
        out.contract.push(own);
        out.expected_reward.push(contract_choice.then_some(expected_reward[i]));
        out.myopic.push(reference(0));
        out.online.push(reference(1));
        out.matches_online.push(reference(1).map(|c| c == own));
    }
    Ok(df!(
        "run_key" => vec![run.key; out.agent.len()],
        "agent_key" => out.agent,
        "seed" => out.seed,
        "campaign" => out.campaign,
        "decision" => out.decision,
        "user_key" => out.user,
        "segment_key" => out.segment,
        "contract_key" => out.contract,
        "expected_reward" => out.expected_reward,
        "myopic_contract_key" => out.myopic,
        "online_contract_key" => out.online,
        "matches_online" => out.matches_online,
    )
    .expect("equal-length columns"))
}
