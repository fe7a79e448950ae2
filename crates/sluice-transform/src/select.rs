//! What the selector ([`sluice_core::selector`]) needs to know about the nodes of a compiled project:
//! kinds, qualified names, files, tags and resolved config.

use std::path::Path;

use serde_json::Value;
use sluice_core::NodeId;
use sluice_core::selector::{NodeFacts, ResourceType};

use crate::compiled::{CompiledProject, Materialized};

impl CompiledProject {
    /// The file that defines a node, relative to the project folder, with `/` separators.
    pub fn node_path(&self, node: &str) -> Option<String> {
        let path = match self.node_id(node)? {
            NodeId::Model(m) => self.models.get(&m)?.path.clone(),
            NodeId::Export(e) => self.project.export(&e)?.path.clone(),
            NodeId::SourceTable { source, .. } => self.project.source(&source)?.path.clone(),
        };
        Some(relative(&self.project.root, &path))
    }

    /// dbt's fully qualified name: `[project, folders below the model folder…, name]` for models,
    /// seeds and snapshots; `[project, source, table]` for source tables; `[project, name]` for exports.
    pub fn fqn(&self, node: &str) -> Vec<String> {
        let project = self.project.config.name.clone();
        match self.node_id(node) {
            Some(NodeId::SourceTable { source, table }) => vec![project, source, table],
            Some(NodeId::Model(m)) => {
                let mut fqn = vec![project];
                if let Some(path) = self.node_path(node) {
                    // `models/staging/stg_orders.sql` → `staging`: the first folder is the resource folder.
                    let parts: Vec<&str> = path.split('/').collect();
                    if parts.len() > 2 {
                        fqn.extend(parts[1..parts.len() - 1].iter().map(|p| p.to_string()));
                    }
                }
                fqn.push(m);
                fqn
            }
            Some(NodeId::Export(e)) => vec![project, e],
            // Not a node of this project: named by its shape.
            None => {
                let name = node.parse::<NodeId>().map_or(node.to_string(), |n| {
                    n.export_name().unwrap_or(node).to_string()
                });
                vec![project, name]
            }
        }
    }
}

/// `path` relative to `root` with `/` separators (as written when it is not under `root`).
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

impl NodeFacts for CompiledProject {
    fn resource_type(&self, node: &str) -> ResourceType {
        if let Some(m) = self.models.get(node) {
            return match m.config.materialized {
                Materialized::Seed => ResourceType::Seed,
                Materialized::Snapshot => ResourceType::Snapshot,
                _ => ResourceType::Model,
            };
        }
        match self.node_id(node).or_else(|| node.parse().ok()) {
            Some(NodeId::Export(_)) => ResourceType::Export,
            _ => ResourceType::Source,
        }
    }

    fn fqn(&self, node: &str) -> Vec<String> {
        CompiledProject::fqn(self, node)
    }

    fn path(&self, node: &str) -> Option<String> {
        self.node_path(node)
    }

    fn tags(&self, node: &str) -> Vec<String> {
        self.tags_of(node)
    }

    fn config(&self, node: &str, key: &str) -> Option<Value> {
        let m = self.models.get(node)?;
        if key == "materialized" {
            return Some(Value::String(m.config.materialized.as_str().to_string()));
        }
        if key == "tags" {
            return Some(Value::from(m.config.tags.clone()));
        }
        let mut parts = key.split('.');
        let first = m.config.raw.get(parts.next()?)?;
        parts.try_fold(first, |v, p| v.get(p)).cloned()
    }
}
