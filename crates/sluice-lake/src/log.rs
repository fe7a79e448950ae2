//! Reading commits back from the Delta log: which commit recorded a batch, and table history.
//!
//! delta-rs' `DeltaTable::history` yields `commitInfo`s without their version numbers and
//! never shows `txn` actions, so this module reads the commit files itself (newest first,
//! a few at a time) as plain JSON. Parsing each line as a generic JSON object also keeps
//! it working on logs written by other engines with actions delta-rs does not know.
//!
//! Commits are only readable while their JSON file is kept: once a checkpoint exists and the
//! log retention (`delta.logRetentionDuration`, 30 days by default) has passed, old commit
//! files may be deleted. The txn *version* survives in checkpoints ([`Lake::txn_version`]);
//! the custom metadata of a deleted commit does not.

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::logstore::LogStoreRef;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::table::Lake;

/// Commit metadata key that [`Lake::write`] fills with the txn app id (unless given), so that
/// [`Lake::commit_metadata`] finds commits by app id even without reading `txn` actions.
pub const APP_ID_KEY: &str = "sluice.app_id";

/// `commitInfo` keys that Delta or delta-rs define; everything else is custom metadata.
pub(crate) const DELTA_COMMIT_INFO_KEYS: &[&str] = &[
    "timestamp",
    "inCommitTimestamp",
    "userId",
    "userName",
    "operation",
    "operationParameters",
    "operationMetrics",
    "readVersion",
    "isolationLevel",
    "isBlindAppend",
    "engineInfo",
    "userMetadata",
    "clientVersion",
    "txnId",
];

/// How many commit files are read concurrently while walking the log.
const READ_AHEAD: usize = 8;

/// The newest commit that carried an app id: what [`Lake::commit_metadata`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedBatch {
    /// Table version of the commit.
    pub version: i64,
    /// Version of the commit's `txn` action for the app id, if it had one.
    pub txn_version: Option<i64>,
    /// The commit's custom metadata (its `commitInfo` without Delta's own keys).
    pub metadata: Map<String, Value>,
}

/// One line of table history.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitSummary {
    /// Table version.
    pub version: i64,
    /// When the commit was made (`inCommitTimestamp`, else `timestamp`).
    pub timestamp: Option<DateTime<Utc>>,
    /// Delta operation: `WRITE`, `MERGE`, `CREATE TABLE`, `DELETE`, ...
    pub operation: Option<String>,
    /// Rows the commit added: written rows for a write, inserted rows for a merge.
    pub rows_added: Option<u64>,
    /// Rows a merge or update changed in place.
    pub rows_updated: Option<u64>,
    /// Application transactions recorded in the commit (app id, version).
    pub app_transactions: Vec<(String, i64)>,
    /// Custom metadata (the `commitInfo` without Delta's own keys).
    pub metadata: Map<String, Value>,
}

/// The parts of one commit file this crate uses.
#[derive(Debug, Default)]
struct Commit {
    version: i64,
    info: Map<String, Value>,
    txns: Vec<(String, i64)>,
}

impl Commit {
    fn custom_metadata(&self) -> Map<String, Value> {
        self.info
            .iter()
            .filter(|(key, _)| !DELTA_COMMIT_INFO_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    fn summary(&self) -> CommitSummary {
        let millis = self
            .info
            .get("inCommitTimestamp")
            .or_else(|| self.info.get("timestamp"))
            .and_then(Value::as_i64);
        let metrics = self.info.get("operationMetrics");
        let metric = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| metrics.and_then(|m| m.get(*name)).and_then(Value::as_u64))
        };
        CommitSummary {
            version: self.version,
            timestamp: millis.and_then(DateTime::from_timestamp_millis),
            operation: self
                .info
                .get("operation")
                .and_then(Value::as_str)
                .map(str::to_string),
            rows_added: metric(&[
                "num_added_rows",
                "num_target_rows_inserted",
                "numOutputRows",
            ]),
            rows_updated: metric(&["num_target_rows_updated", "num_updated_rows"]),
            app_transactions: self.txns.clone(),
            metadata: self.custom_metadata(),
        }
    }
}

impl Lake {
    /// The newest commit that recorded `app_id` — by a `txn` action for it or by the
    /// [`APP_ID_KEY`] metadata — with its table version, txn version and custom metadata.
    /// `None` when the table does not exist or no kept commit carries the app id.
    pub async fn commit_metadata(
        &self,
        id: &TableId,
        app_id: &str,
    ) -> Result<Option<CommittedBatch>> {
        let Some(table) = self.load(id).await? else {
            return Ok(None);
        };
        let mut commits = commits_newest_first(&table, id);
        while let Some(commit) = commits.try_next().await? {
            let txn_version = commit
                .txns
                .iter()
                .find(|(app, _)| app == app_id)
                .map(|(_, version)| *version);
            let tagged = commit.info.get(APP_ID_KEY).and_then(Value::as_str) == Some(app_id);
            if txn_version.is_some() || tagged {
                return Ok(Some(CommittedBatch {
                    version: commit.version,
                    txn_version,
                    metadata: commit.custom_metadata(),
                }));
            }
        }
        Ok(None)
    }

    /// Every kept commit that recorded `app_id`, newest first (for connectors that need the whole
    /// history of their positions, such as the set of files already landed).
    pub async fn app_commits(&self, id: &TableId, app_id: &str) -> Result<Vec<CommittedBatch>> {
        let Some(table) = self.load(id).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut commits = commits_newest_first(&table, id);
        while let Some(commit) = commits.try_next().await? {
            let txn_version = commit
                .txns
                .iter()
                .find(|(app, _)| app == app_id)
                .map(|(_, version)| *version);
            let tagged = commit.info.get(APP_ID_KEY).and_then(Value::as_str) == Some(app_id);
            if txn_version.is_some() || tagged {
                out.push(CommittedBatch {
                    version: commit.version,
                    txn_version,
                    metadata: commit.custom_metadata(),
                });
            }
        }
        Ok(out)
    }

    /// The newest `limit` commits of the table, newest first; empty when it does not exist.
    pub async fn history(&self, id: &TableId, limit: usize) -> Result<Vec<CommitSummary>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(table) = self.load(id).await? else {
            return Ok(Vec::new());
        };
        commits_newest_first(&table, id)
            .take(limit)
            .map_ok(|commit| commit.summary())
            .try_collect()
            .await
    }
}

/// The table's kept commits, newest first; ends at version 0 or at the first deleted file.
fn commits_newest_first<'a>(
    table: &DeltaTable,
    id: &'a TableId,
) -> impl futures::Stream<Item = Result<Commit>> + 'a {
    let latest = table.version().unwrap_or_default();
    let has_commits = table.version().is_some();
    let log_store = table.log_store();
    let versions = (0..=latest).rev().filter(move |_| has_commits);
    futures::stream::iter(versions)
        .map(move |version| read_commit(log_store.clone(), id, version))
        .buffered(READ_AHEAD)
        .take_while(|commit| futures::future::ready(!matches!(commit, Ok(None))))
        .filter_map(|commit| futures::future::ready(commit.transpose()))
}

/// Read and parse commit file `version`; `None` when the file is gone.
async fn read_commit(log_store: LogStoreRef, id: &TableId, version: u64) -> Result<Option<Commit>> {
    let Some(bytes) = log_store
        .read_commit_entry(version)
        .await
        .map_err(|e| LakeError::delta(id, "read commit", e))?
    else {
        return Ok(None);
    };
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    parse_commit(id, version, &bytes).map(Some)
}

/// Parse the newline-delimited actions of one commit.
fn parse_commit(id: &TableId, version: i64, bytes: &[u8]) -> Result<Commit> {
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
                version,
                line: index + 1,
                source,
            })?;
        if let Some(Value::Object(info)) = action.get("commitInfo") {
            commit.info = info.clone();
        } else if let Some(txn) = action.get("txn") {
            let app = txn.get("appId").and_then(Value::as_str);
            let txn_version = txn.get("version").and_then(Value::as_i64);
            if let (Some(app), Some(txn_version)) = (app, txn_version) {
                commit.txns.push((app.to_string(), txn_version));
            }
        }
    }
    Ok(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commit_info_and_txn_actions() {
        let id = TableId::silver("t");
        let bytes = br#"{"commitInfo":{"timestamp":1700000000000,"operation":"WRITE","operationMetrics":{"num_added_rows":3},"sluice.batch_id":"b1","clientVersion":"delta-rs.1"}}
{"add":{"path":"x.parquet"}}
{"txn":{"appId":"node-a","version":7,"lastUpdated":1}}
{"sidecar":{"path":"unknown-to-delta-rs"}}
"#;
        let commit = parse_commit(&id, 4, bytes).unwrap();
        assert_eq!(commit.txns, vec![("node-a".to_string(), 7)]);
        let summary = commit.summary();
        assert_eq!(summary.version, 4);
        assert_eq!(summary.operation.as_deref(), Some("WRITE"));
        assert_eq!(summary.rows_added, Some(3));
        assert_eq!(summary.rows_updated, None);
        assert_eq!(
            summary.timestamp.map(|t| t.timestamp_millis()),
            Some(1_700_000_000_000)
        );
        let keys: Vec<&String> = summary.metadata.keys().collect();
        assert_eq!(keys, vec!["sluice.batch_id"]);
    }

    #[test]
    fn corrupt_lines_name_table_version_and_line() {
        let id = TableId::bronze("shop", "orders");
        let err = parse_commit(&id, 2, b"{\"commitInfo\":{}}\n{not json\n").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("bronze.shop/orders: commit 2"),
            "{message}"
        );
        assert!(message.contains("line 2"), "{message}");
    }
}
