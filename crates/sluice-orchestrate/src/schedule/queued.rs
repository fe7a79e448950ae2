//! Executing runs requested from API processes (`sluice serve --role api`): with
//! [`super::SchedulerOptions::queue_interval`] set, the scheduler claims queued runs (one database
//! statement decides which scheduler gets each, [`crate::queue`]) and executes them like its own,
//! under the same node leases.

use std::collections::{BTreeMap, BTreeSet};

use super::events::{DueReason, SchedulerEvent};
use super::scheduler::{Flight, Live, Scheduler};
use crate::runner;

impl Scheduler {
    /// Claims and starts every run waiting in the queue.
    pub(super) fn start_queued(&self, live: &mut Live) {
        loop {
            let mut opts = match self.state.claim_queued_run(&self.holder) {
                Ok(Some(opts)) => opts,
                Ok(None) => return,
                Err(e) => {
                    self.problem(format!("claiming a queued run: {e}"));
                    return;
                }
            };
            let run_id = opts.run_id.clone().unwrap_or_default();
            let nodes: BTreeSet<String> = match &opts.nodes {
                Some(nodes) => nodes.clone(),
                None => match sluice_core::selector::select_nodes(
                    &self.project.graph,
                    &opts.selection,
                    self.project.as_ref(),
                ) {
                    Ok(nodes) => nodes.into_iter().collect(),
                    Err(e) => {
                        // The project changed since it was queued: say so on the run, not forever.
                        self.problem(format!("queued run {run_id}: selection: {e}"));
                        if let Err(e) = self.state.cancel_run(&run_id) {
                            self.problem(format!("cancelling queued run {run_id}: {e}"));
                        }
                        continue;
                    }
                },
            };
            opts.run_id = Some(run_id.clone());
            tracing::info!(run_id = %run_id, selection = %opts.selection, "starting a queued run");
            let selection = opts.selection.clone();
            let (p, e, s) = (
                self.project.clone(),
                self.engine.clone(),
                self.state.clone(),
            );
            let handle = live
                .tasks
                .spawn(async move { runner::run(p, e, s, opts).await });
            let due: BTreeMap<String, DueReason> = nodes
                .iter()
                .map(|n| (n.clone(), DueReason::Queued))
                .collect();
            live.flights.insert(
                handle.id(),
                Flight {
                    run_id: run_id.clone(),
                    selection,
                    nodes,
                    ticks: Vec::new(),
                },
            );
            self.emit(SchedulerEvent::RunStarted {
                run_id,
                due,
                conditional: BTreeSet::new(),
            });
        }
    }
}
