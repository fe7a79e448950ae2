//! What the selector ([`sluice_core::selector`]) needs to know about the nodes of a compiled project:
//! kinds, qualified names, files, tags and resolved config.

use std::path::Path;

use serde_json::Value;
use sluice_core::exports::EXPORT_NODE_PREFIX;
use sluice_core::selector::{NodeFacts, ResourceType};

use crate::compiled::{CompiledProject, Materialized};

impl CompiledProject {
    /// The file that defines a node, relative to the project folder, with `/` separators.
    pub fn node_path(&self, node: &str) -> Option<String> {
        let path = if let Some(m) = self.models.get(node) {
            m.path.clone()
        } else if let Some(e) = node
            .strip_prefix(EXPORT_NODE_PREFIX)
            .and_then(|n| self.project.export(n))
        {
            e.path.clone()
        } else {
            let s = self.sources.get(node)?;
            self.project.source(&s.source)?.path.clone()
        };
        Some(relative(&self.project.root, &path))
    }

    /// dbt's fully qualified name: `[project, folders below the model folder…, name]` for models,
    /// seeds and snapshots; `[project, source, table]` for source tables; `[project, name]` for exports.
    pub fn fqn(&self, node: &str) -> Vec<String> {
        let project = self.project.config.name.clone();
        if let Some(s) = self.sources.get(node) {
            return vec![project, s.source.clone(), s.table.clone()];
        }
        let mut fqn = vec![project];
        if self.models.contains_key(node)
            && let Some(path) = self.node_path(node)
        {
            // `models/staging/stg_orders.sql` → `staging`: the first folder is the resource folder.
            let parts: Vec<&str> = path.split('/').collect();
            if parts.len() > 2 {
                fqn.extend(parts[1..parts.len() - 1].iter().map(|p| p.to_string()));
            }
        }
        fqn.push(
            node.strip_prefix(EXPORT_NODE_PREFIX)
                .unwrap_or(node)
                .to_string(),
        );
        fqn
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
        if node.starts_with(EXPORT_NODE_PREFIX) {
            ResourceType::Export
        } else {
            ResourceType::Source
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
