//! Column lineage of every model of a project, with inputs named as assets, and the upstream and
//! downstream of one column across the asset graph.
//!
//! Models are planned upstream first in a session of their own (the serving session is never
//! changed): a relation the lake holds is read with the lake's schema; a model that has not been built
//! yet is planned from its SQL, and its planned columns stand in for it downstream. Only source tables
//! must exist (ingested once), since their columns come from the data.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use sluice_engine::catalog::{
    CatalogProvider, MemTable, MemoryCatalogProvider, MemorySchemaProvider,
};
use sluice_engine::{SessionContext, SessionStateBuilder, TableReference};

use super::{PlanLineage, Sources, Subtype, plan_lineage};
use crate::compiled::{CompiledProject, Materialized};
use crate::engine::{Engine, SCHEMAS};
use crate::relation::{CATALOG, bronze_table_name};

/// One input column of an asset column, with how it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The asset read (`stg_orders`, `shop.orders`), or the relation as the SQL names it when it is
    /// not an asset of the project.
    pub asset: String,
    /// The column.
    pub column: String,
    /// How it is used (direct subtypes first).
    pub transformations: Vec<Subtype>,
}

/// One output column of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnLineage {
    /// The column.
    pub name: String,
    /// Its inputs.
    pub inputs: Vec<Edge>,
}

/// The column lineage of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetLineage {
    /// Each output column, in order.
    pub columns: Vec<ColumnLineage>,
    /// Inputs that shape the whole table (filters, join keys, grouping keys, sorts).
    pub dataset: Vec<Edge>,
}

/// Column lineage of a project's models.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProjectLineage {
    /// Each model with SQL, by name.
    pub assets: BTreeMap<String, AssetLineage>,
    /// Models whose lineage could not be read, with the reason.
    pub errors: BTreeMap<String, String>,
}

/// A step of an upstream or downstream walk: `depth` 1 is a direct input (or reader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Distance from the column asked about.
    pub depth: usize,
    /// The column reached and how it relates to the one before it on the path.
    #[serde(flatten)]
    pub edge: Edge,
}

impl ProjectLineage {
    /// Plans every model of `project` (upstream first) and reads its column lineage. Tables come from
    /// `engine`'s session; nothing is registered in it.
    pub async fn compute(engine: &Engine, project: &CompiledProject) -> ProjectLineage {
        let mut out = ProjectLineage::default();
        let assets = relation_assets(project);
        let ctx = match planning_session(engine) {
            Ok(ctx) => ctx,
            Err(e) => {
                out.errors.insert(String::new(), e);
                return out;
            }
        };
        let order = match project.graph.topological_order() {
            Ok(o) => o,
            Err(e) => {
                out.errors.insert(String::new(), e.to_string());
                return out;
            }
        };
        for name in order {
            let relation = match (project.models.get(&name), project.sources.get(&name)) {
                (Some(m), _) => m.relation.clone(),
                (None, Some(s)) => format!(
                    "bronze.{}",
                    crate::relation::ident(&bronze_table_name(&s.source, &s.table))
                ),
                _ => continue,
            };
            let stored = engine
                .context()
                .table_provider(TableReference::from(relation.as_str()))
                .await
                .ok();
            let Some(model) = project.models.get(&name) else {
                // A source table: its columns are whatever was ingested.
                if let Some(provider) = stored {
                    let _ = ctx.register_table(TableReference::from(relation.as_str()), provider);
                }
                continue;
            };
            // Ephemeral models are inlined into their readers; seeds have no SQL.
            if matches!(
                model.config.materialized,
                Materialized::Ephemeral | Materialized::Seed
            ) {
                if let Some(provider) = stored {
                    let _ = ctx.register_table(TableReference::from(relation.as_str()), provider);
                }
                continue;
            }
            let plan = match ctx.state().create_logical_plan(&model.sql).await {
                Ok(p) => p,
                Err(e) => {
                    out.errors.insert(name.clone(), first_line(&e.to_string()));
                    continue;
                }
            };
            match plan_lineage(&plan) {
                Ok(l) => {
                    out.assets.insert(name.clone(), asset_lineage(l, &assets));
                }
                Err(e) => {
                    out.errors.insert(name.clone(), e.to_string());
                }
            }
            // Readers see the stored table when there is one (its columns are what they read at
            // run time), else the planned columns.
            let provider = match stored {
                Some(p) => Some(p),
                None => MemTable::try_new(Arc::new(plan.schema().as_arrow().clone()), vec![vec![]])
                    .ok()
                    .map(|t| Arc::new(t) as _),
            };
            if let Some(provider) = provider {
                let _ = ctx.register_table(TableReference::from(relation.as_str()), provider);
            }
        }
        out
    }

    /// The columns `asset.column` is computed from, transitively: each input, then its inputs.
    pub fn upstream(&self, asset: &str, column: &str) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut seen = BTreeSet::new();
        self.walk_up(asset, column, 1, &mut seen, &mut steps);
        steps
    }

    fn walk_up(
        &self,
        asset: &str,
        column: &str,
        depth: usize,
        seen: &mut BTreeSet<(String, String)>,
        steps: &mut Vec<Step>,
    ) {
        let Some(a) = self.assets.get(asset) else {
            return;
        };
        let Some(c) = a.columns.iter().find(|c| c.name == column) else {
            return;
        };
        for edge in &c.inputs {
            steps.push(Step {
                depth,
                edge: edge.clone(),
            });
            if seen.insert((edge.asset.clone(), edge.column.clone())) {
                self.walk_up(&edge.asset, &edge.column, depth + 1, seen, steps);
            }
        }
    }

    /// The columns computed from `asset.column`, transitively (each edge says how the reader uses the
    /// column before it).
    pub fn downstream(&self, asset: &str, column: &str) -> Vec<Step> {
        let mut readers: BTreeMap<(&str, &str), Vec<Edge>> = BTreeMap::new();
        for (name, a) in &self.assets {
            for c in &a.columns {
                for input in &c.inputs {
                    readers
                        .entry((input.asset.as_str(), input.column.as_str()))
                        .or_default()
                        .push(Edge {
                            asset: name.clone(),
                            column: c.name.clone(),
                            transformations: input.transformations.clone(),
                        });
                }
            }
        }
        let mut steps = Vec::new();
        let mut seen = BTreeSet::new();
        walk_down(&readers, asset, column, 1, &mut seen, &mut steps);
        steps
    }
}

/// Depth first, so that each reader is followed by its own readers (a tree when printed by depth).
fn walk_down(
    readers: &BTreeMap<(&str, &str), Vec<Edge>>,
    asset: &str,
    column: &str,
    depth: usize,
    seen: &mut BTreeSet<(String, String)>,
    steps: &mut Vec<Step>,
) {
    for edge in readers.get(&(asset, column)).into_iter().flatten() {
        steps.push(Step {
            depth,
            edge: edge.clone(),
        });
        if seen.insert((edge.asset.clone(), edge.column.clone())) {
            walk_down(readers, &edge.asset, &edge.column, depth + 1, seen, steps);
        }
    }
}

/// A session that plans like `engine`'s (dialect, functions, settings) over a catalog of its own.
fn planning_session(engine: &Engine) -> Result<SessionContext, String> {
    let state = SessionStateBuilder::new_from_existing(engine.context().state())
        .with_catalog_list(Arc::new(
            sluice_engine::catalog::MemoryCatalogProviderList::new(),
        ))
        .build();
    let ctx = SessionContext::new_with_state(state);
    let catalog = MemoryCatalogProvider::new();
    for s in SCHEMAS {
        catalog
            .register_schema(s, Arc::new(MemorySchemaProvider::new()))
            .map_err(|e| e.to_string())?;
    }
    ctx.register_catalog(CATALOG, Arc::new(catalog));
    Ok(ctx)
}

/// Plan relation names (`silver.stg_orders`, `bronze.shop__orders`, with or without the catalog) to
/// asset names.
fn relation_assets(project: &CompiledProject) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut add = |schema: &str, table: &str, asset: &str| {
        map.insert(format!("{schema}.{table}"), asset.to_string());
        map.insert(format!("{CATALOG}.{schema}.{table}"), asset.to_string());
    };
    for m in project.models.values() {
        add(m.layer.as_str(), &m.name, &m.name);
    }
    for s in project.sources.values() {
        add("bronze", &bronze_table_name(&s.source, &s.table), &s.name);
    }
    map
}

fn edges(sources: Sources, assets: &BTreeMap<String, String>) -> Vec<Edge> {
    sources
        .into_iter()
        .map(|(field, how)| Edge {
            asset: assets
                .get(&field.relation)
                .cloned()
                .unwrap_or(field.relation),
            column: field.column,
            transformations: how.into_iter().collect(),
        })
        .collect()
}

fn asset_lineage(l: PlanLineage, assets: &BTreeMap<String, String>) -> AssetLineage {
    AssetLineage {
        columns: l
            .columns
            .into_iter()
            .map(|(name, sources)| ColumnLineage {
                name,
                inputs: edges(sources, assets),
            })
            .collect(),
        dataset: edges(l.dataset, assets),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
