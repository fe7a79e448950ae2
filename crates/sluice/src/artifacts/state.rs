//! `--state DIR`: compare the project with a previous run's `manifest.json` for `state:` selectors.
//!
//! A node is new when its `unique_id` is not in the previous manifest. Otherwise each of dbt's
//! `state:modified.<part>` sub-selectors compares one part of the two manifests' entries:
//!
//! | part | compares |
//! |---|---|
//! | `body` | the checksum (a model's SQL file, a seed's CSV, a source's or export's file) |
//! | `configs` | the resolved `config`, apart from `database`, `schema`, `alias` (and `contract`) |
//! | `relation` | `database`, `schema`, `alias` and `relation_name`, and those configs |
//! | `persisted_descriptions` | the description and column descriptions, where `persist_docs` persists them |
//! | `macros` | the `macro_sql` of every macro the node calls, directly or through other macros |
//! | `contract` | whether the contract is enforced, and its checksum (the columns' names and types) |

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use sluice_core::selector::{Changes, NodeFacts, NodeState, ResourceType};
use sluice_transform::CompiledProject;

use super::{Invocation, manifest, unique_id};

/// What the previous manifest says of each node and macro.
pub struct PreviousManifest {
    nodes: BTreeMap<String, Entry>,
    /// Macro id → (`macro_sql`, the macros it calls).
    macros: BTreeMap<String, (Value, Vec<String>)>,
}

/// The comparable parts of one manifest entry.
#[derive(PartialEq)]
struct Entry {
    body: Value,
    config: Value,
    relation: Vec<Value>,
    persisted: Vec<Value>,
    contract: Vec<Value>,
    macros: Vec<String>,
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

    /// The comparable parts of a manifest's nodes, sources, exposures and macros (a manifest
    /// without `exposures` or `macros`, as older ones, has none of them).
    pub fn from_manifest(value: &Value) -> Option<Self> {
        let mut nodes = BTreeMap::new();
        for key in ["nodes", "sources", "exposures"] {
            let Some(entries) = value.get(key) else {
                if key == "exposures" {
                    continue;
                }
                return None;
            };
            for (id, node) in entries.as_object()? {
                nodes.insert(id.clone(), Entry::of(node));
            }
        }
        let macros = value
            .get("macros")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(id, m)| {
                        let sql = m.get("macro_sql").cloned().unwrap_or(Value::Null);
                        (id.clone(), (sql, ids(m.pointer("/depends_on/macros"))))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self { nodes, macros })
    }

    /// How each graph node of `compiled` compares with this manifest.
    pub fn compare(&self, compiled: &CompiledProject) -> BTreeMap<String, NodeState> {
        let current = manifest::manifest(compiled, &Invocation::new("state", Default::default()));
        let Some(now) = Self::from_manifest(&current) else {
            return BTreeMap::new();
        };
        let changed_macros: BTreeSet<&String> = now
            .macros
            .iter()
            .filter(|(id, (sql, _))| self.macros.get(*id).is_none_or(|(old, _)| old != sql))
            .map(|(id, _)| id)
            .collect();
        compiled
            .graph
            .nodes()
            .filter_map(|n| {
                let id = unique_id(compiled, n)?;
                let state = match (self.nodes.get(&id), now.nodes.get(&id)) {
                    (None, _) => NodeState::New,
                    (Some(before), Some(after)) => {
                        let changes = Changes {
                            body: before.body != after.body,
                            configs: before.config != after.config,
                            relation: before.relation != after.relation,
                            persisted_descriptions: before.persisted != after.persisted,
                            macros: now.reaches(&after.macros, &changed_macros),
                            contract: before.contract != after.contract,
                        };
                        if changes.any() {
                            NodeState::Modified(changes)
                        } else {
                            NodeState::Unmodified
                        }
                    }
                    (Some(_), None) => NodeState::Unmodified,
                };
                Some((n.to_string(), state))
            })
            .collect()
    }

    /// Whether any macro reachable from `start` (through the macros' own calls) is in `changed`.
    fn reaches(&self, start: &[String], changed: &BTreeSet<&String>) -> bool {
        let mut seen = BTreeSet::new();
        let mut queue: Vec<&String> = start.iter().collect();
        while let Some(m) = queue.pop() {
            if !seen.insert(m) {
                continue;
            }
            if changed.contains(m) {
                return true;
            }
            if let Some((_, calls)) = self.macros.get(m) {
                queue.extend(calls);
            }
        }
        false
    }
}

impl Entry {
    /// A manifest entry's parts; a source's and an export's checksum is in `meta.sluice_checksum`.
    fn of(node: &Value) -> Entry {
        let get = |p: &str| node.pointer(p).cloned().unwrap_or(Value::Null);
        let body = node
            .pointer("/checksum/checksum")
            .or_else(|| node.pointer("/meta/sluice_checksum"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut config = node.get("config").cloned().unwrap_or(Value::Null);
        if let Value::Object(c) = &mut config {
            for key in ["database", "schema", "alias", "contract"] {
                c.remove(key);
            }
        }
        let relation = [
            "/database",
            "/schema",
            "/alias",
            "/relation_name",
            "/config/database",
            "/config/schema",
            "/config/alias",
        ]
        .iter()
        .map(|p| get(p))
        .collect();
        // dbt's rule: a description counts only where persist_docs persists it.
        let persist = |level: &str| {
            node.pointer(&format!("/config/persist_docs/{level}"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let mut persisted = Vec::new();
        if persist("relation") {
            persisted.push(get("/description"));
        }
        if persist("columns") {
            let cols = node.get("columns").and_then(Value::as_object);
            for (name, c) in cols.into_iter().flatten() {
                persisted.push(serde_json::json!([name, c.get("description")]));
            }
        }
        let contract = if get("/contract/enforced") == Value::Bool(true) {
            vec![Value::Bool(true), get("/contract/checksum")]
        } else {
            Vec::new()
        };
        Entry {
            body,
            config,
            relation,
            persisted,
            contract,
            macros: ids(node.pointer("/depends_on/macros")),
        }
    }
}

fn ids(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
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
