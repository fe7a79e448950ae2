//! Reverse ETL to a webhook: one `POST` per batch, the body a JSON array of row objects.
//!
//! Each request carries `Idempotency-Key: <run id>:<export>:<batch>` (the same on every retry of a
//! batch, so a receiver can drop a batch it already has), `X-Sluice-Export` and `X-Sluice-Batch`,
//! plus the configured headers. A 5xx, 408, 429 or connection failure is retried with exponential
//! backoff and jitter (`retries`, `retry_backoff`); any other status fails the export at that batch,
//! and the batches before it stay delivered. Batches go one at a time, in table order.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sluice_core::ConfigError;
use sluice_core::ExportDecl;
use sluice_core::yaml::HumanDuration;

use crate::{ExportReport, Rebatcher, Rows, Sink, SinkContext, SinkError, SinkKind};

/// The registry entry (see [`crate::SINK_KINDS`]).
pub const KIND: SinkKind = SinkKind {
    name: "webhook",
    description: "POSTs the rows to an HTTP endpoint as JSON arrays, one request per batch, retried with backoff.",
    example: "asset: orders\nkind: webhook\nurl: https://hooks.example.com/orders\n",
    build: |export| {
        Ok(Box::new(WebhookSink {
            target: WebhookTarget::from_decl(export)?,
        }))
    },
};

/// The fields of a `kind: webhook` export file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFields {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    retry_backoff: Option<HumanDuration>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// Where and how a `kind: webhook` export posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The URL as written; `${ENV}` is expanded when the export runs.
    pub url: String,
    /// Extra request headers; values are `${ENV}`-expanded when the export runs.
    pub headers: BTreeMap<String, String>,
    /// Retries of one batch after a 5xx, a 429 or a connection error.
    pub retries: u32,
    /// First retry delay (doubles, with jitter).
    pub retry_backoff: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl WebhookTarget {
    /// Reads and checks the export's webhook fields, every problem with file and line.
    pub fn from_decl(export: &ExportDecl) -> Result<WebhookTarget, ConfigError> {
        let f: WebhookFields = export.config()?;
        let url = f.url.unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("${")) {
            return Err(export.invalid("url", format!("`{url}` is not an http:// or https:// URL")));
        }
        Ok(WebhookTarget {
            url,
            headers: f.headers,
            retries: f.retries.unwrap_or(5),
            retry_backoff: f.retry_backoff.map_or(Duration::from_millis(500), |d| d.0),
            timeout: f.timeout.map_or(Duration::from_secs(30), |d| d.0),
        })
    }
}

/// `kind: webhook`: one `POST` of a JSON array per batch.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    target: WebhookTarget,
}

#[async_trait]
impl Sink for WebhookSink {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    async fn write(&self, rows: Rows, cx: &SinkContext<'_>) -> Result<ExportReport, SinkError> {
        push(cx.export, &self.target, rows, cx.run_id).await
    }
}

/// Longest delay between two retries of a batch.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// One failed attempt at a batch.
#[derive(Debug)]
struct Attempt {
    message: String,
    retryable: bool,
}

/// Pushes `stream` to the export's webhook.
pub async fn push(
    export: &ExportDecl,
    target: &WebhookTarget,
    mut stream: Rows,
    run_id: &str,
) -> Result<ExportReport, SinkError> {
    let url = sluice_core::env::expand_env(&target.url, &export.path)?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in &target.headers {
        let value = sluice_core::env::expand_env(value, &export.path)?;
        let bad = |what: &str| SinkError::Webhook {
            batch: 0,
            message: format!("header `{name}`: not a valid header {what}"),
        };
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?,
            HeaderValue::from_str(&value).map_err(|_| bad("value"))?,
        );
    }
    let client = reqwest::Client::builder()
        .timeout(target.timeout)
        .build()
        .map_err(|e| SinkError::Webhook {
            batch: 0,
            message: format!("cannot build the HTTP client: {e}"),
        })?;
    let sender = Sender {
        client,
        url,
        headers,
        target,
        export: &export.name,
        run_id,
    };
    let mut report = ExportReport::default();
    let mut rebatcher = Rebatcher::new(stream.schema(), export.batch_size);
    let engine_error = |e: arrow::error::ArrowError| SinkError::Engine(e.to_string());
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        report.rows_read += batch.num_rows() as u64;
        for ready in rebatcher.push(batch).map_err(engine_error)? {
            sender.send(&ready, &mut report).await?;
        }
    }
    if let Some(last) = rebatcher.finish().map_err(engine_error)? {
        sender.send(&last, &mut report).await?;
    }
    Ok(report)
}

struct Sender<'a> {
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    target: &'a WebhookTarget,
    export: &'a str,
    run_id: &'a str,
}

impl Sender<'_> {
    /// Sends one batch, retrying what may pass on a later attempt.
    async fn send(
        &self,
        batch: &arrow::array::RecordBatch,
        report: &mut ExportReport,
    ) -> Result<(), SinkError> {
        let number = report.batches + 1;
        // Bytes: every retry shares the encoded body.
        let body = bytes::Bytes::from(crate::json::json_array(batch)?);
        let key = format!("{}:{}:{number}", self.run_id, self.export);
        let (this, key, body) = (self, key.as_str(), &body);
        let attempt = || async move {
            let resp = this
                .client
                .post(&this.url)
                .headers(this.headers.clone())
                .header("Idempotency-Key", key)
                .header("X-Sluice-Export", this.export)
                .header("X-Sluice-Batch", number.to_string())
                .body(body.clone())
                .send()
                .await
                .map_err(|e| Attempt {
                    retryable: e.is_connect() || e.is_timeout() || e.is_request(),
                    message: full_message(&e),
                })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let text = resp.text().await.unwrap_or_default();
            let text: String = text.chars().take(300).collect();
            Err(Attempt {
                retryable: status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT,
                message: format!("{status}: {}", text.trim()),
            })
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.target.retry_backoff)
            .with_max_delay(MAX_RETRY_DELAY)
            .with_max_times(self.target.retries as usize)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(|a: &Attempt| a.retryable)
            .notify(|a: &Attempt, delay: Duration| {
                tracing::warn!(
                    export = self.export,
                    batch = number,
                    delay_ms = delay.as_millis() as u64,
                    error = %a.message,
                    "webhook batch failed; retrying"
                );
            })
            .await
            .map_err(|a| SinkError::Webhook {
                batch: number,
                message: if a.retryable {
                    format!(
                        "{} (gave up after {} retries)",
                        a.message, self.target.retries
                    )
                } else {
                    a.message
                },
            })?;
        report.batches = number;
        report.rows_written += batch.num_rows() as u64;
        Ok(())
    }
}

/// The error with its causes (reqwest's top-level message alone says little).
fn full_message(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    message
}
