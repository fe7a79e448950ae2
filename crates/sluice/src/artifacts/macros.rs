//! The manifest's `macros` and each node's `depends_on.macros`: what `state:modified.macros` compares.
//!
//! A macro is `macro.<project>.<name>` with its block as `macro_sql` (what dbt compares between two
//! manifests) and the macros it calls in its own `depends_on.macros`; a node lists the macros its SQL
//! calls directly, so that a change is found through any chain of macros, as dbt finds it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sluice_core::macros::direct_calls;
use sluice_transform::CompiledProject;
use sluice_transform::select::relative;

/// The project's macros by name: their block text and file.
pub struct Macros {
    project: String,
    /// name → (block, file relative to the project)
    blocks: BTreeMap<String, (String, String)>,
    known: BTreeSet<String>,
}

impl Macros {
    /// Every macro block of the project's macro files (the first of a name wins, as when rendering).
    pub fn of(compiled: &CompiledProject) -> Macros {
        let mut blocks = BTreeMap::new();
        for file in &compiled.project.macros {
            for b in file.blocks() {
                let path = relative(&compiled.project.root, &b.path);
                blocks.entry(b.name).or_insert((b.text, path));
            }
        }
        let known = blocks.keys().cloned().collect();
        Macros {
            project: compiled.project.config.name.clone(),
            blocks,
            known,
        }
    }

    /// dbt's `unique_id` of a macro.
    pub fn id(&self, name: &str) -> String {
        format!("macro.{}.{name}", self.project)
    }

    /// The ids of the macros `text` calls directly.
    pub fn called_by(&self, text: &str) -> Vec<String> {
        direct_calls(text, &self.known)
            .iter()
            .map(|m| self.id(m))
            .collect()
    }

    /// The manifest's `macros` object.
    pub fn manifest_entries(&self, created_at: f64) -> Map<String, Value> {
        let mut out = Map::new();
        for (name, (text, original)) in &self.blocks {
            // Its own header names it; that is not a call.
            let calls: Vec<String> = self
                .called_by(text)
                .into_iter()
                .filter(|id| *id != self.id(name))
                .collect();
            let path = original
                .split_once('/')
                .map_or(original.clone(), |(_, rest)| rest.to_string());
            out.insert(
                self.id(name),
                json!({
                    "name": name,
                    "resource_type": "macro",
                    "package_name": self.project,
                    "path": path,
                    "original_file_path": original,
                    "unique_id": self.id(name),
                    "macro_sql": text,
                    "depends_on": {"macros": calls},
                    "description": "",
                    "meta": {},
                    "docs": {"show": true, "node_color": null},
                    "patch_path": null,
                    "arguments": [],
                    "created_at": created_at,
                    "supported_languages": null,
                }),
            );
        }
        out
    }
}
