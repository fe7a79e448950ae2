//! What compiling a project produces: the compiled models and sources, each model's resolved config,
//! and the typed name of its materialization. These types sit below the renderer's callers (engine,
//! materializations, checks): everything that runs a project reads them, nothing here runs anything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_core::graph::suggest;
use sluice_core::{AssetGraph, ModelLayer, NodeId, Project};

use crate::error::TransformError;
use crate::render::RenderScope;

/// How a model is materialized: the typed name of one entry of
/// [`MATERIALIZATIONS`](crate::materialize::MATERIALIZATIONS) (its description and behaviour), whose
/// position in that list is the variant's discriminant (the registry test checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialized {
    /// A SQL view: nothing is stored; readers run the query.
    View = 0,
    /// A table replaced atomically on every run.
    Table = 1,
    /// A table that gains only new rows (append) or upserts them on `unique_key` (merge).
    Incremental = 2,
    /// Not stored: inlined as a CTE into every model that `ref()`s it.
    Ephemeral = 3,
    /// A CSV file of the project loaded as a table.
    Seed = 4,
    /// Slowly changing dimension (type 2) history of a query, one version per change.
    Snapshot = 5,
    /// A current-state table from a change stream (CDC bronze): the latest change per
    /// `unique_key` by `_lsn`, deletes delete.
    Merge = 6,
}

impl Materialized {
    /// Every materialization, in discriminant order (the order of
    /// [`MATERIALIZATIONS`](crate::materialize::MATERIALIZATIONS), which the registry test checks).
    pub const ALL: [Materialized; 7] = [
        Materialized::View,
        Materialized::Table,
        Materialized::Incremental,
        Materialized::Ephemeral,
        Materialized::Seed,
        Materialized::Snapshot,
        Materialized::Merge,
    ];

    /// The `materialized:` config value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Materialized::View => "view",
            Materialized::Table => "table",
            Materialized::Incremental => "incremental",
            Materialized::Ephemeral => "ephemeral",
            Materialized::Seed => "seed",
            Materialized::Snapshot => "snapshot",
            Materialized::Merge => "merge",
        }
    }

    /// The materialization a `materialized:` value names.
    pub fn from_name(name: &str) -> Option<Materialized> {
        Materialized::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// How an incremental model adds rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrementalStrategy {
    /// Append the new rows.
    Append,
    /// Upsert on `unique_key`.
    Merge,
    /// Delete the existing rows whose `unique_key` appears in the new rows, then insert the new rows.
    DeleteInsert,
}

/// A model's resolved configuration (`config()` in the SQL wins over the properties file).
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Materialization.
    pub materialized: Materialized,
    /// Key columns for merge.
    pub unique_key: Vec<String>,
    /// Append or merge.
    pub incremental_strategy: IncrementalStrategy,
    /// Partition columns of the table (`[_partition]` for a time-partitioned model).
    pub partition_by: Vec<String>,
    /// `partition_by: {field, granularity, start, lookback}`: built partition by partition
    /// (see [`crate::partition`]).
    pub time_partition: Option<crate::partition::TimePartition>,
    /// Tags for selection.
    pub tags: Vec<String>,
    /// Owner to alert.
    pub owner: Option<String>,
    /// Retries after transient failures (overrides the project default).
    pub retries: Option<u32>,
    /// Disabled models are not built and not in the graph.
    pub enabled: bool,
    /// `schedule:` as written (cron, `@daily`, `every 15m`, …); parsed by the scheduler.
    pub schedule: Option<String>,
    /// `catchup:` as written (`all` or `latest`); parsed by the scheduler.
    pub catchup: Option<String>,
    /// `trigger:` as written (`on_upstream_change` or `manual`); parsed by the scheduler.
    pub trigger: Option<String>,
    /// `retry_backoff:` as written (first retry delay, e.g. `500ms`); parsed by the orchestrator.
    pub retry_backoff: Option<String>,
    /// `timeout:` as written (per attempt, e.g. `10m`); parsed by the orchestrator.
    pub timeout: Option<String>,
    /// `on_failure:` as written (`fail_fast` or `fail_open`); parsed by the orchestrator.
    pub on_failure: Option<String>,
    /// `engine:` (where the SELECT runs); `None`: the project's `defaults.engine`, else local.
    pub engine: Option<sluice_core::engine_spec::EngineSpec>,
    /// Every key as resolved, for materialization-specific settings (a seed's `column_types`, a
    /// snapshot's `strategy` and `updated_at`, …).
    pub raw: Map<String, Value>,
}

impl ModelConfig {
    /// Resolves a config map into typed settings.
    pub fn from_map(
        map: &Map<String, Value>,
        path: &std::path::Path,
    ) -> Result<ModelConfig, TransformError> {
        let err = |field: &str, message: String| TransformError::Config {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let name = map
            .get("materialized")
            .and_then(Value::as_str)
            .unwrap_or("table");
        let Some(materialized) = Materialized::from_name(name) else {
            let names: Vec<&str> = Materialized::ALL.iter().map(|m| m.as_str()).collect();
            let hint = suggest(name, names.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            let expected = match names.split_last() {
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            return Err(err(
                "materialized",
                format!("`{name}` is not supported{hint}; expected {expected}"),
            ));
        };
        let list = |key: &str| -> Result<Vec<String>, TransformError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(s
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| err(key, format!("expected a list of names, found {v}")))
                    })
                    .collect(),
                Some(other) => Err(err(
                    key,
                    format!("expected a name or a list of names, found {other}"),
                )),
            }
        };
        let unique_key = list("unique_key")?;
        let incremental_strategy = match map.get("incremental_strategy").and_then(Value::as_str) {
            None => {
                if unique_key.is_empty() {
                    IncrementalStrategy::Append
                } else {
                    IncrementalStrategy::Merge
                }
            }
            Some("append") => IncrementalStrategy::Append,
            Some("merge") => IncrementalStrategy::Merge,
            Some("delete+insert" | "delete_insert") => IncrementalStrategy::DeleteInsert,
            Some(other) => {
                return Err(err(
                    "incremental_strategy",
                    format!("`{other}` is not supported; expected append, merge or delete+insert"),
                ));
            }
        };
        if incremental_strategy != IncrementalStrategy::Append && unique_key.is_empty() {
            return Err(err(
                "unique_key",
                "incremental_strategy merge / delete+insert needs a unique_key".into(),
            ));
        }
        let retries =
            match map.get("retries") {
                None => None,
                Some(v) => Some(v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(
                    || {
                        err(
                            "retries",
                            format!("expected a small whole number, found {v}"),
                        )
                    },
                )?),
            };
        let text = |key: &str| -> Result<Option<String>, TransformError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(err(key, format!("expected text, found {other}"))),
            }
        };
        let (partition_by, time_partition) = match map.get("partition_by") {
            Some(Value::Object(dict)) => {
                let tp = crate::partition::TimePartition::from_map(dict)
                    .map_err(|(field, message)| err(&field, message))?;
                if !matches!(
                    materialized,
                    Materialized::Table | Materialized::Incremental
                ) {
                    return Err(err(
                        "partition_by",
                        format!(
                            "a time-partitioned model must be materialized as table or incremental, not {}",
                            materialized.as_str()
                        ),
                    ));
                }
                (
                    vec![crate::partition::PARTITION_COLUMN.to_string()],
                    Some(tp),
                )
            }
            _ => (list("partition_by")?, None),
        };
        let engine = match map.get("engine") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                sluice_core::engine_spec::EngineSpec::from_value(v)
                    .map_err(|message| err("engine", message))?,
            ),
        };
        if engine.as_ref().is_some_and(|e| !e.is_local())
            && !matches!(
                materialized,
                Materialized::Table | Materialized::Incremental
            )
        {
            return Err(err(
                "engine",
                format!(
                    "a distributed engine runs table and incremental models, not {} (see docs/distributed.md)",
                    materialized.as_str()
                ),
            ));
        }
        if engine.as_ref().is_some_and(|e| !e.is_local())
            && matches!(map.get("partition_by"), Some(Value::Object(_)))
        {
            return Err(err(
                "engine",
                "a time-partitioned model builds window by window in this process; a distributed \
                 engine runs table and incremental models without `partition_by: {field: ...}`"
                    .into(),
            ));
        }
        Ok(ModelConfig {
            materialized,
            unique_key,
            incremental_strategy,
            partition_by,
            time_partition,
            tags: list("tags")?,
            owner: map.get("owner").and_then(Value::as_str).map(str::to_string),
            retries,
            enabled: map.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            schedule: text("schedule")?,
            catchup: text("catchup")?,
            trigger: text("trigger")?,
            retry_backoff: text("retry_backoff")?,
            timeout: text("timeout")?,
            on_failure: text("on_failure")?,
            engine,
            raw: map.clone(),
        })
    }
}

/// A model after compilation.
#[derive(Debug, Clone)]
pub struct CompiledModel {
    /// Model name.
    pub name: String,
    /// Its layer.
    pub layer: ModelLayer,
    /// The `.sql` file.
    pub path: PathBuf,
    /// The raw Jinja-SQL (rendered again at run time, when `is_incremental()` is known).
    pub raw_sql: String,
    /// SQL rendered for a full build.
    pub sql: String,
    /// Models it reads.
    pub refs: Vec<String>,
    /// Source tables it reads, as asset names `source.table`.
    pub sources: Vec<String>,
    /// Resolved config.
    pub config: ModelConfig,
    /// Description from properties.
    pub description: Option<String>,
    /// `<layer>.<name>`.
    pub relation: String,
}

/// A source table asset.
#[derive(Debug, Clone)]
pub struct SourceAsset {
    /// `source.table`.
    pub name: String,
    /// Source name.
    pub source: String,
    /// Table name.
    pub table: String,
    /// Connector kind.
    pub kind: String,
    /// Description.
    pub description: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// A project ready to run: every model rendered, the graph built and validated.
#[derive(Debug, Clone)]
pub struct CompiledProject {
    /// The loaded project.
    pub project: Arc<Project>,
    /// Models by name (enabled ones only).
    pub models: BTreeMap<String, CompiledModel>,
    /// Source tables by asset name.
    pub sources: BTreeMap<String, SourceAsset>,
    /// The asset graph (sources and models).
    pub graph: AssetGraph,
    /// Render scope (for run-time rendering).
    pub scope: RenderScope,
    /// The SQL dialect the models are written in (`dialect:` / a dbt profile's adapter).
    pub dialect: crate::dialect::Dialect,
}

impl CompiledProject {
    /// Where `model`'s SELECT runs: its own `engine`, else the project's `defaults.engine` (after
    /// `--target`), else in this process.
    pub fn engine_of<'a>(
        &'a self,
        model: &'a CompiledModel,
    ) -> &'a sluice_core::engine_spec::EngineSpec {
        static LOCAL: sluice_core::engine_spec::EngineSpec =
            sluice_core::engine_spec::EngineSpec::Local;
        model
            .config
            .engine
            .as_ref()
            .or(self.project.config.defaults.engine.as_ref())
            .unwrap_or(&LOCAL)
    }

    /// Tags of an asset, for `tag:` selectors.
    pub fn tags_of(&self, name: &str) -> Vec<String> {
        match self.node_id(name) {
            Some(NodeId::Model(m)) => self.models[&m].config.tags.clone(),
            Some(NodeId::Export(e)) => self
                .project
                .export(&e)
                .map(|e| e.tags.clone())
                .unwrap_or_default(),
            Some(NodeId::SourceTable { .. }) => self.sources[name].tags.clone(),
            None => Vec::new(),
        }
    }

    /// What the node `name` is: a model (seeds and snapshots too), a source table or an export of
    /// this project; `None` when the project has no such node. Unlike parsing the name, this knows
    /// a model from a source table whatever its name looks like.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        if self.models.contains_key(name) {
            return Some(NodeId::Model(name.to_string()));
        }
        if let Some(s) = self.sources.get(name) {
            return Some(NodeId::source_table(&s.source, &s.table));
        }
        match name.parse() {
            Ok(NodeId::Export(e)) if self.project.export(&e).is_some() => Some(NodeId::Export(e)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod engine_config_tests {
    use serde_json::json;
    use sluice_core::engine_spec::EngineSpec;

    use super::*;

    fn config(value: Value) -> Result<ModelConfig, TransformError> {
        let Value::Object(map) = value else {
            panic!("not a map");
        };
        ModelConfig::from_map(&map, std::path::Path::new("models/m.sql"))
    }

    #[test]
    fn a_model_chooses_its_engine() {
        let c = config(json!({"engine": {"kind": "ballista", "url": "df://h:1"}})).unwrap();
        assert!(matches!(c.engine, Some(EngineSpec::Ballista(_))));
        let c = config(json!({"materialized": "view", "engine": "local"})).unwrap();
        assert_eq!(c.engine, Some(EngineSpec::Local));
        assert_eq!(config(json!({})).unwrap().engine, None);
    }

    #[test]
    fn a_model_engine_that_cannot_apply_is_refused() {
        let cases = [
            (json!({"engine": {"kind": "spark"}}), "not supported"),
            (
                json!({"materialized": "view", "engine": {"kind": "ballista", "url": "df://h"}}),
                "not view",
            ),
            (
                json!({"engine": {"kind": "ballista", "url": "df://h"},
                       "partition_by": {"field": "day", "granularity": "day"}}),
                "time-partitioned",
            ),
        ];
        for (value, expected) in cases {
            let e = config(value.clone()).unwrap_err().to_string();
            assert!(e.contains("config `engine`"), "{value}: {e}");
            assert!(e.contains(expected), "{value}: {e}");
        }
    }
}
