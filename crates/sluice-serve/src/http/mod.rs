//! The HTTP API: the router and one module of handlers per area.
//!
//! Every route is listed once, in [`routes`], which both builds the router and is checked against
//! the OpenAPI document ([`openapi::document`]). Dependencies point one way: this module depends on
//! the handler modules; a handler depends on the shared state ([`crate::app::AppState`]), the error
//! type, [`crate::query`] and the response helpers [`negotiate`] and [`respond`], never on the router
//! or on another area's handlers (except the helpers named below).
//!
//! | module | routes |
//! |---|---|
//! | [`health`] | `GET /api/health` (liveness), `GET /api/ready` (readiness) |
//! | [`assets`] | `GET /api/assets`, `GET /api/assets/{name}`, `GET /api/lineage` |
//! | [`rows`] | `GET /api/assets/{name}/rows` |
//! | [`history`] | `GET /api/assets/{name}/history` (versions of the asset's table) |
//! | [`sql`] | `POST /api/sql` |
//! | [`runs`] | `GET /api/runs`, `GET /api/runs/{id}` (uses [`control::running_nodes`]) |
//! | [`control`] | `POST /api/runs`, `POST /api/runs/{id}/cancel`, `…/retry`, `GET /api/schedules` |
//! | [`backfills`] | `POST /api/backfills`, `GET /api/backfills/{id}` |
//! | [`partitions`] | `GET /api/assets/{name}/partitions` (uses [`dashboards::batches_json`]) |
//! | [`checks`] | `GET /api/checks` |
//! | [`freshness`] | `GET /api/freshness` |
//! | [`dashboards`] | `GET /api/dashboards`, `GET /api/dashboards/{name}`, `…/charts/{index}` |
//! | [`queries`] | `GET /api/queries`, `POST /api/queries/{id}/cancel` |
//! | [`openapi`] | `GET /api/openapi.json` (uses [`backfills::openapi_paths`]) |
//! | [`metrics`] | `GET /metrics` (the request counts: [`crate::counters`]) |
//! | [`ui`] | the web UI at `/` (not an API route) |
//! | [`auth`] | not routes: the bearer-token middleware over every API route (uses [`crate::auth`]) |
//!
//! [`negotiate`] picks the response format; [`respond`] streams a result in it.

pub mod assets;
pub mod audit;
pub mod auth;
pub mod backfills;
pub mod checks;
pub mod column_lineage;
pub mod control;
pub mod dashboards;
pub mod freshness;
pub mod health;
pub mod history;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod partitions;
pub mod queries;
pub mod respond;
pub mod rows;
pub mod runs;
pub mod sql;
pub mod ui;

use axum::routing::{MethodRouter, get, post};
use axum::{Router, middleware};

use crate::app::AppState;

/// `stream` with its read recorded in the audit log first (and its rows when it ends), when the
/// server keeps one ([`crate::audit`]); a log that cannot be written refuses the read.
pub async fn audited(
    s: &AppState,
    read: &crate::audit::Read,
    stream: sluice_engine::SendableRecordBatchStream,
) -> Result<sluice_engine::SendableRecordBatchStream, crate::ApiError> {
    match s.access.auditor() {
        Some(a) => {
            let seq = a
                .read_started(read)
                .await
                .map_err(|e| crate::ApiError::Engine(e.to_string()))?;
            Ok(a.count(seq, read, stream))
        }
        None => Ok(stream),
    }
}

/// Every route: method (for the OpenAPI check), path template and handler.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("GET", "/api/health", get(health::health)),
        ("GET", "/api/ready", get(health::ready)),
        ("GET", "/api/assets", get(assets::assets)),
        ("GET", "/api/assets/{name}", get(assets::asset)),
        ("GET", "/api/assets/{name}/rows", get(rows::rows)),
        ("GET", "/api/assets/{name}/history", get(history::history)),
        ("POST", "/api/sql", post(sql::sql)),
        ("GET", "/api/runs", get(runs::runs)),
        ("GET", "/api/runs/{id}", get(runs::run)),
        ("POST", "/api/runs", post(control::trigger_run)),
        ("POST", "/api/runs/{id}/cancel", post(control::cancel_run)),
        ("POST", "/api/runs/{id}/retry", post(control::retry_run)),
        ("GET", "/api/schedules", get(control::schedules)),
        ("POST", "/api/backfills", post(backfills::start_backfill)),
        ("GET", "/api/backfills/{id}", get(backfills::get_backfill)),
        ("GET", "/api/checks", get(checks::checks)),
        (
            "GET",
            "/api/assets/{name}/partitions",
            get(partitions::partitions),
        ),
        ("GET", "/api/dashboards", get(dashboards::list)),
        ("GET", "/api/dashboards/{name}", get(dashboards::get)),
        (
            "GET",
            "/api/dashboards/{name}/charts/{index}",
            get(dashboards::chart_data),
        ),
        ("GET", "/api/freshness", get(freshness::freshness)),
        ("GET", "/api/lineage", get(assets::lineage)),
        (
            "GET",
            "/api/lineage/columns/{name}",
            get(column_lineage::asset_columns),
        ),
        (
            "GET",
            "/api/lineage/columns/{name}/{column}",
            get(column_lineage::column),
        ),
        ("GET", "/api/queries", get(queries::queries)),
        (
            "POST",
            "/api/queries/{id}/cancel",
            post(queries::cancel_query),
        ),
        ("GET", "/api/audit", get(audit::audit)),
        ("GET", "/api/openapi.json", get(openapi::openapi)),
        ("GET", "/metrics", get(metrics::metrics)),
    ]
}

/// The API router (behind the token check of [`auth`] when the state says so) and
/// the web UI ([`ui`], at `/`), counting every request for `/metrics`.
pub fn router(state: AppState) -> Router {
    let counts = state.metrics.clone();
    let auth = state.clone();
    routes()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
        .with_state(state)
        .layer(middleware::from_fn_with_state(auth, auth::require_token))
        .merge(ui::router())
        .layer(middleware::from_fn_with_state(
            counts,
            crate::counters::count_requests,
        ))
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;
