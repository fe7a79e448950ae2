//! [`RunQueue`] on SQLite (table `run_queue`, with `runs`).

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::StateError;
use crate::queue::{QueuedRun, RunQueue};

impl RunQueue for SqliteStore {
    fn enqueue_run(
        &self,
        run_id: &str,
        command: &str,
        selection: &str,
        request: &str,
        at: &str,
    ) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO runs (run_id, command, selection, status, started_at)
                 VALUES (?1, ?2, ?3, 'queued', ?4)",
                params![run_id, command, selection, at],
            )?;
            tx.execute(
                "INSERT INTO run_queue (run_id, request, queued_at) VALUES (?1, ?2, ?3)",
                params![run_id, request, at],
            )?;
            tx.commit()
        })
    }

    fn claim_queued_run(
        &self,
        holder: &str,
        now_ms: i64,
        stale_ms: i64,
    ) -> Result<Option<QueuedRun>, StateError> {
        self.with(|c| {
            // One statement under SQLite's write lock: two schedulers never claim the same run.
            c.query_row(
                "UPDATE run_queue SET claimed_by = ?1, claimed_ms = ?2
                 WHERE run_id = (
                     SELECT q.run_id FROM run_queue q JOIN runs r ON r.run_id = q.run_id
                     WHERE r.status = 'queued' AND (q.claimed_by IS NULL OR q.claimed_ms < ?3)
                     ORDER BY q.queued_at, q.run_id LIMIT 1)
                 RETURNING run_id, request",
                params![holder, now_ms, stale_ms],
                |row| {
                    Ok(QueuedRun {
                        run_id: row.get(0)?,
                        request: row.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn cancel_queued_run(&self, run_id: &str, at: &str) -> Result<bool, StateError> {
        self.with(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE runs SET status = 'cancelled', finished_at = ?2
                 WHERE run_id = ?1 AND status = 'queued'",
                params![run_id, at],
            )?;
            tx.execute("DELETE FROM run_queue WHERE run_id = ?1", params![run_id])?;
            tx.commit()?;
            Ok(n == 1)
        })
    }
}
