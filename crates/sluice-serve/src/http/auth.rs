//! The bearer-token check of the HTTP API: a middleware over the API routes (not the web UI's
//! static files, which hold no data and must load for the sign-in page to show).
//!
//! With [`AuthMode::Required`], every request but the probes (`GET /api/health`, `/api/ready`)
//! needs `Authorization: Bearer <token>`; without one, or with a token that is unknown, expired or
//! revoked, the answer is 401 with `WWW-Authenticate: Bearer` and `{"error": "..."}`. A `reader`
//! token may read (every `GET`, and `POST /api/sql`) but gets 403 on the operating endpoints
//! (starting, cancelling and retrying runs and backfills, cancelling queries); with `access.yml`
//! the role's `operate` and `administer` grants decide ([`crate::access`]). The authenticated
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

/// Whether the request is administration (the audit log).
fn is_administration(req: &Request) -> bool {
    req.uri().path().starts_with("/api/audit")
}

fn forbidden(message: String) -> Response {
    (StatusCode::FORBIDDEN, Json(json!({ "error": message }))).into_response()
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
    if is_probe(&req) {
        return next.run(req).await;
    }
    if app.auth == AuthMode::Open {
        let record = change_record(&req, None);
        if let Err(r) = audit_change(&app, record).await {
            return r;
        }
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
    if is_administration(&req) && !app.access.may_administer(&principal) {
        return forbidden(format!(
            "user `{}` has role `{}`, which may not administer; the audit log needs the admin \
             role or a role with `administer: true` in access.yml",
            principal.user, principal.role
        ));
    }
    if !reads_only(&req) && !app.access.may_operate(&principal) {
        return forbidden(format!(
            "user `{}` has role `{}`, which may only read; starting, cancelling and retrying \
             needs the operator or admin role, or a role with `operate: true` in access.yml",
            principal.user, principal.role
        ));
    }
    let record = change_record(&req, Some(&principal));
    if let Err(r) = audit_change(&app, record).await {
        return r;
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Records an operating request (start, cancel, retry, backfill) in the audit log before it runs;
/// reads are recorded where they are answered ([`crate::audit`]). A log that cannot be written
/// refuses the request.
async fn audit_change(
    app: &AppState,
    record: Option<sluice_state::AuditRecord>,
) -> Result<(), Response> {
    let (Some(auditor), Some(record)) = (app.access.auditor(), record) else {
        return Ok(());
    };
    auditor.append(record).await.map(|_| ()).map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response()
    })
}

/// The audit record of a request that changes something (None for reads).
fn change_record(
    req: &Request,
    principal: Option<&Principal>,
) -> Option<sluice_state::AuditRecord> {
    if reads_only(req) {
        return None;
    }
    Some(sluice_state::AuditRecord {
        at: crate::audit::now(),
        kind: "write".into(),
        action: format!("{} {}", req.method(), req.uri().path()),
        actor: principal.map_or_else(|| "anonymous".to_string(), |p| p.user.clone()),
        role: principal.map(|p| p.role.to_string()),
        protocol: Some("http".into()),
        client: req
            .extensions()
            .get::<crate::server::Peer>()
            .map(|p| p.0.to_string()),
        ..sluice_state::AuditRecord::default()
    })
}
