//! `exports/*.yml`: reverse ETL, pushing a served table into another system.
//!
//! An export is a node of the asset graph (`export:<name>`) that runs after the asset it reads, so a
//! gold table reaches the CRM database or a webhook every time it is rebuilt — and not when its build
//! failed. The sinks themselves live in `sluice-sink` (its `SINK_KINDS` registry, checked against
//! [`EXPORT_KINDS`] by its tests); this module only parses and validates the files.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::duration::parse_duration;
use crate::error::ConfigError;
use crate::model::{ModelFile, ModelLayer};
use crate::node_id::NodeId;
use crate::source::{SourceDecl, is_valid_identifier};
use crate::yaml::{Node, from_node, parse_doc, read_text};

/// The `kind:` values an export file may have; `sluice-sink`'s registry has one sink per name (its
/// registry test checks that they agree).
pub const EXPORT_KINDS: &[&str] = &["postgres", "webhook"];

/// Rows per batch when `batch_size` is not given.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

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
    /// Where the rows go.
    pub target: ExportTarget,
}

impl ExportDecl {
    /// The graph node.
    pub fn node_id(&self) -> NodeId {
        NodeId::Export(self.name.clone())
    }

    /// The graph node name, `export:<name>`.
    pub fn node_name(&self) -> String {
        self.node_id().to_string()
    }

    /// `postgres` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self.target {
            ExportTarget::Postgres(_) => "postgres",
            ExportTarget::Webhook(_) => "webhook",
        }
    }
}

/// Where an export sends its rows.
#[derive(Debug, Clone)]
pub enum ExportTarget {
    /// A PostgreSQL table, upserted on a key.
    Postgres(PostgresTarget),
    /// An HTTP endpoint that receives JSON arrays of rows.
    Webhook(WebhookTarget),
}

/// `kind: postgres`.
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    /// Connection string as written; `${ENV}` is expanded when the export runs.
    pub connection: String,
    /// `table` or `schema.table`.
    pub table: String,
    /// Key columns (the conflict target of the upsert, and the primary key of a created table).
    pub key: Vec<String>,
}

/// `kind: webhook`.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The URL as written; `${ENV}` is expanded when the export runs.
    pub url: String,
    /// Extra request headers; values are `${ENV}`-expanded when the export runs.
    pub headers: BTreeMap<String, String>,
    /// Retries of one batch after a 5xx, a 429 or a connection error.
    pub retries: u32,
    /// First retry delay (doubles, with jitter).
    pub retry_backoff: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
}

/// What the loader reads of an export file.
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
    // postgres
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    key: Option<KeyList>,
    #[serde(default)]
    mode: Option<String>,
    // webhook
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    retry_backoff: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
}

/// `key: id` or `key: [a, b]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum KeyList {
    One(String),
    Many(Vec<String>),
}

/// Loads every `exports/*.yml`, resolving each `asset:` against the project's models and source
/// tables. Problems go to `errors` with the file (and the line of the field, when it can be found).
pub fn load_exports(
    dir: &Path,
    sources: &[SourceDecl],
    models: &[ModelFile],
    errors: &mut Vec<ConfigError>,
) -> Vec<ExportDecl> {
    let mut out: Vec<ExportDecl> = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
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
        let doc = match parse_doc(&path, &text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let file: ExportFile = match from_node(&path, &doc, Vec::new(), &[]) {
            Ok(f) => f,
            Err(mut e) => {
                errors.append(&mut e);
                continue;
            }
        };
        match parse_export(file, &path, &doc, sources, models) {
            Ok(decl) => {
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
            Err(mut e) => errors.append(&mut e),
        }
    }
    out
}

fn parse_export(
    f: ExportFile,
    path: &Path,
    doc: &Node,
    sources: &[SourceDecl],
    models: &[ModelFile],
) -> Result<ExportDecl, Vec<ConfigError>> {
    let mut errors = Vec::new();
    // The value's position (the key's, for a field that is not allowed at all).
    let at = |field: &str, message: String| {
        let position = doc.entry(field).map(|e| {
            if matches!(e.node.value, crate::yaml::Value::Null) {
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
    let wrong_kind = |fields: &[(&str, bool)], kind: &str, errors: &mut Vec<ConfigError>| {
        for (field, given) in fields {
            if *given {
                let position = doc.entry(field).map(|e| e.key_pos);
                errors.push(ConfigError::at(
                    path,
                    position,
                    field,
                    format!("is not a field of `kind: {kind}`"),
                ));
            }
        }
    };
    let target = match f.kind.as_str() {
        "postgres" => {
            wrong_kind(
                &[
                    ("url", f.url.is_some()),
                    ("headers", !f.headers.is_empty()),
                    ("retries", f.retries.is_some()),
                    ("retry_backoff", f.retry_backoff.is_some()),
                    ("timeout", f.timeout.is_some()),
                ],
                "postgres",
                &mut errors,
            );
            let missing = |field: &str, what: &str| ConfigError::Invalid {
                path: path.to_path_buf(),
                field: field.to_string(),
                message: format!("`kind: postgres` needs `{field}`: {what}"),
            };
            let connection = f.connection.clone().unwrap_or_default();
            if connection.trim().is_empty() {
                errors.push(missing(
                    "connection",
                    "a libpq URL or key=value string, e.g. ${ANALYTICS_PG_URL}",
                ));
            }
            let table = f.table.clone().unwrap_or_default();
            if table.is_empty() {
                errors.push(missing(
                    "table",
                    "the target table, `table` or `schema.table`",
                ));
            } else if !table.split('.').all(is_valid_identifier) || table.split('.').count() > 2 {
                errors.push(at(
                    "table",
                    format!("`{table}` is not `table` or `schema.table` (letters, digits, _)"),
                ));
            }
            let key = match &f.key {
                None => Vec::new(),
                Some(KeyList::One(k)) => vec![k.clone()],
                Some(KeyList::Many(k)) => k.clone(),
            };
            if key.is_empty() {
                errors.push(missing(
                    "key",
                    "the column(s) rows are matched on, e.g. [month]",
                ));
            }
            match f.mode.as_deref().unwrap_or("upsert") {
                "upsert" => {}
                other => errors.push(at(
                    "mode",
                    format!("`{other}` is not supported; expected upsert"),
                )),
            }
            ExportTarget::Postgres(PostgresTarget {
                connection,
                table,
                key,
            })
        }
        "webhook" => {
            wrong_kind(
                &[
                    ("connection", f.connection.is_some()),
                    ("table", f.table.is_some()),
                    ("key", f.key.is_some()),
                    ("mode", f.mode.is_some()),
                ],
                "webhook",
                &mut errors,
            );
            let url = f.url.clone().unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("${"))
            {
                errors.push(at(
                    "url",
                    format!("`{url}` is not an http:// or https:// URL"),
                ));
            }
            let mut duration = |field: &str, value: &Option<String>, default: Duration| match value
            {
                None => default,
                Some(v) => parse_duration(v).unwrap_or_else(|m| {
                    errors.push(at(field, m));
                    default
                }),
            };
            let retry_backoff = duration(
                "retry_backoff",
                &f.retry_backoff,
                Duration::from_millis(500),
            );
            let timeout = duration("timeout", &f.timeout, Duration::from_secs(30));
            ExportTarget::Webhook(WebhookTarget {
                url,
                headers: f.headers.clone(),
                retries: f.retries.unwrap_or(5),
                retry_backoff,
                timeout,
            })
        }
        other => {
            let hint = crate::graph::suggest(other, EXPORT_KINDS.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            errors.push(at(
                "kind",
                format!(
                    "`{other}` is not an export kind{hint}; expected {}",
                    EXPORT_KINDS.join(" or ")
                ),
            ));
            return Err(errors);
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ExportDecl {
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
        target,
    })
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
    fn parses_postgres_and_webhook_exports() {
        let (out, errors) = load(&[
            (
                "rev.yml",
                "asset: gold.mart_revenue\nkind: postgres\nconnection: ${PG}\ntable: analytics.revenue\nkey: month\nbatch_size: 10\n",
            ),
            (
                "hook.yml",
                "name: orders_hook\nasset: shop.orders\nkind: webhook\nurl: http://x/y\nheaders: {A: b}\nretries: 2\nretry_backoff: 10ms\n",
            ),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(out.len(), 2);
        let hook = out.iter().find(|e| e.name == "orders_hook").unwrap();
        assert_eq!(hook.asset_node, "shop.orders");
        assert_eq!(hook.node_name(), "export:orders_hook");
        assert_eq!(hook.batch_size, DEFAULT_BATCH_SIZE);
        match &hook.target {
            ExportTarget::Webhook(w) => {
                assert_eq!(w.retries, 2);
                assert_eq!(w.retry_backoff, Duration::from_millis(10));
            }
            other => panic!("{other:?}"),
        }
        let rev = out.iter().find(|e| e.name == "rev").unwrap();
        assert_eq!(rev.asset_node, "mart_revenue");
        assert_eq!(rev.batch_size, 10);
        match &rev.target {
            ExportTarget::Postgres(p) => {
                assert_eq!(p.key, ["month"]);
                assert_eq!(p.connection, "${PG}", "expanded only when the export runs");
            }
            other => panic!("{other:?}"),
        }
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
    fn kind_fields_are_checked() {
        let (_, errors) = load(&[(
            "bad.yml",
            "asset: mart_revenue\nkind: postgres\nurl: http://x\nmode: replace\nbatch_size: 0\n",
        )]);
        let text = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        for needle in [
            "bad.yml:3:1: field `url`: is not a field of `kind: postgres`",
            "needs `connection`",
            "needs `table`",
            "needs `key`",
            "`replace` is not supported",
            "bad.yml:5:13: field `batch_size`: must be at least 1",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let (_, errors) = load(&[("k.yml", "asset: mart_revenue\nkind: kafka\n")]);
        assert!(
            errors[0]
                .to_string()
                .contains("expected postgres or webhook")
        );
        let (_, errors) = load(&[(
            "u.yml",
            "asset: mart_revenue\nkind: webhook\nurl: x\ncolour: red\n",
        )]);
        assert!(errors[0].to_string().contains("unknown field `colour`"));
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
