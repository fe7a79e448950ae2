//! Taking over the work of a dead scheduler: when the process running a scheduled run is killed,
//! the scheduler that marks that run abandoned (the database lets exactly one process mark it)
//! starts a run of the nodes it did not finish. So a tick claimed by a worker that died mid-run is
//! still built once: the nodes the dead run committed are not run again (each node's write is one
//! Delta commit), and the others run here, under the same node leases as any run.
//!
//! An on-upstream-change model among them claims the input changes it has pending, as the
//! upstream-change trigger does, so it is built once for them whichever scheduler sees them.
//!
//! Only runs the scheduler started are taken over. A run started by hand (`sluice run`, the HTTP
//! API) is marked abandoned and left to whoever started it (`sluice retry`), who saw it die.

use std::collections::{BTreeMap, BTreeSet};

use super::ScheduleError;
use super::events::DueReason;
use super::scheduler::{Live, Scheduler, UpstreamChanges};
use crate::retry::{RetryError, retry_selection};

impl Scheduler {
    /// Starts one run per scheduled run this scheduler marked abandoned, of its unfinished nodes
    /// that the project still has.
    pub(super) fn take_over(&self, live: &mut Live) {
        for orphan in std::mem::take(&mut live.orphans) {
            let run_id = orphan.run_id;
            match self.state.run(&run_id) {
                Ok(Some(run)) if run.command == "schedule" => {}
                Ok(_) => continue,
                Err(e) => {
                    self.problem(format!("reading abandoned run {run_id}: {e}"));
                    continue;
                }
            }
            let nodes = match retry_selection(&self.state, &run_id) {
                Ok(nodes) => nodes,
                Err(RetryError::NothingToRetry(_)) => continue,
                Err(e) => {
                    self.problem(format!("taking over abandoned run {run_id}: {e}"));
                    continue;
                }
            };
            let in_flight = live.in_flight();
            let mut due: BTreeMap<String, DueReason> = BTreeMap::new();
            for node in nodes {
                if !self.project.graph.contains(&node) {
                    continue;
                }
                match self.claim_pending_change(&node, &in_flight) {
                    Ok(true) => {
                        due.insert(node, DueReason::TakenOver(run_id.clone()));
                    }
                    Ok(false) => {}
                    Err(e) => self.problem(format!("taking over `{node}` of run {run_id}: {e}")),
                }
            }
            if due.is_empty() {
                continue;
            }
            tracing::warn!(abandoned = %run_id, reason = %orphan.reason, nodes = due.len(), "taking over the unfinished nodes of an abandoned scheduled run");
            // Their on-upstream-change downstream joins the run, as for any due node.
            let conditional = self.conditional_downstream(&due, &live.in_flight());
            let mut opts = self.opts.run.clone();
            opts.only_if_upstream_changed = conditional.clone();
            self.spawn_run(live, opts, due, conditional, Vec::new());
        }
    }

    /// Whether to take `node` over. A scheduled node, yes: its tick was claimed by the dead run, and
    /// a run of it here now waits for the node's lease. An on-upstream-change model claims the input
    /// changes it has pending, as the upstream-change trigger of every scheduler would: no when
    /// another scheduler claimed them, or a run here builds it already (either builds it for them).
    fn claim_pending_change(
        &self,
        node: &str,
        in_flight: &BTreeSet<String>,
    ) -> Result<bool, ScheduleError> {
        if !self.plan.get(node).is_some_and(|s| s.on_upstream_change) {
            return Ok(true);
        }
        if in_flight.contains(node) {
            return Ok(false);
        }
        let parents: Vec<&str> = self.project.graph.parents(node).collect();
        match UpstreamChanges::read(&self.state)?.of(node, &parents) {
            Some((_, key)) => Ok(self.state.claim_tick(node, &key, &self.holder)?),
            None => Ok(true),
        }
    }
}
