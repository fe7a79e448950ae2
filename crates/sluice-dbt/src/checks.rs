//! Generic tests of properties files as Sluice checks, with the `data_tests:` defaults applied.

use std::path::Path;

use serde_json::{Map, Value as Json};
use sluice_core::error::Position;
use sluice_core::model::CheckCollector;
use sluice_core::{CheckSpec, ConfigError};
use sluice_quality::{CHECK_KINDS, check_kind};

use crate::properties::Described;
use crate::unsupported::Unsupported;

/// Turns the tests of one resource's properties into checks; unknown generic tests are unsupported.
/// Every problem points at the test entry it is about.
pub(crate) fn collect_checks(
    described: &Described,
    path: &Path,
    defaults: &Map<String, Json>,
    checks: &mut CheckCollector,
    errors: &mut Vec<ConfigError>,
    unsupported: &mut Vec<Unsupported>,
) {
    let props = &described.props;
    let mut push = |entry: Json, pos: Option<Position>, column: Option<&str>, field: String| {
        let kind = match &entry {
            Json::String(s) => Some(s.clone()),
            Json::Object(m) => m.keys().next().cloned(),
            _ => None,
        };
        if let Some(k) = &kind
            && !check_kind(k).is_some_and(|c| c.dbt_generic)
        {
            unsupported.push(Unsupported {
                path: path.to_path_buf(),
                pos,
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
        let entry = with_test_defaults(entry, defaults);
        match CheckSpec::from_json(entry, &props.name, column, path) {
            Ok(c) => checks.push(c),
            Err(message) => errors.push(ConfigError::at(path, pos, &field, message)),
        }
    };
    let json = |t| serde_json::to_value(t).unwrap_or(Json::Null);
    for (i, t) in props.tests.iter().enumerate() {
        let pos = described.tests.get(i).copied();
        push(
            json(t),
            pos,
            None,
            format!("models[{}].tests[{i}]", props.name),
        );
    }
    for (c, col) in props.columns.iter().enumerate() {
        for (i, t) in col.tests.iter().enumerate() {
            let pos = described
                .column_tests
                .get(c)
                .and_then(|p| p.get(i))
                .copied();
            push(
                json(t),
                pos,
                Some(&col.name),
                format!("models[{}].columns[{}].tests[{i}]", props.name, col.name),
            );
        }
    }
}

/// Adds the `data_tests:` defaults of `dbt_project.yml` (severity, where, error_if, warn_if) to a
/// test entry's `config` where the entry does not set them.
fn with_test_defaults(entry: Json, defaults: &Map<String, Json>) -> Json {
    const KEYS: &[&str] = &["severity", "where", "error_if", "warn_if"];
    if !KEYS.iter().any(|k| defaults.contains_key(*k)) {
        return entry;
    }
    let (name, mut body) = match &entry {
        Json::String(s) => (s.clone(), Map::new()),
        Json::Object(m) if m.len() == 1 => match m.iter().next() {
            Some((k, Json::Object(b))) => (k.clone(), b.clone()),
            Some((k, Json::Null)) => (k.clone(), Map::new()),
            _ => return entry,
        },
        _ => return entry,
    };
    let mut config = match body.remove("config") {
        Some(Json::Object(c)) => c,
        _ => Map::new(),
    };
    for key in KEYS {
        let Some(v) = defaults.get(*key) else {
            continue;
        };
        if body.contains_key(*key) || config.contains_key(*key) {
            continue;
        }
        config.insert((*key).to_string(), v.clone());
    }
    body.insert("config".into(), Json::Object(config));
    let mut out = Map::new();
    out.insert(name, Json::Object(body));
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_defaults_fill_only_what_the_test_leaves_out() {
        let defaults: Map<String, Json> =
            serde_json::from_value(json!({"severity": "warn", "where": "x > 0"})).unwrap();
        let parse = |entry: Json| {
            CheckSpec::from_json(
                with_test_defaults(entry, &defaults),
                "m",
                Some("c"),
                Path::new("s.yml"),
            )
            .unwrap()
        };
        let c = parse(json!("not_null"));
        assert_eq!(c.severity, sluice_core::Severity::Warn);
        assert_eq!(c.where_clause.as_deref(), Some("x > 0"));
        let c = parse(json!({"unique": {"config": {"severity": "error"}}}));
        assert_eq!(c.severity, sluice_core::Severity::Error);
        let entry = json!({"accepted_values": ["a", "b"]});
        assert_eq!(with_test_defaults(entry.clone(), &defaults), entry);
    }

    fn collect(text: &str) -> (Vec<CheckSpec>, Vec<String>) {
        let file = crate::properties::load(Path::new("schema.yml"), text).unwrap();
        let mut checks = CheckCollector::default();
        let mut errors = Vec::new();
        let mut unsupported = Vec::new();
        for d in &file.models {
            collect_checks(
                d,
                Path::new("schema.yml"),
                &Map::new(),
                &mut checks,
                &mut errors,
                &mut unsupported,
            );
        }
        let problems = errors
            .iter()
            .map(ToString::to_string)
            .chain(unsupported.iter().map(ToString::to_string))
            .collect();
        (checks.into_checks(), problems)
    }

    #[test]
    fn bad_and_unknown_tests_are_reported_at_their_entry() {
        let text = "version: 2\nmodels:\n  - name: m\n    data_tests:\n      - unique:\n          severity: fatal\n    columns:\n      - name: a\n        tests:\n          - not_null\n          - dbt_utils.at_least_one\n      - name: b\n        tests: [unique, {not_null: {}, unique: {}}]\n";
        let (checks, problems) = collect(text);
        assert_eq!(checks.len(), 2, "{checks:?}");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(
            problems[..2],
            [
                "schema.yml:5:9: field `models[m].tests[0]`: severity must be `error` or `warn`, found `fatal`",
                "schema.yml:13:25: field `models[m].columns[b].tests[1]`: a test entry must have exactly one key (the test name), found 2: not_null, unique",
            ],
        );
        assert!(
            problems[2].starts_with(
                "schema.yml:11:13: unsupported: generic test `dbt_utils.at_least_one` (Sluice runs not_null, unique,"
            ),
            "{problems:?}"
        );
    }
}
