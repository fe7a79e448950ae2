//! dbt's folder-scoped config trees (`models:` / `seeds:` / `snapshots:` in `dbt_project.yml`).
//!
//! A tree is walked along a resource's path — project name, folders, file name — and every level's
//! configs apply, deeper levels winning. Keys starting with `+` are always configs; other keys are
//! configs when they are known config names, and folder (or file) names otherwise. `tags` add up across
//! levels and `meta` merges, as in dbt. The result is then overridden by the properties file and by
//! `config()` in the SQL (precedence config() > properties > dbt_project.yml).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};
use sluice_core::error::Position;
use sluice_core::yaml::{Node, Value};

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
pub fn resolve(tree: &Node, path: &[String]) -> Map<String, Json> {
    resolve_placed(tree, path).0
}

/// [`resolve`], with the place of the key that last set each config (a `tags` or `meta` that adds up
/// is placed at its deepest level).
pub fn resolve_placed(
    tree: &Node,
    path: &[String],
) -> (Map<String, Json>, BTreeMap<String, Position>) {
    let mut out = Map::new();
    let mut places = BTreeMap::new();
    let mut node = tree;
    apply_level(node, &mut out, &mut places);
    for part in path {
        let Some(next) = node.get(part) else {
            break;
        };
        node = next;
        apply_level(node, &mut out, &mut places);
    }
    (out, places)
}

fn apply_level(node: &Node, out: &mut Map<String, Json>, places: &mut BTreeMap<String, Position>) {
    let Value::Map(entries) = &node.value else {
        return;
    };
    for e in entries {
        let key = e.key.as_str();
        let name = match key.strip_prefix('+') {
            Some(n) => n,
            None if CONFIG_KEYS.contains(&key) && !is_folder_like(key, &e.node) => key,
            None => continue,
        };
        places.insert(name.replace('-', "_"), e.key_pos);
        merge(out, name, to_json(&e.node));
    }
}

/// A known config name holding a mapping of non-config keys is a folder of that name (`schema/…`),
/// except for configs whose value is a mapping.
fn is_folder_like(key: &str, v: &Node) -> bool {
    const MAP_CONFIGS: &[&str] = &[
        "meta",
        "docs",
        "column_types",
        "persist_docs",
        "grants",
        "contract",
    ];
    matches!(v.value, Value::Map(_)) && !MAP_CONFIGS.contains(&key)
}

/// A YAML node as JSON (configs and variables are handed on as JSON).
pub fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Null | Value::Removed => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(&e.node)))
                .collect(),
        ),
    }
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

    fn tree(yaml: &str) -> Node {
        sluice_core::yaml::parse_doc(std::path::Path::new("dbt_project.yml"), yaml).unwrap()
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

    #[test]
    fn each_config_is_placed_at_the_deepest_key_that_set_it() {
        let t = tree("shop:\n  +materialized: view\n  staging:\n    +pre-hook: \"x\"\n");
        let (c, places) = resolve_placed(&t, &path(&["shop", "staging", "m"]));
        assert_eq!(c["pre_hook"], "x");
        assert_eq!(places["pre_hook"], Position { line: 4, column: 5 });
        assert_eq!(places["materialized"], Position { line: 2, column: 3 });
    }
}
