//! dbt properties files (`schema.yml`): `models:`, `seeds:`, `snapshots:` and `sources:` entries.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;
use sluice_core::ModelProperties;
use sluice_core::yaml::parse_yaml;

/// One properties file.
#[derive(Debug, Deserialize)]
pub struct PropertiesFile {
    /// `version: 2`.
    #[serde(default)]
    pub version: Option<Value>,
    /// Model entries.
    #[serde(default)]
    pub models: Vec<ModelProperties>,
    /// Seed entries.
    #[serde(default)]
    pub seeds: Vec<ModelProperties>,
    /// Snapshot entries.
    #[serde(default)]
    pub snapshots: Vec<ModelProperties>,
    /// dbt sources (tables already in the warehouse).
    #[serde(default)]
    pub sources: Vec<DbtSource>,
    /// Every other section (`exposures`, `unit_tests`, `semantic_models`, …).
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, Value>,
}

/// A dbt source: only its name and tables matter here.
#[derive(Debug, Deserialize)]
pub struct DbtSource {
    /// Source name.
    pub name: String,
    /// Tables.
    #[serde(default)]
    pub tables: Vec<DbtSourceTable>,
}

/// A dbt source table.
#[derive(Debug, Deserialize)]
pub struct DbtSourceTable {
    /// Table name.
    pub name: String,
}

/// Sections that are read elsewhere or only document (no effect on a run).
pub const IGNORED_SECTIONS: &[&str] = &["exposures", "groups", "macros", "analyses"];

/// Reads a properties file, after turning dbt 1.10's `arguments:` form of tests into the flat form.
pub fn load(path: &Path, text: &str) -> Result<PropertiesFile, sluice_core::ConfigError> {
    let mut file: PropertiesFile = parse_yaml(path, text)?;
    for m in file
        .models
        .iter_mut()
        .chain(file.seeds.iter_mut())
        .chain(file.snapshots.iter_mut())
    {
        m.path = Some(PathBuf::from(path));
        for t in m.tests.iter_mut() {
            flatten_arguments(t);
        }
        for c in m.columns.iter_mut() {
            for t in c.tests.iter_mut() {
                flatten_arguments(t);
            }
        }
    }
    Ok(file)
}

/// `{accepted_values: {arguments: {values: [..]}, config: {..}}}` → `{accepted_values: {values: [..], config: {..}}}`.
fn flatten_arguments(test: &mut Value) {
    let Some(map) = test.as_mapping_mut() else {
        return;
    };
    for (_, body) in map.iter_mut() {
        let Some(body) = body.as_mapping_mut() else {
            continue;
        };
        if let Some(Value::Mapping(args)) = body.remove("arguments") {
            for (k, v) in args {
                body.entry(k).or_insert(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_models_sources_and_new_test_syntax() {
        let text = "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: orders\nmodels:\n  - name: m\n    columns:\n      - name: s\n        data_tests:\n          - accepted_values:\n              arguments:\n                values: [a]\n              config: {severity: warn}\nunit_tests: []\n";
        let f = load(Path::new("schema.yml"), text).unwrap();
        assert_eq!(f.sources[0].tables[0].name, "orders");
        let t = &f.models[0].columns[0].tests[0];
        let body = t.get("accepted_values").unwrap();
        assert!(body.get("values").is_some() && body.get("arguments").is_none());
        assert!(f.other.contains_key("unit_tests"));
    }
}
