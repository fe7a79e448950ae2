//! A model's checks against a relation: the audit step of write–audit–publish, shared by plain
//! builds ([`crate::execute`]) and partition builds ([`crate::partition::build`]).

use sluice_quality::{CheckResult, CheckStatus, build_check, evaluate};
use sluice_transform::{CompiledProject, Engine};

use crate::node::NodeError;

/// Runs every check of `model` against `relation` (staged output during a build, the published relation
/// for `sluice test`).
pub async fn run_checks(
    project: &CompiledProject,
    engine: &Engine,
    model: &str,
    relation: &str,
) -> Result<Vec<CheckResult>, NodeError> {
    let mut out = Vec::new();
    for spec in project.project.checks_of(model) {
        let check = build_check(spec, &project.scope)?;
        out.push(evaluate(check.as_ref(), engine, relation).await);
    }
    Ok(out)
}

/// The messages of the failed (error-level) checks; empty when the data may be published.
pub fn failures(checks: &[CheckResult]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.message.clone())
        .collect()
}
