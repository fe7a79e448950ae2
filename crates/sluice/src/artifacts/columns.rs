//! A model's `columns` and `contract` in the manifest, from its properties file: what
//! `state:modified.contract` and `state:modified.persisted_descriptions` compare.
//!
//! The contract checksum is dbt's: SHA-256 of `|<name><data_type><constraints>` for each column in
//! name order, set only while the contract is enforced.

use serde_json::{Map, Value, json};
use sluice_core::model::ColumnProperties;
use sluice_transform::CompiledProject;
use sluice_transform::compiled::CompiledModel;

use super::manifest::sha256;

/// The declared columns of a model (none when no properties file describes it).
pub fn declared(compiled: &CompiledProject, model: &str) -> Vec<ColumnProperties> {
    compiled
        .project
        .models
        .iter()
        .find(|m| m.name == model)
        .map(|m| m.properties.columns.clone())
        .unwrap_or_default()
}

/// The manifest's `columns` object.
pub fn columns(cols: &[ColumnProperties]) -> Map<String, Value> {
    cols.iter()
        .map(|c| {
            (
                c.name.clone(),
                json!({
                    "name": c.name,
                    "description": c.description.clone().unwrap_or_default(),
                    "meta": c.meta,
                    "data_type": c.data_type,
                    "constraints": [],
                    "quote": c.quote,
                    "tags": c.tags,
                }),
            )
        })
        .collect()
}

/// `config.contract` normalized to dbt's shape (`{enforced, alias_types}`).
pub fn contract_config(m: &CompiledModel) -> Value {
    let raw = m.config.raw.get("contract");
    let flag = |key: &str, default: bool| {
        raw.and_then(|c| c.get(key))
            .and_then(Value::as_bool)
            .unwrap_or(default)
    };
    json!({"enforced": flag("enforced", false), "alias_types": flag("alias_types", true)})
}

/// The node's `contract`: the config plus the checksum of the columns while enforced.
pub fn contract(m: &CompiledModel, cols: &[ColumnProperties]) -> Value {
    let config = contract_config(m);
    let enforced = config["enforced"].as_bool().unwrap_or(false);
    let checksum = enforced.then(|| {
        let mut sorted: Vec<&ColumnProperties> = cols.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let state: String = sorted
            .iter()
            .map(|c| {
                format!(
                    "|{}{}{}",
                    c.name,
                    c.data_type.as_deref().unwrap_or("None"),
                    c.constraints
                        .as_ref()
                        .and_then(|v| serde_json::to_string(v).ok())
                        .unwrap_or_else(|| "[]".into())
                )
            })
            .collect();
        sha256(state.as_bytes())
    });
    json!({
        "enforced": enforced,
        "alias_types": config["alias_types"],
        "checksum": checksum,
    })
}
