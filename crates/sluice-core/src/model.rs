//! `models/<layer>/*.sql` and their dbt-style properties files (`models/**/*.yml`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The lake layer a model builds into; it comes from the model's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelLayer {
    /// Cleaned, deduplicated, conformed: the shared curated layer.
    Silver,
    /// Consumer-specific marts and features.
    Gold,
}

impl ModelLayer {
    /// `silver` or `gold`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelLayer::Silver => "silver",
            ModelLayer::Gold => "gold",
        }
    }

    /// Parses a folder name.
    pub fn from_folder(name: &str) -> Option<Self> {
        match name {
            "silver" => Some(ModelLayer::Silver),
            "gold" => Some(ModelLayer::Gold),
            _ => None,
        }
    }
}

impl fmt::Display for ModelLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SQL model file.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Model name: the file stem. Unique across the project.
    pub name: String,
    /// Layer from the folder (`models/silver/...` or `models/gold/...`).
    pub layer: ModelLayer,
    /// The `.sql` file.
    pub path: PathBuf,
    /// The Jinja-SQL text.
    pub sql: String,
    /// Properties from `models/**/*.yml`, if any file describes this model.
    pub properties: ModelProperties,
}

/// dbt-style properties of one model.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProperties {
    /// Model name the entry describes.
    #[serde(default)]
    pub name: String,
    /// What the model is.
    #[serde(default)]
    pub description: Option<String>,
    /// Who is alerted when it breaks.
    #[serde(default)]
    pub owner: Option<String>,
    /// Tags for selection.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Model config (materialized, unique_key, …); a `config()` call in the SQL wins over this.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Model-level checks (dbt `tests`).
    #[serde(default, alias = "data_tests")]
    pub tests: Vec<serde_yaml_ng::Value>,
    /// Column descriptions and checks.
    #[serde(default)]
    pub columns: Vec<ColumnProperties>,
    /// Freshness SLA for the model's data.
    #[serde(default)]
    pub freshness: Option<serde_yaml_ng::Value>,
    /// dbt's free-form metadata (an `owner` inside is honored).
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// Accepted for dbt compatibility; not used.
    #[serde(default)]
    pub docs: Option<serde_yaml_ng::Value>,
    /// Accepted for dbt compatibility; not used.
    #[serde(default)]
    pub constraints: Option<serde_yaml_ng::Value>,
    /// Accepted for dbt compatibility; not used.
    #[serde(default)]
    pub access: Option<String>,
    /// Accepted for dbt compatibility; not used.
    #[serde(default)]
    pub group: Option<String>,
    /// The file that held these properties.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// Properties of one column.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnProperties {
    /// Column name.
    pub name: String,
    /// What the column means.
    #[serde(default)]
    pub description: Option<String>,
    /// Declared type (documentation only for now).
    #[serde(default)]
    pub data_type: Option<String>,
    /// Column checks (dbt `tests`).
    #[serde(default, alias = "data_tests")]
    pub tests: Vec<serde_yaml_ng::Value>,
    /// dbt's free-form metadata.
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// Accepted for dbt compatibility; not used.
    #[serde(default)]
    pub quote: Option<bool>,
    /// Accepted for dbt compatibility; not used.
    #[serde(default)]
    pub constraints: Option<serde_yaml_ng::Value>,
    /// Tags (dbt compatibility).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A properties file: `version: 2` and `models:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PropertiesFile {
    #[serde(default)]
    #[allow(dead_code)]
    pub version: Option<u32>,
    #[serde(default)]
    pub models: Vec<ModelProperties>,
    /// Source properties are read by the source files themselves; accepted here for dbt compatibility.
    #[serde(default)]
    #[allow(dead_code)]
    pub sources: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    pub seeds: Option<serde_yaml_ng::Value>,
}

/// How bad a failing check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported; the model still publishes.
    Warn,
    /// The model does not publish and its downstream is skipped.
    Error,
}

impl Severity {
    /// `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// One check declared on a model or a column, before it is resolved by `sluice-quality`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Unique name, e.g. `not_null_stg_orders_order_id`.
    pub name: String,
    /// The check kind: `not_null`, `unique`, `accepted_values`, …
    pub kind: String,
    /// The model it checks.
    pub model: String,
    /// The column, for column checks.
    pub column: Option<String>,
    /// Kind-specific arguments (everything but `severity`, `where`, `name`, `config`).
    pub args: Map<String, Value>,
    /// What a failure does.
    pub severity: Severity,
    /// An optional SQL filter: only rows matching it are checked.
    pub where_clause: Option<String>,
    /// dbt's `error_if` (e.g. `">10"`): the failing-row count that makes an error check fail
    /// (default: any).
    pub error_if: Option<String>,
    /// dbt's `warn_if`: the failing-row count that makes the check warn (default: any).
    pub warn_if: Option<String>,
    /// The properties file that declared it.
    pub path: PathBuf,
}

impl CheckSpec {
    /// Parses one dbt-style test entry: `not_null`, `{unique: {config: {severity: warn}}}`,
    /// `{accepted_values: {values: [..]}}`, `{expression: "amount >= 0"}` …
    pub fn parse(
        entry: &serde_yaml_ng::Value,
        model: &str,
        column: Option<&str>,
        path: &std::path::Path,
    ) -> Result<CheckSpec, String> {
        let json: Value = serde_json::to_value(entry)
            .map_err(|e| format!("test entry is not representable: {e}"))?;
        CheckSpec::from_json(json, model, column, path)
    }

    /// [`CheckSpec::parse`] for an entry already read as JSON (a reader with its own YAML tree).
    pub fn from_json(
        json: Value,
        model: &str,
        column: Option<&str>,
        path: &std::path::Path,
    ) -> Result<CheckSpec, String> {
        let (kind, raw_args) = match json {
            Value::String(kind) => (kind, Value::Object(Map::new())),
            Value::Object(map) if map.len() == 1 => {
                let Some((k, v)) = map.into_iter().next() else {
                    return Err("empty test entry".into());
                };
                (k, v)
            }
            Value::Object(map) => {
                return Err(format!(
                    "a test entry must have exactly one key (the test name), found {}: {}",
                    map.len(),
                    map.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            other => return Err(format!("expected a test name or a map, found {other}")),
        };
        let mut args = match raw_args {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            // Shorthand: `expression: "amount > 0"`, `accepted_values: [a, b]`.
            Value::String(s) if kind == "expression" => {
                let mut m = Map::new();
                m.insert("expr".into(), Value::String(s));
                m
            }
            Value::Array(a) if kind == "accepted_values" => {
                let mut m = Map::new();
                m.insert("values".into(), Value::Array(a));
                m
            }
            other => {
                return Err(format!(
                    "arguments of `{kind}` must be a map, found {other}"
                ));
            }
        };
        let mut config = match args.remove("config") {
            Some(Value::Object(c)) => c,
            Some(other) => {
                return Err(format!("`config` of `{kind}` must be a map, found {other}"));
            }
            None => Map::new(),
        };
        // `severity`, `where` and `name` may sit at the top level or inside `config` (dbt accepts both).
        for key in ["severity", "where", "name", "error_if", "warn_if"] {
            if let Some(v) = args.remove(key) {
                config.entry(key.to_string()).or_insert(v);
            }
        }
        let severity = match config.get("severity").and_then(Value::as_str) {
            None => Severity::Error,
            Some(s) if s.eq_ignore_ascii_case("error") => Severity::Error,
            Some(s) if s.eq_ignore_ascii_case("warn") => Severity::Warn,
            Some(s) => return Err(format!("severity must be `error` or `warn`, found `{s}`")),
        };
        let where_clause = config
            .get("where")
            .and_then(Value::as_str)
            .map(str::to_string);
        let threshold = |key: &str| -> Result<Option<String>, String> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => crate::threshold::Threshold::parse(s)
                    .map(|_| Some(s.clone()))
                    .map_err(|e| format!("`{key}`: {e}")),
                Some(other) => Err(format!(
                    "`{key}` must be a condition such as \">10\", found {other}"
                )),
            }
        };
        let error_if = threshold("error_if")?;
        let warn_if = threshold("warn_if")?;
        let name = match config.get("name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => match column {
                Some(c) => format!("{kind}_{model}_{c}"),
                None => format!("{kind}_{model}"),
            },
        };
        Ok(CheckSpec {
            name,
            kind,
            model: model.to_string(),
            column: column.map(str::to_string),
            args,
            severity,
            where_clause,
            error_if,
            warn_if,
            path: path.to_path_buf(),
        })
    }
}

/// Model-level properties merged from all properties files, by model name.
pub type PropertiesByModel = BTreeMap<String, ModelProperties>;

/// Checks being collected from properties files: a check whose name is taken (the same kind declared
/// twice on one target) is renamed `<name>_2`, `_3`…, in O(1) however many checks a project has.
#[derive(Debug, Default)]
pub struct CheckCollector {
    checks: Vec<CheckSpec>,
    names: std::collections::HashSet<String>,
}

impl CheckCollector {
    /// Adds `check`, renamed when its name is taken.
    pub fn push(&mut self, mut check: CheckSpec) {
        let base = check.name.clone();
        let mut n = 2;
        while self.names.contains(&check.name) {
            check.name = format!("{base}_{n}");
            n += 1;
        }
        self.names.insert(check.name.clone());
        self.checks.push(check);
    }

    /// The checks, in the order they were added.
    pub fn into_checks(self) -> Vec<CheckSpec> {
        self.checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(yaml: &str) -> Result<CheckSpec, String> {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        CheckSpec::parse(&v, "stg_orders", Some("status"), Path::new("p.yml"))
    }

    #[test]
    fn parses_dbt_test_shapes() {
        let c = parse("not_null").unwrap();
        assert_eq!((c.kind.as_str(), c.severity), ("not_null", Severity::Error));
        assert_eq!(c.name, "not_null_stg_orders_status");
        let c = parse("accepted_values: {values: [a, b], config: {severity: warn}}").unwrap();
        assert_eq!(c.severity, Severity::Warn);
        assert_eq!(c.args["values"], serde_json::json!(["a", "b"]));
        let c = parse("range: {min: 0, severity: warn, where: \"status = 'x'\"}").unwrap();
        assert_eq!(c.severity, Severity::Warn);
        assert_eq!(c.where_clause.as_deref(), Some("status = 'x'"));
        assert!(!c.args.contains_key("severity"));
        let c = parse("expression: \"amount >= 0\"").unwrap();
        assert_eq!(c.args["expr"], "amount >= 0");
    }

    #[test]
    fn rejects_bad_entries() {
        assert!(
            parse("{a: 1, b: 2}")
                .unwrap_err()
                .contains("exactly one key")
        );
        assert!(
            parse("unique: {severity: fatal}")
                .unwrap_err()
                .contains("`error` or `warn`")
        );
    }
}
