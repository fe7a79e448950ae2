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
}

impl IngestContext {
    /// A context for `run_id`, stamped now.
    pub fn new(lake: Lake, run_id: impl Into<String>) -> Self {
        Self {
            lake,
            run_id: run_id.into(),
            ingested_at: Utc::now(),
            progress: None,
        }
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

/// Every connector kind compiled into this build.
pub const SOURCE_KINDS: &[&str] = &["sqlite", "files", "postgres", "mysql", "http"];

/// Builds the connector for a source declaration; `root` resolves relative paths.
pub fn build_source(decl: &SourceDecl, root: &Path) -> Result<Box<dyn Source>, IngestError> {
    match decl.kind.as_str() {
        "sqlite" => Ok(Box::new(crate::sources::sqlite::SqliteSource::from_decl(
            decl, root,
        )?)),
        "files" => Ok(Box::new(crate::sources::files::FilesSource::from_decl(
            decl, root,
        )?)),
        "postgres" => Ok(Box::new(
            crate::sources::postgres::PostgresSource::from_decl(decl, root)?,
        )),
        "mysql" => Ok(Box::new(crate::sources::mysql::MysqlSource::from_decl(
            decl, root,
        )?)),
        "http" => Ok(Box::new(crate::sources::http::HttpSource::from_decl(
            decl, root,
        )?)),
        other => {
            let hint = sluice_core::graph::suggest(other, SOURCE_KINDS.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(IngestError::UnknownKind {
                path: decl.path.clone(),
                kind: other.to_string(),
                hint,
                available: SOURCE_KINDS.join(", "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_duplicate_kinds() {
        let mut k = super::SOURCE_KINDS.to_vec();
        k.sort();
        k.dedup();
        assert_eq!(k.len(), super::SOURCE_KINDS.len());
    }
}
