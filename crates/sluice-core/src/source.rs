//! `sources/*.yml`: the fields every source file shares, parsed once.
//!
//! A source file is read into a [`SourceDecl`]: the fields every kind shares (name, kind, owner,
//! description, schedule, catchup, freshness, policy, and per table name, description, tags,
//! schedule and freshness) are typed here, each with its position; what is left is the connector's
//! own part ([`SourceDecl::connector`]), a YAML tree with positions that the connector deserializes
//! into its config struct (`deny_unknown_fields`, no shared fields) with [`SourceDecl::config`].
//! The scheduler, the policies and the monitor read the typed fields; nobody parses the text again.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::alerts::FreshnessSla;
use crate::error::{ConfigError, Position};
use crate::yaml::{
    Entry, HumanDuration, Node, Seg, Spanned, Value, from_node, from_node_lenient, parse_doc,
};

/// The keys of a source file that every kind shares.
pub const SOURCE_FIELDS: &[&str] = &[
    "name",
    "kind",
    "owner",
    "description",
    "schedule",
    "catchup",
    "freshness",
    "policy",
    "tables",
];

/// The keys of a table entry that every kind shares (`name` is also handed to the connector: it
/// joins the two halves).
pub const TABLE_FIELDS: &[&str] = &["name", "description", "tags", "schedule", "freshness"];

/// One `sources/<name>.yml` file.
#[derive(Debug, Clone)]
pub struct SourceDecl {
    /// Source name (the `name:` field, or the file stem). Bronze tables live at `bronze/<name>/<table>`.
    pub name: String,
    /// The connector kind, e.g. `sqlite` or `files`.
    pub kind: String,
    /// Where `kind:` is written (for "unknown kind" messages).
    pub kind_pos: Option<Position>,
    /// Who is alerted when it breaks.
    pub owner: Option<String>,
    /// What the source is.
    pub description: Option<String>,
    /// When to ingest (cron, `@daily`, `every 15m`), parsed by the scheduler.
    pub schedule: Option<Spanned<String>>,
    /// Missed ticks: `latest` or `all`, read by the scheduler.
    pub catchup: Option<Spanned<String>>,
    /// The freshness SLA of every table that has none of its own.
    pub freshness: Option<FreshnessSla>,
    /// Retries, backoff, timeout and failure mode of this source's tables.
    pub policy: Option<PolicyDecl>,
    /// The tables (or topics, or file sets) this source lands.
    pub tables: Vec<SourceTableDecl>,
    /// The file it came from.
    pub path: PathBuf,
    /// The connector's own part of the file: every key but the shared ones (table entries keep their
    /// `name`), with positions.
    pub connector: Node,
}

impl SourceDecl {
    /// The asset name of one of its tables: `<source>.<table>`.
    pub fn asset_name(&self, table: &str) -> String {
        crate::NodeId::source_table(&self.name, table).to_string()
    }

    /// Parses the text of a source file (the name defaults to the file stem); every problem of the
    /// shared fields is collected.
    pub fn parse(path: &Path, text: &str) -> Result<SourceDecl, Vec<ConfigError>> {
        let doc = parse_doc(path, text).map_err(|e| vec![e])?;
        SourceDecl::from_doc(path, &doc)
    }

    /// The connector's config struct, deserialized from [`SourceDecl::connector`]; every problem is
    /// reported with its line and column (an unknown key is matched against the shared keys too
    /// for "did you mean").
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        from_node(&self.path, &self.connector, Vec::new(), ALL_FIELDS).map_err(ConfigError::many)
    }

    /// Every `(table, column, position)` whose `pii:` rule is `hash` (`tables[i].pii.<column>:
    /// hash` in the connector's part): these need the project's PII key ([`crate::pii`]).
    pub fn hashed_columns(&self) -> Vec<(String, String, Position)> {
        let mut out = Vec::new();
        let Some(crate::yaml::Value::Seq(tables)) = self.connector.get("tables").map(|n| &n.value)
        else {
            return out;
        };
        for t in tables {
            let Some(crate::yaml::Value::Map(rules)) = t.get("pii").map(|n| &n.value) else {
                continue;
            };
            let table = t.get("name").and_then(|n| n.as_str()).unwrap_or_default();
            for rule in rules.iter().filter(|r| r.node.as_str() == Some("hash")) {
                out.push((table.to_string(), rule.key.clone(), rule.node.pos));
            }
        }
        out
    }

    /// Replaces the top-level `connection:` value (a target's `connections:` override), keeping its
    /// position for messages. `false` when the file has no top-level `connection:` to replace.
    pub fn override_connection(&mut self, value: &str) -> bool {
        let crate::yaml::Value::Map(entries) = &mut self.connector.value else {
            return false;
        };
        match entries.iter_mut().find(|e| e.key == "connection") {
            Some(entry) => {
                entry.node.value = crate::yaml::Value::Str(value.to_string());
                true
            }
            None => false,
        }
    }

    /// A problem with a value of the connector's part, at the value's line and column when the
    /// field (`busy_timeout`, `tables[2].cursor`) is written in the file.
    pub fn invalid(&self, field: &str, message: String) -> ConfigError {
        let segs = parse_field_path(field);
        let pos = self.connector.find(&segs).map(|n| n.pos).or_else(|| {
            // A missing field: point at the entry that lacks it.
            segs.split_last()
                .and_then(|(_, parent)| self.connector.find(parent))
                .filter(|n| !parent_is_root(n, &self.connector))
                .map(|n| n.pos)
        });
        ConfigError::at(&self.path, pos, field, message)
    }

    fn from_doc(path: &Path, doc: &Node) -> Result<SourceDecl, Vec<ConfigError>> {
        let (common, connector) = split(doc);
        // Go on with what could be read, so that a bad table name shows next to a bad policy.
        let (raw, mut errors) = from_node_lenient::<RawSource>(path, &common, Vec::new(), &[]);
        let Some(raw) = raw else {
            return Err(errors);
        };
        let name = match raw.name {
            Some(n) => {
                if !is_valid_identifier(&n) {
                    errors.push(invalid_name(path, n.pos, "name", &n, "source"));
                }
                n.value
            }
            None => {
                let stem = file_stem(path);
                if !is_valid_identifier(&stem) {
                    errors.push(ConfigError::Invalid {
                path: path.to_path_buf(),
                field: "name".into(),
                message: format!(
                    "`{stem}` (the file name) is not a valid source name (letters, digits, _; not starting with a digit); set `name:`"
                ),
            });
                }
                stem
            }
        };
        let mut tables = Vec::new();
        for (i, t) in raw.tables.into_iter().enumerate() {
            if !is_valid_identifier(&t.name) {
                errors.push(invalid_name(
                    path,
                    t.name.pos,
                    &format!("tables[{i}].name"),
                    &t.name,
                    "table",
                ));
            }
            tables.push(SourceTableDecl {
                pos: t.name.pos,
                name: t.name.value,
                description: t.description,
                tags: t.tags,
                schedule: t.schedule,
                freshness: t.freshness,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SourceDecl {
            name,
            kind: raw.kind.value,
            kind_pos: Some(raw.kind.pos),
            owner: raw.owner,
            description: raw.description,
            schedule: raw.schedule,
            catchup: raw.catchup,
            freshness: raw.freshness,
            policy: raw.policy,
            tables,
            path: path.to_path_buf(),
            connector,
        })
    }
}

fn parent_is_root(n: &Node, root: &Node) -> bool {
    std::ptr::eq(n, root)
}

/// `tables[2].cursor` as path segments.
fn parse_field_path(field: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(Seg::Key(key.to_string()));
        }
        for index in pieces {
            if let Ok(n) = index.trim_end_matches(']').parse() {
                out.push(Seg::Index(n));
            }
        }
    }
    out
}

fn invalid_name(path: &Path, pos: Position, field: &str, name: &str, what: &str) -> ConfigError {
    ConfigError::At {
        path: path.to_path_buf(),
        position: pos,
        field: field.to_string(),
        message: format!(
            "expected a {what} name (letters, digits, _; not starting with a digit), found `{name}`"
        ),
    }
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Shared and connector keys together, for "did you mean" in either half.
const ALL_FIELDS: &[&str] = &[
    "name",
    "kind",
    "owner",
    "description",
    "schedule",
    "catchup",
    "freshness",
    "policy",
    "tables",
    "tags",
];

/// Splits a source document into the shared part and the connector's part.
fn split(doc: &Node) -> (Node, Node) {
    let Value::Map(entries) = &doc.value else {
        // Not a mapping: the shared part reports it.
        return (doc.clone(), Node::empty_map(doc.pos));
    };
    let mut common = Vec::new();
    let mut connector = Vec::new();
    for e in entries {
        if e.key == "tables" {
            let (c, k) = split_tables(&e.node);
            common.push(Entry {
                node: c,
                ..e.clone()
            });
            connector.push(Entry {
                node: k,
                ..e.clone()
            });
        } else if SOURCE_FIELDS.contains(&e.key.as_str()) {
            common.push(e.clone());
        } else {
            connector.push(e.clone());
        }
    }
    let map = |entries| Node {
        pos: doc.pos,
        value: Value::Map(entries),
    };
    (map(common), map(connector))
}

fn split_tables(tables: &Node) -> (Node, Node) {
    let Value::Seq(items) = &tables.value else {
        return (tables.clone(), tables.clone());
    };
    let mut common = Vec::new();
    let mut connector = Vec::new();
    for t in items {
        match &t.value {
            Value::Map(entries) => {
                let part = |keep: &dyn Fn(&str) -> bool| Node {
                    pos: t.pos,
                    value: Value::Map(entries.iter().filter(|e| keep(&e.key)).cloned().collect()),
                };
                common.push(part(&|k| TABLE_FIELDS.contains(&k)));
                connector.push(part(&|k| k == "name" || !TABLE_FIELDS.contains(&k)));
            }
            _ => {
                common.push(t.clone());
                connector.push(t.clone());
            }
        }
    }
    let seq = |items| Node {
        pos: tables.pos,
        value: Value::Seq(items),
    };
    (seq(common), seq(connector))
}

/// The shared part as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(default)]
    name: Option<Spanned<String>>,
    kind: Spanned<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    schedule: Option<Spanned<String>>,
    #[serde(default)]
    catchup: Option<Spanned<String>>,
    #[serde(default)]
    freshness: Option<FreshnessSla>,
    #[serde(default)]
    policy: Option<PolicyDecl>,
    #[serde(default)]
    tables: Vec<RawTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    schedule: Option<Spanned<String>>,
    #[serde(default)]
    freshness: Option<FreshnessSla>,
}

/// The part of a table entry every kind shares.
#[derive(Debug, Clone)]
pub struct SourceTableDecl {
    /// Table name inside the source.
    pub name: String,
    /// Free-text description.
    pub description: Option<String>,
    /// Tags for selection (`tag:x`).
    pub tags: Vec<String>,
    /// Per-table schedule override.
    pub schedule: Option<Spanned<String>>,
    /// Per-table freshness SLA (overrides the source's).
    pub freshness: Option<FreshnessSla>,
    /// Where the table's `name:` is written.
    pub pos: Position,
}

/// A `policy:` block: retries, backoff, timeout and failure mode (see docs/scheduling.md).
/// Durations are parsed here; `on_failure` is checked by the orchestrator, at its position.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDecl {
    /// Retries after a transient failure.
    #[serde(default)]
    pub retries: Option<u32>,
    /// First retry delay.
    #[serde(default)]
    pub retry_backoff: Option<Spanned<HumanDuration>>,
    /// Longest delay between retries.
    #[serde(default)]
    pub max_retry_backoff: Option<Spanned<HumanDuration>>,
    /// Longest time one attempt may take.
    #[serde(default)]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// `fail_fast` or `fail_open`.
    #[serde(default)]
    pub on_failure: Option<Spanned<String>>,
}

/// Whether `name` is usable as a source, table or model name (it becomes a folder and a SQL identifier).
pub fn is_valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SourceDecl, Vec<String>> {
        SourceDecl::parse(Path::new("sources/shop.yml"), text)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_targets_connection_replaces_the_top_level_one_only() {
        let path = Path::new("sources/shop.yml");
        let mut decl = SourceDecl::parse(
            path,
            "kind: postgres\nconnection: ${PG}\ntables:\n  - name: t\n    connection: nested\n",
        )
        .unwrap();
        let before = decl.connector.get("connection").unwrap().pos;
        assert!(decl.override_connection("host=prod"));
        let node = decl.connector.get("connection").unwrap();
        assert_eq!(node.as_str(), Some("host=prod"));
        assert_eq!(node.pos, before);
        let table = decl
            .connector
            .get("tables")
            .unwrap()
            .find(&[crate::yaml::Seg::Index(0)]);
        assert_eq!(
            table
                .and_then(|t| t.get("connection"))
                .and_then(|n| n.as_str()),
            Some("nested")
        );
        let mut files = SourceDecl::parse(path, "kind: files\ntables: []\n").unwrap();
        assert!(!files.override_connection("x"));
    }

    #[test]
    fn shared_fields_are_typed_and_the_rest_goes_to_the_connector() {
        let d = parse(
            "kind: sqlite\nconnection: x.db\nschedule: \"@daily\"\npolicy: {retries: 3, timeout: 10m}\nfreshness: {warn_after: 2h}\ntables:\n  - name: orders\n    mode: full\n    tags: [a]\n    schedule: every 5m\n",
        )
        .unwrap();
        assert_eq!(d.name, "shop");
        assert_eq!(
            d.schedule.as_ref().unwrap().pos,
            Position {
                line: 3,
                column: 11
            }
        );
        let p = d.policy.as_ref().unwrap();
        assert_eq!(p.retries, Some(3));
        assert_eq!(p.timeout.as_ref().unwrap().value.0.as_secs(), 600);
        assert!(d.freshness.is_some());
        let t = &d.tables[0];
        assert_eq!(
            (t.name.as_str(), t.tags.clone()),
            ("orders", vec!["a".to_string()])
        );
        assert_eq!(t.schedule.as_ref().unwrap().pos.line, 10);
        assert!(d.connector.get("schedule").is_none());
        assert!(d.connector.get("connection").is_some());
        let tables = d.connector.get("tables").unwrap();
        let Value::Seq(items) = &tables.value else {
            panic!()
        };
        assert!(items[0].get("mode").is_some() && items[0].get("name").is_some());
        assert!(items[0].get("tags").is_none());
    }

    #[test]
    fn every_problem_of_the_shared_fields_is_reported_with_its_place() {
        let errs = parse(
            "kind: sqlite\npolicy:\n  retires: 3\n  retry_backoff: 99999999999999999999d\nschedule: [1]\ntables:\n  - name: 9bad\n",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].starts_with("sources/shop.yml:3:3: field `policy.retires`: unknown field `retires` (did you mean `retries`?)"), "{errs:#?}");
        assert!(errs[1].starts_with("sources/shop.yml:4:18: field `policy.retry_backoff`: duration `99999999999999999999d` is out of range"), "{errs:#?}");
        assert!(
            errs[2].starts_with("sources/shop.yml:5:11: field `schedule`: expected a string"),
            "{errs:#?}"
        );
        // The table name is checked on what could be read, next to the other problems.
        assert!(
            errs[3].starts_with("sources/shop.yml:7:11: field `tables[0].name`"),
            "{errs:#?}"
        );
        let errs = parse("kind: sqlite\ntables:\n  - name: 9bad\n").unwrap_err();
        assert_eq!(
            errs,
            [
                "sources/shop.yml:3:11: field `tables[0].name`: expected a table name (letters, digits, _; not starting with a digit), found `9bad`"
            ]
        );
    }

    #[test]
    fn connector_problems_point_at_their_value() {
        let d = parse("kind: x\nbusy_timeout: soon\ntables:\n  - name: a\n  - name: b\n    mode: incremental\n").unwrap();
        let e = d.invalid("busy_timeout", "bad".into()).to_string();
        assert_eq!(e, "sources/shop.yml:2:15: field `busy_timeout`: bad");
        let e = d
            .invalid("tables[1].cursor", "needs a cursor".into())
            .to_string();
        assert_eq!(
            e,
            "sources/shop.yml:5:5: field `tables[1].cursor`: needs a cursor"
        );
        let e = d.invalid("tables[1].mode", "x".into()).to_string();
        assert!(e.starts_with("sources/shop.yml:6:11:"), "{e}");
        assert_eq!(
            parse_field_path("a.b[2][3].c"),
            [
                Seg::Key("a".into()),
                Seg::Key("b".into()),
                Seg::Index(2),
                Seg::Index(3),
                Seg::Key("c".into())
            ]
        );
    }

    #[test]
    fn the_connector_part_reports_unknown_keys_with_a_suggestion() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Conn {
            connection: String,
            tables: Vec<T>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            name: String,
            #[serde(default)]
            mode: Option<String>,
        }
        let d =
            parse("kind: x\nconection: a\nschedul: daily\ntables:\n  - name: t\n    mdoe: full\n")
                .unwrap();
        let e = d.config::<Conn>().unwrap_err().to_string();
        assert!(e.contains("sources/shop.yml:2:1: field `conection`: unknown field `conection` (did you mean `connection`?)"), "{e}");
        assert!(e.contains("sources/shop.yml:3:1: field `schedul`: unknown field `schedul` (did you mean `schedule`?)"), "{e}");
        assert!(e.contains("sources/shop.yml:6:5: field `tables[0].mdoe`: unknown field `mdoe` (did you mean `mode`?)"), "{e}");
        // The typo does not stand in for the field: `connection` is really missing.
        assert!(
            e.contains("sources/shop.yml:1:1: field `connection`: required field is missing"),
            "{e}"
        );
    }
}
