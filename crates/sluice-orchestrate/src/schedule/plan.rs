//! Where schedules come from: the `schedule:`, `catchup:` and `trigger:` fields of source files and
//! models, resolved into one [`NodeSchedule`] per asset.
//!
//! Source files come parsed (`SourceDecl`: `schedule` and `catchup` on the source, `schedule` per
//! table, each with its line and column), so the scheduler needs no knowledge of connector configs. Models take the fields from `config()` in the SQL or the `config:` map of their properties.
//! Every problem is collected, each with its file, line (when found) and field.

use std::collections::BTreeMap;

use sluice_core::SourceDecl;
use sluice_core::env::expand_env;
use sluice_core::error::Position;
use sluice_core::yaml::Value;
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
    /// Table maintenance by `schedule:` ([`super::maintenance`]).
    maintenance: Vec<super::maintenance::MaintenanceSchedule>,
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
        let maintenance = match super::maintenance::maintenance_schedules(project) {
            Ok(list) => list,
            Err(mut e) => {
                errors.append(&mut e);
                Vec::new()
            }
        };
        if errors.is_empty() {
            Ok(SchedulePlan { nodes, maintenance })
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

    /// Table maintenance on a schedule: the tables of each distinct `schedule:` of `maintenance:`.
    pub fn maintenance(&self) -> &[super::maintenance::MaintenanceSchedule] {
        &self.maintenance
    }

    /// Assets with a `schedule:`.
    pub fn scheduled(&self) -> impl Iterator<Item = &NodeSchedule> {
        self.nodes.values().filter(|n| n.cadence.is_some())
    }
}

/// A problem at a value of a source file (its position comes from the parse, see `SourceDecl`).
fn at(decl: &SourceDecl, field: &str, pos: Option<Position>, e: ScheduleError) -> ScheduleError {
    ScheduleError::At {
        file: decl.path.clone(),
        line: pos.map(|p| p.line),
        column: pos.map(|p| p.column),
        field: field.to_string(),
        source: Box::new(e),
    }
}

/// The `path:` of each table of a `files` source, from the connector's part of the file.
fn file_globs(decl: &SourceDecl) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Seq(items)) = decl.connector.get("tables").map(|n| &n.value) {
        for t in items {
            if let (Some(name), Some(path)) = (
                t.get("name").and_then(|n| n.as_str()),
                t.get("path").and_then(|n| n.as_str()),
            ) {
                out.insert(name.to_string(), path.to_string());
            }
        }
    }
    out
}

fn source_schedules(decl: &SourceDecl) -> Result<Vec<NodeSchedule>, Vec<ScheduleError>> {
    let mut errors = Vec::new();
    let catchup = match &decl.catchup {
        None => Catchup::default(),
        Some(c) => c.parse().unwrap_or_else(|e| {
            errors.push(at(decl, "catchup", c.position(), e));
            Catchup::default()
        }),
    };
    let globs = if decl.kind == "files" {
        file_globs(decl)
    } else {
        BTreeMap::new()
    };
    let mut out = Vec::new();
    for (i, table) in decl.tables.iter().enumerate() {
        let (field, text) = match (&table.schedule, &decl.schedule) {
            (Some(s), _) => (format!("tables[{i}].schedule"), Some(s)),
            (None, Some(s)) => ("schedule".to_string(), Some(s)),
            (None, None) => (String::new(), None),
        };
        let cadence = match text {
            None => None,
            Some(s) => match Cadence::parse(s) {
                Ok(c) => Some(c),
                Err(e) => {
                    // A source-wide schedule is reported once, not once per table.
                    let e = at(decl, &field, s.position(), e);
                    if !errors
                        .iter()
                        .any(|x: &ScheduleError| x.to_string() == e.to_string())
                    {
                        errors.push(e);
                    }
                    continue;
                }
            },
        };
        let sensor = match (&cadence, globs.get(&table.name)) {
            (None, Some(p)) => match expand_env(p, &decl.path) {
                Ok(pattern) => Some(FileSensorSpec {
                    source: decl.name.clone(),
                    table: table.name.clone(),
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
            node: decl.asset_name(&table.name),
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

/// The line of `config(...)`'s `field` in a model's SQL. `config()` is a Jinja call inside SQL text,
/// which no YAML parse covers, so its line is found in the SQL itself.
fn sql_line_of(sql: &str, field: &str, value: &str) -> Option<usize> {
    sql.lines()
        .position(|l| l.contains(field) && l.contains(value.trim()))
        .map(|i| i + 1)
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
        let (file, line) = match sql_line_of(&m.raw_sql, field, value) {
            Some(line) => (m.path.clone(), Some(line)),
            None => (properties.clone().unwrap_or_else(|| m.path.clone()), None),
        };
        ScheduleError::At {
            file,
            line,
            column: None,
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
                "shop.yml:6:15: field `tables[0].schedule`: invalid schedule `every fortnight`"
            ),
            "{text}"
        );
        assert!(
            text.contains("shop.yml:2:10: field `catchup`: invalid catchup `sometimes`"),
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
