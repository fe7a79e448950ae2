//! Recording reads in the audit log (`audit_log` of the state database, [`sluice_state::audit`]).
//!
//! Every query path records a read in two steps: [`Auditor::read_started`] appends who, when, from
//! where, over which protocol, which tables and columns and the query's text and hash, and is
//! waited for **before** the first byte of the answer is sent; [`Auditor::count`] wraps the result
//! stream and appends a `read_end` record with the rows actually returned when it ends (or is
//! dropped). A process killed mid-answer thus still leaves the record of what it began to answer.
//! If the log cannot be written, the read is refused: an unrecorded read is what the log is for.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chrono::{SecondsFormat, Utc};
use futures::Stream;
use sluice_engine::extension::tree_node::TreeNodeRecursion;
use sluice_engine::plan::LogicalPlan;
use sluice_engine::sql::sqlparser::ast::visit_relations;
use sluice_engine::sql::sqlparser::dialect::PostgreSqlDialect;
use sluice_engine::sql::sqlparser::parser::Parser;
use sluice_engine::{DfResult, RecordBatchStream, SendableRecordBatchStream};
use sluice_orchestrate::StateStore;
use sluice_state::{AuditLog, AuditRecord};

use crate::auth::Principal;

/// How much of a query's text a record keeps.
const KEPT_SQL_CHARS: usize = 10_000;

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

/// Appends audit records for the listeners.
#[derive(Debug, Clone)]
pub struct Auditor {
    state: Arc<StateStore>,
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
    /// An auditor appending to `state`.
    pub fn new(state: Arc<StateStore>) -> Self {
        Self { state }
    }

    /// Appends `record` off the async threads and waits for it to be committed.
    pub async fn append(&self, record: AuditRecord) -> Result<i64, AuditFailed> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.backend().append_audit(&record))
            .await
            .map_err(|e| AuditFailed(e.to_string()))?
            .map_err(|e| AuditFailed(e.to_string()))
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
        let state = self.state.clone();
        // The answer is already out: the end is recorded without holding anyone up.
        let write = move || {
            if let Err(e) = state.backend().append_audit(&record) {
                tracing::error!(error = %e, seq, "cannot record the end of a read in the audit log");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(write);
            }
            Err(_) => write(),
        }
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
