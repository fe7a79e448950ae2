//! `sluice retry RUN_ID`: what a retry of a finished run selects: the nodes that did not succeed in
//! it (failed, skipped because an upstream failed, cancelled, abandoned). Skipped and cancelled nodes
//! are the failed nodes' downstream within the run's selection, so nothing outside the original run
//! runs, and nothing that succeeded runs again. A run whose process died is marked abandoned first
//! ([`crate::abandon`]), with the nodes it did not finish, so it retries like a failed one.

use crate::state::{StateError, StateStore};

/// Why a run cannot be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No such run.
    #[error("no run `{0}`; `sluice runs` lists them")]
    UnknownRun(String),
    /// The run has not finished.
    #[error("run `{0}` is still running; cancel it first (`sluice runs cancel {0}`)")]
    StillRunning(String),
    /// Every node succeeded.
    #[error("run `{0}` has nothing to retry: every node succeeded")]
    NothingToRetry(String),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The nodes a retry of `run_id` runs, in the order they were recorded.
pub fn retry_selection(state: &StateStore, run_id: &str) -> Result<Vec<String>, RetryError> {
    state.reap_if_abandoned(run_id)?;
    let run = state
        .run(run_id)?
        .ok_or_else(|| RetryError::UnknownRun(run_id.to_string()))?;
    if run.finished_at.is_none() {
        return Err(RetryError::StillRunning(run_id.to_string()));
    }
    let nodes: Vec<String> = state
        .nodes_of_run(run_id)?
        .into_iter()
        .filter(|n| {
            matches!(
                n.status.as_str(),
                "failed" | "skipped" | "cancelled" | "abandoned"
            )
        })
        .map(|n| n.node)
        .collect();
    if nodes.is_empty() {
        return Err(RetryError::NothingToRetry(run_id.to_string()));
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{NodeRecord, RunRecord};

    fn node(run: &str, name: &str, status: &str) -> NodeRecord {
        NodeRecord {
            run_id: run.into(),
            node: name.into(),
            kind: "model".into(),
            status: status.into(),
            attempts: 1,
            rows_in: None,
            rows_out: None,
            rows_quarantined: None,
            started_at: "2030-01-01T00:00:00Z".into(),
            finished_at: "2030-01-01T00:00:01Z".into(),
            duration_ms: 1000,
            error: None,
            version: None,
        }
    }

    fn finish(s: &StateStore, run: &str) {
        s.finish_run(&RunRecord {
            run_id: run.into(),
            command: "run".into(),
            selection: String::new(),
            status: "partial".into(),
            started_at: String::new(),
            finished_at: Some("2030-01-01T00:00:02Z".into()),
            nodes_ok: 1,
            nodes_failed: 1,
            nodes_skipped: 1,
            checks_passed: 0,
            checks_warned: 0,
            checks_failed: 0,
        })
        .unwrap();
    }

    #[test]
    fn a_retry_selects_what_did_not_succeed() {
        let s = StateStore::in_memory().unwrap();
        s.start_run("r1", "run", "", "2030-01-01T00:00:00Z")
            .unwrap();
        for (n, st) in [
            ("a", "success"),
            ("b", "failed"),
            ("c", "skipped"),
            ("d", "cancelled"),
        ] {
            s.record_node(&node("r1", n, st)).unwrap();
        }
        assert!(matches!(
            retry_selection(&s, "r1"),
            Err(RetryError::StillRunning(_))
        ));
        finish(&s, "r1");
        assert_eq!(retry_selection(&s, "r1").unwrap(), ["b", "c", "d"]);
        assert!(matches!(
            retry_selection(&s, "nope"),
            Err(RetryError::UnknownRun(_))
        ));
        s.start_run("r2", "run", "", "2030-01-01T00:00:00Z")
            .unwrap();
        s.record_node(&node("r2", "a", "success")).unwrap();
        finish(&s, "r2");
        assert!(matches!(
            retry_selection(&s, "r2"),
            Err(RetryError::NothingToRetry(_))
        ));
    }
}
