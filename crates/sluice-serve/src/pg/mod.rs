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
//! - [`settings`]: answers `SHOW timezone`, `SHOW transaction_read_only` and the like;
//! - [`handlers`]: the handler set (read-only hook first; errors with real SQLSTATEs);
//! - [`PgServer`]: binds first (a clear error naming the address when it is taken), then accepts
//!   until a shutdown future completes, and closes the open sessions.
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
pub mod error;
pub mod handlers;
pub mod read_only;
pub mod settings;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::tokio::process_socket;
use sluice_transform::Engine;
use sluice_transform::relation::CATALOG;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub use error::PgError;
use handlers::Handlers;

/// A bound PostgreSQL endpoint over an engine's lake, not yet accepting.
pub struct PgServer {
    listener: TcpListener,
    addr: SocketAddr,
    handlers: Arc<Handlers>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl PgServer {
    /// Builds the wire session over `engine` and binds `addr` (`host:port`; port 0 picks a free one).
    pub async fn bind(engine: &Engine, addr: &str) -> Result<PgServer, PgError> {
        let ctx = catalog::session_for(engine)?;
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
            handlers: Arc::new(Handlers::new(ctx)),
        })
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
    /// nothing is lost by closing a read-only session.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), PgError> {
        let mut sessions = JoinSet::new();
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
                        let handlers = self.handlers.clone();
                        sessions.spawn(async move {
                            if let Err(e) = process_socket(socket, None, handlers).await {
                                tracing::debug!(%peer, error = %e, "PostgreSQL session ended with an error");
                            }
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
        sessions.abort_all();
        while sessions.join_next().await.is_some() {}
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
