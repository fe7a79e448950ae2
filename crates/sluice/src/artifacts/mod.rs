//! dbt's artifacts: `target/manifest.json` (manifest v12) and `target/run_results.json` (run results
//! v6), so that tools that read dbt artifacts (state comparison, catalogs, CI reporters, lineage
//! tools) read Sluice's.
//!
//! `target/` is inside the project folder, as in dbt (add it to `.gitignore`). A dbt `unique_id` is
//! `<resource_type>.<project>.<name>`: models, seeds and snapshots keep their dbt names, a source table
//! `shop.orders` is `source.<project>.shop.orders`, a check is `test.<project>.<check name>`, a macro
//! `macro.<project>.<name>`, and an export (reverse ETL) is an exposure, `exposure.<project>.<name>`
//! ([`exposures`]), with its run's result in `run_results.json`.
//!
//! The files follow dbt's published JSON schemas (`crates/sluice/tests/fixtures/dbt-schemas`,
//! checked by `tests/artifacts.rs`). Each is written whole or not at all (a temporary file renamed).

pub mod columns;
pub mod exposures;
pub mod macros;
pub mod manifest;
pub mod run_results;
pub mod state;
pub mod timing;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use sluice_core::NodeId;
use sluice_transform::CompiledProject;
use sluice_transform::compiled::Materialized;

/// `dbt_schema_version` of the manifest.
pub const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";
/// `dbt_schema_version` of the run results.
pub const RUN_RESULTS_SCHEMA: &str = "https://schemas.getdbt.com/dbt/run-results/v6.json";
/// `dbt_version` written in the metadata: the dbt release whose artifact schemas these follow (tools
/// gate what they read on it). Sluice's own version is in `metadata.env.SLUICE_VERSION`.
pub const DBT_VERSION: &str = "1.11.0";

/// One command's invocation: what dbt records in every artifact's metadata.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// A new UUID per command.
    pub id: String,
    /// When the command started (RFC 3339).
    pub started_at: String,
    /// The command (`run`, `test`, `compile`, `ls`).
    pub which: String,
    /// `--select`, `--exclude`, `--state`, `--target`, `--vars` as given.
    pub args: Map<String, Value>,
}

impl Invocation {
    /// An invocation of `which` starting now.
    pub fn new(which: &str, args: Map<String, Value>) -> Self {
        Self {
            id: uuid_v4(),
            started_at: now(),
            which: which.to_string(),
            args,
        }
    }

    /// The `metadata` object both artifacts share.
    pub fn metadata(&self, schema: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("dbt_schema_version".into(), schema.into());
        m.insert("dbt_version".into(), DBT_VERSION.into());
        m.insert("generated_at".into(), now().into());
        m.insert("invocation_id".into(), self.id.clone().into());
        m.insert(
            "invocation_started_at".into(),
            self.started_at.clone().into(),
        );
        let mut env = Map::new();
        env.insert("SLUICE_VERSION".into(), env!("CARGO_PKG_VERSION").into());
        m.insert("env".into(), Value::Object(env));
        m
    }
}

/// Now, RFC 3339 with microseconds (dbt's format).
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `<project>/target`.
pub fn target_dir(compiled: &CompiledProject) -> PathBuf {
    compiled.project.root.join("target")
}

/// dbt's `unique_id` of a graph node (an export's is its exposure's); `None` for a name that is no
/// node of the project.
pub fn unique_id(compiled: &CompiledProject, node: &str) -> Option<String> {
    let project = &compiled.project.config.name;
    match compiled.node_id(node)? {
        NodeId::Model(m) => Some(format!(
            "{}.{project}.{m}",
            resource_type(compiled.models.get(&m)?.config.materialized)
        )),
        NodeId::SourceTable { source, table } => Some(format!("source.{project}.{source}.{table}")),
        NodeId::Export(e) => Some(exposures::exposure_id(compiled, &e)),
    }
}

/// dbt's resource type of a model by its materialization.
pub fn resource_type(m: Materialized) -> &'static str {
    match m {
        Materialized::Seed => "seed",
        Materialized::Snapshot => "snapshot",
        _ => "model",
    }
}

/// The `unique_id` of a check.
pub fn test_id(compiled: &CompiledProject, check: &str) -> String {
    format!("test.{}.{check}", compiled.project.config.name)
}

/// Writes `value` as pretty JSON to `path`, whole or not at all.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).context("serializing an artifact")?;
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes `target/manifest.json`; returns its path.
pub fn write_manifest(compiled: &CompiledProject, inv: &Invocation) -> Result<PathBuf> {
    let path = target_dir(compiled).join("manifest.json");
    write_json(&path, &manifest::manifest(compiled, inv))?;
    Ok(path)
}
