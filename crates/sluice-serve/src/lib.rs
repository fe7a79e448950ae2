//! Serving: the HTTP API (axum) over the lake, the graph and the state database.
//!
//! Serving is where the data reaches its consumers, so query results come in the format each
//! consumer already reads, stream without holding a result in memory, and every failure is a JSON
//! error that says what to change. The full reference is `docs/http-api.md`.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /api/health` | liveness and version |
//! | `GET /api/ready` | readiness: the state database and the lake answer (200), or which does not (503) |
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
//! read-only; its guide is `docs/postgres-wire.md`. [`flight`] serves it over Arrow Flight SQL (ADBC,
//! the Flight SQL JDBC driver) with the wire's session and guard; its guide is `docs/flight-sql.md`.
//!
//! ```no_run
//! # async fn example(state: sluice_serve::AppState) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! sluice_serve::serve(listener, sluice_serve::router(state), std::future::pending()).await
//! # }
//! ```
//!
//! # Module map
//!
//! ```text
//! lib.rs        re-exports, `serve`
//! access/       authorization (access.yml): per-principal catalogs with grants, masks, row filters
//! app.rs        AppState: what every handler can reach; relation_of, engine_for
//! audit.rs      recording reads in the audit log (before the answer, rows at its end)
//! auth/         tokens (create, verify_token) and SCRAM-SHA-256 for the wire (the HTTP bearer
//!               check is http/auth.rs)
//! tls.rs        certificate and key files → rustls acceptors for both listeners
//! error.rs      ApiError: every failure as a JSON error (status, code, hint)
//! limits.rs     `serve.limits` of sluice.yml
//! server.rs     the listener: connection limits, timeouts, request guards, shutdown; Peer
//! status.rs     asset status (also `sluice inspect`)
//! counters.rs   HTTP request counts (middleware) for `/metrics`
//! http/         the router (mod.rs: `routes`, `router`) and one handler module per area:
//!               assets, rows, sql, runs, control, backfills, partitions, checks, freshness,
//!               dashboards, queries, openapi, metrics, ui; negotiate and respond
//!               turn a result into a response in the negotiated format
//! format/       JSON, NDJSON, CSV, Arrow IPC and Parquet encoders, one batch at a time (a leaf)
//! query/        running queries, no routes: registry (slots, timeout, cancel), filter, order,
//!               cursor (rows parameters, keyset paging)
//! pg/           the PostgreSQL wire protocol
//! flight/       Arrow Flight SQL (reuses pg/'s session and read-only guard)
//! export/       `sluice export` to a file or stdout
//! ```
//!
//! Dependencies point one way, without cycles: `http/mod.rs` (the router) → handler modules →
//! `app`, `error`, `query`, `server::Peer`, `status`; `app` → `counters`, `limits`,
//! `query::registry`; `query` → `error` → `format`. Nothing outside `http/`
//! depends on it, and `query/`, `pg/` and `flight/` never reach into `http/`; `flight/` uses `pg/`, not the reverse.
//!
//! Adding an endpoint: write the handler in the module of its area (or a new one under `http/`), add
//! one line to [`http::routes`], and describe it in [`http::openapi::document`] (a test fails until
//! both agree). Adding a format: see [`format`].

pub mod access;
pub mod app;
pub mod audit;
pub mod auth;
pub mod counters;
pub mod error;
pub mod export;
pub mod flight;
pub mod format;
pub mod http;
pub mod limits;
pub mod pg;
pub mod query;
pub mod server;
pub mod status;
#[cfg(test)]
mod test_support;
pub mod tls;

use std::future::Future;

pub use app::AppState;
pub use counters::HttpMetrics;
pub use error::ApiError;
pub use format::Format;
pub use http::router;
pub use limits::Limits;
pub use query::registry::QueryRegistry;

/// Serves `app` on `listener` with default limits until `shutdown` completes (see [`server`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve_http(listener, app, &Limits::default(), None, shutdown).await
}
