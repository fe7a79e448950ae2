//! The web UI: static HTML, CSS and JavaScript embedded in the binary, served at `/` and `/ui/*`.
//!
//! The UI is plain ES modules with no build step: what is in `crates/sluice-serve/ui/` is what the
//! browser runs. Pages are addressed by the URL fragment (`/#/assets/stg_orders`), so the server has
//! exactly one HTML page to serve, and every piece of data comes from the JSON API. The UI's routes
//! are not API routes: they are kept out of [`super::routes`] and the OpenAPI document.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// (path under `/ui/`, media type, contents) of every embedded file.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", HTML, include_str!("../../ui/index.html")),
    ("app.css", CSS, include_str!("../../ui/app.css")),
    ("js/app.js", JS, include_str!("../../ui/js/app.js")),
    ("js/api.js", JS, include_str!("../../ui/js/api.js")),
    ("js/dom.js", JS, include_str!("../../ui/js/dom.js")),
    ("js/graph.js", JS, include_str!("../../ui/js/graph.js")),
    ("js/asset.js", JS, include_str!("../../ui/js/asset.js")),
    ("js/runs.js", JS, include_str!("../../ui/js/runs.js")),
    ("js/checks.js", JS, include_str!("../../ui/js/checks.js")),
    ("js/queries.js", JS, include_str!("../../ui/js/queries.js")),
    (
        "js/dashboards.js",
        JS,
        include_str!("../../ui/js/dashboards.js"),
    ),
    ("js/charts.js", JS, include_str!("../../ui/js/charts.js")),
    ("js/signin.js", JS, include_str!("../../ui/js/signin.js")),
    ("favicon.svg", SVG, include_str!("../../ui/favicon.svg")),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The UI's routes: `/` (the page) and `/ui/{*path}` (its assets).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(asset))
}

async fn index() -> Response {
    file("index.html")
}

async fn asset(Path(path): Path<String>) -> Response {
    file(&path)
}

/// With `SLUICE_UI_DIR` set (to `crates/sluice-serve/ui`), the files are read from that folder on
/// every request instead of from the binary, so editing the UI needs no rebuild. Only the embedded
/// files' paths are served from it: the variable cannot expose anything else.
fn file(path: &str) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, media, body)) => (
            [
                (header::CONTENT_TYPE, *media),
                // The files change only with the binary; revalidating is cheap on loopback and keeps
                // an upgraded server from serving a stale script out of the browser cache.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            from_dev_dir(path).unwrap_or_else(|| (*body).to_string()),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no UI file `{path}`"),
        )
            .into_response(),
    }
}

fn from_dev_dir(path: &str) -> Option<String> {
    let dir = std::env::var_os("SLUICE_UI_DIR")?;
    std::fs::read_to_string(std::path::Path::new(&dir).join(path)).ok()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(uri: &str) -> (StatusCode, String, String) {
        let resp = router::<()>()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let media = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .unwrap();
        (status, media, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_page_and_its_modules_are_served() {
        let (status, media, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(media, HTML);
        assert!(body.contains("/ui/js/app.js"), "{body}");
        let (status, media, body) = get("/ui/js/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(media, JS);
        assert!(body.contains("import"), "{body}");
    }

    #[tokio::test]
    async fn an_unknown_file_is_a_404() {
        let (status, _, body) = get("/ui/js/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("nope.js"));
    }

    #[test]
    fn every_module_import_is_embedded() {
        // A module imported by another but missing from FILES would break the page at run time.
        for (path, _, body) in FILES.iter().filter(|(p, _, _)| p.ends_with(".js")) {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let Some(target) = line.split('\'').nth(1) else {
                    continue;
                };
                let target = format!("js/{}", target.trim_start_matches("./"));
                assert!(
                    FILES.iter().any(|(p, _, _)| *p == target),
                    "{path} imports {target}, which is not embedded"
                );
            }
        }
    }
}
