//! `run_results.json` in dbt's run results v6 shape: one result per node that ran (or was skipped), one
//! per check, with status, timing, rows and messages.

use serde_json::{Map, Value, json};
use sluice_orchestrate::{NodeStatus, RunSummary};
use sluice_quality::CheckStatus;
use sluice_transform::CompiledProject;

use super::timing::Timings;
use super::{Invocation, RUN_RESULTS_SCHEMA, test_id, unique_id};

/// The run results of a finished run.
pub fn run_results(
    compiled: &CompiledProject,
    summary: &RunSummary,
    timings: Option<&Timings>,
    inv: &Invocation,
) -> Value {
    let mut results = Vec::new();
    for (i, n) in summary.nodes.iter().enumerate() {
        let Some(id) = unique_id(compiled, &n.node) else {
            continue;
        };
        let status = match n.status {
            NodeStatus::Success => "success",
            NodeStatus::Failed => "error",
            NodeStatus::Skipped | NodeStatus::Cancelled => "skipped",
        };
        let timing = match timings.and_then(|t| t.of(&n.node)) {
            Some((start, end)) => {
                json!([{"name": "execute", "started_at": start, "completed_at": end}])
            }
            None => json!([]),
        };
        let model = compiled.models.get(&n.node);
        let relation = model.map(|m| m.relation.clone()).or_else(|| {
            compiled
                .sources
                .get(&n.node)
                .map(|s| sluice_transform::source_relation(&s.source, &s.table))
        });
        let mut adapter = Map::new();
        adapter.insert("_message".into(), n.status.as_str().into());
        if let Some(rows) = n.output.rows_out {
            adapter.insert("rows_affected".into(), rows.into());
        }
        if let Some(v) = n.output.version {
            adapter.insert("delta_version".into(), v.into());
        }
        let failures = n
            .output
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .count();
        let message = n.error.clone().or_else(|| {
            (n.status == NodeStatus::Success).then(|| match n.output.rows_out {
                Some(r) => format!("{r} rows"),
                None => "OK".to_string(),
            })
        });
        results.push(json!({
            "status": status,
            "timing": timing,
            "thread_id": format!("Thread-{}", i + 1),
            "execution_time": n.duration.as_secs_f64(),
            "adapter_response": adapter,
            "message": message,
            "failures": (n.status == NodeStatus::Failed && failures > 0).then_some(failures),
            "unique_id": id,
            "compiled": model.map(|_| true),
            "compiled_code": model.map(|m| m.sql.clone()),
            "relation_name": relation,
        }));
        for c in &n.output.checks {
            let status = match c.status {
                CheckStatus::Pass => "pass",
                CheckStatus::Warn => "warn",
                CheckStatus::Fail => "fail",
            };
            results.push(json!({
                "status": status,
                "timing": [],
                "thread_id": format!("Thread-{}", i + 1),
                "execution_time": 0.0,
                "adapter_response": {},
                "message": c.message,
                "failures": c.failing_rows,
                "unique_id": test_id(compiled, &c.name),
                "compiled": true,
                "compiled_code": null,
                "relation_name": null,
            }));
        }
    }
    json!({
        "metadata": inv.metadata(RUN_RESULTS_SCHEMA),
        "results": results,
        "elapsed_time": summary.duration.as_secs_f64(),
        "args": args(inv),
    })
}

/// Results of `sluice compile`: every compiled node succeeded (a compile error stops before).
pub fn compile_results(compiled: &CompiledProject, nodes: &[String], inv: &Invocation) -> Value {
    let results: Vec<Value> = nodes
        .iter()
        .filter_map(|n| {
            let m = compiled.models.get(n)?;
            Some(json!({
                "status": "success",
                "timing": [],
                "thread_id": "Thread-1",
                "execution_time": 0.0,
                "adapter_response": {},
                "message": null,
                "failures": null,
                "unique_id": unique_id(compiled, n)?,
                "compiled": true,
                "compiled_code": m.sql,
                "relation_name": m.relation,
            }))
        })
        .collect();
    json!({
        "metadata": inv.metadata(RUN_RESULTS_SCHEMA),
        "results": results,
        "elapsed_time": 0.0,
        "args": args(inv),
    })
}

fn args(inv: &Invocation) -> Value {
    let mut a = inv.args.clone();
    a.insert("which".into(), inv.which.clone().into());
    Value::Object(a)
}
