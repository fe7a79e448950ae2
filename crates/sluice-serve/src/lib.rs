//! Serving: the HTTP API (axum) over the lake, the graph and the state database.
//!
//! Endpoints (DESIGN.md "Serving"): `GET /api/health`, `GET /api/assets`, `GET /api/assets/{name}`,
//! `GET /api/assets/{name}/rows` (JSON or CSV by `Accept` or `?format=`, with `limit`/`offset`),
//! `POST /api/sql` (read-only), `GET /api/runs`, `GET /api/runs/{id}`, `GET /api/lineage`.
//!
//! ```no_run
//! # async fn example(state: sluice_serve::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! sluice_serve::serve(listener, sluice_serve::router(state), std::future::pending()).await
//! # }
//! ```

mod api;
mod format;
pub mod status;

use std::future::Future;
use std::sync::Arc;

use sluice_orchestrate::StateStore;
use sluice_transform::{CompiledProject, Engine};

pub use api::router;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The compiled project (graph, models, sources).
    pub compiled: Arc<CompiledProject>,
    /// The SQL engine over the lake.
    pub engine: Engine,
    /// The state database.
    pub state: Arc<StateStore>,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(compiled: Arc<CompiledProject>, engine: Engine, state: Arc<StateStore>) -> Self {
        Self {
            compiled,
            engine,
            state,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
