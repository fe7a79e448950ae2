//! Time travel: a table's versions with the rows they changed, a table provider at an earlier
//! version, the version that was current at a given time, and restoring an earlier version.
//!
//! Every Delta commit is a version; a reader can load any version whose commit file (or a
//! checkpoint at or after it) and data files are still kept. Restoring writes a *new* commit whose
//! files are those of the earlier version, so the history stays append-only and the restore itself
//! can be undone by another restore.
//!
//! Row counts come from the log alone, never from the data: each `add` action carries
//! `numRecords` in its statistics, and a `remove` action names a file an earlier `add` counted.
//! [`Lake::versions`] therefore walks the log from version 0 keeping the record count of every live
//! file; a commit that rewrites a file (a merge, a compaction) removes and re-adds its rows. When
//! the oldest commits have been cleaned up, or a writer recorded no statistics, the counts that
//! depend on them are `None`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::DeltaTableError;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::LogStoreRef;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{Map, Value};
use sluice_engine::catalog::TableProvider;

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::table::Lake;

/// Commit metadata key under which runs record their id (`sluice run`, `sluice restore`, ingestion).
pub const RUN_ID_KEY: &str = "sluice.run_id";

/// How many commit files are read concurrently while walking the log.
const READ_AHEAD: usize = 8;

/// One version of a table, as `sluice history` and `GET /api/assets/{name}/history` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// The Delta table version.
    pub version: u64,
    /// When it was committed (`inCommitTimestamp`, else `timestamp` of the commit).
    pub timestamp: Option<DateTime<Utc>>,
    /// The Delta operation: `WRITE`, `MERGE`, `DELETE`, `RESTORE`, `CREATE TABLE`, ...
    pub operation: Option<String>,
    /// The Sluice run that made it (commit metadata `sluice.run_id`), when one did.
    pub run_id: Option<String>,
    /// Rows in the files the commit added (a rewritten file counts whole).
    pub rows_added: Option<u64>,
    /// Rows in the files the commit removed.
    pub rows_removed: Option<u64>,
    /// Rows in the table at this version.
    pub rows_total: Option<u64>,
    /// For a `RESTORE`, the version it restored.
    pub restored_version: Option<u64>,
}

/// What [`Lake::restore`] committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// The new version, whose files are those of `restored`.
    pub version: u64,
    /// The version restored.
    pub restored: u64,
    /// Data files the restore added back.
    pub files_restored: usize,
    /// Data files it removed.
    pub files_removed: usize,
}

impl Lake {
    /// Every kept version of the table, oldest first (see the module doc for the row counts).
    pub async fn versions(&self, id: &TableId) -> Result<Vec<VersionInfo>> {
        let Some(table) = self.load(id).await? else {
            return Err(LakeError::NoSuchTable { table: id.clone() });
        };
        let latest = table.version().unwrap_or_default();
        let log_store = table.log_store();
        let mut commits = futures::stream::iter(0..=latest)
            .map(|version| read_commit(log_store.clone(), id, version))
            .buffered(READ_AHEAD);
        let mut files = LiveFiles::default();
        let mut out = Vec::new();
        while let Some(commit) = commits.try_next().await? {
            match commit {
                Some(commit) => out.push(files.apply(commit)),
                // A commit file cleaned up: the files it added are unknown from here on.
                None => files.complete = false,
            }
        }
        Ok(out)
    }

    /// The latest version of the table committed at or before `at`.
    pub async fn version_at(&self, id: &TableId, at: DateTime<Utc>) -> Result<u64> {
        let versions = self.versions(id).await?;
        let found = versions
            .iter()
            .filter(|v| v.timestamp.is_some_and(|t| t <= at))
            .map(|v| v.version)
            .max();
        found.ok_or_else(|| LakeError::BeforeFirstCommit {
            table: id.clone(),
            at,
            first: versions
                .first()
                .and_then(|v| v.timestamp.map(|t| (v.version, t))),
        })
    }

    /// A DataFusion table provider over version `version` of the table.
    pub async fn provider_at(&self, id: &TableId, version: u64) -> Result<Arc<dyn TableProvider>> {
        let mut table = self.unloaded(id)?;
        let loaded = table.load_version(version).await;
        if loaded.is_err() || table.version() != Some(version) {
            // Only now find out why: no table, a version past the latest, or one cleaned up.
            let latest = self.latest_or_missing(id).await?;
            if version > latest {
                return Err(LakeError::NoSuchVersion {
                    table: id.clone(),
                    version,
                    latest,
                });
            }
            let source = loaded.err().unwrap_or_else(|| {
                DeltaTableError::Generic(format!("loaded version {:?}", table.version()))
            });
            return Err(LakeError::VersionUnreadable {
                table: id.clone(),
                version,
                source: Box::new(source),
            });
        }
        table
            .table_provider()
            .await
            .map_err(|e| LakeError::datafusion(id, "build table provider", e))
    }

    /// Restores version `version` by committing a new version with its files (and schema), with
    /// `metadata` in the commit (a run id). Refused when `version` is the latest already.
    pub async fn restore(
        &self,
        id: &TableId,
        version: u64,
        metadata: Map<String, Value>,
    ) -> Result<RestoreOutcome> {
        let Some(table) = self.load(id).await? else {
            return Err(LakeError::NoSuchTable { table: id.clone() });
        };
        let latest = table.version().unwrap_or_default();
        if version > latest {
            return Err(LakeError::NoSuchVersion {
                table: id.clone(),
                version,
                latest,
            });
        }
        if version == latest {
            return Err(LakeError::AlreadyAtVersion {
                table: id.clone(),
                version,
            });
        }
        let (table, metrics) = table
            .restore()
            .with_version_to_restore(version)
            .with_commit_properties(CommitProperties::default().with_metadata(metadata))
            .await
            .map_err(|e| LakeError::delta(id, "restore", e))?;
        tracing::info!(table = %id, restored = version, new = ?table.version(), "restored");
        Ok(RestoreOutcome {
            version: table.version().unwrap_or(latest + 1),
            restored: version,
            files_restored: metrics.num_restored_file,
            files_removed: metrics.num_removed_file,
        })
    }

    /// The latest version, listing the log only; [`LakeError::NoSuchTable`] when there is none.
    async fn latest_or_missing(&self, id: &TableId) -> Result<u64> {
        self.latest_version(id, None)
            .await?
            .ok_or_else(|| LakeError::NoSuchTable { table: id.clone() })
    }
}

/// Parses the time of a `TIMESTAMP AS OF`, `--timestamp` or `?as_of=`: RFC 3339
/// (`2026-01-01T10:00:00+02:00`), or `YYYY-MM-DD[ HH:MM[:SS[.fff]]]` (with a space or `T`), read as
/// UTC. `None` when it is none of these.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let naive = text.replacen('T', " ", 1);
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(&naive, format) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// One commit file's actions, as far as history needs them.
#[derive(Debug, Default)]
struct Commit {
    version: u64,
    info: Map<String, Value>,
    /// Added files with their record counts (`None`: no statistics), data changes only.
    added: Vec<(String, Option<u64>, bool)>,
    /// Removed files, with whether the removal changed data.
    removed: Vec<(String, bool)>,
}

/// The files live after the commits seen so far, with their record counts.
#[derive(Debug)]
struct LiveFiles {
    rows: HashMap<String, Option<u64>>,
    /// False once a commit was missing: files it added are not in `rows`.
    complete: bool,
}

impl Default for LiveFiles {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            complete: true,
        }
    }
}

impl LiveFiles {
    fn apply(&mut self, commit: Commit) -> VersionInfo {
        let mut added = Some(0u64);
        for (path, records, data_change) in commit.added {
            if data_change {
                added = added.zip(records).map(|(a, r)| a + r);
            }
            self.rows.insert(path, records);
        }
        let mut removed = Some(0u64);
        for (path, data_change) in commit.removed {
            let records = self.rows.remove(&path).flatten();
            if data_change {
                removed = removed.zip(records).map(|(a, r)| a + r);
            }
        }
        let total = self
            .complete
            .then(|| {
                self.rows
                    .values()
                    .try_fold(0u64, |sum, r| r.map(|r| sum + r))
            })
            .flatten();
        let info = &commit.info;
        let text = |key: &str| info.get(key).and_then(Value::as_str).map(str::to_string);
        let millis = info
            .get("inCommitTimestamp")
            .or_else(|| info.get("timestamp"))
            .and_then(Value::as_i64);
        let operation = text("operation");
        let restored_version = (operation.as_deref() == Some("RESTORE"))
            .then(|| {
                info.get("operationParameters")?
                    .get("version")
                    .and_then(as_u64)
            })
            .flatten();
        VersionInfo {
            version: commit.version,
            timestamp: millis.and_then(DateTime::from_timestamp_millis),
            operation,
            run_id: text(RUN_ID_KEY),
            rows_added: added,
            rows_removed: if self.complete { removed } else { None },
            rows_total: total,
            restored_version,
        }
    }
}

/// A JSON number, or a number written as a string (Delta writers store operation parameters as
/// strings).
fn as_u64(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_str()
            .and_then(|s| s.trim_matches('"').parse().ok())
    })
}

/// Read and parse commit file `version`; `None` when it is gone.
async fn read_commit(log_store: LogStoreRef, id: &TableId, version: u64) -> Result<Option<Commit>> {
    let Some(bytes) = log_store
        .read_commit_entry(version)
        .await
        .map_err(|e| LakeError::delta(id, "read commit", e))?
    else {
        return Ok(None);
    };
    parse_commit(id, version, &bytes).map(Some)
}

fn parse_commit(id: &TableId, version: u64, bytes: &[u8]) -> Result<Commit> {
    let mut commit = Commit {
        version,
        ..Commit::default()
    };
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let action: Value =
            serde_json::from_slice(line).map_err(|source| LakeError::CorruptLog {
                table: id.clone(),
                version: i64::try_from(version).unwrap_or(i64::MAX),
                line: index + 1,
                source,
            })?;
        let path = |a: &Value| a.get("path").and_then(Value::as_str).map(str::to_string);
        let data_change = |a: &Value| a.get("dataChange").and_then(Value::as_bool) != Some(false);
        if let Some(Value::Object(info)) = action.get("commitInfo") {
            commit.info = info.clone();
        } else if let Some(add) = action.get("add")
            && let Some(p) = path(add)
        {
            commit.added.push((p, records_of(add), data_change(add)));
        } else if let Some(remove) = action.get("remove")
            && let Some(p) = path(remove)
        {
            commit.removed.push((p, data_change(remove)));
        }
    }
    Ok(commit)
}

/// `numRecords` of an `add` action's statistics (a JSON document in a string).
fn records_of(add: &Value) -> Option<u64> {
    let stats: Value = serde_json::from_str(add.get("stats")?.as_str()?).ok()?;
    stats.get("numRecords")?.as_u64()
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
