//! `singular`: a SQL file (dbt's singular test, `tests/*.sql`) whose SELECT returns the failing rows.
//!
//! The test is attached to one model it reads (the one built last, see
//! `sluice_transform::singular::attach_singular_tests`); while that model is being built, its `ref()`
//! points at the staged output, so the test judges the data before it is published.

use async_trait::async_trait;
use serde_json::Value;
use sluice_core::CheckSpec;
use sluice_transform::model_relation;
use sluice_transform::render::{RenderScope, render};

use crate::error::QualityError;
use crate::run::Check;

/// A singular test.
pub struct Singular {
    spec: CheckSpec,
    /// The rendered SQL.
    sql: String,
    /// The checked model's published relation (`silver.x`), replaced by the relation under check.
    target: Option<String>,
}

impl Singular {
    pub(crate) fn from_spec(spec: CheckSpec, scope: &RenderScope) -> Result<Self, QualityError> {
        let invalid = |message: String| QualityError::Invalid {
            path: spec.path.clone(),
            check: spec.name.clone(),
            message,
        };
        let raw = spec
            .args
            .get("sql")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid("`singular` needs `sql: <SELECT returning failing rows>`".into())
            })?;
        let rendered =
            render(raw, &spec.path, scope, None, false).map_err(|e| invalid(e.to_string()))?;
        let target = scope
            .models
            .get(&spec.model)
            .map(|layer| model_relation(*layer, &spec.model));
        let sql = rendered.sql.trim().trim_end_matches(';').to_string();
        Ok(Self { spec, sql, target })
    }
}

/// Replaces whole-word occurrences of `from` (a relation like `silver.x`) in `sql` by `to`.
pub(crate) fn replace_relation(sql: &str, from: &str, to: &str) -> String {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '"';
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find(from) {
        let before_ok = rest[..i].chars().next_back().is_none_or(|c| !ident(c));
        let after = &rest[i + from.len()..];
        let after_ok = after.chars().next().is_none_or(|c| !ident(c));
        out.push_str(&rest[..i]);
        out.push_str(if before_ok && after_ok { to } else { from });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[async_trait]
impl Check for Singular {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        let sql = match &self.target {
            Some(t) if t != relation => replace_relation(&self.sql, t, relation),
            _ => self.sql.clone(),
        };
        format!("SELECT * FROM ({sql}) AS singular_test")
    }
    fn describe_failure(&self, failing: u64) -> String {
        format!(
            "singular test {} ({}): {failing} failing row(s)",
            self.spec.name,
            self.spec.path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_whole_relations() {
        let sql = "select * from silver.orders o join silver.orders_2 p on 1=1 where x = silver.orders.id";
        assert_eq!(
            replace_relation(sql, "silver.orders", "staging.orders"),
            "select * from staging.orders o join silver.orders_2 p on 1=1 where x = silver.orders.id"
        );
    }
}
