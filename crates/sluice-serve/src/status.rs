//! The state of every asset: what `sluice status` prints and `/api/assets` returns.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_orchestrate::{StateError, StateStore};
use sluice_transform::CompiledProject;

/// One asset's state.
#[derive(Debug, Clone, Serialize)]
pub struct AssetStatus {
    /// Asset name (`source.table` or model name).
    pub name: String,
    /// `source` or `model`.
    pub kind: String,
    /// `bronze`, `silver` or `gold`.
    pub layer: String,
    /// SQL relation (`silver.stg_orders`).
    pub relation: String,
    /// Materialization, for models.
    pub materialized: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Rows in the published table (or the view's result) now; `None` when it has never been built.
    pub rows: Option<i64>,
    /// Rows written by the last successful build (models) or landed by the last ingestion (sources).
    pub last_rows_written: Option<i64>,
    /// When it last succeeded.
    pub last_success_at: Option<String>,
    /// `fresh`, `stale` (an upstream is newer, or the last run skipped it), `failed`, or `never built`.
    pub state: String,
    /// Checks whose latest result is fail or warn.
    pub failing_checks: Vec<String>,
    /// Direct upstream assets.
    pub upstream: Vec<String>,
    /// Direct downstream assets.
    pub downstream: Vec<String>,
}

/// Computes the state of every asset from the graph and the state database.
pub fn asset_status(
    compiled: &CompiledProject,
    state: &StateStore,
) -> Result<Vec<AssetStatus>, StateError> {
    let latest: BTreeMap<String, _> = state
        .latest_nodes()?
        .into_iter()
        .map(|n| (n.node.clone(), n))
        .collect();
    let success: BTreeMap<String, _> = state
        .latest_successes()?
        .into_iter()
        .map(|n| (n.node.clone(), n))
        .collect();
    let checks = state.latest_checks()?;
    let mut out = Vec::new();
    for name in compiled.graph.nodes() {
        let (kind, layer, relation, materialized, description, owner) =
            if let Some(m) = compiled.models.get(name) {
                (
                    "model",
                    m.layer.as_str().to_string(),
                    m.relation.clone(),
                    Some(m.config.materialized.as_str().to_string()),
                    m.description.clone(),
                    m.config.owner.clone(),
                )
            } else if let Some(s) = compiled.sources.get(name) {
                (
                    "source",
                    "bronze".to_string(),
                    sluice_transform::source_relation(&s.source, &s.table),
                    None,
                    s.description.clone(),
                    s.owner.clone(),
                )
            } else {
                continue;
            };
        let last_success = success.get(name);
        let last_success_at = last_success.map(|n| n.finished_at.clone());
        let upstream: Vec<String> = compiled.graph.parents(name).map(str::to_string).collect();
        let upstream_newer = upstream
            .iter()
            .any(|u| match (success.get(u), &last_success_at) {
                (Some(us), Some(mine)) => us.finished_at > *mine,
                _ => false,
            });
        let state_text = match (latest.get(name).map(|n| n.status.as_str()), last_success) {
            (Some("failed"), _) => "failed",
            (_, None) => "never built",
            (Some("skipped"), _) => "stale",
            _ if upstream_newer => "stale",
            _ => "fresh",
        };
        let failing_checks = checks
            .iter()
            .filter(|c| c.model == name && c.status != "pass")
            .map(|c| format!("{} ({})", c.check_name, c.status))
            .collect();
        out.push(AssetStatus {
            name: name.to_string(),
            kind: kind.to_string(),
            layer,
            relation,
            materialized,
            description,
            owner,
            rows: None,
            last_rows_written: last_success.and_then(|n| n.rows_out),
            last_success_at,
            state: state_text.to_string(),
            failing_checks,
            upstream,
            downstream: compiled.graph.children(name).map(str::to_string).collect(),
        });
    }
    Ok(out)
}

/// Fills [`AssetStatus::rows`] with the current row count of each built asset.
pub async fn count_rows(assets: &mut [AssetStatus], engine: &sluice_transform::Engine) {
    for a in assets.iter_mut().filter(|a| a.last_success_at.is_some()) {
        if let Ok(batches) = engine
            .query(&format!("SELECT count(*) FROM {}", a.relation))
            .await
        {
            a.rows = batches.first().filter(|b| b.num_rows() > 0).and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<sluice_transform::arrow::array::Int64Array>()
                    .map(|c| c.value(0))
            });
        }
    }
}
