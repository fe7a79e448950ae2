//! Built partitions and backfills, as a trait every backend implements ([`Partitions`]) and its
//! records.
//!
//! Partitions are stored as merged inclusive ranges of partition indices ([`KeyRange`]): recording
//! a range coalesces it with the overlapping and adjacent rows in one transaction, so a million
//! built partitions are one row and listing an asset's ranges is one ordered index scan. A backfill
//! has a plan and a done set in the same encoding, and its failed partitions by key.

use serde::Serialize;

use crate::StateError;

/// An inclusive range of partition indices, `lo <= hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRange {
    /// First partition.
    pub lo: i64,
    /// Last partition (inclusive).
    pub hi: i64,
}

impl KeyRange {
    /// `lo..=hi` (swapped when given backwards).
    pub fn new(lo: i64, hi: i64) -> KeyRange {
        KeyRange {
            lo: lo.min(hi),
            hi: lo.max(hi),
        }
    }
}

/// A backfill as recorded.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackfillRecord {
    /// Backfill id.
    pub id: String,
    /// The selection.
    pub selection: String,
    /// `--from` as given (empty: from each model's `start`).
    pub from: String,
    /// `--to` as given (empty: up to the current partition).
    pub to: String,
    /// Only partitions never built.
    pub missing: bool,
    /// `planned`, `running`, `success`, `failed`.
    pub status: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// The run of the latest attempt, in run history.
    pub run_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A partition a backfill failed to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedPartition {
    /// The asset.
    pub asset: String,
    /// The partition's key.
    pub key: String,
    /// Why.
    pub error: String,
}

/// Built partition ranges and backfills.
pub trait Partitions: Send + Sync {
    /// Records `range` of `asset` (granularity `grain`) as built, merged with what is there.
    fn record_built(&self, asset: &str, grain: &str, range: KeyRange) -> Result<(), StateError>;

    /// Forgets `range` of `asset` (it counts as never built).
    fn forget_built(&self, asset: &str, grain: &str, range: KeyRange) -> Result<(), StateError>;

    /// The built partitions of `asset`: sorted, disjoint, non-adjacent ranges.
    fn built(&self, asset: &str, grain: &str) -> Result<Vec<KeyRange>, StateError>;

    /// The newest backfills first (ties: the later recorded first), at most `limit`.
    fn backfills(&self, limit: usize) -> Result<Vec<BackfillRecord>, StateError>;

    /// One backfill.
    fn backfill(&self, id: &str) -> Result<Option<BackfillRecord>, StateError>;

    /// The newest backfill with this request whose status is not `success`.
    fn unfinished_backfill_like(
        &self,
        selection: &str,
        from: &str,
        to: &str,
        missing: bool,
    ) -> Result<Option<BackfillRecord>, StateError>;

    /// Records a new backfill and its plan (per asset, the ranges to build), in one transaction.
    fn create_backfill(
        &self,
        record: &BackfillRecord,
        plan: &[(String, Vec<KeyRange>)],
    ) -> Result<(), StateError>;

    /// Sets a backfill's status and error at `at`; `run_id`, when given, becomes its latest run.
    fn set_backfill_status(
        &self,
        id: &str,
        status: &str,
        run_id: Option<&str>,
        error: Option<&str>,
        at: &str,
    ) -> Result<(), StateError>;

    /// The assets of a backfill's plan, by name.
    fn backfill_plan_assets(&self, id: &str) -> Result<Vec<String>, StateError>;

    /// The partitions of `asset` a backfill must build.
    fn backfill_plan(&self, id: &str, asset: &str) -> Result<Vec<KeyRange>, StateError>;

    /// The partitions of `asset` a backfill has built.
    fn backfill_done(&self, id: &str, asset: &str) -> Result<Vec<KeyRange>, StateError>;

    /// Records partition `index` (key `key`) of `asset` as built by the backfill and built for the
    /// asset (granularity `grain`), and clears an earlier failure of it.
    fn mark_partition_done(
        &self,
        id: &str,
        asset: &str,
        grain: &str,
        index: i64,
        key: &str,
    ) -> Result<(), StateError>;

    /// Records (or replaces) that partition `key` of `asset` failed in the backfill.
    fn mark_partition_failed(
        &self,
        id: &str,
        asset: &str,
        key: &str,
        error: &str,
    ) -> Result<(), StateError>;

    /// The failed partitions of a backfill, by asset then key, at most `limit`.
    fn failed_partitions(&self, id: &str, limit: usize)
    -> Result<Vec<FailedPartition>, StateError>;

    /// How many partitions of a backfill failed.
    fn failed_partition_count(&self, id: &str) -> Result<u64, StateError>;
}
