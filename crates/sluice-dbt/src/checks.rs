//! Generic tests of properties files as Sluice checks, with the `data_tests:` defaults applied.

use std::path::Path;

use serde_json::{Map, Value as Json};
use sluice_core::model::CheckCollector;
use sluice_core::{CheckSpec, ConfigError, ModelProperties};
use sluice_quality::{CHECK_KINDS, check_kind};

use crate::unsupported::{Unsupported, find_line};

/// Turns the tests of one resource's properties into checks; unknown generic tests are unsupported.
pub(crate) fn collect_checks(
    props: &ModelProperties,
    path: &Path,
    text: Option<&String>,
    defaults: &Map<String, Json>,
    checks: &mut CheckCollector,
    errors: &mut Vec<ConfigError>,
    unsupported: &mut Vec<Unsupported>,
) {
    let mut push = |entry: &serde_yaml_ng::Value, column: Option<&str>, field: String| {
        let kind = match entry {
            serde_yaml_ng::Value::String(s) => Some(s.clone()),
            serde_yaml_ng::Value::Mapping(m) => {
                m.keys().next().and_then(|k| k.as_str()).map(str::to_string)
            }
            _ => None,
        };
        if let Some(k) = &kind
            && !check_kind(k).is_some_and(|c| c.dbt_generic)
        {
            unsupported.push(Unsupported {
                path: path.to_path_buf(),
                line: text.and_then(|t| find_line(t, k)),
                feature: format!(
                    "generic test `{k}` (Sluice runs {})",
                    CHECK_KINDS
                        .iter()
                        .filter(|c| c.dbt_generic)
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            return;
        }
        if defaults.get("enabled").and_then(Json::as_bool) == Some(false) {
            return;
        }
        let entry = &with_test_defaults(entry, defaults);
        match CheckSpec::parse(entry, &props.name, column, path) {
            Ok(c) => checks.push(c),
            Err(message) => errors.push(ConfigError::Invalid {
                path: path.to_path_buf(),
                field,
                message,
            }),
        }
    };
    for (i, t) in props.tests.iter().enumerate() {
        push(t, None, format!("models[{}].tests[{i}]", props.name));
    }
    for col in &props.columns {
        for (i, t) in col.tests.iter().enumerate() {
            push(
                t,
                Some(&col.name),
                format!("models[{}].columns[{}].tests[{i}]", props.name, col.name),
            );
        }
    }
}

/// Adds the `data_tests:` defaults of `dbt_project.yml` (severity, where, error_if, warn_if) to a
/// test entry's `config` where the entry does not set them.
fn with_test_defaults(
    entry: &serde_yaml_ng::Value,
    defaults: &Map<String, Json>,
) -> serde_yaml_ng::Value {
    use serde_yaml_ng::{Mapping, Value};
    const KEYS: &[&str] = &["severity", "where", "error_if", "warn_if"];
    if !KEYS.iter().any(|k| defaults.contains_key(*k)) {
        return entry.clone();
    }
    let (name, mut body) = match entry {
        Value::String(s) => (s.clone(), Mapping::new()),
        Value::Mapping(m) if m.len() == 1 => match m.iter().next() {
            Some((Value::String(k), Value::Mapping(b))) => (k.clone(), b.clone()),
            Some((Value::String(k), Value::Null)) => (k.clone(), Mapping::new()),
            _ => return entry.clone(),
        },
        _ => return entry.clone(),
    };
    let mut config = match body.remove("config") {
        Some(Value::Mapping(c)) => c,
        _ => Mapping::new(),
    };
    for key in KEYS {
        let Some(v) = defaults.get(*key) else {
            continue;
        };
        if body.contains_key(*key) || config.contains_key(*key) {
            continue;
        }
        if let Ok(y) = serde_yaml_ng::to_value(v) {
            config.insert(Value::String((*key).to_string()), y);
        }
    }
    body.insert(Value::String("config".into()), Value::Mapping(config));
    let mut out = Mapping::new();
    out.insert(Value::String(name), Value::Mapping(body));
    Value::Mapping(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_defaults_fill_only_what_the_test_leaves_out() {
        let defaults: Map<String, Json> =
            serde_json::from_value(serde_json::json!({"severity": "warn", "where": "x > 0"}))
                .unwrap();
        let entry: serde_yaml_ng::Value = serde_yaml_ng::from_str("not_null").unwrap();
        let c = CheckSpec::parse(
            &with_test_defaults(&entry, &defaults),
            "m",
            Some("c"),
            Path::new("s.yml"),
        )
        .unwrap();
        assert_eq!(c.severity, sluice_core::Severity::Warn);
        assert_eq!(c.where_clause.as_deref(), Some("x > 0"));
        let entry: serde_yaml_ng::Value =
            serde_yaml_ng::from_str("unique: {config: {severity: error}}").unwrap();
        let c = CheckSpec::parse(
            &with_test_defaults(&entry, &defaults),
            "m",
            Some("c"),
            Path::new("s.yml"),
        )
        .unwrap();
        assert_eq!(c.severity, sluice_core::Severity::Error);
        let entry: serde_yaml_ng::Value =
            serde_yaml_ng::from_str("accepted_values: [a, b]").unwrap();
        assert_eq!(with_test_defaults(&entry, &defaults), entry);
    }
}
