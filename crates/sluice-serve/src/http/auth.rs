//! The bearer-token check of the HTTP API: a middleware over the API routes (not the web UI's
//! static files, which hold no data and must load for the sign-in page to show).
//!
//! With [`AuthMode::Required`], every request but the probes (`GET /api/health`, `/api/ready`)
//! needs `Authorization: Bearer <token>`; without one, or with a token that is unknown, expired or
//! revoked, the answer is 401 with `WWW-Authenticate: Bearer` and `{"error": "..."}`. A `reader`
//! token may read (every `GET`, and `POST /api/sql`) but gets 403 on the operating endpoints
//! (starting, cancelling and retrying runs and backfills, cancelling queries). The authenticated
//! [`Principal`] is added to the request's extensions for the handlers.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::auth::{AuthError, AuthMode, Principal, verify_token};

/// Whether a request is a probe, open even when authentication is on.
fn is_probe(req: &Request) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD)
        && matches!(req.uri().path(), "/api/health" | "/api/ready")
}

/// Whether the request only reads (a reader may make it).
fn reads_only(req: &Request) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || (req.method() == Method::POST && req.uri().path() == "/api/sql")
}

fn unauthorized(error: &AuthError) -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": error.to_string() })),
    )
        .into_response();
    let challenge = match error {
        AuthError::Missing => "Bearer realm=\"sluice\"",
        _ => "Bearer realm=\"sluice\", error=\"invalid_token\"",
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

/// The bearer token of a request: `Ok(None)` when it sent none.
fn bearer(req: &Request) -> Result<Option<&str>, AuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(Some(token.trim()))
}

/// The middleware (see the module doc).
pub async fn require_token(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    if app.auth == AuthMode::Open || is_probe(&req) {
        return next.run(req).await;
    }
    let token = match bearer(&req) {
        Ok(Some(t)) => t.to_string(),
        Ok(None) => return unauthorized(&AuthError::Missing),
        Err(e) => return unauthorized(&e),
    };
    let state = app.state.clone();
    let checked = tokio::task::spawn_blocking(move || verify_token(&state, &token)).await;
    let principal: Principal = match checked {
        Ok(Ok(p)) => p,
        Ok(Err(e)) if e.is_client_error() => {
            tracing::debug!(error = %e, path = %req.uri().path(), "refused an HTTP request");
            return unauthorized(&e);
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot check a token");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": format!("cannot check the token: {e}") })),
            )
                .into_response();
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": format!("cannot check the token: {e}") })),
            )
                .into_response();
        }
    };
    if !reads_only(&req) && !principal.role.may_operate() {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({
                "error": format!(
                    "user `{}` has role `{}`, which may only read; starting, cancelling and \
                     retrying needs the operator or admin role",
                    principal.user, principal.role
                )
            })),
        )
            .into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}
