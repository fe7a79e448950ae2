//! Every query the server runs, over HTTP or the wire: admitted into a bounded number of slots,
//! bounded by a statement timeout, listed for admins (`GET /api/queries`) and cancellable (`POST
//! /api/queries/{id}/cancel`, a wire cancel request, the UI).
//!
//! A query holds a [`QueryTicket`] from admission until its result stream is dropped. The stream is
//! wrapped by [`QueryTicket::guard`]: it ends with an error when the ticket is cancelled or its
//! deadline passes, and dropping it drops the engine's stream, which aborts the work (see
//! `sluice_engine::isolate`). A client that disconnects drops the stream the same way.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Future, Stream};
use serde::Serialize;
use sluice_engine::{DataFusionError, RecordBatchStream, SendableRecordBatchStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::error::ApiError;

/// How much of a query's text the registry keeps for listing.
const SHOWN_SQL_CHARS: usize = 2000;

/// One running query, as `GET /api/queries` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueryInfo {
    /// Id for `POST /api/queries/{id}/cancel`.
    pub id: u64,
    /// `http` or `pg`.
    pub protocol: &'static str,
    /// The client's address.
    pub peer: String,
    /// The SQL (or what the endpoint ran), shortened.
    pub sql: String,
    /// When it was admitted.
    pub started_at: DateTime<Utc>,
    /// Milliseconds since then.
    pub elapsed_ms: u64,
    /// Milliseconds it may still run.
    pub timeout_ms: u64,
}

struct Entry {
    info: QueryInfo,
    started: Instant,
    deadline: Instant,
    cancel: CancellationToken,
}

/// Why a query did not run to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Interrupted {
    /// No slot freed up within the queue timeout.
    #[error(
        "the server is running {running} queries, its limit; this one waited {waited:?} for a \
         slot. Retry later"
    )]
    Busy {
        /// The slots.
        running: usize,
        /// How long it waited.
        waited: Duration,
    },
    /// The statement timeout passed.
    #[error("canceling statement due to statement timeout ({0:?})")]
    Timeout(Duration),
    /// An admin or the client cancelled it.
    #[error("canceling statement due to user request")]
    Cancelled,
}

/// The server's running queries.
pub struct QueryRegistry {
    next_id: AtomicU64,
    running: Mutex<BTreeMap<u64, Entry>>,
    slots: Arc<Semaphore>,
    max: usize,
    statement_timeout: Duration,
    queue_timeout: Duration,
}

impl std::fmt::Debug for QueryRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryRegistry")
            .field("max", &self.max)
            .field("running", &self.list().len())
            .finish()
    }
}

impl QueryRegistry {
    /// A registry with `max` slots, each query bounded by `statement_timeout`, waiting at most
    /// `queue_timeout` for a slot.
    pub fn new(max: usize, statement_timeout: Duration, queue_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            next_id: AtomicU64::new(1),
            running: Mutex::new(BTreeMap::new()),
            slots: Arc::new(Semaphore::new(max.max(1))),
            max: max.max(1),
            statement_timeout,
            queue_timeout,
        })
    }

    /// The server-wide statement timeout.
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    /// Waits for a slot and registers a query. `timeout` (a client's own statement timeout) can only
    /// shorten the server's.
    pub async fn admit(
        self: &Arc<Self>,
        protocol: &'static str,
        peer: String,
        sql: &str,
        timeout: Option<Duration>,
    ) -> Result<QueryTicket, Interrupted> {
        let waiting = Instant::now();
        let permit = match tokio::time::timeout(
            self.queue_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(p)) => p,
            // Closed never happens (the registry owns the semaphore); treat it like a full queue.
            Ok(Err(_)) | Err(_) => {
                return Err(Interrupted::Busy {
                    running: self.max,
                    waited: waiting.elapsed(),
                });
            }
        };
        let limit = timeout
            .filter(|t| !t.is_zero())
            .map_or(self.statement_timeout, |t| t.min(self.statement_timeout));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let shown: String = sql.chars().take(SHOWN_SQL_CHARS).collect();
        let entry = Entry {
            info: QueryInfo {
                id,
                protocol,
                peer,
                sql: shown,
                started_at: Utc::now(),
                elapsed_ms: 0,
                timeout_ms: 0,
            },
            started,
            deadline: started + limit,
            cancel: cancel.clone(),
        };
        self.lock().insert(id, entry);
        Ok(QueryTicket {
            registry: self.clone(),
            id,
            cancel,
            deadline: started + limit,
            limit,
            _permit: permit,
        })
    }

    /// The running queries, oldest first.
    pub fn list(&self) -> Vec<QueryInfo> {
        let now = Instant::now();
        self.lock()
            .values()
            .map(|e| {
                let mut info = e.info.clone();
                info.elapsed_ms = millis(now.saturating_duration_since(e.started));
                info.timeout_ms = millis(e.deadline.saturating_duration_since(now));
                info
            })
            .collect()
    }

    /// Cancels query `id`; false when no such query runs.
    pub fn cancel(&self, id: u64) -> bool {
        match self.lock().get(&id) {
            Some(e) => {
                e.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every running query (shutdown after the grace period).
    pub fn cancel_all(&self) {
        for e in self.lock().values() {
            e.cancel.cancel();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        // A panic while holding the lock leaves a plain map behind: still usable.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A query's admission: its slot, cancel switch and deadline. Dropping it frees the slot.
pub struct QueryTicket {
    registry: Arc<QueryRegistry>,
    id: u64,
    cancel: CancellationToken,
    deadline: Instant,
    limit: Duration,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for QueryTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryTicket").field("id", &self.id).finish()
    }
}

impl Drop for QueryTicket {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl QueryTicket {
    /// The query's id in the registry.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// When the statement timeout ends it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Its statement timeout.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The token that cancels this query (for a wire cancel request).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Runs `work` (planning) unless the query is cancelled or times out first.
    pub async fn during<T>(&self, work: impl Future<Output = T>) -> Result<T, Interrupted> {
        tokio::select! {
            out = work => Ok(out),
            () = self.cancel.cancelled() => Err(Interrupted::Cancelled),
            () = tokio::time::sleep_until(self.deadline) => Err(Interrupted::Timeout(self.limit)),
        }
    }

    /// Wraps a result stream: it ends with an error at cancel or deadline, and holds the ticket
    /// until it is dropped.
    pub fn guard(self, inner: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let sleep = Box::pin(tokio::time::sleep_until(self.deadline));
        let cancelled = Box::pin(self.cancel.clone().cancelled_owned());
        Box::pin(GuardedStream {
            inner: Some(inner),
            sleep,
            cancelled,
            ticket: self,
        })
    }
}

/// See [`QueryTicket::guard`].
struct GuardedStream {
    inner: Option<SendableRecordBatchStream>,
    sleep: Pin<Box<Sleep>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    ticket: QueryTicket,
}

impl GuardedStream {
    fn interrupt(
        &mut self,
        why: Interrupted,
    ) -> Poll<Option<sluice_engine::DfResult<arrow::array::RecordBatch>>> {
        // Dropping the engine's stream aborts the query's work now, not when the client goes.
        self.inner = None;
        Poll::Ready(Some(Err(DataFusionError::External(Box::new(why)))))
    }
}

impl Stream for GuardedStream {
    type Item = sluice_engine::DfResult<arrow::array::RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.cancelled.as_mut().poll(cx).is_ready() {
            return this.interrupt(Interrupted::Cancelled);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            let limit = this.ticket.limit;
            return this.interrupt(Interrupted::Timeout(limit));
        }
        let polled = inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = polled {
            this.inner = None;
        }
        polled
    }
}

impl RecordBatchStream for GuardedStream {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        match &self.inner {
            Some(s) => s.schema(),
            None => Arc::new(arrow::datatypes::Schema::empty()),
        }
    }
}

/// Finds an [`Interrupted`] inside an engine error (it travels as `DataFusionError::External`).
pub fn interruption_of<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Interrupted> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(i) = err.downcast_ref::<Interrupted>() {
            return Some(i);
        }
        if let Some(DataFusionError::External(inner)) = err.downcast_ref::<DataFusionError>()
            && let Some(i) = inner.downcast_ref::<Interrupted>()
        {
            return Some(i);
        }
        cur = err.source();
    }
    None
}

/// A query stopped by admission or cancellation, as the HTTP API reports it.
impl From<Interrupted> for ApiError {
    fn from(i: Interrupted) -> Self {
        match i {
            Interrupted::Busy { .. } => ApiError::Busy(i.to_string()),
            Interrupted::Timeout(_) | Interrupted::Cancelled => ApiError::Cancelled(i.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use sluice_engine::plan::RecordBatchStreamAdapter;

    use super::*;

    fn endless() -> SendableRecordBatchStream {
        let schema = Arc::new(arrow::datatypes::Schema::empty());
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::pending(),
        ))
    }

    #[tokio::test]
    async fn a_stream_past_its_deadline_ends_with_the_timeout() {
        let reg = QueryRegistry::new(2, Duration::from_millis(200), Duration::from_secs(1));
        let ticket = reg
            .admit("http", "peer".into(), "select 1", None)
            .await
            .unwrap();
        assert_eq!(reg.list().len(), 1);
        let mut s = ticket.guard(endless());
        let e = s.next().await.unwrap().unwrap_err();
        assert!(
            matches!(interruption_of(&e), Some(Interrupted::Timeout(_))),
            "{e}"
        );
        assert!(s.next().await.is_none());
        drop(s);
        assert!(reg.list().is_empty());
    }

    #[tokio::test]
    async fn a_client_timeout_only_shortens_and_cancel_interrupts() {
        let reg = QueryRegistry::new(2, Duration::from_secs(5), Duration::from_secs(1));
        let t = reg
            .admit("pg", "p".into(), "select 2", Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(t.limit, Duration::from_secs(5));
        let id = t.id();
        let mut s = t.guard(endless());
        assert!(reg.cancel(id));
        let e = s.next().await.unwrap().unwrap_err();
        assert!(
            matches!(interruption_of(&e), Some(Interrupted::Cancelled)),
            "{e}"
        );
        assert!(!reg.cancel(999));
    }

    #[tokio::test]
    async fn full_slots_make_the_next_query_wait_then_refuse() {
        let reg = QueryRegistry::new(1, Duration::from_secs(5), Duration::from_millis(100));
        let first = reg.admit("http", "a".into(), "q", None).await.unwrap();
        let e = reg.admit("http", "b".into(), "q", None).await.unwrap_err();
        assert!(matches!(e, Interrupted::Busy { running: 1, .. }), "{e}");
        drop(first);
        assert!(reg.admit("http", "b".into(), "q", None).await.is_ok());
    }
}
