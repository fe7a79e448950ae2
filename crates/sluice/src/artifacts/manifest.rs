//! `manifest.json` in dbt's manifest v12 shape: every model, seed, snapshot and check as a node, every
//! source table as a source, every macro, every export as an exposure, and the parent and child maps
//! of the graph.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sluice_core::Severity;
use sluice_transform::CompiledProject;
use sluice_transform::compiled::{CompiledModel, Materialized};
use sluice_transform::select::relative;

use super::macros::Macros;
use super::{Invocation, MANIFEST_SCHEMA, columns, exposures, resource_type, test_id, unique_id};

/// The manifest of a compiled project.
pub fn manifest(compiled: &CompiledProject, inv: &Invocation) -> Value {
    let project = compiled.project.config.name.clone();
    let created_at = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let mut nodes = Map::new();
    let mut sources = Map::new();
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let macros = Macros::of(compiled);
    for m in compiled.models.values() {
        let Some(id) = unique_id(compiled, &m.name) else {
            continue;
        };
        let deps: Vec<String> = compiled
            .graph
            .parents(&m.name)
            .filter_map(|p| unique_id(compiled, p))
            .collect();
        parents.insert(id.clone(), deps.clone());
        let node = model_node(compiled, &macros, m, &id, deps, created_at);
        nodes.insert(id.clone(), node);
    }
    for s in compiled.sources.values() {
        let Some(id) = unique_id(compiled, &s.name) else {
            continue;
        };
        let decl = compiled.project.source(&s.source);
        let path = decl
            .map(|d| relative(&compiled.project.root, &d.path))
            .unwrap_or_default();
        // dbt's checksum is of the file as written (a target's connection override is not a change).
        let checksum = decl
            .and_then(|d| std::fs::read(&d.path).ok())
            .map(|bytes| sha256(&bytes))
            .unwrap_or_default();
        parents.insert(id.clone(), Vec::new());
        sources.insert(
            id.clone(),
            json!({
                "database": null,
                "schema": "bronze",
                "name": s.table,
                "resource_type": "source",
                "package_name": project,
                "path": path,
                "original_file_path": path,
                "unique_id": id,
                "fqn": [project, s.source, s.table],
                "source_name": s.source,
                "source_description": "",
                "loader": s.kind,
                "identifier": format!("{}__{}", s.source, s.table),
                "description": s.description.clone().unwrap_or_default(),
                "columns": {},
                "meta": {"sluice_checksum": checksum},
                "source_meta": {},
                "tags": s.tags,
                "config": {"enabled": true},
                "relation_name": sluice_transform::source_relation(&s.source, &s.table),
                "created_at": created_at,
            }),
        );
    }
    for check in &compiled.project.checks {
        let Some(model) = compiled.models.get(&check.model) else {
            continue;
        };
        let Some(model_id) = unique_id(compiled, &model.name) else {
            continue;
        };
        let id = test_id(compiled, &check.name);
        let path = relative(&compiled.project.root, &check.path);
        let severity = match check.severity {
            Severity::Error => "ERROR",
            Severity::Warn => "WARN",
        };
        let mut node = json!({
            "database": null,
            "schema": model.layer.as_str(),
            "name": check.name,
            "resource_type": "test",
            "package_name": project,
            "path": path,
            "original_file_path": path,
            "unique_id": id,
            "fqn": [project, check.name],
            "alias": check.name,
            "checksum": {"name": "none", "checksum": ""},
            "config": {
                "enabled": true,
                "severity": severity,
                "where": check.where_clause,
                "error_if": check.error_if.clone().unwrap_or_else(|| "!= 0".into()),
                "warn_if": check.warn_if.clone().unwrap_or_else(|| "!= 0".into()),
            },
            "tags": [],
            "description": "",
            "columns": {},
            "meta": {},
            "raw_code": "",
            "language": "sql",
            "refs": [{"name": model.name, "package": null, "version": null}],
            "sources": [],
            "depends_on": {"macros": [], "nodes": [model_id]},
            "created_at": created_at,
        });
        if check.kind != "singular"
            && let Value::Object(o) = &mut node
        {
            o.insert("column_name".into(), json!(check.column));
            o.insert("attached_node".into(), json!(model_id));
            o.insert(
                "test_metadata".into(),
                json!({"name": check.kind, "kwargs": check.args, "namespace": null}),
            );
        }
        parents.insert(id.clone(), vec![model_id]);
        nodes.insert(id, node);
    }
    let mut exposures = Map::new();
    for e in compiled.project.exports.iter().filter(|e| e.enabled) {
        let (value, deps) = exposures::exposure(compiled, e, created_at);
        let id = exposures::exposure_id(compiled, &e.name);
        parents.insert(id.clone(), deps);
        exposures.insert(id, value);
    }
    let mut children: BTreeMap<String, Vec<String>> =
        parents.keys().map(|k| (k.clone(), Vec::new())).collect();
    for (child, ps) in &parents {
        for p in ps {
            children.entry(p.clone()).or_default().push(child.clone());
        }
    }
    let mut metadata = inv.metadata(MANIFEST_SCHEMA);
    metadata.insert("project_name".into(), project.clone().into());
    metadata.insert("adapter_type".into(), "sluice".into());
    metadata.insert("run_started_at".into(), inv.started_at.clone().into());
    json!({
        "metadata": metadata,
        "nodes": nodes,
        "sources": sources,
        "macros": macros.manifest_entries(created_at),
        "docs": {},
        "exposures": exposures,
        "metrics": {},
        "groups": {},
        "selectors": {},
        "disabled": {},
        "parent_map": parents,
        "child_map": children,
        "group_map": {},
        "saved_queries": {},
        "semantic_models": {},
        "unit_tests": {},
        "functions": {},
    })
}

fn model_node(
    compiled: &CompiledProject,
    macros: &Macros,
    m: &CompiledModel,
    id: &str,
    deps: Vec<String>,
    created_at: f64,
) -> Value {
    let project = &compiled.project.config.name;
    let original = relative(&compiled.project.root, &m.path);
    // dbt's `path` is relative to the resource folder (`models/`, `seeds/`, …).
    let path = original
        .split_once('/')
        .map_or(original.clone(), |(_, rest)| rest.to_string());
    // A seed's checksum is its file's; a model's, its SQL text's.
    let body = std::fs::read(&m.path).unwrap_or_else(|_| m.raw_sql.clone().into_bytes());
    let mut config = m.config.raw.clone();
    config.insert("enabled".into(), true.into());
    config.insert("materialized".into(), m.config.materialized.as_str().into());
    config.insert("tags".into(), json!(m.config.tags));
    config.insert("contract".into(), columns::contract_config(m));
    let declared = columns::declared(compiled, &m.name);
    let rtype = resource_type(m.config.materialized);
    let mut node = json!({
        "database": null,
        "schema": m.layer.as_str(),
        "name": m.name,
        "resource_type": rtype,
        "package_name": project,
        "path": path,
        "original_file_path": original,
        "unique_id": id,
        "fqn": compiled.fqn(&m.name),
        "alias": m.name,
        "checksum": {"name": "sha256", "checksum": sha256(&body)},
        "config": config,
        "tags": m.config.tags,
        "description": m.description.clone().unwrap_or_default(),
        "columns": columns::columns(&declared),
        "meta": {},
        "relation_name": m.relation,
        "raw_code": m.raw_sql,
        "created_at": created_at,
    });
    let Value::Object(o) = &mut node else {
        return node;
    };
    if m.config.materialized == Materialized::Seed {
        o.insert("depends_on".into(), json!({"macros": []}));
        return node;
    }
    let refs: Vec<Value> = m
        .refs
        .iter()
        .map(|r| json!({"name": r, "package": null, "version": null}))
        .collect();
    let srcs: Vec<Value> = m
        .sources
        .iter()
        .filter_map(|s| compiled.sources.get(s))
        .map(|s| json!([s.source, s.table]))
        .collect();
    o.insert("language".into(), "sql".into());
    o.insert("refs".into(), refs.into());
    o.insert("sources".into(), srcs.into());
    o.insert(
        "depends_on".into(),
        json!({"macros": macros.called_by(&m.raw_sql), "nodes": deps}),
    );
    o.insert("contract".into(), columns::contract(m, &declared));
    o.insert(
        "compiled_path".into(),
        format!("target/compiled/{project}/{original}").into(),
    );
    o.insert("compiled".into(), true.into());
    o.insert("compiled_code".into(), m.sql.clone().into());
    node
}

/// Lower-case hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
