//! Runs queued by a process that does not execute runs (`sluice serve --role api`), for a
//! scheduler to claim and execute: so the API scales apart from the workers, and a run requested
//! from any API process runs on one of the workers.
//!
//! The request is the part of [`RunOptions`] a caller sets (selection, threads, retries, full
//! refresh), kept as JSON with the run (`sluice_state::RunQueue`). A scheduler claims the oldest
//! queued run in one database statement; a claim that did not start the run within
//! [`QUEUE_CLAIM_TTL`] (its scheduler died in between) is claimed again by another.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::runner::RunOptions;
use crate::state::{StateError, StateStore, now_ms};
use crate::summary::new_run_id;

/// How long a claimed queued run may wait for its scheduler to start it before another may claim
/// it.
pub const QUEUE_CLAIM_TTL: Duration = Duration::from_secs(60);

/// What a queued run was asked to do.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    command: String,
    selection: String,
    nodes: Option<Vec<String>>,
    threads: usize,
    full_refresh: bool,
    checks_only: bool,
    retries: u32,
    retry_backoff_ms: u64,
}

/// Why a queued run cannot be executed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The request is not one this sluice can read (written by another version).
    #[error("queued run {run_id} has a request this sluice cannot read: {message}")]
    BadRequest {
        /// The run.
        run_id: String,
        /// Why.
        message: String,
    },
}

impl StateStore {
    /// Queues a run of `opts` for a scheduler; returns its id (`opts.run_id`, or a new one). The
    /// run is listed at once, with status `queued`.
    pub fn enqueue_run(&self, opts: &RunOptions) -> Result<String, StateError> {
        let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
        let request = Request {
            command: opts.command.clone(),
            selection: opts.selection.clone(),
            nodes: opts.nodes.as_ref().map(|n| n.iter().cloned().collect()),
            threads: opts.threads,
            full_refresh: opts.full_refresh,
            checks_only: opts.checks_only,
            retries: opts.retries,
            retry_backoff_ms: u64::try_from(opts.retry_backoff.as_millis()).unwrap_or(u64::MAX),
        };
        // Serializing plain strings and numbers cannot fail.
        let json = serde_json::to_string(&request).unwrap_or_default();
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        self.backend()
            .enqueue_run(&run_id, &opts.command, &opts.selection, &json, &at)?;
        Ok(run_id)
    }

    /// Claims the oldest queued run for `holder` and gives the options to run it with (its run id
    /// set; observer, executor and policies left to the caller). `None` when nothing waits. A
    /// request this sluice cannot read is cancelled and reported.
    pub fn claim_queued_run(&self, holder: &str) -> Result<Option<RunOptions>, QueueError> {
        let now = now_ms();
        let stale = now.saturating_sub(i64::try_from(QUEUE_CLAIM_TTL.as_millis()).unwrap_or(0));
        let Some(queued) = self.backend().claim_queued_run(holder, now, stale)? else {
            return Ok(None);
        };
        let request: Request = match serde_json::from_str(&queued.request) {
            Ok(r) => r,
            Err(e) => {
                let at = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
                self.backend().cancel_queued_run(&queued.run_id, &at)?;
                return Err(QueueError::BadRequest {
                    run_id: queued.run_id,
                    message: e.to_string(),
                });
            }
        };
        Ok(Some(RunOptions {
            selection: request.selection,
            nodes: request
                .nodes
                .map(|n| n.into_iter().collect::<BTreeSet<_>>()),
            threads: request.threads,
            full_refresh: request.full_refresh,
            checks_only: request.checks_only,
            command: request.command,
            retries: request.retries,
            retry_backoff: Duration::from_millis(request.retry_backoff_ms),
            run_id: Some(queued.run_id),
            ..RunOptions::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_run_is_claimed_once_with_its_options_and_then_started() {
        let s = StateStore::in_memory().unwrap();
        let opts = RunOptions {
            selection: "a+".into(),
            threads: 3,
            full_refresh: true,
            retries: 5,
            retry_backoff: Duration::from_millis(250),
            command: "api".into(),
            ..RunOptions::default()
        };
        let id = s.enqueue_run(&opts).unwrap();
        assert_eq!(s.run(&id).unwrap().unwrap().status, "queued");

        let claimed = s.claim_queued_run("s1").unwrap().unwrap();
        assert_eq!(claimed.run_id.as_deref(), Some(id.as_str()));
        assert_eq!(claimed.selection, "a+");
        assert_eq!(claimed.threads, 3);
        assert!(claimed.full_refresh);
        assert_eq!(claimed.retries, 5);
        assert_eq!(claimed.retry_backoff, Duration::from_millis(250));
        assert_eq!(claimed.command, "api");
        // Claimed: nobody else gets it.
        assert!(s.claim_queued_run("s2").unwrap().is_none());
    }

    #[test]
    fn a_cancelled_queued_run_is_never_claimed() {
        let s = StateStore::in_memory().unwrap();
        let id = s.enqueue_run(&RunOptions::default()).unwrap();
        assert!(matches!(
            s.cancel_run(&id).unwrap(),
            crate::CancelOutcome::Dequeued
        ));
        assert_eq!(s.run(&id).unwrap().unwrap().status, "cancelled");
        assert!(s.claim_queued_run("s1").unwrap().is_none());
    }
}
