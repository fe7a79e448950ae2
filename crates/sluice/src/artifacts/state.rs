//! `--state DIR`: compare the project with a previous run's `manifest.json` for `state:` selectors.
//!
//! A node is new when its `unique_id` is not in the previous manifest; its body changed when its
//! checksum did (a model's SQL file, a seed's CSV, a source's file); its configs changed when its
//! resolved `config` did.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use sluice_core::selector::{NodeFacts, NodeState, ResourceType};
use sluice_transform::CompiledProject;

use super::{Invocation, manifest, unique_id};

/// What the previous manifest says of each node: (body checksum, config).
pub struct PreviousManifest {
    nodes: BTreeMap<String, (Value, Value)>,
}

impl PreviousManifest {
    /// Reads `<dir>/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "--state {}: cannot read {} (give the target/ folder of a previous run)",
                dir.display(),
                path.display()
            )
        })?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON manifest", path.display()))?;
        Self::from_manifest(&value).ok_or_else(|| {
            anyhow!(
                "{}: not a dbt manifest (no `nodes` and `sources` objects)",
                path.display()
            )
        })
    }

    /// The comparable parts of a manifest's nodes and sources.
    pub fn from_manifest(value: &Value) -> Option<Self> {
        let mut nodes = BTreeMap::new();
        for key in ["nodes", "sources"] {
            for (id, node) in value.get(key)?.as_object()? {
                nodes.insert(id.clone(), fingerprint(node));
            }
        }
        Some(Self { nodes })
    }

    /// How each graph node of `compiled` compares with this manifest.
    pub fn compare(&self, compiled: &CompiledProject) -> BTreeMap<String, NodeState> {
        let current = manifest::manifest(compiled, &Invocation::new("state", Default::default()));
        let now = Self::from_manifest(&current)
            .map(|m| m.nodes)
            .unwrap_or_default();
        compiled
            .graph
            .nodes()
            .filter_map(|n| {
                let id = unique_id(compiled, n)?;
                let state = match (self.nodes.get(&id), now.get(&id)) {
                    (None, _) => NodeState::New,
                    (Some(before), Some(after)) if before == after => NodeState::Unmodified,
                    (Some(before), Some(after)) => NodeState::Modified {
                        body: before.0 != after.0,
                        configs: before.1 != after.1,
                    },
                    (Some(_), None) => NodeState::Unmodified,
                };
                Some((n.to_string(), state))
            })
            .collect()
    }
}

/// (checksum, config) of a manifest entry; a source's checksum is in `meta.sluice_checksum`.
fn fingerprint(node: &Value) -> (Value, Value) {
    let body = node
        .pointer("/checksum/checksum")
        .or_else(|| node.pointer("/meta/sluice_checksum"))
        .cloned()
        .unwrap_or(Value::Null);
    let config = node.get("config").cloned().unwrap_or(Value::Null);
    (body, config)
}

/// A compiled project's facts plus, when `--state` was given, the comparison with it.
pub struct StateFacts<'a> {
    /// The project.
    pub project: &'a CompiledProject,
    /// Each node's state; `None` without `--state`.
    pub states: Option<BTreeMap<String, NodeState>>,
}

impl NodeFacts for StateFacts<'_> {
    fn resource_type(&self, node: &str) -> ResourceType {
        self.project.resource_type(node)
    }
    fn fqn(&self, node: &str) -> Vec<String> {
        NodeFacts::fqn(self.project, node)
    }
    fn path(&self, node: &str) -> Option<String> {
        self.project.node_path(node)
    }
    fn tags(&self, node: &str) -> Vec<String> {
        self.project.tags_of(node)
    }
    fn config(&self, node: &str, key: &str) -> Option<Value> {
        self.project.config(node, key)
    }
    fn state(&self, node: &str) -> Option<NodeState> {
        // An export has no manifest entry: it counts as unmodified.
        Some(
            self.states
                .as_ref()?
                .get(node)
                .copied()
                .unwrap_or(NodeState::Unmodified),
        )
    }
    fn has_state(&self) -> bool {
        self.states.is_some()
    }
}
