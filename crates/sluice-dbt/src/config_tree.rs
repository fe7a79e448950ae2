//! dbt's folder-scoped config trees (`models:` / `seeds:` / `snapshots:` in `dbt_project.yml`).
//!
//! A tree is walked along a resource's path — project name, folders, file name — and every level's
//! configs apply, deeper levels winning. Keys starting with `+` are always configs; other keys are
//! configs when they are known config names, and folder (or file) names otherwise. `tags` add up across
//! levels and `meta` merges, as in dbt. The result is then overridden by the properties file and by
//! `config()` in the SQL (precedence config() > properties > dbt_project.yml).

use serde_json::{Map, Value as Json};
use serde_yaml_ng::Value;

/// Config names that may appear without `+`.
pub const CONFIG_KEYS: &[&str] = &[
    "materialized",
    "schema",
    "database",
    "alias",
    "tags",
    "enabled",
    "unique_key",
    "incremental_strategy",
    "full_refresh",
    "persist_docs",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "meta",
    "docs",
    "grants",
    "contract",
    "on_schema_change",
    "column_types",
    "quote_columns",
    "delimiter",
    "strategy",
    "updated_at",
    "check_cols",
    "target_schema",
    "target_database",
    "invalidate_hard_deletes",
    "hard_deletes",
    "severity",
    "where",
    "error_if",
    "warn_if",
    "store_failures",
    "limit",
    "sql_header",
    "partition_by",
    "cluster_by",
    "owner",
    "group",
    "access",
    "layer",
    "schedule",
    "retries",
];

/// The configs that apply to a resource at `path` (`[project, folder…, name]`).
pub fn resolve(tree: &Value, path: &[String]) -> Map<String, Json> {
    let mut out = Map::new();
    let mut node = tree;
    apply_level(node, &mut out);
    for part in path {
        let Some(next) = node.as_mapping().and_then(|m| m.get(part.as_str())) else {
            break;
        };
        node = next;
        apply_level(node, &mut out);
    }
    out
}

fn apply_level(node: &Value, out: &mut Map<String, Json>) {
    let Some(map) = node.as_mapping() else {
        return;
    };
    for (k, v) in map {
        let Some(key) = k.as_str() else { continue };
        let name = match key.strip_prefix('+') {
            Some(n) => n,
            None if CONFIG_KEYS.contains(&key) && !is_folder_like(key, v) => key,
            None => continue,
        };
        let value = serde_json::to_value(v).unwrap_or(Json::Null);
        merge(out, name, value);
    }
}

/// A known config name holding a mapping of non-config keys is a folder of that name (`schema/…`),
/// except for configs whose value is a mapping.
fn is_folder_like(key: &str, v: &Value) -> bool {
    const MAP_CONFIGS: &[&str] = &[
        "meta",
        "docs",
        "column_types",
        "persist_docs",
        "grants",
        "contract",
    ];
    v.is_mapping() && !MAP_CONFIGS.contains(&key)
}

/// Sets `name` in `out`: `tags` accumulate, `meta` merges, everything else replaces.
pub fn merge(out: &mut Map<String, Json>, name: &str, value: Json) {
    let name = name.replace('-', "_");
    match (name.as_str(), out.get_mut(&name), value) {
        ("tags", Some(existing), v) => {
            let mut tags = as_list(existing);
            for t in as_list(&v) {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            *existing = Json::Array(tags.into_iter().map(Json::String).collect());
        }
        ("meta", Some(Json::Object(existing)), Json::Object(new)) => existing.extend(new),
        (_, _, v) => {
            out.insert(name, v);
        }
    }
}

/// A string or a list of strings as a list.
pub fn as_list(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> Value {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn deeper_levels_win_and_tags_add_up() {
        let t = tree(
            "+materialized: view\nshop:\n  +tags: [shop]\n  staging:\n    materialized: table\n    +tags: staging\n    stg_orders:\n      +materialized: incremental\n  marts:\n    +schema: marts\n",
        );
        let c = resolve(&t, &path(&["shop", "staging", "stg_customers"]));
        assert_eq!(c["materialized"], "table");
        assert_eq!(c["tags"], serde_json::json!(["shop", "staging"]));
        let c = resolve(&t, &path(&["shop", "staging", "stg_orders"]));
        assert_eq!(c["materialized"], "incremental");
        let c = resolve(&t, &path(&["shop", "marts", "fct"]));
        assert_eq!(c["materialized"], "view");
        assert_eq!(c["schema"], "marts");
        assert!(!c.contains_key("tags") || c["tags"] == serde_json::json!(["shop"]));
    }

    #[test]
    fn a_folder_named_like_a_config_is_a_folder() {
        let t = tree("shop:\n  schema:\n    +materialized: table\n");
        let c = resolve(&t, &path(&["shop", "schema", "m"]));
        assert_eq!(c["materialized"], "table");
        assert!(!c.contains_key("schema"));
    }
}
