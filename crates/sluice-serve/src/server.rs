//! The HTTP listener: its own accept loop over hyper, so that no client can exhaust it.
//!
//! - **Connections**: at most `max_connections` are served; up to [`SHED_HEADROOM`] more get a
//!   minimal service that answers `/api/health` and gives every other request a 503 with
//!   `Retry-After` and closes; past that a connection is closed at once. The process raises its own
//!   open-file limit at start ([`raise_open_file_limit`]), so it sheds load long before it runs out of
//!   descriptors.
//! - **Slow or idle clients**: a request's headers must arrive within `header_read_timeout`, which
//!   also closes idle keep-alive connections; request line plus headers are bounded by
//!   `max_header_bytes` (431 past it) and bodies by `max_request_bytes` (413).
//! - **Cross-site and rebinding requests**: [`guard_request`] answers only `Host` names that are
//!   loopback, the bound address or `serve.allowed_hosts` (421 otherwise; the probes `GET
//!   /api/health` and `/api/ready` answer any name), refuses state-changing
//!   requests from another site (`Origin` / `Sec-Fetch-Site`), and accepts only JSON (or
//!   `application/sql`) bodies on them, which a page cannot send cross-site without a preflight.
//! - **TLS**: [`serve_https`] with an acceptor serves HTTPS only ([`crate::tls`]); the handshake
//!   must complete within `header_read_timeout`.
//! - **Shutdown**: when `shutdown` completes the listener closes, every connection is asked to finish
//!   its in-flight request, and whatever still runs after `shutdown_grace` is dropped, which cancels
//!   its queries.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::limits::Limits;
use crate::tls::TlsAcceptor;

/// The client's address, as the server records it on each request (handlers name the client of a
/// query with it).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// The address of a request's client, or an empty string when the request came without one (tests
/// that call the router directly).
pub(crate) fn peer_of(peer: &Option<axum::Extension<Peer>>) -> String {
    peer.as_ref()
        .map(|axum::Extension(Peer(a))| a.to_string())
        .unwrap_or_default()
}

/// Connections past `max_connections` that still get an answer (a 503, or health) before the
/// listener starts closing them unanswered.
pub const SHED_HEADROOM: usize = 64;

/// Raises this process's soft open-file limit to its hard limit (where the OS allows), so that the
/// connection limits, not the descriptor table, decide when to shed load. Returns the new soft limit.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Some(raised.rlim_cur);
            }
        }
    }
    Some(lim.rlim_cur)
}

/// The `Host` names the API answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: BTreeSet<String>,
}

impl AllowedHosts {
    /// Loopback names, the bound address's host, and `extra` (host names, with or without a port).
    pub fn new(bound: Option<SocketAddr>, extra: &[String]) -> Self {
        let mut names: BTreeSet<String> = ["localhost", "127.0.0.1", "[::1]", "::1"]
            .into_iter()
            .map(String::from)
            .collect();
        if let Some(addr) = bound {
            names.insert(match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            });
        }
        for h in extra {
            names.insert(host_without_port(&h.to_ascii_lowercase()).to_string());
        }
        Self { names }
    }

    /// Whether a `Host` (or `Origin` authority) value names this server. A wildcard bind
    /// (`0.0.0.0`) does not make every name acceptable: list the names in `serve.allowed_hosts`.
    pub fn allows(&self, host: &str) -> bool {
        let lower = host.to_ascii_lowercase();
        let name = host_without_port(&lower);
        self.names.contains(name) || name.ends_with(".localhost")
    }
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// The request checks of the module doc: `Host`, cross-site origin, body type.
pub async fn guard_request(
    State(hosts): State<Arc<AllowedHosts>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    // Probes (kubelet, load balancers) name the pod's address, which no list can know in advance;
    // the two probe endpoints show nothing a rebinding page could steal.
    let probe =
        req.method() == Method::GET && matches!(req.uri().path(), "/api/health" | "/api/ready");
    match host {
        Some(h) if probe || hosts.allows(&h) => {}
        Some(h) => {
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this server does not answer to the host name `{h}`; add it to \
                     serve.allowed_hosts in sluice.yml if it is yours"
                ),
            );
        }
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the request has no Host header".to_string(),
            );
        }
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let headers = req.headers();
        if headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
        {
            return refuse(
                StatusCode::FORBIDDEN,
                "cross-site requests may not change anything here".to_string(),
            );
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let authority = origin.split("://").nth(1).unwrap_or(origin);
            if origin == "null" || !hosts.allows(authority) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!("requests from the origin `{origin}` may not change anything here"),
                );
            }
        }
        if let Some(ct) = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            let media = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if media != "application/json" && media != "application/sql" {
                return refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "unsupported Content-Type `{media}`: send application/json (or \
                         application/sql to POST /api/sql)"
                    ),
                );
            }
        }
    }
    next.run(req).await
}

/// Adds the request guards and the body limit to `app`.
pub fn harden(app: Router, limits: &Limits, hosts: AllowedHosts) -> Router {
    app.layer(DefaultBodyLimit::max(limits.max_request_bytes))
        .layer(middleware::from_fn_with_state(
            Arc::new(hosts),
            guard_request,
        ))
}

/// What a connection past `max_connections` gets: health, or 503.
fn shedding_router() -> Router {
    Router::new()
        .route(
            "/api/health",
            axum::routing::get(|| async {
                axum::Json(
                    json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "shedding": true}),
                )
            }),
        )
        .fallback(|| async {
            let mut r = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is at its connection limit; retry shortly".to_string(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        })
}

/// Counts a connection while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes (see the module doc).
/// `hosts` adds the request guards; `None` serves `app` as it is (tests that build their own).
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    hosts: Option<AllowedHosts>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_https(listener, app, limits, hosts, None, shutdown).await
}

/// [`serve_http`] over TLS when `tls` is given (HTTPS only: a client's handshake must complete
/// within `header_read_timeout`, or the connection is closed).
pub async fn serve_https(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    hosts: Option<AllowedHosts>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = match hosts {
        Some(h) => harden(app, limits, h),
        None => app.layer(DefaultBodyLimit::max(limits.max_request_bytes)),
    };
    let shed = shedding_router();
    let open = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accepting an HTTP connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let count = open.fetch_add(1, Ordering::Relaxed) + 1;
                let guard = Open(open.clone());
                if count > limits.max_connections + SHED_HEADROOM {
                    continue; // closes the stream: nothing more can be afforded
                }
                let shedding = count > limits.max_connections;
                let router = if shedding { shed.clone() } else { app.clone() };
                let service = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(Peer(peer));
                    req.map(Body::new)
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .max_buf_size(limits.max_header_bytes)
                    .keep_alive(!shedding);
                let stop = stop_rx.clone();
                let tls = tls.clone();
                let handshake_timeout = limits.header_read_timeout;
                connections.spawn(async move {
                    let _guard = guard;
                    let service = TowerToHyperService::new(service);
                    match tls {
                        None => serve_connection(builder, stream, service, stop, peer).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => serve_connection(builder, stream, service, stop, peer).await,
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let in_flight = connections.len();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            grace = ?limits.shutdown_grace,
            "shutdown grace period over: closing the remaining HTTP connections"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    tracing::info!(in_flight, "HTTP server stopped");
    Ok(())
}

/// Serves one accepted connection (plain or TLS) until it ends or `stop` asks it to finish.
async fn serve_connection<S, Svc>(
    builder: hyper::server::conn::http1::Builder,
    stream: S,
    service: Svc,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::Service<Request<hyper::body::Incoming>, Response = Response>
        + Send
        + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        }
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_loopback_the_bound_address_and_the_configured_names() {
        let bound: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        let hosts = AllowedHosts::new(Some(bound), &["Data.Example.com".to_string()]);
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:9",
            "[::1]:8080",
            "10.1.2.3:8080",
            "data.example.com",
            "data.example.com:443",
            "app.localhost:3000",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:8080",
            "127.0.0.2",
            "data.example.com.evil.com",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let got = raise_open_file_limit().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reads into a local struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, got);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
