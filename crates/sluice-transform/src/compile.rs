//! Compiling a project: render every model, learn its dependencies and config, build the asset graph.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use sluice_core::graph::suggest;
use sluice_core::{AssetGraph, GraphError, NodeId, Project};

use crate::compiled::{CompiledModel, CompiledProject, ModelConfig, SourceAsset};
use crate::error::TransformError;
use crate::relation::model_relation;
use crate::render::{RenderScope, render};

/// Renders every model (at compile time: not incremental), on as many threads as there are cores;
/// the results are in the order of `models`.
fn render_all(
    models: &[sluice_core::ModelFile],
    scope: &RenderScope,
) -> Vec<Result<crate::render::Rendered, TransformError>> {
    sluice_core::parallel::map_ordered(models, 128, |m| {
        render(
            &m.sql,
            &m.path,
            scope,
            Some(&model_relation(m.layer, &m.name)),
            false,
        )
    })
}

/// Compiles a project, collecting every error (template errors, bad config, unknown refs, a cycle).
pub fn compile(project: Arc<Project>) -> Result<CompiledProject, Vec<TransformError>> {
    let mut errors = Vec::new();
    let mut scope = RenderScope {
        vars: project.config.vars.clone(),
        macros: Arc::new(crate::macros::MacroPrelude::new(&project.macros)),
        ..RenderScope::default()
    };
    for m in &project.models {
        scope.models.insert(m.name.clone(), m.layer);
    }
    let mut sources = BTreeMap::new();
    for s in &project.sources {
        scope.sources.insert(
            s.name.clone(),
            s.tables.iter().map(|t| t.name.clone()).collect(),
        );
        for t in &s.tables {
            let name = s.asset_name(&t.name);
            sources.insert(
                name.clone(),
                SourceAsset {
                    name,
                    source: s.name.clone(),
                    table: t.name.clone(),
                    kind: s.kind.clone(),
                    description: t.description.clone(),
                    owner: s
                        .owner
                        .clone()
                        .or_else(|| project.config.defaults.owner.clone()),
                    tags: t.tags.clone(),
                },
            );
        }
    }
    let mut graph = AssetGraph::new();
    for name in sources.keys() {
        graph.add_node(name);
    }
    let mut models = BTreeMap::new();
    let mut unknown: Vec<TransformError> = Vec::new();
    let all_rendered = render_all(&project.models, &scope);
    for (m, rendered) in project.models.iter().zip(all_rendered) {
        let relation = model_relation(m.layer, &m.name);
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut cfg_map = m.properties.config.clone();
        if !m.properties.tags.is_empty() {
            cfg_map.insert("tags".into(), serde_json::json!(m.properties.tags));
        }
        if let Some(o) = m.properties.owner.clone().or_else(|| {
            m.properties
                .meta
                .get("owner")
                .and_then(Value::as_str)
                .map(str::to_string)
        }) {
            cfg_map.insert("owner".into(), Value::String(o));
        }
        for (k, v) in &rendered.config {
            cfg_map.insert(k.clone(), v.clone());
        }
        let mut config = match ModelConfig::from_map(&cfg_map, &m.path) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if !config.enabled {
            continue;
        }
        if config.owner.is_none() {
            config.owner = project.config.defaults.owner.clone();
        }
        for r in &rendered.unknown_refs {
            unknown.push(TransformError::Graph(GraphError::UnknownRef {
                from: call_place(m, "ref", &[r]),
                kind: "ref",
                target: r.clone(),
                suggestion: suggest(r, scope.models.keys().map(String::as_str)),
            }));
        }
        for s in &rendered.unknown_sources {
            let (src, table) = s.split_once('.').unwrap_or((s, ""));
            unknown.push(TransformError::Graph(GraphError::UnknownRef {
                from: call_place(m, "source", &[src, table]),
                kind: "source",
                target: s.clone(),
                suggestion: suggest(s, sources.keys().map(String::as_str)),
            }));
        }
        graph.add_node(&m.name);
        let source_assets: Vec<String> = rendered
            .sources
            .iter()
            .map(|(s, t)| NodeId::source_table(s, t).to_string())
            .collect();
        models.insert(
            m.name.clone(),
            CompiledModel {
                name: m.name.clone(),
                layer: m.layer,
                path: m.path.clone(),
                raw_sql: m.sql.clone(),
                sql: rendered.sql,
                refs: rendered.refs,
                sources: source_assets,
                config,
                description: m.properties.description.clone(),
                relation,
            },
        );
    }
    resolve_ephemerals(&mut models, &mut scope, &mut errors);
    for m in models.values() {
        for r in m.refs.iter().filter(|r| scope.models.contains_key(*r)) {
            graph.add_edge(r, &m.name);
        }
        for s in m.sources.iter().filter(|s| sources.contains_key(*s)) {
            graph.add_edge(s, &m.name);
        }
    }
    // A check that reads another model (`relationships: {to: ref('x')}`) must run after `x` is
    // built, so `x` is ordered before the checked model.
    for check in &project.checks {
        let Some(to) = check.args.get("to").and_then(Value::as_str) else {
            continue;
        };
        if !models.contains_key(&check.model) {
            continue;
        }
        let Ok(r) = render(&format!("{{{{ {to} }}}}"), &check.path, &scope, None, false) else {
            continue;
        };
        for target in r
            .refs
            .iter()
            .filter(|t| models.contains_key(*t) && **t != check.model)
        {
            graph.add_edge(target, &check.model);
        }
        for (s, t) in &r.sources {
            let name = NodeId::source_table(s, t).to_string();
            if sources.contains_key(&name) {
                graph.add_edge(&name, &check.model);
            }
        }
    }
    errors.extend(unknown);
    // Exports (reverse ETL) push an asset after it is built: `export:<name>` depends on it.
    for e in project.exports.iter().filter(|e| e.enabled) {
        if graph.contains(&e.asset_node) {
            graph.add_edge(&e.asset_node, &e.node_name());
        } else {
            errors.push(TransformError::Config {
                path: e.path.clone(),
                field: "asset".into(),
                message: format!(
                    "`{}` is a disabled model; enable it, or set `enabled: false` here",
                    e.asset
                ),
            });
        }
    }
    if let Some(cycle) = graph.find_cycle() {
        errors.push(TransformError::Graph(GraphError::Cycle(cycle)));
    }
    let dialect = match &project.config.dialect {
        None => crate::dialect::Dialect::default(),
        Some(name) => match name.parse() {
            Ok(d) => d,
            Err(e) => {
                errors.push(TransformError::Project(sluice_core::ConfigError::at(
                    &project.root.join("sluice.yml"),
                    name.position(),
                    "dialect",
                    format!("{e}"),
                )));
                crate::dialect::Dialect::default()
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(CompiledProject {
        project,
        models,
        sources,
        graph,
        scope,
        dialect,
    })
}

/// Registers the ephemeral models in `scope` and renders again every model that refers to one (its
/// compiled SQL then carries the CTEs).
/// The model file, with `:line:column` of the call when it is written in the model itself.
fn call_place(m: &sluice_core::ModelFile, func: &str, args: &[&str]) -> String {
    match crate::render::locate::call_position(&m.sql, func, args) {
        Some(p) => format!("{}:{p}", m.path.display()),
        None => m.path.display().to_string(),
    }
}

fn resolve_ephemerals(
    models: &mut std::collections::BTreeMap<String, CompiledModel>,
    scope: &mut RenderScope,
    errors: &mut Vec<TransformError>,
) {
    for m in models.values() {
        if m.config.materialized == crate::compiled::Materialized::Ephemeral {
            scope.ephemeral.insert(
                m.name.clone(),
                crate::render::ephemeral::EphemeralSource {
                    path: m.path.clone(),
                    raw_sql: m.raw_sql.clone(),
                },
            );
        }
    }
    if scope.ephemeral.is_empty() {
        return;
    }
    for m in models.values_mut() {
        if !m.refs.iter().any(|r| scope.ephemeral.contains_key(r)) {
            continue;
        }
        match crate::render::render(&m.raw_sql, &m.path, scope, Some(&m.relation), false) {
            Ok(r) => m.sql = r.sql,
            Err(e) => errors.push(e),
        }
    }
}
