//! Arrow Flight SQL, so that ADBC (Python, R, Go, C), the Flight SQL JDBC driver and DBeaver read
//! the lake as Arrow record batches, without a row-by-row conversion on either side.
//!
//! The protocol is `arrow-flight`'s ([`FlightSqlService`](arrow_flight::sql::server::FlightSqlService)
//! on tonic); the queries run exactly as on the PostgreSQL wire, with the wire's code:
//!
//! - the session is the wire's ([`crate::pg::catalog::session_for`]): the lake's published
//!   schemas, read-only, `staging` hidden, with `VERSION AS OF` resolved by the engine;
//! - the read-only guard is the wire's ([`crate::pg::read_only`]): writes, DDL, `COPY` and server
//!   `SET`s are refused (`PERMISSION_DENIED`) before planning, and every plan is checked to only read;
//! - queries take slots in the server's [`QueryRegistry`] (the statement timeout, `GET /api/queries`,
//!   `DELETE /api/queries/{id}`), like HTTP and wire queries.
//!
//! Modules:
//!
//! - [`query`]: parse, guard, plan, run (the query path);
//! - [`service`]: the Flight SQL RPCs (statements, prepared statements, listings);
//! - [`prepared`]: prepared statements kept under handles;
//! - [`metadata`]: `GetCatalogs`, `GetDbSchemas`, `GetTables`, `GetTableTypes`, `GetSqlInfo`;
//! - [`error`]: [`FlightError`] and the gRPC status of each failure.
//!
//! ```no_run
//! # async fn example(engine: sluice_transform::Engine) -> Result<(), sluice_serve::flight::FlightError> {
//! let server = sluice_serve::flight::FlightServer::bind(&engine, "127.0.0.1:50051").await?;
//! println!("connect to {}", server.url());
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! With authentication on, every call needs a token ([`auth`]), as on the other listeners.
//! The user guide is `docs/flight-sql.md`.

pub mod auth;
pub mod error;
pub mod metadata;
pub mod prepared;
pub mod query;
pub mod service;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_transform::Engine;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use auth::FlightAuth;
pub use error::FlightError;
use query::QueryPath;
use service::SluiceFlightSql;
use sluice_orchestrate::StateStore;

use crate::limits::Limits;
use crate::pg::catalog;
use crate::query::registry::QueryRegistry;

/// The default address of `sluice serve`'s Flight SQL endpoint (gRPC's customary port).
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// A bound Flight SQL endpoint over an engine's lake, not yet accepting.
pub struct FlightServer {
    listener: TcpListener,
    addr: SocketAddr,
    service: SluiceFlightSql,
    grace: Duration,
    auth: FlightAuth,
}

impl std::fmt::Debug for FlightServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FlightServer {
    /// Builds the session over `engine` and binds `addr` (`host:port`; port 0 picks a free one),
    /// with default limits and a registry of its own.
    pub async fn bind(engine: &Engine, addr: &str) -> Result<FlightServer, FlightError> {
        let limits = Limits::default();
        let queries = QueryRegistry::new(
            limits.max_concurrent_queries,
            limits.statement_timeout,
            limits.queue_timeout,
        );
        Self::bind_with(engine, addr, queries, &limits).await
    }

    /// [`FlightServer::bind`] under `limits`, sharing `queries` (its slots, listing and cancel) with
    /// the HTTP API and the PostgreSQL wire.
    pub async fn bind_with(
        engine: &Engine,
        addr: &str,
        queries: Arc<QueryRegistry>,
        limits: &Limits,
    ) -> Result<FlightServer, FlightError> {
        let ctx = catalog::session_for(engine, Some(limits.query_memory_limit))?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| FlightError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(FlightError::LocalAddr)?;
        let path = QueryPath::new(ctx, engine.clone(), queries, limits.sql);
        Ok(FlightServer {
            listener,
            addr: local,
            service: SluiceFlightSql::new(path),
            grace: limits.shutdown_grace,
            auth: FlightAuth::open(),
        })
    }

    /// Requires a token of `state` on every call (docs/security.md): a bearer header, or a user name
    /// and token as Basic credentials in a handshake.
    pub fn with_auth(mut self, state: StateStore) -> FlightServer {
        self.auth = FlightAuth::required(state);
        self
    }

    /// Applies `access` (access.yml): each principal plans and lists in its own view of the lake
    /// ([`crate::access`]), each query within `query_memory_limit`.
    pub fn with_access(
        mut self,
        access: crate::access::Access,
        query_memory_limit: Option<usize>,
    ) -> FlightServer {
        self.service = self.service.with_access(access, query_memory_limit);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `grpc://HOST:PORT`, the URI ADBC and the JDBC driver connect to.
    pub fn url(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// Serves until `shutdown` completes, then stops accepting and lets running calls finish (a
    /// running query still ends at its statement timeout or a cancel).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), FlightError> {
        let addr = self.addr;
        tracing::info!(%addr, "Flight SQL endpoint listening");
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        Server::builder()
            .add_service(self.service.into_server(self.auth))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|source| FlightError::Serve { addr, source })?;
        tracing::info!(%addr, "Flight SQL endpoint stopped");
        Ok(())
    }

    /// Serves on a task of its own; [`FlightHandle::stop`] ends it.
    pub fn spawn(self) -> FlightHandle {
        let (tx, rx) = oneshot::channel::<()>();
        let addr = self.addr;
        let grace = self.grace;
        let task = tokio::spawn(self.serve(async move {
            let _ = rx.await;
        }));
        FlightHandle {
            stop: tx,
            task,
            addr,
            grace,
        }
    }
}

/// A Flight SQL endpoint running on its own task. Dropping the handle stops it as well.
#[derive(Debug)]
pub struct FlightHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), FlightError>>,
    addr: SocketAddr,
    grace: Duration,
}

impl FlightHandle {
    /// The address it serves.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for running calls, at most the shutdown grace period; a client
    /// still reading after it is cut off.
    pub async fn stop(self) -> Result<(), FlightError> {
        // The receiver is gone only if the task already ended; its result says how.
        let _ = self.stop.send(());
        let mut task = self.task;
        let joined = match tokio::time::timeout(self.grace, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                tracing::warn!(addr = %self.addr, grace = ?self.grace, "Flight SQL calls outlived the grace period; closing them");
                task.abort();
                return Ok(());
            }
        };
        joined.map_err(|e| FlightError::Stopped {
            addr: self.addr,
            reason: e.to_string(),
        })?
    }
}
