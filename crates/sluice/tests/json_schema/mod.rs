//! A JSON Schema (draft 2020-12) validator for the keywords dbt's artifact schemas use: `type`,
//! `anyOf`, `oneOf`, `allOf`, `enum`, `const`, `properties`, `additionalProperties`, `required`,
//! `items`, `prefixItems`, `minItems`, `maxItems`, `propertyNames`, `pattern` (the one pattern those
//! schemas hold) and the annotations (`title`, `description`, `default`, `format`, `$schema`, `$id`).
//! Any other keyword fails the validation rather than being skipped, so a schema this cannot check
//! is never reported as passed.
#![allow(dead_code)]

use serde_json::Value;

/// Every violation of `schema` by `value`, each as `path: problem`.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "$", &mut errors);
    errors
}

const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "format",
    "$schema",
    "$id",
];

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn check(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: not allowed"));
        }
        return;
    };
    for (key, rule) in s {
        match key.as_str() {
            "type" => {
                let ok = match rule {
                    Value::String(t) => type_ok(t, v),
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)),
                    _ => false,
                };
                if !ok {
                    errors.push(format!("{path}: expected type {rule}, found {}", short(v)));
                }
            }
            "anyOf" | "oneOf" => {
                let alts = rule.as_array().map(Vec::as_slice).unwrap_or_default();
                let passing = alts.iter().filter(|a| validate(a, v).is_empty()).count();
                let ok = if key == "anyOf" {
                    passing >= 1
                } else {
                    passing == 1
                };
                if !ok {
                    // Report the alternative that came closest, to make the failure readable.
                    let best = alts
                        .iter()
                        .map(|a| {
                            let mut e = Vec::new();
                            check(a, v, path, &mut e);
                            e
                        })
                        .min_by_key(Vec::len)
                        .unwrap_or_default();
                    errors.push(format!(
                        "{path}: matches {passing} of the {key} alternatives; closest: {}",
                        best.join("; ")
                    ));
                }
            }
            "allOf" => {
                for a in rule.as_array().map(Vec::as_slice).unwrap_or_default() {
                    check(a, v, path, errors);
                }
            }
            "enum" => {
                if !rule.as_array().is_some_and(|opts| opts.contains(v)) {
                    errors.push(format!("{path}: {} is not one of {rule}", short(v)));
                }
            }
            "const" => {
                if rule != v {
                    errors.push(format!("{path}: expected {rule}, found {}", short(v)));
                }
            }
            "properties" => {
                if let (Some(props), Some(obj)) = (rule.as_object(), v.as_object()) {
                    for (name, sub) in props {
                        if let Some(child) = obj.get(name) {
                            check(sub, child, &format!("{path}.{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(obj) = v.as_object() {
                    let props = s.get("properties").and_then(Value::as_object);
                    for (name, child) in obj {
                        if props.is_some_and(|p| p.contains_key(name)) {
                            continue;
                        }
                        match rule {
                            Value::Bool(false) => {
                                errors.push(format!("{path}: property `{name}` is not allowed"))
                            }
                            Value::Bool(true) => {}
                            sub => check(sub, child, &format!("{path}.{name}"), errors),
                        }
                    }
                }
            }
            "required" => {
                if let Some(obj) = v.as_object() {
                    for name in rule.as_array().map(Vec::as_slice).unwrap_or_default() {
                        let name = name.as_str().unwrap_or_default();
                        if !obj.contains_key(name) {
                            errors.push(format!("{path}: required property `{name}` is missing"));
                        }
                    }
                }
            }
            "items" => {
                if let Some(arr) = v.as_array() {
                    let skip = s
                        .get("prefixItems")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    for (i, item) in arr.iter().enumerate().skip(skip) {
                        check(rule, item, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            "prefixItems" => {
                if let (Some(subs), Some(arr)) = (rule.as_array(), v.as_array()) {
                    for (i, (sub, item)) in subs.iter().zip(arr).enumerate() {
                        check(sub, item, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let (Some(n), Some(arr)) = (rule.as_u64(), v.as_array()) {
                    let len = arr.len() as u64;
                    if (key == "minItems" && len < n) || (key == "maxItems" && len > n) {
                        errors.push(format!("{path}: {len} items, {key} is {n}"));
                    }
                }
            }
            "propertyNames" => {
                if let Some(obj) = v.as_object() {
                    for name in obj.keys() {
                        check(
                            rule,
                            &Value::String(name.clone()),
                            &format!("{path}.<{name}>"),
                            errors,
                        );
                    }
                }
            }
            "pattern" => {
                if let Some(text) = v.as_str() {
                    let p = rule.as_str().unwrap_or_default();
                    if p == "^([Ww][Aa][Rr][Nn]|[Ee][Rr][Rr][Oo][Rr])$" {
                        let t = text.to_ascii_lowercase();
                        if t != "warn" && t != "error" {
                            errors.push(format!("{path}: `{text}` does not match {p}"));
                        }
                    } else {
                        errors.push(format!("{path}: this validator cannot check pattern {p}"));
                    }
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            other => errors.push(format!(
                "{path}: this validator does not know keyword `{other}`"
            )),
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(80).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

#[test]
fn the_validator_catches_what_it_must() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "c": {"type": "array", "items": {"enum": ["x", "y"]}},
            "s": {"type": "string", "pattern": "^([Ww][Aa][Rr][Nn]|[Ee][Rr][Rr][Oo][Rr])$"}
        },
        "additionalProperties": false,
        "required": ["a"]
    });
    assert!(
        validate(
            &schema,
            &serde_json::json!({"a": "1", "b": null, "c": ["x"], "s": "ERROR"})
        )
        .is_empty()
    );
    let errs = validate(
        &schema,
        &serde_json::json!({"b": 1.5, "c": ["z"], "d": 1, "s": "fatal"}),
    );
    let text = errs.join("\n");
    for want in [
        "`a` is missing",
        "$.b: matches 0",
        "$.c[0]",
        "`d` is not allowed",
        "does not match",
    ] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }
    let unknown = serde_json::json!({"if": {}});
    assert!(!validate(&unknown, &serde_json::json!(1)).is_empty());
}
