//! `GET /api/freshness`: every asset's owner, last new data, freshness SLA and state, and its open
//! incidents (freshness and failure). Computed by `sluice-monitor` from the state database; reading
//! it never opens or resolves an incident. See docs/alerts.md.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_orchestrate::schedule::{Clock, SystemClock};

use crate::app::AppState;

/// `GET /api/freshness`: a JSON array, one object per asset.
pub async fn freshness(State(s): State<AppState>) -> Response {
    let (compiled, state) = (s.compiled.clone(), s.state.clone());
    // The report reads the state database, which may wait for a writer: keep it off the async
    // threads.
    let report = tokio::task::spawn_blocking(move || {
        sluice_monitor::freshness_report(&compiled, &state, SystemClock.now())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(format!("freshness task failed: {e}")));
    match report {
        Ok(assets) => Json(json!(assets)).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": error })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::Served;

    #[tokio::test]
    async fn lists_every_asset_with_its_freshness() {
        let s = Served::new().await;
        let reply = s.get("/api/freshness", "").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let list = reply.json();
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["asset"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"files.sales") && names.contains(&"by_region"),
            "{names:?}"
        );
        let sales = list
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["asset"] == "files.sales")
            .unwrap();
        assert_eq!(sales["state"], "no_sla");
        assert_eq!(sales["kind"], "source");
        assert!(sales["open_incidents"].as_array().unwrap().is_empty());
    }
}
