//! Recording reads in the audit log (`audit_log` of the state database, [`sluice_state::audit`]).
//!
//! Every query path records a read in two records: [`Auditor::read_started`] appends who, when,
//! from where, over which protocol, which tables and columns and the query's text and hash, and is
//! waited for **before** the first byte of the answer is sent; [`Auditor::count`] wraps the result
//! stream and queues a `read_end` record with the rows actually returned when it ends (or is
//! dropped). A process killed mid-answer thus still leaves the record of what it began to answer.
//! If the log cannot be written, the read is refused: an unrecorded read is what the log is for.
//!
//! One writer thread appends for the whole process and groups its work into transactions: the
//! starts waiting at a moment are committed together, and the queued `read_end` records ride along
//! with the next commit (or are committed on their own after [`FLUSH_ENDS_AFTER`]). A read thus
//! costs about one commit, shared with the reads running beside it, rather than two of its own; the
//! price is that a crash can lose the row counts of reads that ended in its last
//! [`FLUSH_ENDS_AFTER`] (never the record that the read was answered).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use futures::Stream;
use sluice_engine::extension::tree_node::TreeNodeRecursion;
use sluice_engine::plan::LogicalPlan;
use sluice_engine::sql::sqlparser::ast::visit_relations;
use sluice_engine::sql::sqlparser::dialect::PostgreSqlDialect;
use sluice_engine::sql::sqlparser::parser::Parser;
use sluice_engine::{DfResult, RecordBatchStream, SendableRecordBatchStream};
use sluice_orchestrate::StateStore;
use sluice_state::AuditRecord;
use tokio::sync::oneshot;

use crate::auth::Principal;

/// How much of a query's text a record keeps.
const KEPT_SQL_CHARS: usize = 10_000;

/// How long a queued `read_end` record waits for a commit to ride along with.
pub const FLUSH_ENDS_AFTER: Duration = Duration::from_millis(200);

/// The most records one commit holds.
const MAX_BATCH: usize = 512;

/// A read about to be answered.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// Who (None: authentication is off).
    pub principal: Option<Principal>,
    /// `http`, `pg` or `flight`.
    pub protocol: &'static str,
    /// The client's address.
    pub client: String,
    /// `sql`, `rows`, `chart`, ...
    pub action: &'static str,
    /// The query text (or what the endpoint ran).
    pub sql: String,
    /// Tables read (`layer.table`).
    pub tables: Vec<String>,
    /// Columns returned.
    pub columns: Vec<String>,
}

/// Appends audit records for the listeners (see the module doc); clones share one writer.
#[derive(Debug, Clone)]
pub struct Auditor {
    jobs: Sender<Job>,
}

/// Work for the writer thread.
#[derive(Debug)]
enum Job {
    /// A record the caller waits for (committed before it answers); the reply is its sequence
    /// number.
    Wait(AuditRecord, oneshot::Sender<Result<i64, String>>),
    /// A record committed with the next batch.
    Queue(AuditRecord),
}

/// The audit log could not be written; the read is refused.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log, so the read is refused: {0}")]
pub struct AuditFailed(pub String);

/// Now, as the log writes times.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Auditor {
    /// An auditor appending to `state`, with its writer thread (which ends when the last clone is
    /// dropped, after committing what is queued).
    pub fn new(state: Arc<StateStore>) -> Self {
        let (jobs, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || write_loop(&state, &rx));
        if let Err(e) = spawned {
            // Without the thread every append fails (the channel is closed): reads are refused,
            // which is the log's rule, and this says why.
            tracing::error!(error = %e, "cannot start the audit log's writer thread");
        }
        Self { jobs }
    }

    /// Appends `record` and waits for it to be committed.
    pub async fn append(&self, record: AuditRecord) -> Result<i64, AuditFailed> {
        let (reply, committed) = oneshot::channel();
        self.jobs
            .send(Job::Wait(record, reply))
            .map_err(|_| AuditFailed("the audit log's writer has stopped".into()))?;
        committed
            .await
            .map_err(|_| AuditFailed("the audit log's writer has stopped".into()))?
            .map_err(AuditFailed)
    }

    /// Records the start of `read` (see the module doc); its sequence number goes to [`Auditor::count`].
    pub async fn read_started(&self, read: &Read) -> Result<i64, AuditFailed> {
        let sql: String = read.sql.chars().take(KEPT_SQL_CHARS).collect();
        let record = AuditRecord {
            at: now(),
            kind: "read".into(),
            action: read.action.into(),
            actor: read
                .principal
                .as_ref()
                .map_or_else(|| "anonymous".to_string(), |p| p.user.clone()),
            role: read.principal.as_ref().map(|p| p.role.to_string()),
            protocol: Some(read.protocol.into()),
            client: Some(read.client.clone()),
            tables: Some(read.tables.join(",")),
            columns: Some(read.columns.join(",")),
            query_hash: Some(sha256_hex(&read.sql)),
            query_text: Some(sql),
            ..AuditRecord::default()
        };
        let seq = self.append(record).await?;
        tracing::debug!(seq, action = read.action, "audited a read");
        Ok(seq)
    }

    /// `stream`, appending a `read_end` record with the rows returned (and whether it ended or
    /// was cut short) when it ends or is dropped.
    pub fn count(
        &self,
        seq: i64,
        read: &Read,
        stream: SendableRecordBatchStream,
    ) -> SendableRecordBatchStream {
        Box::pin(Counted {
            inner: stream,
            rows: 0,
            done: false,
            end: Some(EndRecord {
                auditor: self.clone(),
                seq,
                actor: read
                    .principal
                    .as_ref()
                    .map_or_else(|| "anonymous".to_string(), |p| p.user.clone()),
                protocol: read.protocol,
                client: read.client.clone(),
            }),
        })
    }

    /// Records the end of read `seq`: `rows` returned, `complete` or cut short.
    pub fn read_ended(
        &self,
        seq: i64,
        actor: String,
        protocol: &str,
        client: String,
        rows: i64,
        complete: bool,
    ) {
        let record = AuditRecord {
            at: now(),
            kind: "read".into(),
            action: "read_end".into(),
            actor,
            protocol: Some(protocol.into()),
            client: Some(client),
            rows: Some(rows),
            detail: Some(serde_json::json!({"read": seq, "complete": complete}).to_string()),
            ..AuditRecord::default()
        };
        // The answer is already out: the end is queued without holding anyone up.
        if self.jobs.send(Job::Queue(record)).is_err() {
            tracing::error!(
                seq,
                "cannot record the end of a read: the audit log's writer has stopped"
            );
        }
    }
}

/// The writer thread: commits the records waited for as soon as they come (with everything
/// queued beside them), and queued ones at the latest [`FLUSH_ENDS_AFTER`] later.
fn write_loop(state: &StateStore, jobs: &Receiver<Job>) {
    let mut queued: Vec<AuditRecord> = Vec::new();
    // When the oldest queued record was queued.
    let mut since = Instant::now();
    loop {
        let first = if queued.is_empty() {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        } else {
            let left = FLUSH_ENDS_AFTER.saturating_sub(since.elapsed());
            match jobs.recv_timeout(left) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    commit(state, &mut queued, Vec::new());
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    commit(state, &mut queued, Vec::new());
                    return;
                }
            }
        };
        let mut waiting = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Wait(record, reply) => waiting.push((record, reply)),
                Job::Queue(record) => {
                    if queued.is_empty() {
                        since = Instant::now();
                    }
                    queued.push(record);
                }
            }
            if waiting.len() + queued.len() < MAX_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        if !waiting.is_empty() || queued.len() >= MAX_BATCH || since.elapsed() >= FLUSH_ENDS_AFTER {
            commit(state, &mut queued, waiting);
        }
    }
}

type Waiting = Vec<(AuditRecord, oneshot::Sender<Result<i64, String>>)>;

/// Commits `queued` and `waiting` in one transaction and answers the waiting.
fn commit(state: &StateStore, queued: &mut Vec<AuditRecord>, waiting: Waiting) {
    let ahead = queued.len();
    let (mut records, replies): (Vec<AuditRecord>, Vec<_>) = waiting.into_iter().unzip();
    let mut all = std::mem::take(queued);
    all.append(&mut records);
    let seqs = match state.backend().append_audit_batch(&all) {
        Ok(seqs) => seqs,
        Err(e) if ahead > 0 && !replies.is_empty() => {
            // The queued records may be what fails: the waiting ones are tried alone, so a read
            // is refused only when its own record cannot be written.
            tracing::error!(error = %e, lost = ahead, "cannot record the ends of reads in the audit log");
            match state.backend().append_audit_batch(&all[ahead..]) {
                Ok(seqs) => std::iter::repeat_n(0, ahead).chain(seqs).collect(),
                Err(e) => return refuse(replies, &e.to_string()),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, records = all.len(), "cannot write the audit log");
            return refuse(replies, &e.to_string());
        }
    };
    for (reply, seq) in replies.into_iter().zip(seqs.into_iter().skip(ahead)) {
        // A caller that gave up (its client left) needs no answer.
        let _ = reply.send(Ok(seq));
    }
}

fn refuse(replies: Vec<oneshot::Sender<Result<i64, String>>>, why: &str) {
    for reply in replies {
        let _ = reply.send(Err(why.to_string()));
    }
}

struct EndRecord {
    auditor: Auditor,
    seq: i64,
    actor: String,
    protocol: &'static str,
    client: String,
}

struct Counted {
    inner: SendableRecordBatchStream,
    rows: i64,
    done: bool,
    end: Option<EndRecord>,
}

impl Counted {
    fn finish(&mut self) {
        if let Some(e) = self.end.take() {
            e.auditor
                .read_ended(e.seq, e.actor, e.protocol, e.client, self.rows, self.done);
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Stream for Counted {
    type Item = DfResult<arrow::array::RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(b))) => {
                self.rows += i64::try_from(b.num_rows()).unwrap_or(i64::MAX);
            }
            Poll::Ready(None) => {
                self.done = true;
                self.finish();
            }
            _ => {}
        }
        polled
    }
}

impl RecordBatchStream for Counted {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.inner.schema()
    }
}

/// The tables a logical plan scans (as the query named them, before views are inlined).
pub fn tables_of_plan(plan: &LogicalPlan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.to_string();
            let name = name.strip_prefix("sluice.").unwrap_or(&name).to_string();
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// The tables `sql` names (for paths that do not hand out their plan, like the wire's).
pub fn tables_of_sql(sql: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        for s in &statements {
            let _ = visit_relations(s, |name| {
                let n = name.to_string().to_ascii_lowercase();
                if !out.contains(&n) {
                    out.push(n);
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
    }
    out
}

/// The field names of a schema.
pub fn columns_of(schema: &arrow::datatypes::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reads_are_each_committed_and_their_ends_follow() {
        let state = Arc::new(StateStore::in_memory().unwrap());
        let auditor = Auditor::new(state.clone());
        let mut tasks = Vec::new();
        for i in 0..64 {
            let a = auditor.clone();
            let st = state.clone();
            tasks.push(tokio::spawn(async move {
                let read = Read {
                    protocol: "http",
                    action: "sql",
                    sql: format!("select {i}"),
                    ..Read::default()
                };
                let seq = a.read_started(&read).await.unwrap();
                // The record is committed when read_started returns.
                let found = st.backend().audit_records(seq - 1, 1).unwrap();
                assert_eq!(
                    found.first().map(|r| r.seq),
                    Some(seq),
                    "read {i} not committed"
                );
                a.read_ended(seq, "anonymous".into(), "http", String::new(), i, true);
                seq
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 64, "every read has its own sequence number");
        // The ends are committed within FLUSH_ENDS_AFTER of being queued, with no read to ride on.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ends = state
                .backend()
                .audit_records(0, 1000)
                .unwrap()
                .into_iter()
                .filter(|r| r.action == "read_end")
                .count();
            if ends == 64 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{ends} of 64 ends");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn tables_come_from_the_sql() {
        assert_eq!(
            tables_of_sql("select a from silver.customers c join gold.revenue r on c.id = r.id"),
            vec!["silver.customers", "gold.revenue"]
        );
        assert!(tables_of_sql("not sql at all (").is_empty());
        assert_eq!(sha256_hex("").len(), 64);
    }
}
