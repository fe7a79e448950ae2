//! The wire's query path under the server's limits: SQL length and depth checked before the parser,
//! a slot in the [`QueryRegistry`], the statement timeout (the server's, or a client's
//! `SET statement_timeout` when shorter) over planning *and* the streaming of rows, and cancel
//! requests that stop a query at any point.
//!
//! `datafusion-postgres` applies a client's `statement_timeout` to planning only, and pgwire's cancel
//! switch listens only while a handler runs — but rows are computed while pgwire sends them, after
//! the handler has returned. So [`GuardedService`] wraps every result's row stream: the stream ends
//! with SQLSTATE 57014 when the query's token is cancelled or its deadline passes, and ending it
//! drops the engine's stream, which aborts the work.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use datafusion_postgres::pgwire::api::portal::Portal;
use datafusion_postgres::pgwire::api::portal::{Format, PortalExecutionState};
use datafusion_postgres::pgwire::api::query::send_execution_response;
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::FieldInfo;
use datafusion_postgres::pgwire::api::results::Tag;
use datafusion_postgres::pgwire::api::results::{QueryResponse, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::Entry;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore};
use datafusion_postgres::pgwire::api::{DEFAULT_NAME, PgWireConnectionState};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::pgwire::messages::cancel::CancelRequest;
use datafusion_postgres::pgwire::messages::data::DataRow;
use datafusion_postgres::pgwire::messages::extendedquery::Execute;
use datafusion_postgres::pgwire::messages::response::EmptyQueryResponse;
use datafusion_postgres::pgwire::messages::startup::SecretKey;
use datafusion_postgres::{DfSessionService, Parser};
use futures::{Future, Sink, Stream};
use futures::{SinkExt, StreamExt};
use sluice_transform::guard::{SqlLimitError, SqlLimits, check_sql};
use sluice_transform::{Engine, TransformError};
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::access::{Access, ViewCache};
use crate::auth::Principal;
use crate::query::registry::{Interrupted, QueryRegistry, QueryTicket};

/// Where `datafusion-postgres` keeps a session's `SET statement_timeout` (milliseconds).
const STATEMENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

/// Per-connection activity, for the idle timeout of the accept loop.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    /// Milliseconds since `started` of the last query start or end.
    last: AtomicU64,
    /// Queries running now.
    running: AtomicUsize,
}

impl Activity {
    /// A connection that was active just now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
            running: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has been idle, or `None` while a query runs.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.running.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        Some(self.started.elapsed().saturating_sub(last))
    }
}

/// The state every connection's handlers share.
#[derive(Debug)]
pub struct Shared {
    queries: Arc<QueryRegistry>,
    sql: SqlLimits,
    /// The engine, for `AS OF` ([`time_travel`]).
    engine: Engine,
    /// Running query per backend pid, for cancel requests.
    cancels: Mutex<HashMap<i32, (SecretKey, CancellationToken)>>,
    /// Activity per client address (registered by the accept loop).
    activity: Mutex<HashMap<SocketAddr, Arc<Activity>>>,
    /// Who reads what (access.yml).
    access: Mutex<Access>,
    /// The memory share of a query, for the sessions built per principal.
    query_memory_limit: Option<usize>,
    /// The query service of each restricted principal.
    services: ViewCache<Arc<DfSessionService>>,
}

impl Shared {
    /// Shared state over `queries`, refusing SQL past `sql`, resolving `AS OF` with `engine`.
    pub fn new(
        queries: Arc<QueryRegistry>,
        sql: SqlLimits,
        engine: Engine,
        query_memory_limit: Option<usize>,
    ) -> Arc<Self> {
        Arc::new(Self {
            queries,
            sql,
            engine,
            cancels: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
            access: Mutex::new(Access::default()),
            query_memory_limit,
            services: ViewCache::default(),
        })
    }

    /// Applies `access` to the principals of later queries.
    pub fn set_access(&self, access: Access) {
        *lock(&self.access) = access;
    }

    /// The query service of `client`'s principal: `default` when it sees everything (or nobody
    /// logged in: the open development mode), else one over its own view of the lake.
    fn service_for<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        default: &Arc<DfSessionService>,
    ) -> PgWireResult<Arc<DfSessionService>> {
        let principal = client.session_extensions().get::<Principal>();
        let access = lock(&self.access).clone();
        let Some(view) = access.view(principal.as_deref()) else {
            return Ok(default.clone());
        };
        self.services.get_or_try(&view, || {
            super::catalog::session_for_view(
                &self.engine,
                self.query_memory_limit,
                Some(view.clone()),
            )
            .map(super::handlers::service)
            .map_err(|e| pg_error("XX000", e.to_string()))
        })
    }

    /// Registers a connection's activity record (the accept loop does, for its idle timeout).
    pub fn track(&self, peer: SocketAddr, activity: Arc<Activity>) {
        lock(&self.activity).insert(peer, activity);
    }

    /// Forgets a closed connection.
    pub fn untrack(&self, peer: SocketAddr) {
        lock(&self.activity).remove(&peer);
    }

    /// The registry of running queries.
    pub fn queries(&self) -> &Arc<QueryRegistry> {
        &self.queries
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A query in flight on one connection: its ticket, cancel registration and activity count, all
/// released when the last of its row streams is dropped.
struct InFlight {
    ticket: QueryTicket,
    shared: Arc<Shared>,
    pid: i32,
    activity: Option<Arc<Activity>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut cancels = lock(&self.shared.cancels);
        if cancels
            .get(&self.pid)
            .is_some_and(|(_, t)| t.is_cancelled() || *t == self.ticket.cancel_token())
        {
            cancels.remove(&self.pid);
        }
        drop(cancels);
        if let Some(a) = &self.activity {
            a.running.fetch_sub(1, Ordering::Relaxed);
            a.touch();
        }
    }
}

fn pg_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        message,
    )))
}

fn interrupted(i: &Interrupted) -> PgWireError {
    let code = match i {
        // insufficient_resources
        Interrupted::Busy { .. } => "53000",
        // query_canceled
        Interrupted::Timeout(_) | Interrupted::Cancelled => "57014",
    };
    pg_error(code, i.to_string())
}

fn refused(e: &SqlLimitError) -> PgWireError {
    let code = match e {
        // statement_too_complex
        SqlLimitError::TooDeep { .. } => "54001",
        // program_limit_exceeded
        SqlLimitError::TooLong { .. } => "54000",
        // syntax_error
        SqlLimitError::Tokenize(_) => "42601",
    };
    pg_error(code, e.to_string())
}

/// `VERSION AS OF` / `TIMESTAMP AS OF` resolved before `datafusion-postgres` parses the SQL (its
/// PostgreSQL dialect has no version clause): see [`sluice_transform::time_travel`]. An unknown
/// version or time is `22023` (invalid_parameter_value).
async fn time_travel<'s>(engine: &Engine, sql: &'s str) -> PgWireResult<Cow<'s, str>> {
    engine.time_travel(sql).await.map_err(|e| match e {
        TransformError::TimeTravel(message) => pg_error("22023", message),
        other => pg_error("XX000", other.to_string()),
    })
}

/// `datafusion-postgres`' service under the limits (see the module doc).
pub struct GuardedService {
    inner: Arc<DfSessionService>,
    parser: Arc<GuardedParser>,
    shared: Arc<Shared>,
}

impl GuardedService {
    /// Wraps `inner`.
    pub fn new(inner: Arc<DfSessionService>, shared: Arc<Shared>) -> Self {
        let parser = Arc::new(GuardedParser {
            inner: inner.clone(),
            shared: shared.clone(),
        });
        Self {
            inner,
            parser,
            shared,
        }
    }

    /// Checks the text and takes a slot for a query of `client`.
    async fn admit<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        sql: &str,
    ) -> PgWireResult<Arc<InFlight>> {
        check_sql(sql, &self.shared.sql).map_err(|e| refused(&e))?;
        let own = client
            .metadata()
            .get(STATEMENT_TIMEOUT_KEY)
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis);
        let peer = client.socket_addr();
        let ticket = self
            .shared
            .queries
            .admit("pg", peer.to_string(), sql, own)
            .await
            .map_err(|e| interrupted(&e))?;
        let (pid, secret) = client.pid_and_secret_key();
        tracing::debug!(pid, query = ticket.id(), "PostgreSQL query admitted");
        lock(&self.shared.cancels).insert(pid, (secret, ticket.cancel_token()));
        let activity = lock(&self.shared.activity).get(&peer).cloned();
        if let Some(a) = &activity {
            a.running.fetch_add(1, Ordering::Relaxed);
            a.touch();
        }
        Ok(Arc::new(InFlight {
            ticket,
            shared: self.shared.clone(),
            pid,
            activity,
        }))
    }
}

/// The end of an audited read: who to record it for once its rows are counted.
struct AuditTap {
    auditor: crate::audit::Auditor,
    seq: i64,
    actor: String,
    client: String,
    rows: i64,
    complete: bool,
}

impl Drop for AuditTap {
    fn drop(&mut self) {
        self.auditor.read_ended(
            self.seq,
            std::mem::take(&mut self.actor),
            "pg",
            std::mem::take(&mut self.client),
            self.rows,
            self.complete,
        );
    }
}

impl Shared {
    /// The reads among `responses` (answers to `sql` for `client`), for [`Shared::audit`]; None
    /// where the server keeps no audit log or a response is not rows.
    fn reads_of<C: ClientInfo + ?Sized>(
        &self,
        client: &C,
        sql: &str,
        responses: &[Response],
    ) -> Vec<Option<crate::audit::Read>> {
        let audited = lock(&self.access).auditor().is_some();
        let principal = client.session_extensions().get::<Principal>();
        responses
            .iter()
            .map(|r| match r {
                Response::Query(q) if audited => Some(crate::audit::Read {
                    principal: principal.as_deref().cloned(),
                    protocol: "pg",
                    client: client.socket_addr().to_string(),
                    action: "sql",
                    sql: sql.to_string(),
                    tables: crate::audit::tables_of_sql(sql),
                    columns: q.row_schema.iter().map(|f| f.name().to_string()).collect(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Records `reads` in the audit log before any row is sent; the taps record their rows at
    /// the end. Refused when the log cannot be written.
    async fn audit(
        &self,
        reads: Vec<Option<crate::audit::Read>>,
    ) -> PgWireResult<Vec<Option<AuditTap>>> {
        let auditor = lock(&self.access).auditor().cloned();
        let mut taps = Vec::with_capacity(reads.len());
        for read in reads {
            let (Some(auditor), Some(read)) = (&auditor, read) else {
                taps.push(None);
                continue;
            };
            let seq = auditor
                .read_started(&read)
                .await
                .map_err(|e| pg_error("XX000", e.to_string()))?;
            taps.push(Some(AuditTap {
                auditor: auditor.clone(),
                seq,
                actor: read
                    .principal
                    .as_ref()
                    .map_or_else(|| "anonymous".to_string(), |p| p.user.clone()),
                client: read.client,
                rows: 0,
                complete: false,
            }));
        }
        Ok(taps)
    }
}

/// Wraps the row streams of `responses` so they end at cancel or deadline (and count their rows
/// for the audit log).
fn guard_responses(
    responses: Vec<Response>,
    flight: &Arc<InFlight>,
    taps: Vec<Option<AuditTap>>,
) -> Vec<Response> {
    let mut taps = taps.into_iter();
    responses
        .into_iter()
        .map(|r| {
            let tap = taps.next().flatten();
            match r {
                Response::Query(q) => Response::Query(guard_rows(q, flight.clone(), tap)),
                other => other,
            }
        })
        .collect()
}

fn guard_rows(q: QueryResponse, flight: Arc<InFlight>, tap: Option<AuditTap>) -> QueryResponse {
    let QueryResponse {
        command_tag,
        row_schema,
        data_rows,
        ..
    } = q;
    let guarded = GuardedRows {
        sleep: Box::pin(tokio::time::sleep_until(flight.ticket.deadline())),
        cancelled: Box::pin(flight.ticket.cancel_token().cancelled_owned()),
        limit: flight.ticket.limit(),
        inner: Some(data_rows),
        _flight: flight,
        tap,
    };
    let mut response = QueryResponse::new(row_schema, guarded);
    response.command_tag = command_tag;
    response
}

struct GuardedRows {
    inner: Option<Pin<Box<dyn Stream<Item = PgWireResult<DataRow>> + Send>>>,
    sleep: Pin<Box<Sleep>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    limit: Duration,
    _flight: Arc<InFlight>,
    tap: Option<AuditTap>,
}

impl Stream for GuardedRows {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let why = if this.cancelled.as_mut().poll(cx).is_ready() {
            Some(Interrupted::Cancelled)
        } else if this.sleep.as_mut().poll(cx).is_ready() {
            Some(Interrupted::Timeout(this.limit))
        } else {
            None
        };
        if let Some(why) = why {
            // Dropping the rows drops the engine's stream: the work stops now.
            this.inner = None;
            return Poll::Ready(Some(Err(interrupted(&why))));
        }
        let polled = inner.as_mut().poll_next(cx);
        match (&polled, this.tap.as_mut()) {
            (Poll::Ready(Some(Ok(_))), Some(tap)) => tap.rows += 1,
            (Poll::Ready(None), tap) => {
                if let Some(tap) = tap {
                    tap.complete = true;
                }
                this.inner = None;
            }
            _ => {}
        }
        polled
    }
}

#[async_trait]
impl SimpleQueryHandler for GuardedService {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let flight = self.admit(client, query).await?;
        let query = time_travel(&self.shared.engine, query).await?;
        let inner = self.shared.service_for(client, &self.inner)?;
        let responses = flight
            .ticket
            .during(SimpleQueryHandler::do_query(inner.as_ref(), client, &query))
            .await
            .map_err(|e| interrupted(&e))??;
        let reads = self.shared.reads_of(client, &query, &responses);
        let taps = self.shared.audit(reads).await?;
        Ok(guard_responses(responses, &flight, taps))
    }
}

#[async_trait]
impl ExtendedQueryHandler for GuardedService {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = GuardedParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// pgwire's `Execute` gathers every row of a portal into memory before sending when the client
    /// asks for all of them (`max_rows = 0`, what drivers do by default): a 50-million-row result
    /// took the server to 9 GB. That case streams here instead; a limited fetch (a cursor-style
    /// `max_rows`) holds at most that many rows and stays with pgwire.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME).to_string();
        let portal = match client.portal_store().get_portal(&name) {
            Some(Entry::Value(p)) if message.max_rows == 0 => p,
            _ => return self._on_execute(client, message).await,
        };
        if !matches!(*portal.state().lock().await, PortalExecutionState::Initial) {
            return self._on_execute(client, message).await;
        }
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let mut status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        let response = ExtendedQueryHandler::do_query(self, client, portal.as_ref(), 0).await?;
        match response {
            Response::Query(mut results) => {
                let tag = results.command_tag().to_owned();
                let mut rows = 0;
                while let Some(row) = results.data_rows().next().await {
                    client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                    rows += 1;
                }
                *portal.state().lock().await = PortalExecutionState::Finished;
                client
                    .send(PgWireBackendMessage::CommandComplete(
                        Tag::new(&tag).with_rows(rows).into(),
                    ))
                    .await?;
            }
            Response::EmptyQuery => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
            }
            Response::Execution(tag) => send_execution_response(client, tag).await?,
            Response::TransactionStart(tag) => {
                send_execution_response(client, tag).await?;
                status = status.to_in_transaction_state();
            }
            Response::TransactionEnd(tag) => {
                send_execution_response(client, tag).await?;
                status = status.to_idle_state();
                client.portal_store().rm_portal(DEFAULT_NAME);
            }
            Response::Error(e) => {
                client
                    .send(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await?;
                status = status.to_error_state();
            }
            Response::CopyIn(_) | Response::CopyOut(_) | Response::CopyBoth(_) => {
                // The endpoint is read-only: the read-only hook refuses COPY before this point.
                return Err(pg_error("25006", "COPY is not supported".to_string()));
            }
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = portal.statement.statement.0.clone();
        let flight = self.admit(client, &sql).await?;
        let inner = self.shared.service_for(client, &self.inner)?;
        let response = flight
            .ticket
            .during(ExtendedQueryHandler::do_query(
                inner.as_ref(),
                client,
                portal,
                max_rows,
            ))
            .await
            .map_err(|e| interrupted(&e))??;
        let responses = vec![response];
        let reads = self.shared.reads_of(client, &sql, &responses);
        let taps = self.shared.audit(reads).await?;
        Ok(guard_responses(responses, &flight, taps)
            .pop()
            .unwrap_or(Response::EmptyQuery))
    }
}

/// The extended protocol's parser (a `Parse` message plans the statement), behind the same SQL
/// limits as a simple query.
pub struct GuardedParser {
    /// The default service (its parser plans in the whole lake's session).
    inner: Arc<DfSessionService>,
    shared: Arc<Shared>,
}

impl GuardedParser {
    /// The parser of the session `client`'s principal plans in.
    fn parser_for<C: ClientInfo + ?Sized>(&self, client: &C) -> PgWireResult<Arc<Parser>> {
        let service = self.shared.service_for(client, &self.inner)?;
        Ok(ExtendedQueryHandler::query_parser(service.as_ref()))
    }

    fn default_parser(&self) -> Arc<Parser> {
        ExtendedQueryHandler::query_parser(self.inner.as_ref())
    }
}

#[async_trait]
impl QueryParser for GuardedParser {
    type Statement = <Parser as QueryParser>::Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        check_sql(sql, &self.shared.sql).map_err(|e| refused(&e))?;
        let sql = time_travel(&self.shared.engine, sql).await?;
        let parsed = self
            .parser_for(client)?
            .parse_sql(client, &sql, types)
            .await?;
        // Every `$n` the client will bind must stay in the plan's parameter list (see
        // `compat::keep_placeholders`).
        let highest = super::compat::highest_placeholder(&sql);
        match parsed {
            Some((query, Some((statement, plan)))) if highest > 0 => {
                let plan = super::compat::keep_placeholders(plan, highest)
                    .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
                Ok(Some((query, Some((statement, plan)))))
            }
            other => Ok(other),
        }
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.default_parser().get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.default_parser().get_result_schema(stmt, column_format)
    }
}

/// Cancel requests: pgwire's switch (for a query still planning) and the query's own token (for
/// one streaming rows).
pub struct GuardedCancel {
    default: DefaultCancelHandler,
    shared: Arc<Shared>,
}

impl GuardedCancel {
    /// Cancels through `default` and the tokens in `shared`.
    pub fn new(default: DefaultCancelHandler, shared: Arc<Shared>) -> Self {
        Self { default, shared }
    }
}

/// A secret key as bytes: the startup side keeps protocol 3.0 keys as `I32`, the cancel request
/// decoder may read the same four bytes as `Bytes`.
fn key_bytes(key: &SecretKey) -> Vec<u8> {
    match key {
        SecretKey::I32(n) => n.to_be_bytes().to_vec(),
        SecretKey::Bytes(b) => b.to_vec(),
    }
}

#[async_trait]
impl CancelHandler for GuardedCancel {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let token = lock(&self.shared.cancels)
            .get(&request.pid)
            .filter(|(secret, _)| key_bytes(secret) == key_bytes(&request.secret_key))
            .map(|(_, t)| t.clone());
        tracing::debug!(
            pid = request.pid,
            found = token.is_some(),
            "PostgreSQL cancel request"
        );
        if let Some(t) = token {
            t.cancel();
        }
        self.default.on_cancel_request(request).await;
    }
}
