//! Stopping: in-flight runs get a grace period to finish; what is left is cancelled and recorded so.
//!
//! Every write is one atomic Delta commit, so a cancelled run leaves each table at its previous or its
//! new version. A cancelled run does not record its tick: the next start runs it again.

use chrono::{SecondsFormat, Utc};

use super::events::SchedulerEvent;
use super::scheduler::{Flight, Live, Scheduler, add};
use crate::state::RunRecord;

impl Scheduler {
    /// Waits for in-flight runs up to the grace period, then cancels the rest and marks them so.
    pub(super) async fn drain(&self, live: &mut Live) {
        // A maintenance pass commits step by step; one cut short is whole again at the next
        // start, which repeats its unrecorded tick.
        live.maintaining.abort_all();
        // The grace period starts when shutdown is asked for, before anyone hears about it.
        let mut deadline = self
            .clock
            .sleep_until(add(self.clock.now(), self.opts.grace_period));
        self.emit(SchedulerEvent::Stopping {
            in_flight: live.tasks.len(),
        });
        if live.tasks.is_empty() {
            return;
        }
        tracing::info!(runs = live.tasks.len(), grace = ?self.opts.grace_period, "stopping: letting in-flight runs finish");
        loop {
            tokio::select! {
                joined = live.tasks.join_next_with_id() => match joined {
                    Some(j) => self.finish(live, j),
                    None => return,
                },
                () = &mut deadline => break,
            }
        }
        live.tasks.abort_all();
        while let Some(joined) = live.tasks.join_next_with_id().await {
            match joined {
                Err(e) if e.is_cancelled() => {
                    if let Some(flight) = live.flights.remove(&e.id()) {
                        self.mark_cancelled(&flight);
                    }
                }
                other => self.finish(live, other),
            }
        }
    }

    fn mark_cancelled(&self, flight: &Flight) {
        let run_id = flight.run_id.as_str();
        tracing::warn!(run_id, "grace period over: run cancelled");
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        // A run cancelled before the runner recorded its start still belongs in the history.
        if let Ok(None) = self.state.run(run_id)
            && let Err(e) = self
                .state
                .start_run(run_id, "schedule", &flight.selection, &now)
        {
            self.problem(format!("recording cancelled run {run_id}: {e}"));
        }
        let nodes = self.state.nodes_of_run(run_id).unwrap_or_default();
        let count = |s: &str| nodes.iter().filter(|n| n.status == s).count() as i64;
        let record = RunRecord {
            run_id: run_id.to_string(),
            command: "schedule".into(),
            selection: flight.selection.clone(),
            status: "cancelled".into(),
            started_at: String::new(),
            finished_at: Some(now),
            nodes_ok: count("success"),
            nodes_failed: count("failed"),
            nodes_skipped: count("skipped"),
            checks_passed: 0,
            checks_warned: 0,
            checks_failed: 0,
        };
        if let Err(e) = self.state.finish_run(&record) {
            self.problem(format!("marking run {run_id} cancelled: {e}"));
        }
        self.emit(SchedulerEvent::RunCancelled {
            run_id: run_id.to_string(),
        });
    }
}
