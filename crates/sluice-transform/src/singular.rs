//! Singular tests (dbt's `tests/*.sql`): a SELECT that returns the failing rows.
//!
//! Each test becomes a `singular` check on the model it reads that is built last, so that it runs
//! once every model it reads is built (the other models it reads are ordered before that one); during
//! the build its `ref()` to that model reads the staged output (write, audit, publish).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_core::{CheckSpec, Severity};

use crate::compiled::CompiledProject;
use crate::error::TransformError;
use crate::render::render;

/// One singular test file.
#[derive(Debug, Clone)]
pub struct SingularTest {
    /// The file stem.
    pub name: String,
    /// The `.sql` file.
    pub path: PathBuf,
    /// Its Jinja-SQL.
    pub sql: String,
}

/// Adds every test as a check of the model it should run with; returns every problem found.
pub fn attach_singular_tests(
    compiled: &mut CompiledProject,
    tests: &[SingularTest],
) -> Vec<TransformError> {
    let mut errors = Vec::new();
    if tests.is_empty() {
        return errors;
    }
    let order: Vec<String> = match compiled.graph.topological_order() {
        Ok(o) => o,
        Err(e) => return vec![TransformError::Graph(e)],
    };
    let position = |name: &str| order.iter().position(|n| n == name);
    let mut specs = Vec::new();
    for t in tests {
        let rendered = match render(&t.sql, &t.path, &compiled.scope, None, false) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let reads: Vec<&String> = rendered
            .refs
            .iter()
            .filter(|r| compiled.models.contains_key(*r))
            .collect();
        let Some(target) = reads
            .iter()
            .copied()
            .max_by_key(|r| position(r).unwrap_or(0))
            .cloned()
        else {
            errors.push(TransformError::Config {
                path: t.path.clone(),
                field: "ref".into(),
                message: "a singular test must read at least one model with ref()".into(),
            });
            continue;
        };
        for r in reads.iter().filter(|r| ***r != target) {
            compiled.graph.add_edge(r, &target);
        }
        for (s, table) in &rendered.sources {
            let name = sluice_core::NodeId::source_table(s, table).to_string();
            if compiled.sources.contains_key(&name) {
                compiled.graph.add_edge(&name, &target);
            }
        }
        let text = |key: &str| {
            rendered
                .config
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let severity = match text("severity").as_deref() {
            Some(s) if s.eq_ignore_ascii_case("warn") => Severity::Warn,
            _ => Severity::Error,
        };
        let mut args = Map::new();
        args.insert("sql".into(), Value::String(t.sql.clone()));
        specs.push(CheckSpec {
            name: t.name.clone(),
            kind: "singular".into(),
            model: target,
            column: None,
            args,
            severity,
            where_clause: None,
            error_if: text("error_if"),
            warn_if: text("warn_if"),
            path: t.path.clone(),
        });
    }
    if let Some(cycle) = compiled.graph.find_cycle() {
        errors.push(TransformError::Graph(sluice_core::GraphError::Cycle(cycle)));
    }
    Arc::make_mut(&mut compiled.project).checks.extend(specs);
    errors
}
