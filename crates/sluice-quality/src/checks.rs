//! The check kinds (listed in [`crate::registry::CHECK_KINDS`]).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sluice_core::CheckSpec;
use sluice_core::duration::parse_duration;
use sluice_transform::Engine;
use sluice_transform::render::{RenderScope, render};

use crate::error::QualityError;
use crate::run::{Check, CheckResult, CheckStatus, filtered, query_error, result};

pub(crate) fn invalid(spec: &CheckSpec, message: String) -> QualityError {
    QualityError::Invalid {
        path: spec.path.clone(),
        check: spec.name.clone(),
        message,
    }
}

fn column(spec: &CheckSpec) -> Result<String, QualityError> {
    spec.column
        .clone()
        .or_else(|| {
            spec.args
                .get("column_name")
                .or(spec.args.get("column"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .map(|c| quote_ident(&c))
        .ok_or_else(|| {
            invalid(
                spec,
                format!(
                    "`{}` needs a column: declare it under `columns:` or give `column:`",
                    spec.kind
                ),
            )
        })
}

/// Quotes a column name for SQL unless it is a plain lowercase identifier.
fn quote_ident(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn sql_literal(v: &Value, quote: bool) -> Option<String> {
    match v {
        Value::String(s) if quote => Some(format!("'{}'", s.replace('\'', "''"))),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(spec: &CheckSpec, key: &str) -> Result<Option<f64>, QualityError> {
    match spec.args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(spec, format!("`{key}` must be a number, found {v}"))),
    }
}

/// `not_null`: no NULLs in the column.
pub struct NotNull {
    spec: CheckSpec,
    column: String,
}

impl NotNull {
    pub(crate) fn from_spec(spec: CheckSpec) -> Result<Self, QualityError> {
        Ok(Self {
            column: column(&spec)?,
            spec,
        })
    }
}

#[async_trait]
impl Check for NotNull {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        format!("SELECT * FROM {relation} WHERE {} IS NULL", self.column)
    }
}

/// `unique`: no value appears twice (NULLs are ignored, as in dbt).
pub struct Unique {
    spec: CheckSpec,
    column: String,
}

impl Unique {
    pub(crate) fn from_spec(spec: CheckSpec) -> Result<Self, QualityError> {
        Ok(Self {
            column: column(&spec)?,
            spec,
        })
    }
}

#[async_trait]
impl Check for Unique {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        let c = &self.column;
        format!(
            "SELECT {c}, count(*) AS occurrences FROM {relation} WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1"
        )
    }
    fn describe_failure(&self, failing: u64) -> String {
        format!(
            "unique on {}.{}: {failing} duplicated value(s)",
            self.spec.model, self.column
        )
    }
}

/// `accepted_values`: every non-null value is one of `values`.
pub struct AcceptedValues {
    spec: CheckSpec,
    column: String,
    values: Vec<String>,
}

impl AcceptedValues {
    pub(crate) fn from_spec(spec: CheckSpec) -> Result<Self, QualityError> {
        let quote = spec
            .args
            .get("quote")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let values = match spec.args.get("values") {
            Some(Value::Array(vs)) if !vs.is_empty() => vs
                .iter()
                .map(|v| {
                    sql_literal(v, quote).ok_or_else(|| {
                        invalid(
                            &spec,
                            format!("value {v} is not a string, number or boolean"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(invalid(
                    &spec,
                    "`accepted_values` needs a non-empty list `values: [..]`".into(),
                ));
            }
        };
        Ok(Self {
            column: column(&spec)?,
            values,
            spec,
        })
    }
}

#[async_trait]
impl Check for AcceptedValues {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        let c = &self.column;
        format!(
            "SELECT {c}, count(*) AS occurrences FROM {relation} WHERE {c} IS NOT NULL AND {c} NOT IN ({}) GROUP BY {c}",
            self.values.join(", ")
        )
    }
    fn describe_failure(&self, failing: u64) -> String {
        format!(
            "accepted_values on {}.{}: {failing} unexpected value(s); accepted: {}",
            self.spec.model,
            self.column,
            self.values.join(", ")
        )
    }
}

/// `relationships`: every non-null value exists in `field` of the `to` relation.
pub struct Relationships {
    spec: CheckSpec,
    column: String,
    to: String,
    field: String,
}

impl Relationships {
    pub(crate) fn from_spec(spec: CheckSpec, scope: &RenderScope) -> Result<Self, QualityError> {
        let to_raw = spec
            .args
            .get("to")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&spec, "`relationships` needs `to: ref('model')`".into()))?;
        let field = spec
            .args
            .get("field")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid(
                    &spec,
                    "`relationships` needs `field:` (the column in `to`)".into(),
                )
            })?;
        let rendered = render(
            &format!("{{{{ {to_raw} }}}}"),
            &spec.path,
            scope,
            None,
            false,
        )
        .map_err(|e| invalid(&spec, format!("`to: {to_raw}`: {e}")))?;
        if let Some(u) = rendered
            .unknown_refs
            .first()
            .or(rendered.unknown_sources.first())
        {
            return Err(invalid(
                &spec,
                format!("`to: {to_raw}` names unknown asset `{u}`"),
            ));
        }
        Ok(Self {
            column: column(&spec)?,
            to: rendered.sql,
            field: quote_ident(field),
            spec,
        })
    }
}

#[async_trait]
impl Check for Relationships {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        let (c, f, to) = (&self.column, &self.field, &self.to);
        format!(
            "SELECT child.{c} AS {c}, count(*) AS occurrences FROM {relation} AS child \
             LEFT JOIN (SELECT DISTINCT {f} AS parent_key FROM {to}) AS parent ON child.{c} = parent.parent_key \
             WHERE child.{c} IS NOT NULL AND parent.parent_key IS NULL GROUP BY child.{c}"
        )
    }
    fn describe_failure(&self, failing: u64) -> String {
        format!(
            "relationships on {}.{}: {failing} value(s) missing from {}.{}",
            self.spec.model, self.column, self.to, self.field
        )
    }
}

/// `range`: numeric values within `[min, max]` (either bound optional; `inclusive: false` for strict).
pub struct Range {
    spec: CheckSpec,
    column: String,
    min: Option<f64>,
    max: Option<f64>,
    inclusive: bool,
}

impl Range {
    pub(crate) fn from_spec(spec: CheckSpec) -> Result<Self, QualityError> {
        let min = number(&spec, "min")?.or(number(&spec, "min_value")?);
        let max = number(&spec, "max")?.or(number(&spec, "max_value")?);
        if min.is_none() && max.is_none() {
            return Err(invalid(&spec, "`range` needs `min`, `max` or both".into()));
        }
        let inclusive = spec
            .args
            .get("inclusive")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Ok(Self {
            column: column(&spec)?,
            min,
            max,
            inclusive,
            spec,
        })
    }
}

#[async_trait]
impl Check for Range {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        let c = &self.column;
        let (lt, gt) = if self.inclusive {
            ("<", ">")
        } else {
            ("<=", ">=")
        };
        let mut conds = Vec::new();
        if let Some(min) = self.min {
            conds.push(format!("{c} {lt} {min}"));
        }
        if let Some(max) = self.max {
            conds.push(format!("{c} {gt} {max}"));
        }
        format!("SELECT * FROM {relation} WHERE {}", conds.join(" OR "))
    }
    fn describe_failure(&self, failing: u64) -> String {
        let bound = |b: Option<f64>| b.map(|v| v.to_string()).unwrap_or_else(|| "∞".into());
        format!(
            "range on {}.{}: {failing} row(s) outside [{}, {}]",
            self.spec.model,
            self.column,
            self.min
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-∞".into()),
            bound(self.max)
        )
    }
}

/// `row_count`: the model has between `min` and `max` rows.
pub struct RowCount {
    spec: CheckSpec,
    min: Option<f64>,
    max: Option<f64>,
}

impl RowCount {
    pub(crate) fn from_spec(spec: CheckSpec) -> Result<Self, QualityError> {
        let min = number(&spec, "min")?;
        let max = number(&spec, "max")?;
        if min.is_none() && max.is_none() {
            return Err(invalid(
                &spec,
                "`row_count` needs `min`, `max` or both".into(),
            ));
        }
        Ok(Self { min, max, spec })
    }
}

#[async_trait]
impl Check for RowCount {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        let mut conds = Vec::new();
        if let Some(min) = self.min {
            conds.push(format!("count(*) < {min}"));
        }
        if let Some(max) = self.max {
            conds.push(format!("count(*) > {max}"));
        }
        format!(
            "SELECT count(*) AS row_count FROM {relation} HAVING {}",
            conds.join(" OR ")
        )
    }
    fn describe_failure(&self, _failing: u64) -> String {
        format!(
            "row_count on {}: outside [{}, {}]",
            self.spec.model,
            self.min
                .map(|v| v.to_string())
                .unwrap_or_else(|| "0".into()),
            self.max
                .map(|v| v.to_string())
                .unwrap_or_else(|| "∞".into())
        )
    }
}

/// `expression`: a SQL boolean that every row must satisfy (NULL counts as not satisfied).
pub struct Expression {
    spec: CheckSpec,
    expr: String,
}

impl Expression {
    pub(crate) fn from_spec(spec: CheckSpec) -> Result<Self, QualityError> {
        let expr = spec
            .args
            .get("expr")
            .or(spec.args.get("expression"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&spec, "`expression` needs `expr: <SQL boolean>`".into()))?
            .to_string();
        Ok(Self { expr, spec })
    }
}

#[async_trait]
impl Check for Expression {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        format!(
            "SELECT * FROM {relation} WHERE NOT coalesce(({}), false)",
            self.expr
        )
    }
    fn describe_failure(&self, failing: u64) -> String {
        format!(
            "expression `{}` on {}: {failing} row(s) violate it",
            self.expr, self.spec.model
        )
    }
}

/// `freshness`: the newest value of `column` (a timestamp) is recent enough. Graded: older than
/// `warn_after` warns, older than `error_after` fails.
pub struct Freshness {
    spec: CheckSpec,
    column: String,
    warn_after: Option<Duration>,
    error_after: Option<Duration>,
}

impl Freshness {
    pub(crate) fn from_spec(spec: CheckSpec) -> Result<Self, QualityError> {
        let column = column(&spec)?;
        let dur = |key: &str| -> Result<Option<Duration>, QualityError> {
            match spec.args.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => parse_duration(s)
                    .map(Some)
                    .map_err(|e| invalid(&spec, format!("`{key}`: {e}"))),
                Some(Value::Object(o)) => {
                    // dbt's `{count: 12, period: hour}`.
                    let count = o.get("count").and_then(Value::as_f64).unwrap_or(0.0);
                    let unit = match o.get("period").and_then(Value::as_str) {
                        Some("minute") => 60.0,
                        Some("hour") => 3600.0,
                        Some("day") => 86400.0,
                        other => {
                            return Err(invalid(
                                &spec,
                                format!(
                                    "`{key}.period` must be minute, hour or day, found {other:?}"
                                ),
                            ));
                        }
                    };
                    sluice_core::duration::duration_from_count(count, unit)
                        .map(Some)
                        .map_err(|e| invalid(&spec, format!("`{key}`: {e}")))
                }
                Some(other) => Err(invalid(
                    &spec,
                    format!("`{key}` must be a duration like `24h`, found {other}"),
                )),
            }
        };
        let warn_after = dur("warn_after")?;
        let error_after = dur("error_after")?.or(dur("max_age")?);
        if warn_after.is_none() && error_after.is_none() {
            return Err(invalid(
                &spec,
                "`freshness` needs `warn_after` and/or `error_after` (e.g. `24h`)".into(),
            ));
        }
        Ok(Self {
            column,
            warn_after,
            error_after,
            spec,
        })
    }
}

#[async_trait]
impl Check for Freshness {
    fn spec(&self) -> &CheckSpec {
        &self.spec
    }
    fn failing_rows_sql(&self, relation: &str) -> String {
        format!("SELECT max({}) AS latest FROM {relation}", self.column)
    }
    async fn run(&self, engine: &Engine, relation: &str) -> Result<CheckResult, QualityError> {
        let spec = &self.spec;
        let target = filtered(relation, spec.where_clause.as_deref());
        let sql = format!(
            "SELECT CAST(date_part('epoch', now()) - date_part('epoch', max(CAST({c} AS TIMESTAMP))) AS DOUBLE) AS age_s, \
             CAST(max(CAST({c} AS TIMESTAMP)) AS VARCHAR) AS latest FROM {target}",
            c = self.column
        );
        let batches = engine.query(&sql).await.map_err(|e| query_error(spec, e))?;
        let rows = crate::run::to_json_rows(&batches);
        let age = rows
            .first()
            .and_then(|r| r.get("age_s"))
            .and_then(Value::as_f64);
        let latest = rows
            .first()
            .and_then(|r| r.get("latest"))
            .and_then(Value::as_str)
            .unwrap_or("never")
            .to_string();
        let (status, message) = match age {
            None => (
                CheckStatus::Fail,
                format!("freshness on {}: no data in `{}`", spec.model, self.column),
            ),
            Some(age) => {
                // An absurd age (bad data) saturates rather than panics.
                let age_d = Duration::try_from_secs_f64(age.max(0.0)).unwrap_or(Duration::MAX);
                let text = format!(
                    "freshness on {}: newest `{}` is {latest} ({:.1} h old)",
                    spec.model,
                    self.column,
                    age / 3600.0
                );
                if self.error_after.is_some_and(|e| age_d > e) {
                    (
                        if self.warn_after.is_some()
                            || spec.severity == sluice_core::Severity::Error
                        {
                            CheckStatus::Fail
                        } else {
                            CheckStatus::Warn
                        },
                        text,
                    )
                } else if self.warn_after.is_some_and(|w| age_d > w) {
                    (CheckStatus::Warn, text)
                } else {
                    (CheckStatus::Pass, text)
                }
            }
        };
        let failing = u64::from(status != CheckStatus::Pass);
        let mut r = result(spec, failing, rows, message);
        r.status = status;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::build_check;
    use std::path::Path;

    fn spec(yaml: &str, column: Option<&str>) -> CheckSpec {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        CheckSpec::parse(&v, "m", column, Path::new("p.yml")).unwrap()
    }

    #[test]
    fn missing_arguments_are_named() {
        let scope = RenderScope::default();
        let err = build_check(&spec("range: {}", Some("a")), &scope)
            .err()
            .unwrap();
        assert!(err.to_string().contains("needs `min`, `max`"), "{err}");
        let err = build_check(&spec("not_null", None), &scope).err().unwrap();
        assert!(err.to_string().contains("needs a column"), "{err}");
        let err = build_check(
            &spec("relationships: {to: \"ref('x')\", field: id}", Some("a")),
            &scope,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("unknown asset `x`"), "{err}");
    }

    #[test]
    fn sql_shapes() {
        let c = build_check(
            &spec("accepted_values: {values: [a, \"o'k\"]}", Some("status")),
            &RenderScope::default(),
        )
        .unwrap();
        assert!(c.failing_rows_sql("t").contains("NOT IN ('a', 'o''k')"));
        let c = build_check(
            &spec("range: {min: 0, max: 10}", Some("amount")),
            &RenderScope::default(),
        )
        .unwrap();
        assert_eq!(
            c.failing_rows_sql("t"),
            "SELECT * FROM t WHERE amount < 0 OR amount > 10"
        );
    }
}
