//! `dbt_project.yml`: the paths, the variables and the `models:` / `seeds:` / `snapshots:` config trees.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value as Json;
use sluice_core::ConfigError;
use sluice_core::error::Position;
use sluice_core::yaml::{Entry, Node, Value, from_node, parse_doc};

/// The parts of `dbt_project.yml` Sluice reads, parsed once with the place of every value; every
/// top-level key is also kept in `other` (and the ones that change behaviour, such as `on-run-start`,
/// are reported as unsupported at their place).
#[derive(Debug, Clone, Deserialize)]
pub struct DbtProjectFile {
    /// Project name (the first level of the config trees).
    pub name: String,
    /// Folders of models.
    #[serde(
        rename = "model-paths",
        alias = "source-paths",
        default = "default_models"
    )]
    pub model_paths: Vec<String>,
    /// Folders of seeds.
    #[serde(rename = "seed-paths", alias = "data-paths", default = "default_seeds")]
    pub seed_paths: Vec<String>,
    /// Folders of singular tests.
    #[serde(rename = "test-paths", default = "default_tests")]
    pub test_paths: Vec<String>,
    /// Folders of macros.
    #[serde(rename = "macro-paths", default = "default_macros")]
    pub macro_paths: Vec<String>,
    /// Folders of snapshots.
    #[serde(rename = "snapshot-paths", default = "default_snapshots")]
    pub snapshot_paths: Vec<String>,
    /// Folders searched for `{% docs %}` blocks (default: every other path).
    #[serde(rename = "docs-paths", default)]
    pub docs_paths: Option<Vec<String>>,
    /// Project variables (global, or scoped under the project name).
    #[serde(default)]
    pub vars: BTreeMap<String, Json>,
    /// The `models:` config tree.
    #[serde(skip, default = "empty")]
    pub models: Node,
    /// The `seeds:` config tree.
    #[serde(skip, default = "empty")]
    pub seeds: Node,
    /// The `snapshots:` config tree.
    #[serde(skip, default = "empty")]
    pub snapshots: Node,
    /// The `data_tests:` / `tests:` config tree.
    #[serde(skip, default = "empty")]
    pub data_tests: Node,
    /// Every top-level key with its place (version, profile, clean-targets, hooks, …).
    #[serde(skip)]
    pub other: Vec<Entry>,
}

fn empty() -> Node {
    Node {
        pos: Position { line: 1, column: 1 },
        value: Value::Null,
    }
}

fn default_models() -> Vec<String> {
    vec!["models".into()]
}
fn default_seeds() -> Vec<String> {
    vec!["seeds".into()]
}
fn default_tests() -> Vec<String> {
    vec!["tests".into()]
}
fn default_macros() -> Vec<String> {
    vec!["macros".into()]
}
fn default_snapshots() -> Vec<String> {
    vec!["snapshots".into()]
}

impl DbtProjectFile {
    /// Parses `dbt_project.yml`, every problem with its line and column.
    pub fn load(path: &Path, text: &str) -> Result<DbtProjectFile, Vec<ConfigError>> {
        let doc = parse_doc(path, text).map_err(|e| vec![e])?;
        let mut file: DbtProjectFile = from_node(path, &doc, Vec::new(), &[])?;
        let tree = |key: &str| doc.get(key).cloned().unwrap_or_else(empty);
        file.models = tree("models");
        file.seeds = tree("seeds");
        file.snapshots = tree("snapshots");
        file.data_tests = doc
            .get("data_tests")
            .or_else(|| doc.get("tests"))
            .cloned()
            .unwrap_or_else(empty);
        if let Value::Map(entries) = doc.value {
            file.other = entries;
        }
        Ok(file)
    }

    /// The top-level entry `key`.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.other.iter().find(|e| e.key == key)
    }

    /// Variables with the ones scoped under this project's name lifted to the top level.
    pub fn flat_vars(&self) -> BTreeMap<String, Json> {
        let mut out = BTreeMap::new();
        let mut scoped = BTreeMap::new();
        for (k, v) in &self.vars {
            if k == &self.name
                && let Json::Object(m) = v
            {
                scoped.extend(m.clone());
                continue;
            }
            out.insert(k.clone(), v.clone());
        }
        out.extend(scoped);
        out
    }

    /// The folders searched for docs blocks.
    pub fn docs_paths(&self) -> Vec<String> {
        self.docs_paths.clone().unwrap_or_else(|| {
            let mut all = self.model_paths.clone();
            all.extend(self.seed_paths.iter().cloned());
            all.extend(self.test_paths.iter().cloned());
            all.extend(self.macro_paths.iter().cloned());
            all.extend(self.snapshot_paths.iter().cloned());
            all.push("docs".into());
            all
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_paths_and_scoped_vars() {
        let text = "name: shop\nversion: '1.0'\nprofile: x\nmodel-paths: [transform]\nvars:\n  a: 1\n  shop:\n    b: two\n";
        let p = DbtProjectFile::load(Path::new("dbt_project.yml"), text).unwrap();
        assert_eq!(p.model_paths, ["transform"]);
        assert_eq!(p.seed_paths, ["seeds"]);
        let vars = p.flat_vars();
        assert_eq!(vars["a"], 1);
        assert_eq!(vars["b"], "two");
        assert!(p.entry("profile").is_some());
    }

    #[test]
    fn every_problem_has_its_place() {
        let text = "name: shop\nmodel-paths: transform\nseed-paths: [a, [b]]\n";
        let errors = DbtProjectFile::load(Path::new("dbt_project.yml"), text).unwrap_err();
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("dbt_project.yml:2:14: field `model-paths`"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("dbt_project.yml:3:17: field `seed-paths[1]`"),
            "{lines:?}"
        );
        let err = DbtProjectFile::load(Path::new("dbt_project.yml"), "name: [x\n").unwrap_err();
        assert!(
            err[0].to_string().starts_with("dbt_project.yml:"),
            "{err:?}"
        );
    }
}
