//! Sending one request: authentication, the rate limit, and retries with backoff that honor
//! `Retry-After`.
//!
//! A 429, a 408, a 5xx, a timeout or a connection failure is retried up to `retries` times: after
//! the delay the server asks for in `Retry-After` (seconds or an HTTP date) when it sends one, else
//! after an exponential, jittered backoff (`backon`). Every attempt, retries included, waits for the
//! rate limiter. Other 4xx answers fail at once. Secrets never appear in messages: an API key sent
//! as a query parameter is added to the request only, never to a URL that is logged or committed.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::Url;

use super::rate_limit::RateLimiter;

/// Authentication with its secrets resolved from the environment.
#[derive(Clone)]
pub(crate) enum ResolvedAuth {
    Bearer(String),
    HeaderKey(HeaderName, HeaderValue),
    QueryKey(String, String),
    Basic(String, Option<String>),
}

/// How requests are sent.
pub(crate) struct ClientSettings {
    pub timeout: Duration,
    pub retries: usize,
    pub retry_backoff: Duration,
    pub max_retry_wait: Duration,
}

/// An HTTP client for one source, shared by its tables (and so is the rate limit).
pub(crate) struct HttpClient {
    client: reqwest::Client,
    auth: Option<ResolvedAuth>,
    headers: HeaderMap,
    limiter: Option<Arc<RateLimiter>>,
    settings: ClientSettings,
}

/// A successful response.
pub(crate) struct Response {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A request that failed for good, with whether a later run may succeed.
#[derive(Debug)]
pub(crate) struct FetchFailure {
    pub message: String,
    pub transient: bool,
}

impl HttpClient {
    pub(crate) fn new(
        auth: Option<ResolvedAuth>,
        headers: HeaderMap,
        limiter: Option<RateLimiter>,
        settings: ClientSettings,
    ) -> Result<HttpClient, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpClient {
            client,
            auth,
            headers,
            limiter: limiter.map(Arc::new),
            settings,
        })
    }

    fn request(&self, url: &Url) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .get(url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.auth {
            Some(ResolvedAuth::Bearer(token)) => req = req.bearer_auth(token),
            Some(ResolvedAuth::HeaderKey(name, value)) => req = req.header(name, value),
            Some(ResolvedAuth::QueryKey(name, key)) => req = req.query(&[(name, key)]),
            Some(ResolvedAuth::Basic(user, password)) => {
                req = req.basic_auth(user, password.as_ref())
            }
            None => {}
        }
        req
    }

    /// GETs `url`, retrying what a retry can fix.
    pub(crate) async fn get(&self, url: &Url) -> Result<Response, FetchFailure> {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.settings.retry_backoff)
            .with_max_delay(self.settings.max_retry_wait)
            .with_max_times(self.settings.retries)
            .with_jitter()
            .build();
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.limiter {
                limiter.acquire().await;
            }
            let (why, retry_after) = match self.request(url).send().await {
                Ok(resp) if resp.status().is_success() => {
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => {
                            return Ok(Response {
                                headers,
                                body: body.to_vec(),
                            });
                        }
                        Err(e) => (
                            format!("reading the body failed: {}", e.without_url()),
                            None,
                        ),
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers(), chrono::Utc::now());
                    let body = resp.text().await.unwrap_or_default();
                    let why = format!("HTTP {status}{}", excerpt(&body));
                    if !retryable(status) {
                        return Err(FetchFailure {
                            message: why,
                            // 401/403/404 and friends need a person, not a retry.
                            transient: false,
                        });
                    }
                    (why, retry_after)
                }
                Err(e) => (e.without_url().to_string(), None),
            };
            let Some(backoff) = delays.next() else {
                return Err(FetchFailure {
                    message: format!("{why} (gave up after {attempt} attempts)"),
                    transient: true,
                });
            };
            let wait = retry_after.map_or(backoff, |w| w.min(self.settings.max_retry_wait));
            tracing::warn!(url = %url, attempt, wait_ms = wait.as_millis() as u64, reason = %why, "retrying HTTP request");
            tokio::time::sleep(wait).await;
        }
    }
}

/// 408, 425, 429 and 5xx: the server may answer differently later.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_EARLY
        || status.is_server_error()
}

/// The delay a `Retry-After` header asks for: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// `: <the first 200 characters of the body>` for error messages (nothing for an empty body).
fn excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    let short: String = body.chars().take(200).collect();
    let more = if body.chars().count() > 200 {
        "…"
    } else {
        ""
    };
    format!(": {short}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:30 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:00:00 GMT"),
        );
        assert_eq!(
            retry_after(&h, now),
            Some(Duration::ZERO),
            "a past date: at once"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn statuses_and_excerpts() {
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(retryable(StatusCode::BAD_GATEWAY));
        assert!(!retryable(StatusCode::NOT_FOUND));
        assert!(!retryable(StatusCode::UNAUTHORIZED));
        assert_eq!(excerpt("  "), "");
        assert_eq!(excerpt(&"x".repeat(300)).chars().count(), 2 + 200 + 1);
    }
}
