//! SQL over the PostgreSQL wire protocol, so that psql, Grafana, Metabase and every PostgreSQL driver
//! can read the lake with no Sluice-specific client.
//!
//! The protocol is `pgwire`'s and the query path is `datafusion-postgres`' (its type encoding, its
//! `pg_catalog` emulation, its cursor/`SET`/transaction handling); what Sluice adds is:
//!
//! - [`catalog`]: a session of its own that shares the engine's lake schemas (`bronze`, `silver`,
//!   `gold`, `quarantine`, read-only; `staging` hidden) and adds `pg_catalog`, so tables written by a
//!   run are visible to the next query and `pg_catalog` never leaks into `sluice query` or HTTP;
//! - [`read_only`]: refuses writes, DDL, `COPY` and server `SET`s with SQLSTATE `25006`, keeping the
//!   connection usable;
//! - [`compat`] and [`rewrites`]: rewrite catalog constructs DataFusion does not plan
//!   (`generate_subscripts`, `_pg_expandarray`, `ARRAY(subquery)`, computed `regclass` casts,
//!   `n * INTERVAL ...`, ...) and answer `SHOW TABLES`/`SHOW COLUMNS`;
//! - [`pg_attribute`]: the catalog emulation's `pg_catalog` with column types from the lake
//!   (`bigint[]`, `numeric(12,2)`);
//! - [`settings`]: answers `SHOW timezone`, `SHOW transaction_read_only` and the like;
//! - [`information_schema`]: PostgreSQL's `information_schema` (type names, key views) over the
//!   served schemas;
//! - [`functions`] and [`scalar`]: `version()`, `current_setting`, `to_regtype`, `format` and the
//!   other PostgreSQL functions clients call while connecting and browsing;
//! - [`handlers`]: the handler set (read-only hook first; errors with real SQLSTATEs);
//! - [`PgServer`]: binds first (a clear error naming the address when it is taken), then accepts
//!   until a shutdown future completes, and closes the open sessions (with `57P01`).
//!
//! ```no_run
//! # async fn example(engine: sluice_transform::Engine) -> Result<(), sluice_serve::pg::PgError> {
//! let server = sluice_serve::pg::PgServer::bind(&engine, "127.0.0.1:5433").await?;
//! println!("connect with: {}", server.psql_command());
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! The user guide is `docs/postgres-wire.md`.

pub mod catalog;
pub mod compat;
pub mod error;
pub mod functions;
pub mod guarded;
pub mod handlers;
pub mod information_schema;
pub mod pg_attribute;
pub mod read_only;
pub mod rewrites;
pub mod scalar;
pub mod settings;
pub mod startup;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::tokio::process_socket;
use sluice_transform::Engine;
use sluice_transform::relation::CATALOG;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use error::PgError;
use guarded::{Activity, Shared};
use handlers::Handlers;

use crate::auth::WireAuth;
use crate::limits::Limits;
use crate::query::registry::QueryRegistry;
use crate::tls::TlsAcceptor;

/// A bound PostgreSQL endpoint over an engine's lake, not yet accepting.
pub struct PgServer {
    listener: TcpListener,
    addr: SocketAddr,
    handlers: Handlers,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    idle_timeout: Duration,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl PgServer {
    /// Builds the wire session over `engine` and binds `addr` (`host:port`; port 0 picks a free one),
    /// with default limits and a registry of its own.
    pub async fn bind(engine: &Engine, addr: &str) -> Result<PgServer, PgError> {
        let limits = Limits::default();
        let queries = QueryRegistry::new(
            limits.max_concurrent_queries,
            limits.statement_timeout,
            limits.queue_timeout,
        );
        Self::bind_with(engine, addr, queries, &limits).await
    }

    /// [`PgServer::bind`] under `limits`, sharing `queries` (and so its slots, listing and cancel)
    /// with the HTTP API.
    pub async fn bind_with(
        engine: &Engine,
        addr: &str,
        queries: Arc<QueryRegistry>,
        limits: &Limits,
    ) -> Result<PgServer, PgError> {
        let ctx = catalog::session_for(engine, Some(limits.query_memory_limit))?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| PgError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(PgError::LocalAddr)?;
        Ok(PgServer {
            listener,
            addr: local,
            handlers: Handlers::new(
                ctx,
                Shared::new(
                    queries,
                    limits.sql,
                    engine.clone(),
                    Some(limits.query_memory_limit),
                ),
            ),
            tls: None,
            max_connections: limits.pg_max_connections,
            idle_timeout: limits.pg_idle_timeout,
        })
    }

    /// Requires every client to log in with SCRAM-SHA-256 as a user of `auth`'s state, with one of
    /// its tokens as the password ([`startup::Login`]).
    pub fn with_auth(mut self, auth: WireAuth) -> Self {
        self.handlers.require_auth(auth);
        self
    }

    /// Applies `access` (access.yml): each logged-in principal queries and lists its own view of
    /// the lake ([`crate::access`]).
    pub fn with_access(mut self, access: crate::access::Access) -> Self {
        self.handlers.set_access(access);
        self
    }

    /// Answers `SSLRequest` with `S` and upgrades the connection with `tls` (and accepts direct
    /// TLS).
    pub fn with_tls(mut self, tls: TlsAcceptor) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `psql -h HOST -p PORT -d sluice`, for the startup banner.
    pub fn psql_command(&self) -> String {
        format!(
            "psql -h {} -p {} -d {CATALOG}",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// Accepts clients until `shutdown` completes, then stops accepting and closes open sessions.
    ///
    /// Sessions are closed rather than drained: a psql or BI connection stays open indefinitely, and
    /// nothing is lost by closing a read-only session. A session between queries is told why first,
    /// as PostgreSQL does (`FATAL 57P01 terminating connection due to administrator command`); one
    /// with a query running is just closed, since its results may be half sent.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), PgError> {
        let mut sessions = JoinSet::new();
        let closing = CancellationToken::new();
        let handlers = Arc::new(self.handlers);
        tokio::pin!(shutdown);
        tracing::info!(addr = %self.addr, "PostgreSQL endpoint listening");
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        if let Err(e) = socket.set_nodelay(true) {
                            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                        }
                        if sessions.len() >= self.max_connections {
                            // Answer like PostgreSQL at max_connections, on a task of its own so a
                            // silent client cannot hold the accept loop.
                            tokio::spawn(refuse_too_many(socket, peer));
                            continue;
                        }
                        // The farewell is written on a clone of the plain socket, so only sessions
                        // without TLS get it: bytes in clear would corrupt a TLS stream.
                        let (socket, mut farewell) = if self.tls.is_some() {
                            (socket, None)
                        } else {
                            match with_farewell(socket) {
                                Ok((socket, farewell)) => (socket, Some(farewell)),
                                Err(e) => {
                                    tracing::warn!(%peer, error = %e, "cannot set up a PostgreSQL session");
                                    continue;
                                }
                            }
                        };
                        let handlers = handlers.clone();
                        let tls = self.tls.clone();
                        let shared = handlers.shared().clone();
                        let activity = Activity::new();
                        shared.track(peer, activity.clone());
                        let idle_timeout = self.idle_timeout;
                        let closing = closing.clone();
                        sessions.spawn(async move {
                            let say_goodbye = tokio::select! {
                                r = process_socket(socket, tls, handlers) => {
                                    if let Err(e) = r {
                                        tracing::debug!(%peer, error = %e, "PostgreSQL session ended with an error");
                                    }
                                    false
                                }
                                () = idle(&activity, idle_timeout) => {
                                    tracing::debug!(%peer, ?idle_timeout, "closing an idle PostgreSQL session");
                                    false
                                }
                                () = closing.cancelled() => activity.idle_for().is_some(),
                            };
                            if let (true, Some(farewell)) = (say_goodbye, farewell.as_mut()) {
                                goodbye(farewell, peer).await;
                            }
                            shared.untrack(peer);
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accepting a PostgreSQL connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        let open = sessions.len();
        closing.cancel();
        let drained = tokio::time::timeout(CLOSING_TIMEOUT, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            sessions.abort_all();
            while sessions.join_next().await.is_some() {}
        }
        tracing::info!(addr = %self.addr, closed_sessions = open, "PostgreSQL endpoint stopped");
        Ok(())
    }

    /// Serves on a task of its own; [`PgHandle::stop`] ends it.
    pub fn spawn(self) -> PgHandle {
        let (tx, rx) = oneshot::channel::<()>();
        let addr = self.addr;
        let task = tokio::spawn(self.serve(async move {
            let _ = rx.await;
        }));
        PgHandle {
            stop: tx,
            task,
            addr,
        }
    }
}

/// Resolves once the session has had no query running for `timeout`.
async fn idle(activity: &Activity, timeout: Duration) {
    loop {
        let wait = match activity.idle_for() {
            Some(idle) if idle >= timeout => return,
            Some(idle) => timeout - idle,
            // A query runs: it has its own statement timeout; look again after that long at most.
            None => timeout,
        };
        tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
    }
}

/// How long a refused client has to send its startup packet before the socket is just closed.
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long closing sessions may take at shutdown (telling each why) before they are cut.
const CLOSING_TIMEOUT: Duration = Duration::from_secs(1);

/// The socket and a second handle on the same connection, kept to tell the client why the server
/// closes it once the protocol handler (which owns the first) has stopped.
fn with_farewell(socket: TcpStream) -> std::io::Result<(TcpStream, TcpStream)> {
    let socket = socket.into_std()?;
    let farewell = socket.try_clone()?;
    Ok((TcpStream::from_std(socket)?, TcpStream::from_std(farewell)?))
}

/// A PostgreSQL `ErrorResponse` message of severity FATAL.
fn fatal_message(code: &str, text: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', text)] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    let len = i32::try_from(fields.len() + 4).unwrap_or(i32::MAX);
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(&fields);
    message
}

/// Tells a session's client the server is shutting down (`57P01`), then closes the connection.
async fn goodbye(socket: &mut TcpStream, peer: SocketAddr) {
    use tokio::io::AsyncWriteExt;
    let message = fatal_message(
        "57P01",
        "terminating connection due to administrator command",
    );
    let send = async {
        socket.write_all(&message).await?;
        socket.shutdown().await
    };
    if let Ok(Err(e)) = tokio::time::timeout(CLOSING_TIMEOUT, send).await {
        tracing::debug!(%peer, error = %e, "could not tell a PostgreSQL client about the shutdown");
    }
}

/// Tells a client over the connection limit `FATAL 53300 sorry, too many clients already`, after
/// reading its startup packet (answering `N` to an SSL or GSS encryption request first), as
/// PostgreSQL does.
async fn refuse_too_many(mut socket: TcpStream, peer: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tracing::warn!(%peer, "refusing a PostgreSQL connection: at the connection limit");
    let exchange = async {
        for _ in 0..3 {
            let len = socket.read_i32().await?;
            let code = socket.read_i32().await?;
            let rest = usize::try_from(len.saturating_sub(8))
                .unwrap_or(0)
                .min(10_000);
            let mut skip = vec![0u8; rest];
            socket.read_exact(&mut skip).await?;
            // 80877103: SSLRequest, 80877104: GSSENCRequest.
            if code == 80_877_103 || code == 80_877_104 {
                socket.write_all(b"N").await?;
                continue;
            }
            break;
        }
        let message = fatal_message("53300", "sorry, too many clients already");
        socket.write_all(&message).await?;
        socket.shutdown().await
    };
    let _ = tokio::time::timeout(REFUSAL_READ_TIMEOUT, exchange).await;
}

/// A PostgreSQL endpoint running on its own task. Dropping the handle stops it as well (the
/// endpoint's shutdown signal is the handle's channel closing).
#[derive(Debug)]
pub struct PgHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), PgError>>,
    addr: SocketAddr,
}

impl PgHandle {
    /// The address it serves.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes the open sessions and waits for the endpoint to finish.
    pub async fn stop(self) -> Result<(), PgError> {
        // The receiver is gone only if the task already ended; its result says how.
        let _ = self.stop.send(());
        self.task.await.map_err(|e| PgError::Stopped {
            addr: self.addr,
            reason: e.to_string(),
        })?
    }
}

/// Serves `engine`'s lake over the PostgreSQL wire protocol on `addr` until `shutdown` completes.
pub async fn serve_pg(
    engine: &Engine,
    addr: &str,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), PgError> {
    PgServer::bind(engine, addr).await?.serve(shutdown).await
}
