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
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            http: default_http(),
            pg: default_pg(),
        }
    }
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
