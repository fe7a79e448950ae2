//! `exports/*.yml`: reverse ETL, pushing a served table into another system.
//!
//! An export is a node of the asset graph (`export:<name>`) that runs after the asset it reads, so a
//! gold table reaches the CRM database or a webhook every time it is rebuilt — and not when its build
//! failed. This module reads the fields every export shares; the sinks live in `sluice-sink`, where
//! each kind in its `SINK_KINDS` registry reads its own fields ([`ExportDecl::config`]).
//!
//! ```yaml
//! # exports/revenue_to_postgres.yml
//! asset: gold.mart_revenue          # a model (`gold.x`, `silver.x` or `x`) or a source table `src.table`
//! kind: postgres
//! connection: ${ANALYTICS_PG_URL}   # expanded when the export runs
//! table: analytics.revenue          # created if missing, with the key as primary key
//! key: [month]
//! mode: upsert                      # INSERT ... ON CONFLICT (key) DO UPDATE
//! batch_size: 5000
//! ```
//!
//! ```yaml
//! # exports/revenue_hook.yml
//! asset: mart_revenue
//! kind: webhook
//! url: https://hooks.example.com/revenue
//! headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
//! batch_size: 500                   # rows per POST (a JSON array)
//! retries: 5                        # on 5xx, 429 and connection errors, with exponential backoff
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ConfigError, Position};
use crate::model::{ModelFile, ModelLayer};
use crate::node_id::NodeId;
use crate::source::{SourceDecl, is_valid_identifier};
use crate::yaml::{Entry, Node, Value, from_node, parse_doc, read_text};

/// Rows per batch when `batch_size` is not given.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// The fields every export file shares; every other key belongs to its sink kind.
const SHARED_FIELDS: &[&str] = &[
    "name",
    "asset",
    "kind",
    "description",
    "owner",
    "tags",
    "enabled",
    "batch_size",
    "columns",
];

/// One `exports/<name>.yml` file.
#[derive(Debug, Clone)]
pub struct ExportDecl {
    /// Export name (the `name:` field, or the file stem).
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// `asset:` as written (`gold.mart_revenue`, `mart_revenue`, `shop.orders`).
    pub asset: String,
    /// The graph node of that asset (a model name or a source table `source.table`).
    pub asset_node: String,
    /// Free-text description.
    pub description: Option<String>,
    /// Who is alerted when it breaks.
    pub owner: Option<String>,
    /// Tags for selection (`tag:x`).
    pub tags: Vec<String>,
    /// Disabled exports are not in the graph.
    pub enabled: bool,
    /// Rows per batch (one transaction, or one request).
    pub batch_size: usize,
    /// Only these columns (default: every column of the asset).
    pub columns: Option<Vec<String>>,
    /// The sink kind (`kind:`), one of `sluice-sink`'s `SINK_KINDS`.
    pub kind: String,
    /// Where `kind:` is written.
    pub kind_pos: Option<Position>,
    /// The sink's own fields (every key but the shared ones), for the sink kind to read with
    /// [`ExportDecl::config`].
    pub sink: Node,
}

impl ExportDecl {
    /// Parses the text of one export file (`path` names it in messages), resolving `asset:` against
    /// `sources` and `models`.
    pub fn parse(
        path: &Path,
        text: &str,
        sources: &[SourceDecl],
        models: &[ModelFile],
    ) -> Result<ExportDecl, Vec<ConfigError>> {
        match ExportDecl::parse_partial(path, text, sources, models) {
            (Some(decl), errors) if errors.is_empty() => Ok(decl),
            (_, errors) => Err(errors),
        }
    }

    /// Like [`ExportDecl::parse`], but also returns the declaration when only values of its shared
    /// fields are wrong (an unknown asset, `batch_size: 0`), so that its sink's fields can be
    /// checked in the same pass.
    pub fn parse_partial(
        path: &Path,
        text: &str,
        sources: &[SourceDecl],
        models: &[ModelFile],
    ) -> (Option<ExportDecl>, Vec<ConfigError>) {
        let doc = match parse_doc(path, text) {
            Ok(d) => d,
            Err(e) => return (None, vec![e]),
        };
        let (shared, sink) = split(&doc);
        match from_node::<ExportFile>(path, &shared, Vec::new(), &[]) {
            Ok(file) => parse_export(file, path, &doc, sink, sources, models),
            Err(e) => (None, e),
        }
    }

    /// The graph node.
    pub fn node_id(&self) -> NodeId {
        NodeId::Export(self.name.clone())
    }

    /// The graph node name, `export:<name>`.
    pub fn node_name(&self) -> String {
        self.node_id().to_string()
    }

    /// The sink kind, `postgres` or `webhook`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The sink's config struct, deserialized from [`ExportDecl::sink`]; every problem is reported
    /// with its line and column (an unknown key is matched against the shared keys too, for "did
    /// you mean").
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        from_node(&self.path, &self.sink, Vec::new(), SHARED_FIELDS).map_err(ConfigError::many)
    }

    /// A problem with a sink field, at its value's line and column when it is written (else at
    /// `kind:`, the line that chose the sink).
    pub fn invalid(&self, field: &str, message: String) -> ConfigError {
        let pos = self.sink.get(field).map(|n| n.pos).or(self.kind_pos);
        ConfigError::at(&self.path, pos, field, message)
    }
}

/// The shared part of an export file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    name: Option<String>,
    asset: String,
    kind: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    enabled: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    batch_size: Option<usize>,
    #[serde(default)]
    columns: Option<Vec<String>>,
}

/// Loads every `exports/*.yml`, resolving each `asset:` against the project's models and source
/// tables. Problems of the shared fields go to `errors` with file, line and column; the sink's own
/// fields are checked by its kind (`sluice-sink`), which `sluice validate` builds.
pub fn load_exports(
    dir: &Path,
    sources: &[SourceDecl],
    models: &[ModelFile],
    errors: &mut Vec<ConfigError>,
) -> Vec<ExportDecl> {
    load_exports_partial(dir, sources, models, errors).0
}

/// [`load_exports`], plus the declarations whose shared fields have wrong values (their problems
/// are in `errors`), for their sinks to be checked too.
pub fn load_exports_partial(
    dir: &Path,
    sources: &[SourceDecl],
    models: &[ModelFile],
    errors: &mut Vec<ConfigError>,
) -> (Vec<ExportDecl>, Vec<ExportDecl>) {
    let mut out: Vec<ExportDecl> = Vec::new();
    let mut flawed: Vec<ExportDecl> = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (out, flawed);
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e == "yml" || e == "yaml")
        })
        .collect();
    paths.sort();
    for path in paths {
        let text = match read_text(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match ExportDecl::parse_partial(&path, &text, sources, models) {
            (Some(decl), problems) if problems.is_empty() => {
                if let Some(prev) = out.iter().find(|d| d.name == decl.name) {
                    errors.push(ConfigError::Duplicate {
                        kind: "export",
                        name: decl.name.clone(),
                        first: prev.path.clone(),
                        second: path,
                    });
                    continue;
                }
                out.push(decl);
            }
            (decl, mut problems) => {
                errors.append(&mut problems);
                flawed.extend(decl);
            }
        }
    }
    (out, flawed)
}

/// Splits an export document into the shared part and the sink's part.
fn split(doc: &Node) -> (Node, Node) {
    let Value::Map(entries) = &doc.value else {
        // Not a mapping: the shared part reports it.
        return (doc.clone(), Node::empty_map(doc.pos));
    };
    let (shared, sink): (Vec<Entry>, Vec<Entry>) = entries
        .iter()
        .cloned()
        .partition(|e| SHARED_FIELDS.contains(&e.key.as_str()));
    let map = |entries| Node {
        pos: doc.pos,
        value: Value::Map(entries),
    };
    (map(shared), map(sink))
}

fn parse_export(
    f: ExportFile,
    path: &Path,
    doc: &Node,
    sink: Node,
    sources: &[SourceDecl],
    models: &[ModelFile],
) -> (Option<ExportDecl>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    // The value's position (the key's, for an empty value).
    let at = |field: &str, message: String| {
        let position = doc.entry(field).map(|e| {
            if matches!(e.node.value, Value::Null) {
                e.key_pos
            } else {
                e.node.pos
            }
        });
        ConfigError::at(path, position, field, message)
    };
    let name = f.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    if !is_valid_identifier(&name) {
        errors.push(at(
            "name",
            format!("`{name}` is not a valid export name (letters, digits, _)"),
        ));
    }
    let asset_node = resolve_asset(&f.asset, sources, models);
    if asset_node.is_none() {
        let candidates = models
            .iter()
            .map(|m| m.name.clone())
            .chain(sources.iter().flat_map(|s| {
                s.tables
                    .iter()
                    .map(|t| s.asset_name(&t.name))
                    .collect::<Vec<_>>()
            }))
            .collect::<Vec<_>>();
        let bare = f.asset.rsplit('.').next().unwrap_or(&f.asset);
        let hint = crate::graph::suggest(bare, candidates.iter().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        errors.push(at(
            "asset",
            format!(
                "unknown asset `{}`{hint}; expected a model (`gold.name`, `silver.name` or `name`) \
                 or a source table (`source.table`)",
                f.asset
            ),
        ));
    }
    let enabled = match &f.enabled {
        None => true,
        Some(v) => match enabled_value(v) {
            Ok(b) => b,
            Err(m) => {
                errors.push(at("enabled", m));
                true
            }
        },
    };
    let batch_size = f.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if batch_size == 0 {
        errors.push(at("batch_size", "must be at least 1".into()));
    }
    if let Some(cols) = &f.columns
        && cols.is_empty()
    {
        errors.push(at(
            "columns",
            "an empty list; leave it out to export every column".into(),
        ));
    }
    let decl = ExportDecl {
        name,
        path: path.to_path_buf(),
        asset: f.asset,
        asset_node: asset_node.unwrap_or_default(),
        description: f.description,
        owner: f.owner,
        tags: f.tags,
        enabled,
        batch_size,
        columns: f.columns,
        kind: f.kind,
        kind_pos: doc.get("kind").map(|n| n.pos),
        sink,
    };
    (Some(decl), errors)
}

/// The graph node an `asset:` names: `gold.x` / `silver.x` (a model in that layer), `x` (a model), or
/// `source.table`.
pub fn resolve_asset(asset: &str, sources: &[SourceDecl], models: &[ModelFile]) -> Option<String> {
    if let Some((layer, name)) = asset.split_once('.')
        && let Some(layer) = ModelLayer::from_folder(layer)
        && let Some(m) = models.iter().find(|m| m.name == name && m.layer == layer)
    {
        return Some(m.name.clone());
    }
    if let Some(m) = models.iter().find(|m| m.name == asset) {
        return Some(m.name.clone());
    }
    let (source, table) = asset.split_once('.')?;
    sources
        .iter()
        .find(|s| s.name == source && s.tables.iter().any(|t| t.name == table))
        .map(|s| s.asset_name(table))
}

/// `enabled:` is a boolean, or text (usually `${ENV_VAR}`) that is on when it expands to `true`, `1`,
/// `yes` or `on`. A variable that is not set counts as off, so an export can be switched on per machine.
fn enabled_value(v: &serde_yaml_ng::Value) -> Result<bool, String> {
    match v {
        serde_yaml_ng::Value::Bool(b) => Ok(*b),
        serde_yaml_ng::Value::String(s) => {
            let expanded = crate::env::expand_with(s, Path::new(""), |n| {
                Some(std::env::var(n).unwrap_or_default())
            })
            .map_err(|e| e.to_string())?;
            Ok(matches!(
                expanded.trim().to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "on"
            ))
        }
        other => Err(format!(
            "expected true, false or text such as ${{ENV_VAR}}, found {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelProperties;

    fn model(name: &str, layer: ModelLayer) -> ModelFile {
        ModelFile {
            name: name.into(),
            layer,
            path: PathBuf::from(format!("models/{layer}/{name}.sql")),
            sql: String::new(),
            properties: ModelProperties::default(),
        }
    }

    fn source() -> SourceDecl {
        SourceDecl::parse(
            Path::new("sources/shop.yml"),
            "kind: sqlite\ntables:\n  - name: orders\n",
        )
        .unwrap()
    }

    fn load(files: &[(&str, &str)]) -> (Vec<ExportDecl>, Vec<ConfigError>) {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        let mut errors = Vec::new();
        let models = vec![
            model("mart_revenue", ModelLayer::Gold),
            model("stg_orders", ModelLayer::Silver),
        ];
        let out = load_exports(d.path(), &[source()], &models, &mut errors);
        (out, errors)
    }

    #[test]
    fn reads_the_shared_fields_and_keeps_the_sinks_own() {
        let (out, errors) = load(&[
            (
                "rev.yml",
                "asset: gold.mart_revenue\nkind: postgres\nconnection: ${PG}\ntable: analytics.revenue\nkey: month\nbatch_size: 10\n",
            ),
            (
                "hook.yml",
                "name: orders_hook\nasset: shop.orders\nkind: webhook\nurl: http://x/y\nretries: 2\n",
            ),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(out.len(), 2);
        let hook = out.iter().find(|e| e.name == "orders_hook").unwrap();
        assert_eq!(hook.asset_node, "shop.orders");
        assert_eq!(hook.node_name(), "export:orders_hook");
        assert_eq!(hook.batch_size, DEFAULT_BATCH_SIZE);
        assert_eq!(hook.kind(), "webhook");
        assert_eq!(hook.kind_pos.map(|p| p.line), Some(3));
        let rev = out.iter().find(|e| e.name == "rev").unwrap();
        assert_eq!(rev.asset_node, "mart_revenue");
        assert_eq!(rev.batch_size, 10);
        // The sink's part holds only its own keys, with their places.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Pg {
            connection: String,
            table: String,
            key: String,
        }
        let pg: Pg = rev.config().unwrap();
        assert_eq!(
            (pg.connection.as_str(), pg.table.as_str(), pg.key.as_str()),
            ("${PG}", "analytics.revenue", "month"),
            "expanded only when the export runs"
        );
        let e = rev.invalid("table", "no".into()).to_string();
        assert!(e.contains("rev.yml:4:8: field `table`: no"), "{e}");
        // An unknown key in the sink's part suggests the shared key it resembles.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Hook {
            #[allow(dead_code)]
            url: String,
        }
        let e = hook.config::<Hook>().unwrap_err().to_string();
        assert!(
            e.contains("hook.yml:5:1: field `retries`: unknown field"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_asset_is_an_error_with_file_line_and_suggestion() {
        let (_, errors) = load(&[(
            "rev.yml",
            "# revenue\nkind: postgres\nasset: gold.mart_revenu\nconnection: x\ntable: t\nkey: [k]\n",
        )]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert!(
            text.contains("rev.yml:3:8: field `asset`: unknown asset"),
            "{text}"
        );
        assert!(text.contains("unknown asset `gold.mart_revenu`"), "{text}");
        assert!(text.contains("did you mean `mart_revenue`"), "{text}");
        // A model in another layer is not that asset.
        let (_, errors) = load(&[(
            "x.yml",
            "asset: gold.stg_orders\nkind: webhook\nurl: http://x\n",
        )]);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn shared_fields_are_checked() {
        let (_, errors) = load(&[(
            "bad.yml",
            "asset: mart_revenue\nkind: postgres\ncolumns: []\nbatch_size: 0\n",
        )]);
        let text = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        for needle in [
            "bad.yml:3:10: field `columns`: an empty list",
            "bad.yml:4:13: field `batch_size`: must be at least 1",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let (_, errors) = load(&[("k.yml", "asset: mart_revenue\n")]);
        assert!(errors[0].to_string().contains("`kind`"), "{errors:?}");
    }

    #[test]
    fn enabled_follows_an_environment_variable() {
        let v = |s: &str| serde_yaml_ng::Value::String(s.into());
        assert!(!enabled_value(&v("${SLUICE_TEST_SURELY_UNSET_VAR}")).unwrap());
        assert!(enabled_value(&v("yes")).unwrap());
        assert!(!enabled_value(&serde_yaml_ng::Value::Bool(false)).unwrap());
        assert!(enabled_value(&serde_yaml_ng::Value::Number(3.into())).is_err());
    }
}
