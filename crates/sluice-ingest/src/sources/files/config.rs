//! The YAML shape of a `kind: files` source.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::landing::Pii;

/// A files source.
///
/// ```yaml
/// kind: files
/// tables:
///   - name: events
///     path: data/landing/events/*.jsonl
///     columns: {event_timestamp: timestamp}
///   - name: accounts
///     path: data/landing/crm/*.csv
///     format: csv
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Source name (default: the file name).
    #[serde(default)]
    pub name: Option<String>,
    /// Always `files`.
    pub kind: String,
    /// Who is alerted when it breaks.
    #[serde(default)]
    pub owner: Option<String>,
    /// What the source is.
    #[serde(default)]
    pub description: Option<String>,
    /// When to look for new files, used by `sluice serve`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Freshness SLA (`{warn_after, error_after}`); read by sluice-monitor, see docs/alerts.md.
    #[serde(default)]
    pub freshness: Option<serde_json::Value>,
    /// Ticks missed while `sluice serve` was down: `latest` (run once, the default) or `all`
    /// (run once per missed tick). See docs/scheduling.md.
    #[serde(default)]
    pub catchup: Option<String>,
    /// Retries, backoff, timeout and failure mode of this source's tables (`retries`, `retry_backoff`,
    /// `max_retry_backoff`, `timeout`, `on_failure`); read by the orchestrator, see docs/scheduling.md.
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// The file sets to land, one table each.
    pub tables: Vec<FilesTable>,
}

/// One file set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesTable {
    /// Table name in bronze.
    pub name: String,
    /// A glob relative to the project (`data/landing/events/*.jsonl`), `${ENV}` allowed.
    pub path: String,
    /// `csv`, `jsonl` (also `json`, `ndjson`) or `parquet`; default from the file extension.
    #[serde(default)]
    pub format: Option<String>,
    /// Declared column types (`int`, `double`, `string`, `bool`, `date`, `timestamp`, `decimal(p,s)`);
    /// values that do not convert send their row to quarantine.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// CSV field delimiter (one character).
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Whether CSV files have a header row (default true).
    #[serde(default)]
    pub header: Option<bool>,
    /// What the table holds.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags for selection.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Primary key columns (documentation; silver models deduplicate on it).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// PII handling before landing: column → hash | mask | drop.
    #[serde(default)]
    pub pii: BTreeMap<String, Pii>,
    /// Per-table schedule override.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Freshness SLA (`{warn_after, error_after}`); read by sluice-monitor, see docs/alerts.md.
    #[serde(default)]
    pub freshness: Option<serde_json::Value>,
}
