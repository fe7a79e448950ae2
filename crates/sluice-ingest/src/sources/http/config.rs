//! The YAML shape of a `kind: http` source.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::landing::Pii;
pub use crate::sources::table_load::Mode;

/// An HTTP API source file.
///
/// ```yaml
/// kind: http
/// base_url: https://api.example.com
/// auth: {type: bearer, token: "${SHOP_API_TOKEN}"}
/// rate_limit: 10/s
/// tables:
///   - name: orders
///     path: /v1/orders
///     records: data.items
///     primary_key: [id]
///     pagination: {type: cursor, param: cursor, next: meta.next_cursor}
///     mode: incremental
///     incremental: {param: updated_since, cursor_field: updated_at}
/// ```
#[derive(Clone, Deserialize)]
///
/// The fields every source shares (`name`, `kind`, `owner`, `description`, `schedule`, `catchup`,
/// `freshness`, `policy`; per table `description`, `tags`, `schedule`, `freshness`) are read once
/// by `sluice_core::SourceDecl`; this struct is the rest of the file (`SourceDecl::config`).
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The URL every table's `path` is resolved against (`https://api.example.com`); `${ENV}` allowed.
    pub base_url: String,
    /// How requests authenticate (secrets as `${ENV}`).
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Extra headers sent with every request (`${ENV}` expanded in values).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// At most this many requests per period, across the source's tables: `10/s`, `600/min`,
    /// `5000/h`. Requests are spaced evenly.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// How long one request may take before it fails (and is retried).
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Retries of a request after a 429, a 5xx, a timeout or a connection failure.
    #[serde(default = "default_retries")]
    pub retries: usize,
    /// The first retry delay when the server sends no `Retry-After`; doubles with jitter.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: String,
    /// The longest wait between retries, also capping what `Retry-After` may ask for.
    #[serde(default = "default_max_retry_wait")]
    pub max_retry_wait: String,
    /// The endpoints to land, one table each.
    pub tables: Vec<HttpTable>,
}

/// Hand-written so that secrets never reach a log.
impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("rate_limit", &self.rate_limit)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

fn default_timeout() -> String {
    "30s".into()
}

fn default_retries() -> usize {
    5
}

fn default_retry_backoff() -> String {
    "1s".into()
}

fn default_max_retry_wait() -> String {
    "5m".into()
}

/// How requests authenticate. Every value is `${ENV}`-expanded when the source is loaded.
#[derive(Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
    /// The key in a header (`X-Api-Key` by default) or, with `query:`, in a query parameter.
    ApiKey {
        /// The header carrying the key.
        #[serde(default = "default_key_header")]
        header: String,
        /// Send the key as this query parameter instead of a header.
        #[serde(default)]
        query: Option<String>,
        /// The key.
        key: String,
    },
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        #[serde(default)]
        password: Option<String>,
    },
}

fn default_key_header() -> String {
    "X-Api-Key".into()
}

/// One endpoint of an HTTP source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTable {
    /// Table name in bronze.
    pub name: String,
    /// The endpoint, relative to `base_url` (`/v1/orders`) or absolute.
    pub path: String,
    /// Dotted path to the array of records in a response (`data.items`); default: the response is
    /// the array.
    #[serde(default)]
    pub records: Option<String>,
    /// Query parameters sent with every request of this table (`${ENV}` expanded).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// How to reach the next page.
    #[serde(default)]
    pub pagination: Pagination,
    /// `full` (each run replaces the table with every record) or `incremental`; default:
    /// `incremental` when `incremental:` is set, else `full`.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// For `incremental`: the request parameter and the record field that carry the high-water mark.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// Read at most this many pages in one run, a guard against endless pagination: an incremental
    /// load continues in the next run; a full load fails rather than land a partial snapshot.
    #[serde(default)]
    pub max_pages: Option<u64>,
    /// Primary key fields (documentation; silver models deduplicate on it).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// PII handling before landing: column → hash | mask | drop.
    #[serde(default)]
    pub pii: BTreeMap<String, Pii>,
}

impl HttpTable {
    /// The load mode, defaulting from whether `incremental:` is set.
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or(if self.incremental.is_some() {
            Mode::Incremental
        } else {
            Mode::Full
        })
    }
}

/// How an endpoint pages.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One request returns everything.
    #[default]
    None,
    /// `?page=1&per_page=100`, `page=2`, …; stops at a page shorter than `size` (or empty).
    Page {
        /// The page-number parameter.
        #[serde(default = "default_page_param")]
        param: String,
        /// The page-size parameter (omit to let the server choose; then only an empty page ends).
        #[serde(default)]
        size_param: Option<String>,
        /// Records per page.
        #[serde(default)]
        size: Option<u64>,
        /// The first page's number.
        #[serde(default = "one")]
        start: u64,
    },
    /// `?offset=0&limit=100`, `offset=100`, …; stops at a page shorter than `size` (or empty).
    Offset {
        /// The offset parameter.
        #[serde(default = "default_offset_param")]
        param: String,
        /// The page-size parameter.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Records per page.
        #[serde(default = "default_size")]
        size: u64,
    },
    /// The response carries the next page's token at `next` (dotted path); it is sent back as
    /// `param`. A missing, null or empty token ends.
    Cursor {
        /// The parameter carrying the token.
        #[serde(default = "default_cursor_param")]
        param: String,
        /// Dotted path of the next token in the response body.
        next: String,
    },
    /// Follow the `Link: <…>; rel="next"` header (GitHub style) until there is none.
    Link,
}

fn default_page_param() -> String {
    "page".into()
}

fn default_offset_param() -> String {
    "offset".into()
}

fn default_limit_param() -> String {
    "limit".into()
}

fn default_cursor_param() -> String {
    "cursor".into()
}

fn default_size() -> u64 {
    100
}

fn one() -> u64 {
    1
}

/// An incremental endpoint: the request parameter and the record field of the high-water mark.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// The query parameter that asks for records changed since a value (`updated_since`).
    pub param: String,
    /// Dotted path of the field in each record whose largest value becomes the mark (`updated_at`).
    pub cursor_field: String,
    /// The value sent on the very first run (default: none, the parameter is left out).
    #[serde(default)]
    pub initial: Option<String>,
}
