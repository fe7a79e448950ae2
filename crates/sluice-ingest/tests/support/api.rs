//! A local JSON API for the `kind: http` tests: one record set served in four pagination styles,
//! with authentication, an `updated_since` filter, a request log, and faults to inject.
//!
//! | path | pagination | auth | records at |
//! |---|---|---|---|
//! | `/v1/page?page=&per_page=` | page number | `Authorization: Bearer tok-123` | `data.items` |
//! | `/v1/offset?offset=&limit=` | offset | `X-Api-Key: k-456` | `results` |
//! | `/v1/cursor?cursor=` | token at `meta.next` | basic `u:p` | `items` |
//! | `/v1/link?page=` | `Link: <…>; rel="next"` | none | the body (an array) |
//!
//! With `min_gap` set, the server enforces its own rate limit: a request sooner than that after the
//! previous one gets 429 with `Retry-After: 1`.
//!
//! Records are served in `id` order; `updated_since` keeps those with `updated_at >= since` (the
//! inclusive filter many APIs use). Pages hold 5 records unless the request says otherwise.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// What the server answers instead of a page, once.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with this `Retry-After` value.
    TooMany(&'static str),
    /// 500 Internal Server Error.
    ServerError,
    /// 200 with a body that is not JSON.
    NotJson,
    /// 200 with JSON in the wrong shape (the records are an object).
    WrongShape,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub style: String,
    pub query: HashMap<String, String>,
    pub status: u16,
}

#[derive(Default)]
pub struct Api {
    pub records: Mutex<Vec<Value>>,
    /// Faults by (style, page number or offset or cursor; "" for the first page).
    pub faults: Mutex<HashMap<(String, String), VecDeque<Fault>>>,
    pub log: Mutex<Vec<Seen>>,
    /// The server's rate limit: the least time between two requests.
    pub min_gap: Mutex<Option<Duration>>,
}

impl Api {
    /// Queues `fault` for the request of `style` whose page key (page number, offset, cursor) is
    /// `key`.
    pub fn fault(&self, style: &str, key: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .entry((style.to_string(), key.to_string()))
            .or_default()
            .push_back(fault);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

/// Record `id` with a nested customer, a list of tags and an amount; `updated_at` is given.
pub fn record(id: i64, updated_at: &str) -> Value {
    json!({
        "id": id,
        "updated_at": updated_at,
        "amount": id * 10,
        "customer": {"name": format!("c{id}"), "address": {"city": if id % 2 == 0 { "Oslo" } else { "Lima" }}},
        "tags": if id % 3 == 0 { json!(["vip", "new"]) } else { json!([]) },
    })
}

/// Starts the API on 127.0.0.1:0 with `records`; returns it and its base URL.
pub async fn start(records: Vec<Value>) -> (Arc<Api>, String) {
    let api = Arc::new(Api::default());
    *api.records.lock().unwrap() = records;
    let app = Router::new()
        .route("/v1/{style}", get(serve))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (api, format!("http://{addr}"))
}

fn authorized(style: &str, headers: &HeaderMap) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    match style {
        "page" => header("authorization") == "Bearer tok-123",
        "offset" => header("x-api-key") == "k-456",
        // base64("u:p")
        "cursor" => header("authorization") == "Basic dTpw",
        _ => true,
    }
}

async fn serve(
    State(api): State<Arc<Api>>,
    Path(style): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let now = Instant::now();
    let previous = api.log.lock().unwrap().last().map(|s| s.at);
    let too_soon =
        matches!((*api.min_gap.lock().unwrap(), previous), (Some(gap), Some(p)) if now - p < gap);
    let response = if too_soon {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("1"));
        (StatusCode::TOO_MANY_REQUESTS, h, "rate limit exceeded").into_response()
    } else {
        answer(&api, &style, &query, &headers)
    };
    api.log.lock().unwrap().push(Seen {
        at: now,
        style,
        query,
        status: response.status().as_u16(),
    });
    response
}

fn answer(api: &Api, style: &str, q: &HashMap<String, String>, headers: &HeaderMap) -> Response {
    if !authorized(style, headers) {
        return (StatusCode::UNAUTHORIZED, "{\"error\": \"bad credentials\"}").into_response();
    }
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let key = match style {
        "page" | "link" => q.get("page").cloned().unwrap_or_default(),
        "offset" => q.get("offset").cloned().unwrap_or_default(),
        _ => q.get("cursor").cloned().unwrap_or_default(),
    };
    let fault = api
        .faults
        .lock()
        .unwrap()
        .get_mut(&(style.to_string(), key))
        .and_then(VecDeque::pop_front);
    match fault {
        Some(Fault::TooMany(after)) => {
            let mut h = HeaderMap::new();
            h.insert("retry-after", HeaderValue::from_static(after));
            return (StatusCode::TOO_MANY_REQUESTS, h, "slow down").into_response();
        }
        Some(Fault::ServerError) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response();
        }
        Some(Fault::NotJson) => {
            return (StatusCode::OK, "<html>gateway oops</html>").into_response();
        }
        Some(Fault::WrongShape) => {
            return axum::Json(json!({"data": {"items": {"id": 1}}, "results": {"id": 1}}))
                .into_response();
        }
        None => {}
    }
    let since = q.get("updated_since");
    let all: Vec<Value> = api
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| since.is_none_or(|s| r["updated_at"].as_str().unwrap_or("") >= s.as_str()))
        .cloned()
        .collect();
    let slice = |start: usize, len: usize| -> Vec<Value> {
        all.iter().skip(start).take(len).cloned().collect()
    };
    match style {
        "page" => {
            let size = num("per_page", 5);
            let page = num("page", 1);
            axum::Json(json!({"data": {"items": slice((page - 1) * size, size)}})).into_response()
        }
        "offset" => {
            axum::Json(json!({"results": slice(num("offset", 0), num("limit", 5))})).into_response()
        }
        "cursor" => {
            // The token is the position after the previous page, disguised.
            let start = q
                .get("cursor")
                .and_then(|c| c.strip_prefix("after-"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0usize);
            let items = slice(start, 5);
            let end = start + items.len();
            let next = if end < all.len() {
                json!(format!("after-{end}"))
            } else {
                Value::Null
            };
            axum::Json(json!({"items": items, "meta": {"next": next}})).into_response()
        }
        "link" => {
            let page = num("page", 1);
            let items = slice((page - 1) * 5, 5);
            let mut h = HeaderMap::new();
            if page * 5 < all.len() {
                let mut link = format!("</v1/link?page={}>; rel=\"next\"", page + 1);
                if let Some(s) = since {
                    link = format!(
                        "</v1/link?page={}&updated_since={s}>; rel=\"next\"",
                        page + 1
                    );
                }
                h.insert("link", HeaderValue::from_str(&link).unwrap());
            }
            (h, axum::Json(Value::Array(items))).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
    }
}
