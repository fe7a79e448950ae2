//! Run control: cancel requests, node leases, tick claims, per-node logs and stale inputs, as a
//! trait every backend implements ([`RunControl`]) and its records.
//!
//! Everything here works across processes sharing one database (two `sluice serve`, a `sluice runs
//! cancel` next to a server), so each operation is one atomic statement or transaction whose
//! outcome the database decides, never a read followed by a write in the caller:
//!
//! - a **cancel request** is a row; the run polls for it and stops;
//! - a **lease** says which run executes a node right now: taking it is one conditional upsert that
//!   succeeds only when the row is free, expired or already ours, so two runs never both hold it;
//! - a **tick claim** makes one scheduler, not every scheduler, run a given tick of a node.
//!
//! Times are passed in by the caller (milliseconds since the Unix epoch), so expiry is decided by
//! one comparison in the database and tests need no sleeps.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use crate::StateError;

/// One line of a node's log in a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogLine {
    /// When (RFC 3339).
    pub at: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// What happened.
    pub message: String,
}

impl LogLine {
    /// A line stamped now.
    pub fn now(level: &str, message: impl Into<String>) -> LogLine {
        LogLine {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            level: level.to_string(),
            message: message.into(),
        }
    }
}

/// What [`RunControl::acquire_lease`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The lease is the caller's now (taken, or renewed).
    Acquired,
    /// Another holder has it and it has not expired.
    Held {
        /// The holder (a run id); empty when the lease was released between the two statements.
        holder: String,
        /// The process that holder recorded when it first took a lease, if any: the caller may
        /// judge it dead and [`RunControl::take_over_lease`].
        process: Option<String>,
    },
}

/// Cancels, leases, tick claims, node logs and stale inputs.
///
/// Every method is one atomic change or one consistent read; implementations must be safe to call
/// from several threads and from several processes (or machines) sharing the database.
pub trait RunControl: Send + Sync {
    /// Records a request to stop run `run_id` (at `at`, RFC 3339). A second request keeps the first.
    fn request_cancel(&self, run_id: &str, at: &str) -> Result<(), StateError>;

    /// Whether someone asked run `run_id` to stop.
    fn cancel_requested(&self, run_id: &str) -> Result<bool, StateError>;

    /// Takes (or renews) the lease on `node` for `holder` until `expires_ms`, when it is free, held
    /// by `holder`, or expired before `now_ms`. `process` identifies the holder's process; the first
    /// one recorded for a holder is kept.
    fn acquire_lease(
        &self,
        node: &str,
        holder: &str,
        process: Option<&str>,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<LeaseOutcome, StateError>;

    /// Takes the lease on `node` from `from` (whose process is known to be gone) for `holder`. Only
    /// from that holder, so two runs finding it dead cannot both win: false when it changed hands.
    fn take_over_lease(
        &self,
        node: &str,
        holder: &str,
        from: &str,
        expires_ms: i64,
    ) -> Result<bool, StateError>;

    /// Gives the lease on `node` back, only if `holder` still holds it.
    fn release_lease(&self, node: &str, holder: &str) -> Result<(), StateError>;

    /// Claims tick `tick` of `node` for `holder` at `now_ms`. False when another holder claimed it
    /// at or after `stale_before_ms` (an older claim's process is taken as dead). Claims older than
    /// a day may be forgotten.
    fn claim_tick(
        &self,
        node: &str,
        tick: &str,
        holder: &str,
        now_ms: i64,
        stale_before_ms: i64,
    ) -> Result<bool, StateError>;

    /// Appends lines to a node's log in a run.
    fn append_node_log(
        &self,
        run_id: &str,
        node: &str,
        lines: &[LogLine],
    ) -> Result<(), StateError>;

    /// A node's log in a run, in the order appended.
    fn node_log(&self, run_id: &str, node: &str) -> Result<Vec<LogLine>, StateError>;

    /// Records (or replaces) that `node` was built in `run_id` from the last good data of the
    /// failed `inputs`.
    fn set_stale_inputs(
        &self,
        run_id: &str,
        node: &str,
        inputs: &[String],
    ) -> Result<(), StateError>;

    /// Per node of `run_id`, the failed inputs it was built without.
    fn stale_inputs_of_run(
        &self,
        run_id: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, StateError>;
}
