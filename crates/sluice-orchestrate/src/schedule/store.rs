//! What the scheduler keeps in (and reads from) the state database.
//!
//! `schedule_ticks(node, last_tick)` holds, per scheduled node, the newest tick that was handled, so a
//! restarted scheduler knows which ticks it missed. The upstream-change trigger needs no table of its
//! own: `node_runs` already says when each node last landed rows and when each model last ran.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};

/// A point in a node's history (defined by `sluice-state`, whose backends read it).
pub use sluice_state::RunMark;

use crate::state::{StateError, StateStore};

pub use crate::abandon::UNFINISHED_HORIZON;

fn parse_time(node: &str, text: &str) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(e) => {
            tracing::warn!(node, value = text, error = %e, "ignoring an unreadable schedule tick");
            None
        }
    }
}

impl StateStore {
    /// The newest handled tick of a scheduled node.
    pub fn schedule_tick(&self, node: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        let text = self.backend().schedule_tick(node)?;
        Ok(text.and_then(|t| parse_time(node, &t)))
    }

    /// Records that `node`'s tick `tick` was handled.
    pub fn set_schedule_tick(&self, node: &str, tick: DateTime<Utc>) -> Result<(), StateError> {
        let text = tick.to_rfc3339_opts(SecondsFormat::Micros, true);
        self.backend().set_schedule_tick(node, &text)
    }

    /// Every recorded tick, by node.
    pub fn schedule_ticks(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StateError> {
        let rows = self.backend().schedule_ticks()?;
        Ok(rows
            .into_iter()
            .filter_map(|(n, t)| parse_time(&n, &t).map(|t| (n, t)))
            .collect())
    }

    /// Per node, the newest successful result that wrote at least one row: the last time it had new
    /// data for its downstream. A run that landed nothing does not count.
    pub fn latest_data_changes(&self) -> Result<BTreeMap<String, RunMark>, StateError> {
        self.backend().latest_data_changes()
    }

    /// Per node, its newest result of any status but `abandoned` (when its last attempt started).
    /// A node of an abandoned run did not pass its inputs' changes on, so it is no attempt.
    pub fn latest_attempts(&self) -> Result<BTreeMap<String, RunMark>, StateError> {
        self.backend().latest_attempts()
    }

    /// Runs started in the last [`UNFINISHED_HORIZON`] that have not finished (here or in another
    /// process). Their new data is theirs to pass on (their on-upstream-change downstream runs in
    /// them), so the scheduler waits for them to end; a run older than that is taken as crashed. An
    /// abandoned run (its process died: [`crate::abandon`]) has finished.
    pub fn unfinished_runs(&self) -> Result<BTreeSet<String>, StateError> {
        let since = (Utc::now() - UNFINISHED_HORIZON).to_rfc3339_opts(SecondsFormat::Micros, true);
        self.backend().unfinished_runs(&since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::NodeRecord;
    use chrono::TimeZone;

    fn record(
        run: &str,
        node: &str,
        status: &str,
        rows: i64,
        start: &str,
        end: &str,
    ) -> NodeRecord {
        NodeRecord {
            run_id: run.into(),
            node: node.into(),
            kind: "source".into(),
            status: status.into(),
            attempts: 1,
            rows_in: None,
            rows_out: Some(rows),
            rows_quarantined: None,
            started_at: start.into(),
            finished_at: end.into(),
            duration_ms: 1,
            error: None,
            version: None,
        }
    }

    #[test]
    fn ticks_round_trip_and_overwrite() {
        let s = StateStore::in_memory().unwrap();
        assert_eq!(s.schedule_tick("a").unwrap(), None);
        let t1 = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let t2 = t1 + chrono::Duration::milliseconds(1500);
        s.set_schedule_tick("a", t1).unwrap();
        s.set_schedule_tick("a", t2).unwrap();
        s.set_schedule_tick("b", t1).unwrap();
        assert_eq!(s.schedule_tick("a").unwrap(), Some(t2));
        let all = s.schedule_ticks().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["b"], t1);
    }

    #[test]
    fn data_changes_ignore_empty_and_failed_results() {
        let s = StateStore::in_memory().unwrap();
        s.record_node(&record(
            "r1",
            "src",
            "success",
            5,
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:01Z",
        ))
        .unwrap();
        s.record_node(&record(
            "r2",
            "src",
            "success",
            0,
            "2026-01-02T00:00:00Z",
            "2026-01-02T00:00:01Z",
        ))
        .unwrap();
        s.record_node(&record(
            "r3",
            "src",
            "failed",
            9,
            "2026-01-03T00:00:00Z",
            "2026-01-03T00:00:01Z",
        ))
        .unwrap();
        let changes = s.latest_data_changes().unwrap();
        assert_eq!(changes["src"].run_id, "r1", "only r1 wrote rows");
        assert_eq!(changes["src"].at, "2026-01-01T00:00:01Z");
        let attempts = s.latest_attempts().unwrap();
        assert_eq!(attempts["src"].run_id, "r3");
    }
}
