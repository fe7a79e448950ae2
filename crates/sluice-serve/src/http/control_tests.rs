//! Run control over HTTP: cancel, retry and schedules, on the test project of
//! [`crate::test_support`].

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sluice_orchestrate::{NodeRecord, RunRecord, StateStore};

use crate::test_support::{Reply, Served};

async fn post(s: &Served, uri: &str) -> Reply {
    s.send(Request::post(uri).body(Body::empty()).unwrap())
        .await
}

/// Records run `id` in which `by_region` ended with `status`, finished or not.
fn record(store: &StateStore, id: &str, status: &str, finished: bool) {
    let at = "2026-01-02T00:00:00Z";
    store.start_run(id, "run", "", at).unwrap();
    store
        .record_node(&NodeRecord {
            run_id: id.into(),
            node: "by_region".into(),
            kind: "model".into(),
            status: status.into(),
            attempts: 1,
            rows_in: None,
            rows_out: None,
            rows_quarantined: None,
            started_at: at.into(),
            finished_at: at.into(),
            duration_ms: 5,
            error: (status != "success").then(|| "connection refused".to_string()),
            version: None,
        })
        .unwrap();
    if finished {
        store
            .finish_run(&RunRecord {
                run_id: id.into(),
                command: "run".into(),
                selection: String::new(),
                status: "failed".into(),
                started_at: at.into(),
                finished_at: Some(at.into()),
                nodes_ok: 0,
                nodes_failed: 1,
                nodes_skipped: 0,
                checks_passed: 0,
                checks_warned: 0,
                checks_failed: 0,
            })
            .unwrap();
    }
}

#[tokio::test]
async fn cancel_reaches_only_a_running_run() {
    let s = Served::new().await;
    assert_eq!(
        post(&s, "/api/runs/nope/cancel").await.status,
        StatusCode::NOT_FOUND
    );
    // r1 (the fixture's) is finished.
    let r = post(&s, "/api/runs/r1/cancel").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(!s.state.state.cancel_requested("r1").unwrap());
    record(&s.state.state, "live", "success", false);
    let r = post(&s, "/api/runs/live/cancel").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["cancel_requested"], true);
    // The runner (in whatever process) polls this flag.
    assert!(s.state.state.cancel_requested("live").unwrap());
}

#[tokio::test]
async fn retry_reruns_what_failed_and_refuses_what_cannot_be_retried() {
    let s = Served::new().await;
    assert_eq!(
        post(&s, "/api/runs/nope/retry").await.status,
        StatusCode::NOT_FOUND
    );
    let r = post(&s, "/api/runs/r1/retry").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "everything succeeded in r1");
    assert!(r.text().contains("nothing to retry"), "{}", r.text());
    record(&s.state.state, "unfinished", "failed", false);
    let r = post(&s, "/api/runs/unfinished/retry").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("still running"), "{}", r.text());

    record(&s.state.state, "broken", "failed", true);
    let r = post(&s, "/api/runs/broken/retry").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let body = r.json();
    assert_eq!(body["retry_of"], "broken");
    assert_eq!(body["nodes"], serde_json::json!(["by_region"]));
    let id = body["run_id"].as_str().unwrap().to_string();
    let mut detail = s.get(&format!("/api/runs/{id}"), "").await.json();
    for _ in 0..200 {
        if detail["run"]["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        detail = s.get(&format!("/api/runs/{id}"), "").await.json();
    }
    assert_eq!(detail["run"]["command"], "retry");
    assert_eq!(detail["run"]["selection"], "by_region");
    assert_eq!(detail["run"]["status"], "success", "{detail}");
}

#[tokio::test]
async fn schedules_list_every_automatic_trigger() {
    let s = Served::new().await;
    let r = s.get("/api/schedules", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    let list = body["schedules"].as_array().unwrap();
    let of = |asset: &str| {
        list.iter()
            .find(|i| i["asset"] == asset)
            .unwrap_or_else(|| panic!("{asset} in {body}"))
    };
    // A files table without a schedule is watched for new files; models follow their inputs.
    assert!(
        of("files.sales")["trigger"]
            .as_str()
            .unwrap()
            .contains("file"),
        "{body}"
    );
    assert!(of("files.sales")["next_tick"].is_null());
    assert!(
        of("by_region")["trigger"]
            .as_str()
            .unwrap()
            .contains("upstream"),
        "{body}"
    );
}
