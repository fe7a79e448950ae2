//! [`RunQueue`] on PostgreSQL (table `run_queue`, with `runs`).

use super::PostgresStore;
use crate::StateError;
use crate::queue::{QueuedRun, RunQueue};

impl RunQueue for PostgresStore {
    fn enqueue_run(
        &self,
        run_id: &str,
        command: &str,
        selection: &str,
        request: &str,
        at: &str,
    ) -> Result<(), StateError> {
        let (run_id, command, selection, request, at) = (
            run_id.to_string(),
            command.to_string(),
            selection.to_string(),
            request.to_string(),
            at.to_string(),
        );
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                tx.execute(
                    "INSERT INTO runs (run_id, command, selection, status, started_at)
                     VALUES ($1, $2, $3, 'queued', $4)",
                    &[&run_id, &command, &selection, &at],
                )
                .await?;
                tx.execute(
                    "INSERT INTO run_queue (run_id, request, queued_at) VALUES ($1, $2, $3)",
                    &[&run_id, &request, &at],
                )
                .await?;
                tx.commit().await
            })
        })
    }

    fn claim_queued_run(
        &self,
        holder: &str,
        now_ms: i64,
        stale_ms: i64,
    ) -> Result<Option<QueuedRun>, StateError> {
        let holder = holder.to_string();
        self.exec(move |c, rt| {
            // SKIP LOCKED: schedulers claiming at once each take a different run, none waits.
            let row = rt.block_on(c.query_opt(
                "UPDATE run_queue SET claimed_by = $1, claimed_ms = $2
                 WHERE run_id = (
                     SELECT q.run_id FROM run_queue q JOIN runs r ON r.run_id = q.run_id
                     WHERE r.status = 'queued' AND (q.claimed_by IS NULL OR q.claimed_ms < $3)
                     ORDER BY q.queued_at, q.run_id LIMIT 1
                     FOR UPDATE OF q SKIP LOCKED)
                 RETURNING run_id, request",
                &[&holder, &now_ms, &stale_ms],
            ))?;
            Ok(row.map(|r| QueuedRun {
                run_id: r.get(0),
                request: r.get(1),
            }))
        })
    }

    fn cancel_queued_run(&self, run_id: &str, at: &str) -> Result<bool, StateError> {
        let (run_id, at) = (run_id.to_string(), at.to_string());
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                let n = tx
                    .execute(
                        "UPDATE runs SET status = 'cancelled', finished_at = $2
                         WHERE run_id = $1 AND status = 'queued'",
                        &[&run_id, &at],
                    )
                    .await?;
                tx.execute("DELETE FROM run_queue WHERE run_id = $1", &[&run_id])
                    .await?;
                tx.commit().await?;
                Ok(n == 1)
            })
        })
    }
}
