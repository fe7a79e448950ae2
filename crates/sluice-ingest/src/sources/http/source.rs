//! The `http` connector: walks an endpoint's pages and lands their records exactly once.
//!
//! `full`: every page of the endpoint is read, and the records replace the bronze table in one
//! commit. `incremental`: the request carries the high-water mark (`?updated_since=<mark>`), and
//! every page with records is committed on its own, so a long backlog lands in bounded memory. The
//! mark only advances in the commit of the window's *last* page; until then each commit records
//! where the window stands (`sluice.http.resume`: the mark the window asked from, the largest cursor
//! seen so far, and the next page's URL). A run that finds such a commit resumes at that page, so a
//! crash or a failed page in the middle of a window neither re-lands the pages already committed
//! nor skips the ones after, even when the API does not return records in cursor order.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use sluice_core::SourceDecl;
use sluice_core::env::expand_env;
use sluice_lake::{QuarantinedRow, TableId, WriteMode};
use url::Url;

use super::client::{ClientSettings, HttpClient, ResolvedAuth};
use super::config::{Auth, HttpConfig, HttpTable, Mode};
use super::paginate::{
    at_path, compare_cursor, first_page, next_page, param_text, records, with_param,
};
use super::rate_limit::RateLimiter;
use crate::error::IngestError;
use crate::formats::{FileFormat, ReadOptions, read_jsonl_bytes};
use crate::landing::{Landing, app_id, land, without_metadata_columns};
use crate::source::{IngestContext, IngestReport, Source, find_table};

/// Commit metadata key of an unfinished incremental window.
const RESUME_KEY: &str = "sluice.http.resume";

/// Lands JSON records of REST endpoints.
pub struct HttpSource {
    name: String,
    config: HttpConfig,
    /// Each table's first URL (base URL + path + `params`), in `config.tables` order.
    urls: Vec<Url>,
    client: HttpClient,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A page as fetched and parsed.
struct Page {
    /// 1-based number of the page in this run.
    number: u64,
    url: Url,
    body: Value,
    headers: HeaderMap,
}

/// Where an unfinished incremental window stands.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Resume {
    /// The mark the window's requests ask from.
    since: Option<Value>,
    /// The largest cursor value landed in the window so far.
    max: Option<Value>,
    /// The next page to read.
    next: String,
}

fn parse_duration(
    text: &str,
    field: &str,
    invalid: &dyn Fn(String, String) -> IngestError,
) -> Result<Duration, IngestError> {
    sluice_core::duration::parse_duration(text).map_err(|e| invalid(field.into(), e))
}

impl HttpSource {
    /// Parses and validates a source file of kind `http`; resolves secrets from the environment.
    /// Does not send any request.
    pub fn from_decl(decl: &SourceDecl, _root: &Path) -> Result<Self, IngestError> {
        let config: HttpConfig = decl.config()?;
        let path: &PathBuf = &decl.path;
        let invalid =
            |field: String, message: String| IngestError::Config(decl.invalid(&field, message));
        let expand = |text: &str| expand_env(text, path);
        let base = expand(&config.base_url)?;
        Url::parse(&base).map_err(|e| {
            invalid(
                "base_url".into(),
                format!("`{base}` is not a URL ({e}); expected e.g. `https://api.example.com`"),
            )
        })?;
        let mut urls = Vec::with_capacity(config.tables.len());
        for (i, t) in config.tables.iter().enumerate() {
            let field = |f: &str| format!("tables[{i}].{f}");
            if t.mode() == Mode::Incremental && t.incremental.is_none() {
                return Err(invalid(
                    field("incremental"),
                    format!(
                        "table `{}` is incremental and needs `incremental: {{param, cursor_field}}`",
                        t.name
                    ),
                ));
            }
            if t.mode() == Mode::Full && t.incremental.is_some() {
                return Err(invalid(
                    field("mode"),
                    format!("table `{}` sets `incremental:` but `mode: full`", t.name),
                ));
            }
            let endpoint = if t.path.starts_with("http://") || t.path.starts_with("https://") {
                expand(&t.path)?
            } else {
                format!(
                    "{}/{}",
                    base.trim_end_matches('/'),
                    expand(&t.path)?.trim_start_matches('/')
                )
            };
            let mut url = Url::parse(&endpoint)
                .map_err(|e| invalid(field("path"), format!("`{endpoint}` is not a URL: {e}")))?;
            for (k, v) in &t.params {
                url = with_param(&url, k, &expand(v)?);
            }
            urls.push(url);
        }
        let auth = match &config.auth {
            None => None,
            Some(Auth::Bearer { token }) => Some(ResolvedAuth::Bearer(expand(token)?)),
            Some(Auth::ApiKey { header, query, key }) => Some(match query {
                Some(q) => ResolvedAuth::QueryKey(q.clone(), expand(key)?),
                None => ResolvedAuth::HeaderKey(
                    HeaderName::from_str(header).map_err(|e| {
                        invalid(
                            "auth.header".into(),
                            format!("`{header}` is not a header name: {e}"),
                        )
                    })?,
                    HeaderValue::from_str(&expand(key)?).map_err(|_| {
                        invalid(
                            "auth.key".into(),
                            "the key holds characters a header cannot carry".into(),
                        )
                    })?,
                ),
            }),
            Some(Auth::Basic { username, password }) => Some(ResolvedAuth::Basic(
                expand(username)?,
                password.as_deref().map(expand).transpose()?,
            )),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let name = HeaderName::from_str(k)
                .map_err(|e| invalid(format!("headers.{k}"), format!("not a header name: {e}")))?;
            let value = HeaderValue::from_str(&expand(v)?).map_err(|_| {
                invalid(
                    format!("headers.{k}"),
                    "the value holds characters a header cannot carry".into(),
                )
            })?;
            headers.insert(name, value);
        }
        let limiter = config
            .rate_limit
            .as_deref()
            .map(RateLimiter::parse)
            .transpose()
            .map_err(|e| invalid("rate_limit".into(), e))?;
        let settings = ClientSettings {
            timeout: parse_duration(&config.timeout, "timeout", &invalid)?,
            retries: config.retries,
            retry_backoff: parse_duration(&config.retry_backoff, "retry_backoff", &invalid)?,
            max_retry_wait: parse_duration(&config.max_retry_wait, "max_retry_wait", &invalid)?,
        };
        let client = HttpClient::new(auth, headers, limiter, settings)
            .map_err(|e| invalid("base_url".into(), e))?;
        Ok(Self {
            name: decl.name.clone(),
            config,
            urls,
            client,
        })
    }

    fn table(&self, name: &str) -> Result<(&HttpTable, &Url), IngestError> {
        let t = find_table(&self.name, &self.config.tables, name, |t| &t.name)?;
        let i = self
            .config
            .tables
            .iter()
            .position(|x| x.name == t.name)
            .unwrap_or_default();
        Ok((t, &self.urls[i]))
    }

    fn error(&self, t: &HttpTable, message: String, transient: bool) -> IngestError {
        IngestError::Read {
            source_name: self.name.clone(),
            table: t.name.clone(),
            message,
            transient,
        }
    }

    /// Fetches page `number` at `url` and parses its body as JSON.
    async fn fetch(&self, t: &HttpTable, number: u64, url: Url) -> Result<Page, IngestError> {
        let response = self.client.get(&url).await.map_err(|f| {
            self.error(
                t,
                format!("page {number} ({url}): {}", f.message),
                f.transient,
            )
        })?;
        let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
            let start: String = String::from_utf8_lossy(&response.body).chars().take(80).collect();
            self.error(
                t,
                format!(
                    "page {number} ({url}): the body is not JSON ({e}); expected {}; it starts with {start:?}",
                    match &t.records {
                        Some(p) => format!("an object with an array of records at `{p}`"),
                        None => "an array of records".to_string(),
                    }
                ),
                false,
            )
        })?;
        tracing::debug!(source = %self.name, table = %t.name, page = number, url = %url, "fetched page");
        Ok(Page {
            number,
            url,
            body,
            headers: response.headers,
        })
    }

    /// The page's records and the next page's URL, or a clear error naming the page.
    fn split<'p>(
        &self,
        t: &HttpTable,
        page: &'p Page,
    ) -> Result<(&'p [Value], Option<Url>), IngestError> {
        let malformed = |why: String| {
            self.error(
                t,
                format!("page {} ({}): {why}", page.number, page.url),
                false,
            )
        };
        let items = records(&page.body, t.records.as_deref()).map_err(malformed)?;
        let next = next_page(
            &t.pagination,
            &page.url,
            items.len(),
            &page.body,
            &page.headers,
        )
        .map_err(malformed)?;
        Ok((items, next))
    }

    /// The table's current columns (without bronze metadata), so types stay stable across runs.
    async fn existing_schema(
        &self,
        cx: &IngestContext,
        id: &TableId,
    ) -> Result<Option<arrow::datatypes::SchemaRef>, IngestError> {
        Ok(match cx.lake.load(id).await? {
            Some(table) => Some(without_metadata_columns(
                sluice_lake::arrow_schema(&table)?.as_ref(),
            )),
            None => None,
        })
    }

    /// Records → Arrow through the JSON-lines reader; `origins[i]` = (first line, page, URL) of
    /// each page in `lines`, for quarantine reasons.
    async fn to_arrow(
        &self,
        cx: &IngestContext,
        id: &TableId,
        lines: Vec<u8>,
        origins: &[(u64, u64, String)],
    ) -> Result<
        (
            Vec<RecordBatch>,
            Vec<QuarantinedRow>,
            arrow::datatypes::SchemaRef,
        ),
        IngestError,
    > {
        let mut opts = ReadOptions::new(FileFormat::Jsonl);
        opts.existing_schema = self.existing_schema(cx, id).await?;
        let label = PathBuf::from(format!(
            "{}.{}",
            self.name,
            id.segments().last().unwrap_or_default()
        ));
        let parsed = read_jsonl_bytes(&label, &lines, &opts)?;
        let rejected = parsed
            .rejected
            .into_iter()
            .map(|r| {
                let (first, page, url) = origins
                    .iter()
                    .rev()
                    .find(|(first, _, _)| *first <= r.line)
                    .cloned()
                    .unwrap_or((1, 0, String::new()));
                let record = r.line - first + 1;
                let why = r
                    .reason
                    .strip_prefix(&format!("line {}: ", r.line))
                    .unwrap_or(&r.reason)
                    .to_string();
                QuarantinedRow {
                    source_file: Some(url.clone()),
                    line: Some(record),
                    reason: format!("page {page} ({url}): record {record}: {why}"),
                    raw: r.raw,
                }
            })
            .collect();
        Ok((parsed.batches, rejected, parsed.schema))
    }

    async fn ingest_full(
        &self,
        t: &HttpTable,
        base: &Url,
        cx: &IngestContext,
    ) -> Result<IngestReport, IngestError> {
        let id = TableId::bronze(&self.name, &t.name);
        let last = cx
            .lake
            .commit_metadata(&id, &app_id(&self.name, &t.name))
            .await?;
        let txn_version = last.and_then(|c| c.txn_version).unwrap_or(0) + 1;
        let mut report = IngestReport::default();
        let mut lines = Vec::new();
        let mut origins = Vec::new();
        let mut next = Some(first_page(base, &t.pagination));
        let mut number = 0;
        while let Some(url) = next.take() {
            number += 1;
            let page = self.fetch(t, number, url).await?;
            let (items, after) = self.split(t, &page)?;
            origins.push((report.rows_read + 1, number, page.url.to_string()));
            for item in items {
                push_line(&mut lines, item);
            }
            report.rows_read += items.len() as u64;
            if let (Some(more), Some(max)) = (&after, t.max_pages)
                && number >= max
            {
                // A partial snapshot would replace the whole table: refuse rather than lose rows.
                return Err(self.error(
                    t,
                    format!(
                        "stopped at max_pages = {max} with more pages left (next: {more}); a full \
                         load replaces the table and must read every page: raise `max_pages` or \
                         use `mode: incremental`"
                    ),
                    false,
                ));
            }
            next = after;
        }
        let (batches, rejected, schema) = self.to_arrow(cx, &id, lines, &origins).await?;
        let batches = if batches.is_empty() {
            vec![RecordBatch::new_empty(schema)]
        } else {
            batches
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert("sluice.http.pages".into(), number.into());
        let origin = base.to_string();
        let landed = land(
            cx,
            Landing {
                source: &self.name,
                table: &t.name,
                batches,
                rejected,
                mode: WriteMode::Overwrite,
                txn_version,
                metadata,
                pii: &t.pii,
                origin: &origin,
            },
        )
        .await?;
        report.rows_written = landed.rows;
        report.rows_quarantined = landed.quarantined;
        report.commits = u64::from(landed.committed);
        cx.report_progress(report.rows_written);
        Ok(report)
    }

    async fn ingest_incremental(
        &self,
        t: &HttpTable,
        base: &Url,
        cx: &IngestContext,
    ) -> Result<IngestReport, IngestError> {
        let Some(inc) = &t.incremental else {
            return Err(self.error(t, "incremental table without `incremental:`".into(), false));
        };
        let id = TableId::bronze(&self.name, &t.name);
        let last = cx
            .lake
            .commit_metadata(&id, &app_id(&self.name, &t.name))
            .await?;
        let mut txn_version = last.as_ref().and_then(|c| c.txn_version).unwrap_or(0);
        let watermark = last
            .as_ref()
            .and_then(|c| c.metadata.get("sluice.watermark").cloned());
        let resume: Option<Resume> = match last.as_ref().and_then(|c| c.metadata.get(RESUME_KEY)) {
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| {
                self.error(
                    t,
                    format!("the last commit's `{RESUME_KEY}` is unreadable: {e}"),
                    false,
                )
            })?),
            None => None,
        };
        let resumed = resume.is_some();
        let (since, mut max, mut next) = match resume {
            Some(r) => {
                let next = Url::parse(&r.next).map_err(|e| {
                    self.error(
                        t,
                        format!("the recorded next page `{}` is not a URL: {e}", r.next),
                        false,
                    )
                })?;
                tracing::info!(source = %self.name, table = %t.name, next = %next, "resuming an unfinished window");
                (r.since, r.max, Some(next))
            }
            None => {
                let since = watermark
                    .clone()
                    .or_else(|| inc.initial.clone().map(Value::String));
                let mut url = base.clone();
                if let Some(s) = &since {
                    url = with_param(&url, &inc.param, &param_text(s));
                }
                (since, None, Some(first_page(&url, &t.pagination)))
            }
        };
        let mut report = IngestReport {
            watermark: watermark.clone(),
            ..IngestReport::default()
        };
        let mut number = 0;
        while let Some(url) = next.take() {
            number += 1;
            let page = self.fetch(t, number, url).await?;
            let (items, after) = self.split(t, &page)?;
            report.rows_read += items.len() as u64;
            let mut lines = Vec::new();
            let mut kept = 0u64;
            for item in items {
                let cursor = at_path(item, &inc.cursor_field).filter(|v| !v.is_null());
                // Records at or below the mark landed in an earlier window (APIs often filter with
                // `>=`); skipping them is what keeps a re-asked boundary from landing twice.
                if let (Some(c), Some(s)) = (cursor, &since)
                    && compare_cursor(c, s).is_le()
                {
                    continue;
                }
                if let Some(c) = cursor
                    && max.as_ref().is_none_or(|m| compare_cursor(c, m).is_gt())
                {
                    max = Some(c.clone());
                }
                push_line(&mut lines, item);
                kept += 1;
            }
            let stop_early = after.is_some() && t.max_pages.is_some_and(|m| number >= m);
            let is_last = after.is_none();
            let committed_before = report.commits > 0 || resumed;
            if kept == 0 && !stop_early && !(is_last && committed_before) {
                next = after;
                continue;
            }
            let mut metadata = serde_json::Map::new();
            match &after {
                None => {
                    if let Some(w) = max.clone().or_else(|| since.clone()) {
                        metadata.insert("sluice.watermark".into(), w);
                    }
                }
                Some(n) => {
                    if let Some(w) = &since {
                        metadata.insert("sluice.watermark".into(), w.clone());
                    }
                    let resume = Resume {
                        since: since.clone(),
                        max: max.clone(),
                        next: n.to_string(),
                    };
                    metadata.insert(
                        RESUME_KEY.into(),
                        serde_json::to_value(&resume).unwrap_or(Value::Null),
                    );
                }
            }
            let origins = [(1, page.number, page.url.to_string())];
            let (batches, rejected, schema) = self.to_arrow(cx, &id, lines, &origins).await?;
            let batches = if batches.is_empty() {
                vec![RecordBatch::new_empty(schema)]
            } else {
                batches
            };
            txn_version += 1;
            let origin = page.url.to_string();
            let landed = land(
                cx,
                Landing {
                    source: &self.name,
                    table: &t.name,
                    batches,
                    rejected,
                    mode: WriteMode::Append,
                    txn_version,
                    metadata: metadata.clone(),
                    pii: &t.pii,
                    origin: &origin,
                },
            )
            .await?;
            report.rows_written += landed.rows;
            report.rows_quarantined += landed.quarantined;
            report.commits += u64::from(landed.committed);
            if let Some(w) = metadata.get("sluice.watermark") {
                report.watermark = Some(w.clone());
            }
            cx.report_progress(report.rows_written);
            if stop_early {
                tracing::info!(source = %self.name, table = %t.name, pages = number, "max_pages reached; the next run resumes");
                break;
            }
            next = after;
        }
        Ok(report)
    }
}

/// Appends `record` as one JSON line (compact JSON never holds a raw newline).
fn push_line(lines: &mut Vec<u8>, record: &Value) {
    lines.extend_from_slice(record.to_string().as_bytes());
    lines.push(b'\n');
}

#[async_trait]
impl Source for HttpSource {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn tables(&self) -> Vec<String> {
        self.config.tables.iter().map(|t| t.name.clone()).collect()
    }

    async fn ingest(&self, table: &str, cx: &IngestContext) -> Result<IngestReport, IngestError> {
        let (t, base) = self.table(table)?;
        match t.mode() {
            Mode::Full => self.ingest_full(t, base, cx).await,
            Mode::Incremental => self.ingest_incremental(t, base, cx).await,
        }
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
