//! `dbt_project.yml`: the paths, the variables and the `models:` / `seeds:` / `snapshots:` config trees.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_yaml_ng::Value;
use sluice_core::ConfigError;
use sluice_core::yaml::parse_yaml;

/// The parts of `dbt_project.yml` Sluice reads; every other key is kept in `other` (and the ones that
/// change behaviour, such as `on-run-start`, are reported as unsupported).
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
    pub vars: BTreeMap<String, Value>,
    /// The `models:` config tree.
    #[serde(default)]
    pub models: Value,
    /// The `seeds:` config tree.
    #[serde(default)]
    pub seeds: Value,
    /// The `snapshots:` config tree.
    #[serde(default)]
    pub snapshots: Value,
    /// The `data_tests:` / `tests:` config tree.
    #[serde(default, alias = "tests")]
    pub data_tests: Value,
    /// Everything else (version, profile, clean-targets, …).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
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
    /// Parses `dbt_project.yml`.
    pub fn load(path: &Path, text: &str) -> Result<DbtProjectFile, ConfigError> {
        parse_yaml(path, text)
    }

    /// Variables with the ones scoped under this project's name lifted to the top level.
    pub fn flat_vars(&self) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        let mut scoped = BTreeMap::new();
        for (k, v) in &self.vars {
            let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
            if k == &self.name
                && let serde_json::Value::Object(m) = &json
            {
                scoped.extend(m.clone());
                continue;
            }
            out.insert(k.clone(), json);
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
        assert!(p.other.contains_key("profile"));
    }
}
