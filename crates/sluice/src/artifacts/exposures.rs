//! Exports (reverse ETL) in the manifest, the dbt way: as `exposures`, downstream uses of the nodes
//! they read. An export is `exposure.<project>.<name>` of `type: application`, with its asset in
//! `depends_on.nodes`, its owner, tags and description, the sink kind in `meta.sluice_kind`, and its
//! file's checksum in `meta.sluice_checksum` (for `state:modified`).

use serde_json::{Map, Value, json};
use sluice_core::exports::ExportDecl;
use sluice_transform::CompiledProject;
use sluice_transform::select::relative;

use super::manifest::sha256;
use super::unique_id;

/// dbt's `unique_id` of an export.
pub fn exposure_id(compiled: &CompiledProject, export: &str) -> String {
    format!("exposure.{}.{export}", compiled.project.config.name)
}

/// The manifest entry of an enabled export, and the nodes it depends on.
pub fn exposure(
    compiled: &CompiledProject,
    e: &ExportDecl,
    created_at: f64,
) -> (Value, Vec<String>) {
    let project = &compiled.project.config.name;
    let original = relative(&compiled.project.root, &e.path);
    let path = original
        .split_once('/')
        .map_or(original.clone(), |(_, rest)| rest.to_string());
    let deps: Vec<String> = unique_id(compiled, &e.asset_node).into_iter().collect();
    let (refs, sources) = match compiled.sources.get(&e.asset_node) {
        Some(s) => (Vec::new(), vec![json!([s.source, s.table])]),
        None => (
            vec![json!({"name": e.asset_node, "package": null, "version": null})],
            Vec::new(),
        ),
    };
    // dbt's owner is a name and/or an email; Sluice's is one string (an alert channel or an address).
    let owner = match e.owner.as_deref() {
        Some(o) if o.contains('@') => json!({"email": o, "name": null}),
        Some(o) => json!({"name": o, "email": null}),
        None => json!({"name": null, "email": null}),
    };
    let checksum = std::fs::read(&e.path)
        .map(|b| sha256(&b))
        .unwrap_or_default();
    let mut meta = Map::new();
    meta.insert("sluice_kind".into(), e.kind.clone().into());
    meta.insert("sluice_checksum".into(), checksum.into());
    let value = json!({
        "name": e.name,
        "resource_type": "exposure",
        "package_name": project,
        "path": path,
        "original_file_path": original,
        "unique_id": exposure_id(compiled, &e.name),
        "fqn": [project, e.name],
        "type": "application",
        "owner": owner,
        "description": e.description.clone().unwrap_or_default(),
        "label": null,
        "maturity": null,
        "meta": meta,
        "tags": e.tags,
        "config": {"enabled": e.enabled, "tags": e.tags, "meta": {}},
        "unrendered_config": {},
        "url": null,
        "depends_on": {"macros": [], "nodes": deps},
        "refs": refs,
        "sources": sources,
        "metrics": [],
        "created_at": created_at,
    });
    (value, deps)
}
