//! The [`Source`] trait every connector implements, and the registry of connector kinds.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sluice_core::SourceDecl;
use sluice_lake::Lake;

use crate::error::IngestError;

/// Context for one ingestion of one table.
#[derive(Clone)]
pub struct IngestContext {
    /// Where bronze lives.
    pub lake: Lake,
    /// The run this ingestion belongs to (recorded on every row as part of `_batch_id`).
    pub run_id: String,
    /// The ingestion time (`_ingested_at`, and `_ingest_date` partition).
    pub ingested_at: DateTime<Utc>,
    /// Called with the number of rows landed so far (for progress bars).
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// The project's PII key, which `pii: hash` rules hash with (HMAC-SHA-256); `None`: a `hash`
    /// rule fails with [`IngestError::PiiKeyMissing`].
    pub pii_key: Option<sluice_core::pii::PiiKey>,
}

impl IngestContext {
    /// A context for `run_id`, stamped now.
    pub fn new(lake: Lake, run_id: impl Into<String>) -> Self {
        Self {
            lake,
            run_id: run_id.into(),
            ingested_at: Utc::now(),
            progress: None,
            pii_key: None,
        }
    }

    /// This context with the project's PII key.
    pub fn with_pii_key(mut self, key: Option<sluice_core::pii::PiiKey>) -> Self {
        self.pii_key = key;
        self
    }

    pub(crate) fn report_progress(&self, rows: u64) {
        if let Some(p) = &self.progress {
            p(rows);
        }
    }
}

/// What one ingestion of one table did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows landed in bronze.
    pub rows_written: u64,
    /// Rows sent to quarantine.
    pub rows_quarantined: u64,
    /// Delta commits made.
    pub commits: u64,
    /// The high-water mark after this ingestion (incremental modes).
    pub watermark: Option<serde_json::Value>,
    /// Files landed (file sources).
    pub files: Vec<String>,
    /// Files skipped because they had landed before.
    pub files_skipped: u64,
}

/// A connector: lands the tables of one source system into bronze.
///
/// Implementations must be idempotent: running [`Source::ingest`] again without new data in the source
/// lands nothing, and a crash at any point lands nothing twice (the high-water mark or file list is
/// committed in the same Delta commit as the rows).
#[async_trait]
pub trait Source: Send + Sync {
    /// The connector kind (`sqlite`, `files`, …).
    fn kind(&self) -> &'static str;
    /// The source name.
    fn name(&self) -> &str;
    /// The tables it lands.
    fn tables(&self) -> Vec<String>;
    /// Lands what is new in `table`.
    async fn ingest(&self, table: &str, cx: &IngestContext) -> Result<IngestReport, IngestError>;
}

/// The table entry named `name` in a connector's config, or an error naming the source.
pub fn find_table<'a, T>(
    source: &str,
    tables: &'a [T],
    name: &str,
    name_of: impl Fn(&T) -> &str,
) -> Result<&'a T, IngestError> {
    tables
        .iter()
        .find(|t| name_of(t) == name)
        .ok_or_else(|| IngestError::UnknownTable {
            source_name: source.to_string(),
            table: name.to_string(),
        })
}

/// One connector kind, listed once in [`SOURCE_KINDS`]: everything else (the `kind:` names `validate`
/// accepts and suggests, the docs table, the registry test) derives from this entry.
#[derive(Debug, Clone, Copy)]
pub struct SourceKind {
    /// The YAML `kind:` value.
    pub name: &'static str,
    /// What it lands, in one line (the docs table in `docs/plugins.md` repeats it word for word).
    pub description: &'static str,
    /// A minimal source file of this kind; the registry test builds a connector from it (building
    /// must not connect).
    pub example: &'static str,
    /// Parses and validates a declaration of this kind; `root` resolves relative paths.
    pub build: BuildSource,
}

/// A connector's constructor from a parsed declaration and the project root.
pub type BuildSource = fn(&SourceDecl, &Path) -> Result<Box<dyn Source>, IngestError>;
