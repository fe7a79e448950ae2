//! A served project for the tests of this crate: a tiny project folder, a temporary lake with a
//! source table and a model table, an in-memory state database with one run and two checks.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use futures::StreamExt;
use sluice_lake::{Lake, TableId, WriteSpec};
use sluice_orchestrate::{CheckRecord, NodeRecord, RunRecord, StateStore};
use sluice_transform::Engine;
use tower::ServiceExt;

use crate::app::AppState;

/// Rows in `files.sales`.
pub const SALES_ROWS: i64 = 2_500;

/// `dashboards/sales.yml` of the served project: charts over `files.sales` (30 days of `sold_on`)
/// and over `gold.by_region` (no time column).
pub const SALES_DASHBOARD: &str = "\
title: Sales
refresh: 1m
time_range: {column: sold_on, default: 7d}
charts:
  - {title: Amount by region, type: stacked_bar, asset: files.sales, x: sold_on, y: amount, series: region}
  - {title: Total amount, type: number, asset: files.sales, y: amount}
  - {title: Regions, type: table, sql: 'select region, revenue from gold.by_region', x: region, y: revenue, agg: none}
  - {title: Not built, type: line, asset: unbuilt, x: region, y: revenue}
";

/// A project served from a temporary folder (kept alive with it).
pub struct Served {
    /// The folder (project in `project/`, lake in `lake/`), deleted on drop.
    _dir: tempfile::TempDir,
    /// The router's state.
    pub state: AppState,
    /// The PostgreSQL schema holding the state (`SLUICE_TEST_STATE_URL`), dropped after it.
    _pg: Option<sluice_state::testing::TestSchema>,
}

impl Served {
    /// Builds the project, lake and state.
    pub async fn new() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        write(&project, "sluice.yml", "name: served\n");
        write(
            &project,
            "sources/files.yml",
            "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
        );
        write(
            &project,
            "models/gold/by_region.sql",
            "select region, sum(amount) as revenue from {{ source('files','sales') }} group by region",
        );
        write(
            &project,
            "models/gold/unbuilt.sql",
            "select * from {{ ref('by_region') }}",
        );
        write(&project, "dashboards/sales.yml", SALES_DASHBOARD);
        let loaded = sluice_core::Project::load(&project).unwrap();
        let compiled = Arc::new(sluice_transform::compile(Arc::new(loaded)).unwrap());

        let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        // Three batches so that results span several batches.
        let sales: Vec<RecordBatch> = (0..3).map(|part| sales_batch(part, 3)).collect();
        lake.write(
            &TableId::bronze("files", "sales"),
            sales,
            &WriteSpec::overwrite(),
        )
        .await
        .unwrap();
        let regions = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("region", DataType::Utf8, true),
                Field::new("revenue", DataType::Float64, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec![Some("north"), Some("south"), None])),
                Arc::new(Float64Array::from(vec![15.0, 20.0, 1.5])),
            ],
        )
        .unwrap();
        lake.write(
            &TableId::gold("by_region"),
            vec![regions],
            &WriteSpec::overwrite(),
        )
        .await
        .unwrap();
        let engine = Engine::open(&lake, Some(&compiled)).await.unwrap();

        // The state backend under test: in memory, or a PostgreSQL schema of its own.
        let pg = sluice_state::testing::TestSchema::from_env("serve").unwrap();
        let store = match &pg {
            Some(s) => StateStore::open(&s.location()).unwrap(),
            None => StateStore::in_memory().unwrap(),
        };
        record_run(&store);
        Served {
            _dir: dir,
            state: AppState::new(compiled, engine, Arc::new(store)),
            _pg: pg,
        }
    }

    /// A fresh router over the (shared) state.
    pub fn router(&self) -> Router {
        crate::http::router(self.state.clone())
    }

    /// `GET uri` with `Accept: accept` (none when empty).
    pub async fn get(&self, uri: &str, accept: &str) -> Reply {
        let mut req = Request::get(uri);
        if !accept.is_empty() {
            req = req.header(header::ACCEPT, accept);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    /// `POST /api/sql{query}` with a JSON body `{"sql": sql}`.
    pub async fn sql(&self, query: &str, sql: &str) -> Reply {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let req = Request::post(format!("/api/sql{query}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    /// Sends a request through the router and reads the whole body.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let (chunks, error) = frames(resp.into_body()).await;
        assert!(error.is_none(), "body failed: {error:?}");
        Reply {
            status,
            headers,
            chunks: chunks.len(),
            body: Bytes::from(chunks.concat()),
        }
    }
}

/// A response as the tests see it.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// How many body frames arrived.
    pub chunks: usize,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    /// The `Content-Type`.
    pub fn content_type(&self) -> &str {
        self.headers[header::CONTENT_TYPE].to_str().unwrap()
    }
}

/// Reads a body frame by frame (what a client receives as chunks): the frames, and the error that
/// ended it early, if any.
pub async fn frames(body: Body) -> (Vec<Vec<u8>>, Option<String>) {
    let mut data = body.into_data_stream();
    let mut chunks = Vec::new();
    while let Some(item) = data.next().await {
        match item {
            Ok(bytes) => chunks.push(bytes.to_vec()),
            Err(e) => return (chunks, Some(e.to_string())),
        }
    }
    (chunks, None)
}

/// Part `part` of `parts` of the sales table: `sale_id` 1..=SALES_ROWS, `region` cycling through
/// north/south/east with every 10th null, `amount` = sale_id / 2 with every 7th null, `sold_on` a
/// date.
fn sales_batch(part: i64, parts: i64) -> RecordBatch {
    let per = SALES_ROWS / parts;
    let from = part * per + 1;
    let to = if part == parts - 1 {
        SALES_ROWS
    } else {
        from + per - 1
    };
    let ids: Vec<i64> = (from..=to).collect();
    let regions = ["north", "south", "east"];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from_iter(ids.iter().map(|i| {
            (i % 10 != 0).then(|| regions[(*i % 3) as usize].to_string())
        }))),
        Arc::new(Float64Array::from_iter(
            ids.iter().map(|i| (i % 7 != 0).then_some(*i as f64 / 2.0)),
        )),
        Arc::new(Date32Array::from_iter_values(
            ids.iter().map(|i| 19_000 + (*i % 30) as i32),
        )),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("sale_id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("sold_on", DataType::Date32, false),
    ]));
    RecordBatch::try_new(schema, columns).unwrap()
}

fn record_run(store: &StateStore) {
    let at = "2026-01-01T00:00:00Z";
    store.start_run("r1", "run", "", at).unwrap();
    store
        .record_node(&NodeRecord {
            run_id: "r1".into(),
            node: "by_region".into(),
            kind: "model".into(),
            status: "success".into(),
            attempts: 1,
            rows_in: Some(SALES_ROWS),
            rows_out: Some(3),
            rows_quarantined: None,
            started_at: at.into(),
            finished_at: at.into(),
            duration_ms: 5,
            error: None,
            version: Some(0),
        })
        .unwrap();
    for (name, status) in [("not_null_region", "fail"), ("unique_region", "pass")] {
        store
            .record_check(&CheckRecord {
                run_id: "r1".into(),
                check_name: name.into(),
                model: "by_region".into(),
                kind: "not_null".into(),
                column_name: Some("region".into()),
                severity: "error".into(),
                status: status.into(),
                failing_rows: 0,
                sample: serde_json::Value::Null,
                message: None,
                checked_at: at.into(),
            })
            .unwrap();
    }
    store
        .finish_run(&RunRecord {
            run_id: "r1".into(),
            command: "run".into(),
            selection: String::new(),
            status: "success".into(),
            started_at: at.into(),
            finished_at: Some(at.into()),
            nodes_ok: 1,
            nodes_failed: 0,
            nodes_skipped: 0,
            checks_passed: 1,
            checks_warned: 0,
            checks_failed: 1,
        })
        .unwrap();
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}
