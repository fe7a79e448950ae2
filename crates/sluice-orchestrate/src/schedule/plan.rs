//! Where schedules come from: the `schedule:`, `catchup:` and `trigger:` fields of source files and
//! models, resolved into one [`NodeSchedule`] per asset.
//!
//! Source files are read as plain YAML here (every connector kind has the same fields: `schedule` and
//! `catchup` on the source, `schedule` per table), so the scheduler needs no knowledge of connector
//! configs. Models take the fields from `config()` in the SQL or the `config:` map of their properties.
//! Every problem is collected, each with its file, line (when found) and field.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::Value;
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;
use sluice_transform::{CompiledModel, CompiledProject};

use super::ScheduleError;
use super::cadence::{Cadence, Catchup};

/// Whether an asset is a source table or a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A source table (`source.table`).
    Source,
    /// A SQL model.
    Model,
}

/// A `files` source table watched for new files (a table with no `schedule:` of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSensorSpec {
    /// Source name.
    pub source: String,
    /// Table name.
    pub table: String,
    /// The table's glob with `${ENV}` expanded, relative to the project root unless absolute.
    pub pattern: String,
}

/// How the scheduler starts one asset.
#[derive(Debug, Clone)]
pub struct NodeSchedule {
    /// Asset name.
    pub node: String,
    /// Source table or model.
    pub kind: NodeKind,
    /// Its `schedule:`, if any.
    pub cadence: Option<Cadence>,
    /// What to do about missed ticks.
    pub catchup: Catchup,
    /// Runs when an upstream asset has new data (`trigger: on_upstream_change`; the default for
    /// models without a `schedule:`).
    pub on_upstream_change: bool,
    /// Runs when new files arrive (`files` tables without a `schedule:`).
    pub sensor: Option<FileSensorSpec>,
}

impl NodeSchedule {
    /// Whether the scheduler ever starts this node by itself.
    pub fn is_automatic(&self) -> bool {
        self.cadence.is_some() || self.on_upstream_change || self.sensor.is_some()
    }

    /// A one-line description: `every 15m (catchup all)`, `on upstream change`, `on file arrival`,
    /// `manual`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.cadence {
            parts.push(format!("{c} (catchup {})", self.catchup.as_str()));
        }
        if self.on_upstream_change {
            parts.push("on upstream change".to_string());
        }
        if self.sensor.is_some() {
            parts.push("on file arrival".to_string());
        }
        if parts.is_empty() {
            "manual".to_string()
        } else {
            parts.join(" + ")
        }
    }
}

/// Every asset's schedule.
#[derive(Debug, Clone, Default)]
pub struct SchedulePlan {
    nodes: BTreeMap<String, NodeSchedule>,
}

impl SchedulePlan {
    /// Reads the schedules of every source table and model of `project`; collects every problem.
    pub fn from_project(project: &CompiledProject) -> Result<SchedulePlan, ScheduleError> {
        let mut nodes = BTreeMap::new();
        let mut errors = Vec::new();
        for decl in &project.project.sources {
            match source_schedules(decl) {
                Ok(list) => {
                    for s in list
                        .into_iter()
                        .filter(|s| project.sources.contains_key(&s.node))
                    {
                        nodes.insert(s.node.clone(), s);
                    }
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        for model in project.models.values() {
            match model_schedule(project, model) {
                Ok(s) => {
                    nodes.insert(s.node.clone(), s);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(SchedulePlan { nodes })
        } else {
            Err(ScheduleError::Plan(errors))
        }
    }

    /// One asset's schedule.
    pub fn get(&self, node: &str) -> Option<&NodeSchedule> {
        self.nodes.get(node)
    }

    /// Every asset, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeSchedule> {
        self.nodes.values()
    }

    /// Assets with a `schedule:`.
    pub fn scheduled(&self) -> impl Iterator<Item = &NodeSchedule> {
        self.nodes.values().filter(|n| n.cadence.is_some())
    }
}

/// The 1-based number of the first line of `text` that mentions both `field` and `value`.
fn line_of(text: &str, field: &str, value: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.contains(field) && l.contains(value.trim()))
        .map(|i| i + 1)
}

fn at(file: &Path, text: &str, field: &str, value: &str, e: ScheduleError) -> ScheduleError {
    let last = field.rsplit('.').next().unwrap_or(field);
    ScheduleError::At {
        file: file.to_path_buf(),
        line: line_of(text, last, value),
        field: field.to_string(),
        source: Box::new(e),
    }
}

/// A text field of a YAML mapping: absent, or a string.
fn text_field(
    map: &Value,
    key: &str,
    field: &str,
    decl: &SourceDecl,
) -> Result<Option<String>, ScheduleError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            let shown = serde_yaml_ng::to_string(other).unwrap_or_default();
            Err(at(
                &decl.path,
                &decl.text,
                field,
                shown.trim(),
                ScheduleError::NotText {
                    found: shown.trim().to_string(),
                },
            ))
        }
    }
}

fn source_schedules(decl: &SourceDecl) -> Result<Vec<NodeSchedule>, Vec<ScheduleError>> {
    let doc: Value = serde_yaml_ng::from_str(&decl.text).map_err(|e| {
        vec![ScheduleError::Config(sluice_core::yaml::yaml_error(
            &decl.path, &e,
        ))]
    })?;
    let mut errors = Vec::new();
    let mut ok = |r: Result<Option<String>, ScheduleError>| match r {
        Ok(v) => v,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let source_schedule = ok(text_field(&doc, "schedule", "schedule", decl));
    let catchup_text = ok(text_field(&doc, "catchup", "catchup", decl));
    let mut tables = Vec::new();
    if let Some(Value::Sequence(list)) = doc.get("tables") {
        for (i, t) in list.iter().enumerate() {
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                continue; // the project loader reports tables without a name
            };
            let schedule = ok(text_field(
                t,
                "schedule",
                &format!("tables[{i}].schedule"),
                decl,
            ));
            let path = t.get("path").and_then(Value::as_str).map(str::to_string);
            tables.push((i, name.to_string(), schedule, path));
        }
    }
    let catchup = match &catchup_text {
        None => Catchup::default(),
        Some(c) => c.parse().unwrap_or_else(|e| {
            errors.push(at(&decl.path, &decl.text, "catchup", c, e));
            Catchup::default()
        }),
    };
    let mut out = Vec::new();
    for (i, table, schedule, path) in tables {
        let (field, text) = match (&schedule, &source_schedule) {
            (Some(s), _) => (format!("tables[{i}].schedule"), Some(s)),
            (None, Some(s)) => ("schedule".to_string(), Some(s)),
            (None, None) => (String::new(), None),
        };
        let cadence = match text {
            None => None,
            Some(s) => match Cadence::parse(s) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(at(&decl.path, &decl.text, &field, s, e));
                    continue;
                }
            },
        };
        let sensor = match (&cadence, decl.kind.as_str(), path) {
            (None, "files", Some(p)) => match expand_env(&p, &decl.path) {
                Ok(pattern) => Some(FileSensorSpec {
                    source: decl.name.clone(),
                    table: table.clone(),
                    pattern,
                }),
                Err(e) => {
                    errors.push(ScheduleError::Config(e));
                    None
                }
            },
            _ => None,
        };
        out.push(NodeSchedule {
            node: decl.asset_name(&table),
            kind: NodeKind::Source,
            cadence,
            catchup,
            on_upstream_change: false,
            sensor,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn model_schedule(
    project: &CompiledProject,
    m: &CompiledModel,
) -> Result<NodeSchedule, Vec<ScheduleError>> {
    let mut errors = Vec::new();
    // The value may come from `config()` in the SQL or from a properties file; point at the file
    // that holds it.
    let properties = project
        .project
        .model(&m.name)
        .and_then(|f| f.properties.path.clone());
    let locate = |field: &str, value: &str, e: ScheduleError| -> ScheduleError {
        let (file, line) = match line_of(&m.raw_sql, field, value) {
            Some(line) => (m.path.clone(), Some(line)),
            None => match &properties {
                Some(p) => {
                    let text = std::fs::read_to_string(p).unwrap_or_default();
                    (p.clone(), line_of(&text, field, value))
                }
                None => (m.path.clone(), None),
            },
        };
        ScheduleError::At {
            file,
            line,
            field: format!("config.{field}"),
            source: Box::new(e),
        }
    };
    let cadence = match &m.config.schedule {
        None => None,
        Some(s) => match Cadence::parse(s) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(locate("schedule", s, e));
                None
            }
        },
    };
    let catchup = match &m.config.catchup {
        None => Catchup::default(),
        Some(c) => c.parse().unwrap_or_else(|e| {
            errors.push(locate("catchup", c, e));
            Catchup::default()
        }),
    };
    let on_upstream_change = match m.config.trigger.as_deref().map(str::trim) {
        None => cadence.is_none(),
        Some("on_upstream_change") => true,
        Some("manual") => false,
        Some(other) => {
            errors.push(locate(
                "trigger",
                other,
                ScheduleError::Trigger {
                    value: other.to_string(),
                },
            ));
            false
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NodeSchedule {
        node: m.name.clone(),
        kind: NodeKind::Model,
        cadence,
        catchup,
        on_upstream_change,
        sensor: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testkit::{at, harness};

    #[tokio::test]
    async fn the_plan_reads_every_field_and_reports_every_problem() {
        let h = harness(
            &[
                (
                    "sources/shop.yml",
                    "kind: files\nschedule: \"@daily\"\ncatchup: all\ntables:\n  - name: orders\n    path: data/o/*.csv\n  - name: fast\n    path: data/f/*.csv\n    schedule: every 5m\n",
                ),
                (
                    "models/silver/a.sql",
                    "{{ config(schedule='0 6 * * *', catchup='all') }}\nselect 1 as x",
                ),
                (
                    "models/silver/b.sql",
                    "{{ config(schedule='@hourly', trigger='on_upstream_change') }}\nselect * from {{ ref('a') }}",
                ),
                ("models/gold/c.sql", "select * from {{ ref('b') }}"),
                ("models/gold/d.sql", "select * from {{ ref('b') }}"),
                (
                    "models/gold/props.yml",
                    "version: 2\nmodels:\n  - name: d\n    config:\n      trigger: manual\n",
                ),
            ],
            at(0, 0, 0),
        )
        .await;
        let plan = SchedulePlan::from_project(&h.project).unwrap();
        let describe = |n: &str| plan.get(n).unwrap().describe();
        assert_eq!(describe("shop.orders"), "@daily (catchup all)");
        assert_eq!(describe("shop.fast"), "every 5m (catchup all)");
        assert_eq!(describe("a"), "0 6 * * * (catchup all)");
        assert_eq!(
            describe("b"),
            "@hourly (catchup latest) + on upstream change"
        );
        assert_eq!(describe("c"), "on upstream change");
        assert_eq!(describe("d"), "manual");
        assert_eq!(plan.scheduled().count(), 4);

        let bad = harness(
            &[
                (
                    "sources/shop.yml",
                    "kind: files\ncatchup: sometimes\ntables:\n  - name: orders\n    path: data/o/*.csv\n    schedule: every fortnight\n",
                ),
                (
                    "models/silver/a.sql",
                    "{{ config(schedule='@often', trigger='whenever') }}\nselect 1 as x",
                ),
            ],
            at(0, 0, 0),
        )
        .await;
        let err = SchedulePlan::from_project(&bad.project).unwrap_err();
        assert_eq!(err.problems().len(), 4, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(
                "shop.yml:6: field `tables[0].schedule`: invalid schedule `every fortnight`"
            ),
            "{text}"
        );
        assert!(
            text.contains("shop.yml:2: field `catchup`: invalid catchup `sometimes`"),
            "{text}"
        );
        assert!(
            text.contains(
                "a.sql:1: field `config.schedule`: invalid schedule `@often`: unknown shorthand"
            ),
            "{text}"
        );
        assert!(
            text.contains("field `config.trigger`: invalid trigger `whenever`"),
            "{text}"
        );
    }
}
