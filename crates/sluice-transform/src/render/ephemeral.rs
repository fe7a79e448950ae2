//! Ephemeral models: never stored; every model that `ref()`s one gets its SQL inlined as a CTE named
//! `__dbt__cte__<model>` (dbt's naming), ephemerals of ephemerals first.

use std::path::PathBuf;

use super::{RenderScope, render_raw};
use crate::error::TransformError;

/// The CTE name an ephemeral model is inlined under.
pub fn cte_name(model: &str) -> String {
    format!("__dbt__cte__{model}")
}

/// An ephemeral model's source, kept in the render scope.
#[derive(Debug, Clone)]
pub struct EphemeralSource {
    /// Its file.
    pub path: PathBuf,
    /// Its raw Jinja-SQL.
    pub raw_sql: String,
}

/// Prepends the CTEs of `direct` (ephemeral models the SQL refers to) and of their own ephemerals.
pub(crate) fn inline(
    sql: &str,
    direct: &[String],
    scope: &RenderScope,
) -> Result<String, TransformError> {
    let mut ctes: Vec<(String, String)> = Vec::new();
    let mut visiting = Vec::new();
    for name in direct {
        add(name, scope, &mut ctes, &mut visiting)?;
    }
    Ok(with_ctes(sql, &ctes))
}

fn add(
    name: &str,
    scope: &RenderScope,
    ctes: &mut Vec<(String, String)>,
    visiting: &mut Vec<String>,
) -> Result<(), TransformError> {
    if ctes.iter().any(|(n, _)| n == name) {
        return Ok(());
    }
    let Some(src) = scope.ephemeral.get(name) else {
        return Ok(());
    };
    if visiting.iter().any(|v| v == name) {
        visiting.push(name.to_string());
        return Err(TransformError::Graph(sluice_core::GraphError::Cycle(
            visiting.clone(),
        )));
    }
    visiting.push(name.to_string());
    let (rendered, nested) = render_raw(&src.raw_sql, &src.path, scope, None, false)?;
    for dep in &nested {
        add(dep, scope, ctes, visiting)?;
    }
    visiting.pop();
    let body = rendered
        .sql
        .trim()
        .trim_end_matches(';')
        .trim_end()
        .to_string();
    ctes.push((name.to_string(), body));
    Ok(())
}

/// Adds `ctes` to the front of `sql`, merging with a leading `WITH` when the SQL has one.
pub fn with_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let list = ctes
        .iter()
        .map(|(n, body)| format!("{} as (\n{body}\n)", cte_name(n)))
        .collect::<Vec<_>>()
        .join(",\n");
    let start = skip_comments(sql);
    let (head, body) = sql.split_at(start);
    let lower = body.to_ascii_lowercase();
    let is_with =
        lower.starts_with("with") && lower[4..].chars().next().is_some_and(char::is_whitespace);
    if is_with {
        let rest = &body[4..];
        let trimmed = rest.trim_start();
        if trimmed.to_ascii_lowercase().starts_with("recursive") {
            let after = &trimmed[9..];
            return format!("{head}with recursive {list},{after}");
        }
        format!("{head}with {list},{rest}")
    } else {
        format!("{head}with {list}\n{body}")
    }
}

/// The byte offset after leading whitespace and SQL comments.
fn skip_comments(sql: &str) -> usize {
    let mut i = 0;
    loop {
        let rest = &sql[i..];
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            i += trimmed.find('\n').map(|n| n + 1).unwrap_or(trimmed.len());
        } else if trimmed.starts_with("/*") {
            i += trimmed.find("*/").map(|n| n + 2).unwrap_or(trimmed.len());
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_with_an_existing_with() {
        let ctes = vec![("a".to_string(), "select 1 as x".to_string())];
        assert_eq!(
            with_ctes("-- c\nselect * from __dbt__cte__a", &ctes),
            "-- c\nwith __dbt__cte__a as (\nselect 1 as x\n)\nselect * from __dbt__cte__a"
        );
        assert_eq!(
            with_ctes("WITH b as (select 2) select * from b", &ctes),
            "with __dbt__cte__a as (\nselect 1 as x\n), b as (select 2) select * from b"
        );
        assert_eq!(with_ctes("withdrawals", &[]), "withdrawals");
        assert!(with_ctes("withdrawals_view", &ctes).starts_with("with __dbt__cte__a"));
    }
}
