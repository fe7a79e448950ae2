//! Running a check: count the offending rows, keep a sample, decide pass/warn/fail.

use async_trait::async_trait;
use sluice_core::{CheckSpec, Severity};
use sluice_transform::Engine;
use sluice_transform::arrow::array::RecordBatch;

use crate::error::QualityError;

/// How many offending rows a result keeps.
pub const SAMPLE_ROWS: usize = 5;

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    /// No offending rows.
    Pass,
    /// Offending rows, severity warn.
    Warn,
    /// Offending rows, severity error: the model must not publish.
    Fail,
}

impl CheckStatus {
    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Check name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Model checked.
    pub model: String,
    /// Column, for column checks.
    pub column: Option<String>,
    /// Declared severity.
    pub severity: Severity,
    /// Outcome.
    pub status: CheckStatus,
    /// How many rows offend (for aggregate checks: 1 when failing).
    pub failing_rows: u64,
    /// Up to [`SAMPLE_ROWS`] offending rows as JSON objects.
    pub sample: Vec<serde_json::Value>,
    /// One line explaining the outcome.
    pub message: String,
}

/// One check kind.
#[async_trait]
pub trait Check: Send + Sync {
    /// The declaration it was built from.
    fn spec(&self) -> &CheckSpec;

    /// A query over `relation` returning the offending rows.
    fn failing_rows_sql(&self, relation: &str) -> String;

    /// Explains a failure in one line.
    fn describe_failure(&self, failing: u64) -> String {
        let s = self.spec();
        match &s.column {
            Some(c) => format!(
                "{} on {}.{}: {failing} offending row(s)",
                s.kind, s.model, c
            ),
            None => format!("{} on {}: {failing} offending row(s)", s.kind, s.model),
        }
    }

    /// Runs the check. The default counts [`Check::failing_rows_sql`] and samples it; checks with
    /// graded outcomes (freshness) override it.
    async fn run(&self, engine: &Engine, relation: &str) -> Result<CheckResult, QualityError> {
        let spec = self.spec();
        let target = filtered(relation, spec.where_clause.as_deref());
        let failing_sql = self.failing_rows_sql(&target);
        let count_sql = format!("SELECT count(*) AS n FROM ({failing_sql}) AS failing");
        let batches = engine
            .query(&count_sql)
            .await
            .map_err(|e| query_error(spec, e))?;
        let failing = first_u64(&batches).unwrap_or(0);
        let sample = if failing > 0 {
            let rows = engine
                .query(&format!(
                    "SELECT * FROM ({failing_sql}) AS failing LIMIT {SAMPLE_ROWS}"
                ))
                .await
                .map_err(|e| query_error(spec, e))?;
            to_json_rows(&rows)
        } else {
            Vec::new()
        };
        Ok(result(
            spec,
            failing,
            sample,
            if failing > 0 {
                self.describe_failure(failing)
            } else {
                "passed".into()
            },
        ))
    }
}

/// Builds a result with status from severity.
pub(crate) fn result(
    spec: &CheckSpec,
    failing: u64,
    sample: Vec<serde_json::Value>,
    message: String,
) -> CheckResult {
    let status = status_of(spec, failing);
    CheckResult {
        name: spec.name.clone(),
        kind: spec.kind.clone(),
        model: spec.model.clone(),
        column: spec.column.clone(),
        severity: spec.severity,
        status,
        failing_rows: failing,
        sample,
        message,
    }
}

/// The outcome for `failing` rows: dbt's `error_if` / `warn_if` thresholds (default: any row) decide,
/// and a `warn` check never fails.
fn status_of(spec: &CheckSpec, failing: u64) -> CheckStatus {
    use sluice_core::threshold::Threshold;
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| Threshold::parse(t).ok())
            .unwrap_or(Threshold::ANY)
    };
    if spec.severity == Severity::Error && parse(&spec.error_if).matches(failing) {
        CheckStatus::Fail
    } else if parse(&spec.warn_if).matches(failing) {
        CheckStatus::Warn
    } else {
        CheckStatus::Pass
    }
}

/// Runs one check; a check that cannot run (bad column, bad expression) is reported as failed with the
/// engine's message rather than aborting the other checks.
pub async fn evaluate(check: &dyn Check, engine: &Engine, relation: &str) -> CheckResult {
    match check.run(engine, relation).await {
        Ok(r) => r,
        Err(e) => {
            let spec = check.spec();
            let mut r = result(spec, 1, Vec::new(), e.to_string());
            r.status = CheckStatus::Fail;
            r
        }
    }
}

pub(crate) fn filtered(relation: &str, where_clause: Option<&str>) -> String {
    match where_clause {
        Some(w) => format!("(SELECT * FROM {relation} WHERE {w})"),
        None => relation.to_string(),
    }
}

pub(crate) fn query_error(spec: &CheckSpec, e: sluice_transform::TransformError) -> QualityError {
    QualityError::Query {
        check: spec.name.clone(),
        model: spec.model.clone(),
        message: e.to_string(),
    }
}

pub(crate) fn first_u64(batches: &[RecordBatch]) -> Option<u64> {
    use sluice_transform::arrow::array::{Array, Int64Array, UInt64Array};
    let b = batches.iter().find(|b| b.num_rows() > 0)?;
    let col = b.column(0);
    if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
        return (!a.is_null(0)).then(|| a.value(0).max(0) as u64);
    }
    if let Some(a) = col.as_any().downcast_ref::<UInt64Array>() {
        return (!a.is_null(0)).then(|| a.value(0));
    }
    None
}

/// Converts batches to JSON objects (for samples in reports and the API).
pub fn to_json_rows(batches: &[RecordBatch]) -> Vec<serde_json::Value> {
    use sluice_transform::arrow::json::ArrayWriter;
    let mut buf = Vec::new();
    {
        let mut w = ArrayWriter::new(&mut buf);
        for b in batches {
            if w.write(b).is_err() {
                return Vec::new();
            }
        }
        if w.finish().is_err() {
            return Vec::new();
        }
    }
    match serde_json::from_slice::<serde_json::Value>(&buf) {
        Ok(serde_json::Value::Array(rows)) => rows,
        _ => Vec::new(),
    }
}
