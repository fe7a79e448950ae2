//! dbt properties files (`schema.yml`): `models:`, `seeds:`, `snapshots:` and `sources:` entries.
//!
//! A file is parsed once into a positioned tree; each entry keeps the places of its tests and config
//! keys so that a later problem (an unknown generic test, a bad test entry, a hook) points at them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_core::error::Position;
use sluice_core::yaml::{Node, Seg, Spanned, Value, from_node, parse_doc};
use sluice_core::{ConfigError, ModelProperties};

/// One properties file.
#[derive(Debug, Default)]
pub struct PropertiesFile {
    /// Model entries.
    pub models: Vec<Described>,
    /// Seed entries.
    pub seeds: Vec<Described>,
    /// Snapshot entries.
    pub snapshots: Vec<Described>,
    /// dbt sources (tables already in the warehouse).
    pub sources: Vec<DbtSource>,
    /// Every other top-level key (`exposures`, `unit_tests`, `semantic_models`, …) with its place.
    pub other: Vec<(String, Position)>,
}

/// One resource's properties, with the places later messages point at.
#[derive(Debug, Clone)]
pub struct Described {
    /// The properties.
    pub props: ModelProperties,
    /// Where the entry starts.
    pub pos: Position,
    /// Where each of its tests is (`tests` / `data_tests`, in order).
    pub tests: Vec<Position>,
    /// Where each test of each column is (columns in order).
    pub column_tests: Vec<Vec<Position>>,
    /// Where each key of its `config:` is.
    pub config: BTreeMap<String, Position>,
}

impl Described {
    /// Properties that come from no file (a resource without an entry).
    pub fn unplaced(props: ModelProperties) -> Described {
        Described {
            props,
            pos: Position { line: 0, column: 0 },
            tests: Vec::new(),
            column_tests: Vec::new(),
            config: BTreeMap::new(),
        }
    }

    fn new(props: ModelProperties, node: &Node) -> Described {
        let columns = match node.get("columns").map(|c| &c.value) {
            Some(Value::Seq(cols)) => cols.iter().map(test_places).collect(),
            _ => Vec::new(),
        };
        let config = match node.get("config").map(|c| &c.value) {
            Some(Value::Map(entries)) => entries
                .iter()
                .map(|e| (e.key.replace('-', "_"), e.key_pos))
                .collect(),
            _ => BTreeMap::new(),
        };
        Described {
            props,
            pos: node.pos,
            tests: test_places(node),
            column_tests: columns,
            config,
        }
    }
}

/// The places of the tests of a model or column entry.
fn test_places(node: &Node) -> Vec<Position> {
    match node
        .get("data_tests")
        .or_else(|| node.get("tests"))
        .map(|t| &t.value)
    {
        Some(Value::Seq(items)) => items.iter().map(|t| t.pos).collect(),
        _ => Vec::new(),
    }
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
    /// Table name, with its place.
    pub name: Spanned<String>,
}

/// Sections that are read elsewhere or only document (no effect on a run).
pub const IGNORED_SECTIONS: &[&str] = &["exposures", "groups", "macros", "analyses"];

/// Reads a properties file (dbt 1.10's `arguments:` form of tests is read as the flat form), every
/// problem with its line and column.
pub fn load(path: &Path, text: &str) -> Result<PropertiesFile, Vec<ConfigError>> {
    let mut doc = parse_doc(path, text).map_err(|e| vec![e])?;
    let mut file = PropertiesFile::default();
    let mut errors = Vec::new();
    let entries = match &mut doc.value {
        Value::Null => return Ok(file),
        Value::Map(entries) => entries,
        _ => {
            return Err(vec![ConfigError::At {
                path: path.to_path_buf(),
                position: doc.pos,
                field: String::new(),
                message: format!(
                    "a properties file is a mapping (`version: 2`, `models:` …), found {}",
                    doc.describe()
                ),
            }]);
        }
    };
    for entry in entries.iter_mut() {
        let base = vec![Seg::Key(entry.key.clone())];
        let list = match entry.key.as_str() {
            "version" => continue,
            "models" => &mut file.models,
            "seeds" => &mut file.seeds,
            "snapshots" => &mut file.snapshots,
            "sources" => {
                match from_node::<Option<Vec<DbtSource>>>(path, &entry.node, base, &[]) {
                    Ok(s) => file.sources = s.unwrap_or_default(),
                    Err(e) => errors.extend(e),
                }
                continue;
            }
            _ => {
                file.other.push((entry.key.clone(), entry.key_pos));
                continue;
            }
        };
        let items = match &mut entry.node.value {
            Value::Null => continue,
            Value::Seq(items) => items,
            _ => {
                errors.push(ConfigError::At {
                    path: path.to_path_buf(),
                    position: entry.node.pos,
                    field: entry.key.clone(),
                    message: format!("expected a sequence, found {}", entry.node.describe()),
                });
                continue;
            }
        };
        for (i, item) in items.iter_mut().enumerate() {
            flatten_entry(item);
            let mut at = base.clone();
            at.push(Seg::Index(i));
            match from_node::<ModelProperties>(path, item, at, &[]) {
                Ok(mut props) => {
                    props.path = Some(PathBuf::from(path));
                    list.push(Described::new(props, item));
                }
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

/// Flattens the `arguments:` of every test of a resource entry and of its columns.
fn flatten_entry(entry: &mut Node) {
    flatten_tests(entry);
    if let Value::Map(keys) = &mut entry.value
        && let Some(cols) = keys.iter_mut().find(|e| e.key == "columns")
        && let Value::Seq(cols) = &mut cols.node.value
    {
        cols.iter_mut().for_each(flatten_tests);
    }
}

fn flatten_tests(entry: &mut Node) {
    let Value::Map(keys) = &mut entry.value else {
        return;
    };
    for e in keys
        .iter_mut()
        .filter(|e| e.key == "tests" || e.key == "data_tests")
    {
        if let Value::Seq(tests) = &mut e.node.value {
            tests.iter_mut().for_each(flatten_arguments);
        }
    }
}

/// `{accepted_values: {arguments: {values: [..]}, config: {..}}}` → `{accepted_values: {values: [..], config: {..}}}`.
fn flatten_arguments(test: &mut Node) {
    let Value::Map(tests) = &mut test.value else {
        return;
    };
    for t in tests.iter_mut() {
        let Value::Map(body) = &mut t.node.value else {
            continue;
        };
        let Some(i) = body.iter().position(|e| e.key == "arguments") else {
            continue;
        };
        let args = body.remove(i);
        if let Value::Map(args) = args.node.value {
            for a in args {
                if !body.iter().any(|e| e.key == a.key) {
                    body.push(a);
                }
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
        assert_eq!(f.sources[0].tables[0].name.value, "orders");
        assert_eq!(
            f.sources[0].tables[0].name.pos,
            Position {
                line: 5,
                column: 15
            }
        );
        let m = &f.models[0];
        let t = &m.props.columns[0].tests[0];
        let body = t.get("accepted_values").unwrap();
        assert!(body.get("values").is_some() && body.get("arguments").is_none());
        assert_eq!(
            m.column_tests,
            [[Position {
                line: 11,
                column: 13
            }]]
        );
        assert_eq!(
            f.other,
            [(
                "unit_tests".to_string(),
                Position {
                    line: 15,
                    column: 1
                }
            )]
        );
    }

    #[test]
    fn every_bad_entry_is_reported_at_its_place() {
        let text = "version: 2\nmodels:\n  - name: a\n    descripton: x\n  - name: b\n    columns:\n      - name: c\n        tests: {unique: {}}\nseeds: nope\n";
        let errors = load(Path::new("schema.yml"), text).unwrap_err();
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("schema.yml:4:5: field `models[0].descripton`: unknown field"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("schema.yml:8:"), "{lines:?}");
        assert!(
            lines[2].starts_with("schema.yml:9:8: field `seeds`: expected a sequence"),
            "{lines:?}"
        );
    }
}
