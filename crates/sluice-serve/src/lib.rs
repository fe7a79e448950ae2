//! Serving: the HTTP API (axum) over the lake, the graph and the state database.
//!
//! Serving is where the data reaches its consumers, so query results come in the format each
//! consumer already reads, stream without holding a result in memory, and every failure is a JSON
//! error that says what to change. The full reference is `docs/http-api.md`.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /api/health` | liveness and version |
//! | `GET /api/assets`, `GET /api/assets/{name}` | asset states; one asset's columns, runs, checks, SQL |
//! | `GET /api/assets/{name}/rows` | rows: `columns=`, `<col>=<op>.<value>` filters, `order=`, `limit`/`offset` |
//! | `POST /api/sql` | one read-only query |
//! | `GET /api/runs`, `GET /api/runs/{id}` | run history, one run |
//! | `GET /api/lineage` | the asset graph |
//! | `GET /api/openapi.json` | OpenAPI 3.1 description of all of this |
//! | `GET /metrics` | Prometheus metrics |
//!
//! Rows and SQL results are JSON, NDJSON, CSV, Arrow IPC stream or Parquet, by `?format=` or `Accept`.
//!
//! [`pg`] serves the same lake over the PostgreSQL wire protocol (psql, Grafana, Metabase, drivers),
//! read-only; its guide is `docs/postgres-wire.md`.
//!
//! ```no_run
//! # async fn example(state: sluice_serve::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! sluice_serve::serve(listener, sluice_serve::router(state), std::future::pending()).await
//! # }
//! ```
//!
//! Modules: [`server`] (the listener: connection limits, timeouts, request guards, shutdown),
//! [`limits`] (`serve.limits`), [`queries`] (admission, statement timeout, cancel, `/api/queries`),
//! [`api`] (router, JSON endpoints), [`query`] (rows and SQL), [`filter`] (rows parameters),
//! [`format`] (negotiation, encoders, streaming), [`openapi`], [`metrics`], [`status`], [`error`],
//! [`pg`] (PostgreSQL wire protocol).
//!
//! Adding an endpoint: write the handler, add one line to [`api::routes`], and describe it in
//! [`openapi::document`] (a test fails until both agree). Adding a format: see [`format`].

pub mod api;
pub mod backfills;
pub mod checks;
pub mod control;
pub mod cursor;
pub mod dashboards;
pub mod error;
pub mod export;
pub mod filter;
pub mod format;
pub mod freshness;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod partitions;
pub mod pg;
pub mod queries;
pub mod query;
pub mod server;
pub mod status;
#[cfg(test)]
mod test_support;
pub mod ui;

use std::future::Future;
use std::sync::Arc;

use sluice_orchestrate::StateStore;
use sluice_transform::{CompiledProject, Engine};

pub use api::router;
pub use error::ApiError;
pub use format::Format;
pub use limits::Limits;
pub use metrics::HttpMetrics;
pub use queries::QueryRegistry;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The compiled project (graph, models, sources).
    pub compiled: Arc<CompiledProject>,
    /// The SQL engine over the lake.
    pub engine: Engine,
    /// The state database.
    pub state: Arc<StateStore>,
    /// HTTP request counters for `/metrics`.
    pub metrics: Arc<HttpMetrics>,
    /// The server's limits.
    pub limits: Arc<Limits>,
    /// Running queries (HTTP and wire).
    pub queries: Arc<QueryRegistry>,
}

impl AppState {
    /// Bundles the parts, with fresh request counters and default limits.
    pub fn new(compiled: Arc<CompiledProject>, engine: Engine, state: Arc<StateStore>) -> Self {
        Self::with_limits(compiled, engine, state, Limits::default())
    }

    /// [`AppState::new`] with the given limits.
    pub fn with_limits(
        compiled: Arc<CompiledProject>,
        engine: Engine,
        state: Arc<StateStore>,
        limits: Limits,
    ) -> Self {
        let queries = QueryRegistry::new(
            limits.max_concurrent_queries,
            limits.statement_timeout,
            limits.queue_timeout,
        );
        Self {
            compiled,
            engine,
            state,
            metrics: Arc::new(HttpMetrics::default()),
            limits: Arc::new(limits),
            queries,
        }
    }
}

/// Serves `app` on `listener` with default limits until `shutdown` completes (see [`server`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve_http(listener, app, &Limits::default(), None, shutdown).await
}
