//! HTTP request counts for `/metrics`: the middleware that counts every response by route template,
//! and the counters it writes to (held by [`crate::app::AppState`], read by `GET /metrics`, [`crate::http::metrics`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Request counts by route template and status.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl HttpMetrics {
    /// Counts one response.
    pub fn record(&self, route: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((route.to_string(), status)).or_insert(0) += 1;
    }

    /// The counts so far, sorted by route and status.
    pub fn snapshot(&self) -> Vec<(String, u16, u64)> {
        let map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|((r, s), n)| (r.clone(), *s, *n)).collect()
    }
}

/// The route label of requests that matched no route (so that probing random paths cannot create
/// unbounded label values).
pub const UNMATCHED: &str = "unmatched";

/// Middleware: counts every response by its route template (`/api/runs/{id}`, not the id).
pub async fn count_requests(
    State(metrics): State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED.to_string());
    let resp = next.run(req).await;
    metrics.record(&route, resp.status().as_u16());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accumulate_per_route_and_status() {
        let m = HttpMetrics::default();
        m.record("/api/runs/{id}", 404);
        m.record("/api/runs/{id}", 404);
        m.record("/api/assets", 200);
        assert_eq!(
            m.snapshot(),
            [
                ("/api/assets".to_string(), 200, 1),
                ("/api/runs/{id}".to_string(), 404, 2)
            ]
        );
    }
}
