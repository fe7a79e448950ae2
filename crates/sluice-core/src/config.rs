//! `sluice.yml`: the project file.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The contents of `sluice.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project name, shown in the UI and recorded in run history.
    pub name: String,
    /// Where the lake lives: a folder (relative to the project) or a `file://` URL.
    #[serde(default = "default_lake")]
    pub lake: String,
    /// State database: a SQLite file path relative to the project (default `.sluice/state.db`).
    #[serde(default = "default_state")]
    pub state: String,
    /// Listening addresses of `sluice serve`.
    #[serde(default)]
    pub serve: ServeConfig,
    /// Project variables, readable in models as `var('name')`.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Defaults for every node.
    #[serde(default)]
    pub defaults: Defaults,
    /// Optional free-text description.
    #[serde(default)]
    pub description: Option<String>,
    /// Alert channels by owner name (`default`: owners without one); see docs/alerts.md.
    #[serde(default)]
    pub owners: BTreeMap<String, crate::alerts::AlertChannel>,
    /// The SQL dialect models are written in (`duckdb`, `snowflake`, `bigquery`, `databricks`,
    /// `postgres`; default: DataFusion's own): models then compute what that warehouse would
    /// (docs/coming-from-dbt.md). A dbt project takes it from its profile.
    #[serde(default)]
    pub dialect: Option<String>,
}

fn default_lake() -> String {
    "lake".to_string()
}

fn default_state() -> String {
    ".sluice/state.db".to_string()
}

/// Addresses for `sluice serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// HTTP API and UI address.
    #[serde(default = "default_http")]
    pub http: String,
    /// PostgreSQL wire protocol address (a port that does not clash with a local PostgreSQL).
    #[serde(default = "default_pg")]
    pub pg: String,
    /// Limits that keep one client from exhausting the server (docs/operations.md).
    #[serde(default)]
    pub limits: ServeLimitsConfig,
    /// Host names the HTTP API answers to besides loopback names and the bound address (a request
    /// with any other `Host` header gets 421; this defeats DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            http: default_http(),
            pg: default_pg(),
            limits: ServeLimitsConfig::default(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// `serve.limits` as written: every field optional, durations and sizes as text (`30s`, `512MiB`).
/// `sluice-serve` resolves them, with defaults, into its `Limits`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeLimitsConfig {
    /// Longest time one query may run (HTTP and wire; a client's `SET statement_timeout` may only
    /// lower it).
    pub statement_timeout: Option<String>,
    /// Queries running at once over HTTP and the wire; more wait up to `queue_timeout`.
    pub max_concurrent_queries: Option<usize>,
    /// How long a query waits for a slot before the client gets "too busy" (503 / SQLSTATE 53300).
    pub queue_timeout: Option<String>,
    /// Memory all queries and model builds of the process may hold together.
    pub memory_limit: Option<String>,
    /// Memory one query may hold (within `memory_limit`).
    pub query_memory_limit: Option<String>,
    /// Longest SQL text accepted.
    pub max_sql_bytes: Option<String>,
    /// Deepest expression nesting accepted.
    pub max_expr_depth: Option<usize>,
    /// Open HTTP connections; past it new ones get 503.
    pub max_connections: Option<usize>,
    /// Open PostgreSQL wire sessions; past it new ones get SQLSTATE 53300.
    pub pg_max_connections: Option<usize>,
    /// Time a client has to send a request's headers (also how long an idle keep-alive connection
    /// stays open).
    pub header_read_timeout: Option<String>,
    /// A wire session idle this long (no query running) is closed.
    pub pg_idle_timeout: Option<String>,
    /// Largest request body.
    pub max_request_bytes: Option<String>,
    /// Largest request line plus headers.
    pub max_header_bytes: Option<String>,
    /// How long `SIGTERM` waits for in-flight requests before cancelling them.
    pub shutdown_grace: Option<String>,
}

fn default_http() -> String {
    "127.0.0.1:8080".to_string()
}

fn default_pg() -> String {
    "127.0.0.1:5433".to_string()
}

/// Defaults applied to every node unless the node overrides them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How many times a node is retried after a transient failure.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry delay; doubles each attempt (with jitter), capped at 30 s.
    #[serde(default = "default_backoff")]
    pub retry_backoff: String,
    /// How many nodes run at once.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Owner for assets that do not name one.
    #[serde(default)]
    pub owner: Option<String>,
    /// Longest delay between two retries (the exponential backoff stops growing there).
    #[serde(default = "default_max_backoff")]
    pub max_retry_backoff: String,
    /// Longest time one attempt of a node may take (none: no limit).
    #[serde(default)]
    pub timeout: Option<String>,
    /// `fail_fast` (downstream of a failure is skipped) or `fail_open` (downstream runs on the last
    /// good data, marked as built from stale input).
    #[serde(default)]
    pub on_failure: Option<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            retries: default_retries(),
            retry_backoff: default_backoff(),
            threads: default_threads(),
            owner: None,
            max_retry_backoff: default_max_backoff(),
            timeout: None,
            on_failure: None,
        }
    }
}

fn default_max_backoff() -> String {
    "30s".to_string()
}

fn default_retries() -> u32 {
    2
}

fn default_backoff() -> String {
    "200ms".to_string()
}

fn default_threads() -> usize {
    4
}
