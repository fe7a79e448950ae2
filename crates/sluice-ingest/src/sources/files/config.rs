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
///
/// The fields every source shares (`name`, `kind`, `owner`, `description`, `schedule`, `catchup`,
/// `freshness`, `policy`; per table `description`, `tags`, `schedule`, `freshness`) are read once
/// by `sluice_core::SourceDecl`; this struct is the rest of the file (`SourceDecl::config`).
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
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
    /// Primary key columns (documentation; silver models deduplicate on it).
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// PII handling before landing: column → hash | mask | drop.
    #[serde(default)]
    pub pii: BTreeMap<String, Pii>,
    /// How many files of one ingestion are read and written at once (default: the machine's
    /// cores, at most [`DEFAULT_MAX_PARALLELISM`]); they still commit one by one, in file-name
    /// order. `1` lands them one after another.
    #[serde(default)]
    pub parallelism: Option<usize>,
}

/// The most files landed at once by default: each holds a batch and a row group in memory.
pub const DEFAULT_MAX_PARALLELISM: usize = 8;

impl FilesTable {
    /// [`FilesTable::parallelism`], or its default.
    pub fn parallelism(&self) -> usize {
        self.parallelism
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(DEFAULT_MAX_PARALLELISM)
            })
            .max(1)
    }
}
