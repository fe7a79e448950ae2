//! When each node started and finished, for the `timing` of `run_results.json`: an observer that
//! records the times and passes every event on (to the progress bar).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice_orchestrate::{NodeResult, RunObserver};

/// Start and end (RFC 3339) of each node.
#[derive(Default)]
pub struct Timings {
    inner: Option<Arc<dyn RunObserver>>,
    times: Mutex<HashMap<String, (String, Option<String>)>>,
}

impl Timings {
    /// Records times and forwards events to `inner`.
    pub fn around(inner: Arc<dyn RunObserver>) -> Self {
        Self {
            inner: Some(inner),
            times: Mutex::default(),
        }
    }

    /// `(started_at, completed_at)` of `node`, when it ran.
    pub fn of(&self, node: &str) -> Option<(String, Option<String>)> {
        self.times.lock().ok()?.get(node).cloned()
    }
}

impl RunObserver for Timings {
    fn run_started(&self, run_id: &str, total: usize) {
        if let Some(i) = &self.inner {
            i.run_started(run_id, total);
        }
    }

    fn node_started(&self, node: &str) {
        if let Ok(mut t) = self.times.lock() {
            t.insert(node.to_string(), (super::now(), None));
        }
        if let Some(i) = &self.inner {
            i.node_started(node);
        }
    }

    fn node_finished(&self, result: &NodeResult) {
        if let Ok(mut t) = self.times.lock() {
            let now = super::now();
            let entry = t
                .entry(result.node.clone())
                .or_insert_with(|| (now.clone(), None));
            entry.1 = Some(now);
        }
        if let Some(i) = &self.inner {
            i.node_finished(result);
        }
    }
}
