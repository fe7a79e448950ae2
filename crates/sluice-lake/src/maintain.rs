//! Table maintenance: compaction (bin-packing small files), Z-ordering, Parquet bloom filters,
//! Delta checkpoints and VACUUM.
//!
//! Every micro-batch, partition write and merge adds files, so a table that is written often ends
//! up as thousands of small Parquet files and a long log: scans open every file and every load
//! replays every commit. [`Lake::maintain`] puts that right in one pass over one table:
//!
//! 1. **Compaction** rewrites the files smaller than the target size of each partition into files of
//!    about the target size (delta-rs `OPTIMIZE`); with `zorder_by` it Z-orders the partition's rows
//!    on those columns instead, so that range filters on any of them skip most files. Both commit with
//!    `dataChange: false`: readers and streaming consumers see the same rows, and a reader pinned to
//!    an earlier version keeps reading the files it had.
//! 2. **Bloom filters**: the rewritten files carry Parquet bloom filters on `bloom_filter_columns`
//!    (point lookups skip row groups). Writes carry them too when the lake was opened with
//!    [`Lake::with_bloom_filters`].
//! 3. **Checkpoint** once `checkpoint_interval` commits have passed since the last one, so that a
//!    load reads one Parquet checkpoint plus a few JSON commits instead of the whole log.
//! 4. **VACUUM** deletes the files no version younger than the retention needs (files removed by
//!    a commit older than the retention, and orphans of aborted writes older than it). A retention
//!    below the minimum is refused before anything is touched ([`LakeError::UnsafeRetention`]):
//!    a shorter one would delete files that readers of retained versions, and writers still
//!    running, need.
//!
//! Bronze retention (deleting or moving old partitions) is in [`crate::retention`].

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::{Clock, VacuumMode};
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use serde::Serialize;
use serde_json::Value;

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::table::Lake;

/// Target size of compacted files when none is configured.
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 128 * 1024 * 1024;
/// Files below this size count as small (for policies) when none is configured.
pub const DEFAULT_SMALL_FILE_SIZE: u64 = 32 * 1024 * 1024;
/// VACUUM retention, and the minimum it may be lowered to, when none is configured (Delta's own
/// default for `delta.deletedFileRetentionDuration`).
pub const DEFAULT_VACUUM_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Delta operations that maintenance itself commits: they do not count as new data.
const MAINTENANCE_OPERATIONS: &[&str] = &["OPTIMIZE", "VACUUM START", "VACUUM END"];

/// What one maintenance pass does on a table ([`Lake::maintain`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MaintainSpec {
    /// Bin-pack small files (or Z-order, with `zorder_by`).
    pub compact: bool,
    /// Size compaction aims at for each file.
    pub target_file_size: u64,
    /// Files below this size are reported as small.
    pub small_file_size: u64,
    /// Z-order the rows of each partition on these columns when compacting.
    pub zorder_by: Vec<String>,
    /// Write Parquet bloom filters on these columns in the files compaction writes.
    pub bloom_filter_columns: Vec<String>,
    /// Write a checkpoint once this many commits followed the last one (`None`: never).
    pub checkpoint_interval: Option<u64>,
    /// VACUUM after compacting (`None`: no VACUUM).
    pub vacuum: Option<VacuumSpec>,
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Custom commit metadata for the commits maintenance makes (e.g. `sluice.run_id`).
    pub metadata: serde_json::Map<String, Value>,
}

impl Default for MaintainSpec {
    fn default() -> Self {
        MaintainSpec {
            compact: true,
            target_file_size: DEFAULT_TARGET_FILE_SIZE,
            small_file_size: DEFAULT_SMALL_FILE_SIZE,
            zorder_by: Vec::new(),
            bloom_filter_columns: Vec::new(),
            checkpoint_interval: Some(10),
            vacuum: Some(VacuumSpec::default()),
            dry_run: false,
            metadata: serde_json::Map::new(),
        }
    }
}

/// VACUUM settings.
#[derive(Debug, Clone, PartialEq)]
pub struct VacuumSpec {
    /// Files removed from the table longer ago than this are deleted.
    pub retention: Duration,
    /// The shortest retention accepted: readers of versions younger than this, and writes running
    /// for less than this, must keep their files.
    pub min_retention: Duration,
    /// The time VACUUM measures ages from (`None`: now). Tests move it forward instead of waiting.
    pub now: Option<DateTime<Utc>>,
}

impl Default for VacuumSpec {
    fn default() -> Self {
        VacuumSpec {
            retention: DEFAULT_VACUUM_RETENTION,
            min_retention: DEFAULT_VACUUM_RETENTION,
            now: None,
        }
    }
}

/// The live data files of one table version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FileStats {
    /// Files.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Files below the small-file size.
    pub small_files: u64,
}

/// What [`Lake::maintain`] did (or, dry, would do) to one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaintainReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Table version before.
    pub version_before: u64,
    /// Table version after.
    pub version_after: u64,
    /// Live files before.
    pub before: FileStats,
    /// Live files after (dry run: as before).
    pub after: FileStats,
    /// Files compaction replaced (dry run: the small files it would bin-pack).
    pub files_compacted: u64,
    /// Files compaction wrote.
    pub files_written: u64,
    /// The columns the rewrite Z-ordered on (empty: plain bin-packing or no rewrite).
    pub zordered_by: Vec<String>,
    /// The version a checkpoint was written at.
    pub checkpoint: Option<u64>,
    /// Files VACUUM deleted (dry run: would delete).
    pub vacuumed_files: u64,
    /// Their bytes.
    pub vacuumed_bytes: u64,
    /// Versions superseded longer ago than the retention: time travel to them is no longer
    /// guaranteed once VACUUM deleted files.
    pub versions_vacuumed: u64,
}

/// Bloom filters on `columns`, over `builder`.
pub(crate) fn with_bloom_filters(
    builder: WriterPropertiesBuilder,
    columns: &[String],
) -> WriterPropertiesBuilder {
    columns.iter().fold(builder, |b, column| {
        b.set_column_bloom_filter_enabled(ColumnPath::from(column.as_str()), true)
    })
}

impl Lake {
    /// This lake, writing Parquet bloom filters on the given columns of each table: every write
    /// ([`Lake::write`], [`Lake::write_stream`]) and every compaction of that table carries them.
    pub fn with_bloom_filters(self, columns: BTreeMap<TableId, Vec<String>>) -> Lake {
        self.with_bloom_filter_map(columns)
    }

    /// The writer properties of writes to `id`: `None` keeps delta-rs' own (no bloom filters
    /// declared for the table).
    pub(crate) fn write_properties(&self, id: &TableId) -> Option<WriterProperties> {
        let columns = self.bloom_filter_columns(id);
        let quarantine = id.layer == crate::layout::Layer::Quarantine;
        if columns.is_empty() && !quarantine {
            return None;
        }
        let mut base = WriterProperties::builder().set_compression(Compression::SNAPPY);
        if quarantine {
            base = crate::quarantine::without_content_statistics(base);
        }
        Some(with_bloom_filters(base, columns).build())
    }

    /// The live files of the table's latest version, or `None` when it does not exist.
    pub async fn file_stats(
        &self,
        id: &TableId,
        small_file_size: u64,
    ) -> Result<Option<FileStats>> {
        let Some(table) = self.load(id).await? else {
            return Ok(None);
        };
        Ok(Some(file_stats(&table, small_file_size)))
    }

    /// Commits that changed data since the last compaction (or since the table was created),
    /// counting no further than `cap`: a policy only needs to know whether its threshold is met.
    pub async fn commits_since_compaction(&self, id: &TableId, cap: u64) -> Result<u64> {
        // Maintenance commits do not count but take slots of the window: read a wider one.
        let window = usize::try_from(cap.saturating_mul(2).saturating_add(4)).unwrap_or(usize::MAX);
        let mut count = 0;
        for commit in self.history(id, window).await? {
            match commit.operation.as_deref() {
                Some("OPTIMIZE") => break,
                Some(op) if MAINTENANCE_OPERATIONS.contains(&op) => {}
                _ => count += 1,
            }
            if count >= cap {
                break;
            }
        }
        Ok(count)
    }

    /// Compacts, checkpoints and vacuums the table as `spec` says (see the module docs); `None`
    /// when the table does not exist. Each step is its own commit, so a failure halfway leaves a
    /// consistent table: the steps before it done, the rest not.
    pub async fn maintain(
        &self,
        id: &TableId,
        spec: &MaintainSpec,
    ) -> Result<Option<MaintainReport>> {
        if let Some(vacuum) = &spec.vacuum {
            check_retention(id, vacuum)?;
        }
        let Some(mut table) = self.load(id).await? else {
            return Ok(None);
        };
        check_columns(id, &table, &spec.zorder_by, "z-order column")?;
        check_columns(
            id,
            &table,
            &spec.bloom_filter_columns,
            "bloom filter column",
        )?;
        let version_before = table.version().unwrap_or_default();
        let before = file_stats(&table, spec.small_file_size);
        let mut report = MaintainReport {
            dry_run: spec.dry_run,
            version_before,
            version_after: version_before,
            before,
            after: before,
            ..MaintainReport::default()
        };
        if spec.compact {
            table = self.compact(id, table, spec, &mut report).await?;
        }
        if let Some(interval) = spec.checkpoint_interval
            && !spec.dry_run
        {
            report.checkpoint = checkpoint_if_due(id, &table, interval).await?;
        }
        if let Some(vacuum) = &spec.vacuum {
            table = self.vacuum(id, table, vacuum, spec, &mut report).await?;
        }
        if !spec.dry_run {
            report.version_after = table.version().unwrap_or(version_before);
            report.after = file_stats(&table, spec.small_file_size);
        }
        tracing::info!(table = %id, ?report, "maintained");
        Ok(Some(report))
    }

    /// Bin-packs (or Z-orders) the table; skipped when nothing changed since the last rewrite.
    async fn compact(
        &self,
        id: &TableId,
        table: DeltaTable,
        spec: &MaintainSpec,
        report: &mut MaintainReport,
    ) -> Result<DeltaTable> {
        let candidates = compaction_candidates(&table, spec.target_file_size);
        let zorder = !spec.zorder_by.is_empty();
        // Z-ordering rewrites every file of a partition: only worth it when data came in since.
        let fresh = self.commits_since_compaction(id, 1).await? > 0;
        if (zorder && !fresh) || (!zorder && candidates == 0) {
            return Ok(table);
        }
        if spec.dry_run {
            report.files_compacted = if zorder {
                report.before.files
            } else {
                candidates
            };
            report.zordered_by = if zorder {
                spec.zorder_by.clone()
            } else {
                Vec::new()
            };
            return Ok(table);
        }
        let target = NonZeroU64::new(spec.target_file_size.max(1)).unwrap_or(NonZeroU64::MIN);
        let mut columns = self.bloom_filter_columns(id).to_vec();
        columns.extend(spec.bloom_filter_columns.iter().cloned());
        columns.sort();
        columns.dedup();
        let mut base = WriterProperties::builder().set_compression(Compression::SNAPPY);
        if id.layer == crate::layout::Layer::Quarantine {
            base = crate::quarantine::without_content_statistics(base);
        }
        let properties = with_bloom_filters(base, &columns).build();
        let optimize_type = if zorder {
            OptimizeType::ZOrder(spec.zorder_by.clone())
        } else {
            OptimizeType::Compact
        };
        let (table, metrics) = table
            .optimize()
            .with_type(optimize_type)
            .with_target_size(target)
            .with_writer_properties(properties)
            .with_commit_properties(
                CommitProperties::default().with_metadata(spec.metadata.clone()),
            )
            .await
            .map_err(|e| LakeError::delta(id, "optimize", e))?;
        report.files_compacted = metrics.num_files_removed;
        report.files_written = metrics.num_files_added;
        if zorder && metrics.num_files_removed > 0 {
            report.zordered_by = spec.zorder_by.clone();
        }
        Ok(table)
    }

    /// VACUUM with the retention of `vacuum` (already checked against its minimum).
    async fn vacuum(
        &self,
        id: &TableId,
        table: DeltaTable,
        vacuum: &VacuumSpec,
        spec: &MaintainSpec,
        report: &mut MaintainReport,
    ) -> Result<DeltaTable> {
        let retention = chrono::Duration::from_std(vacuum.retention)
            .map_err(|_| unsafe_retention(id, vacuum, "is too long"))?;
        let builder = |table: DeltaTable, dry_run: bool| {
            let mut b = table
                .vacuum()
                .with_retention_period(retention)
                // The minimum is checked above, against Sluice's setting rather than the table's.
                .with_enforce_retention_duration(false)
                // Full: also orphans of aborted writes (older than the retention), not only the
                // files commits removed.
                .with_mode(VacuumMode::Full)
                .with_dry_run(dry_run)
                .with_commit_properties(
                    CommitProperties::default().with_metadata(spec.metadata.clone()),
                );
            if let Some(now) = vacuum.now {
                b = b.with_clock(Arc::new(FixedClock(now.timestamp_millis())));
            }
            b
        };
        // A dry run first: it lists the files, whose sizes are read before they are gone.
        let (table, planned) = builder(table, true)
            .await
            .map_err(|e| LakeError::delta(id, "vacuum", e))?;
        if planned.files_deleted.is_empty() {
            return Ok(table);
        }
        let store = table.object_store();
        let mut bytes = 0u64;
        for file in &planned.files_deleted {
            let path = deltalake::Path::parse(file)
                .unwrap_or_else(|_| deltalake::Path::from(file.as_str()));
            if let Ok(meta) = store.head(&path).await {
                bytes += meta.size;
            }
        }
        let now = vacuum.now.unwrap_or_else(Utc::now);
        report.versions_vacuumed = self.versions_before(id, now - retention).await?;
        report.vacuumed_bytes = bytes;
        if spec.dry_run {
            report.vacuumed_files = planned.files_deleted.len() as u64;
            return Ok(table);
        }
        let (table, done) = builder(table, false)
            .await
            .map_err(|e| LakeError::delta(id, "vacuum", e))?;
        report.vacuumed_files = done.files_deleted.len() as u64;
        Ok(table)
    }

    /// Versions superseded by a commit older than `cutoff` (their files may be vacuumed).
    async fn versions_before(&self, id: &TableId, cutoff: DateTime<Utc>) -> Result<u64> {
        let history = self.history(id, usize::MAX).await?;
        // Newest first: a version is expired when the commit after it is older than the cutoff.
        let expired = history
            .windows(2)
            .filter(|pair| pair[0].timestamp.is_some_and(|t| t < cutoff))
            .count();
        Ok(expired as u64)
    }
}

/// Refuses a retention below the minimum, before anything is touched.
fn check_retention(id: &TableId, vacuum: &VacuumSpec) -> Result<()> {
    if vacuum.retention < vacuum.min_retention {
        return Err(unsafe_retention(
            id,
            vacuum,
            "is shorter than the minimum retention",
        ));
    }
    Ok(())
}

fn unsafe_retention(id: &TableId, vacuum: &VacuumSpec, why: &'static str) -> LakeError {
    LakeError::UnsafeRetention {
        table: id.clone(),
        retention: format_duration(vacuum.retention),
        minimum: format_duration(vacuum.min_retention),
        why,
    }
}

/// `7d`, `36h`, `90m` or `45s`: the largest unit that divides the duration.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// Each of `columns` must be a column of the table.
fn check_columns(
    id: &TableId,
    table: &DeltaTable,
    columns: &[String],
    role: &'static str,
) -> Result<()> {
    if columns.is_empty() {
        return Ok(());
    }
    let schema = crate::table::arrow_schema(table)?;
    for column in columns {
        if schema.field_with_name(column).is_err() {
            let available: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(LakeError::MissingColumn {
                table: id.clone(),
                role,
                column: column.clone(),
                available: available.join(", "),
            });
        }
    }
    Ok(())
}

fn file_stats(table: &DeltaTable, small_file_size: u64) -> FileStats {
    let Ok(state) = table.snapshot() else {
        return FileStats::default();
    };
    state
        .log_data()
        .iter()
        .fold(FileStats::default(), |mut stats, file| {
            let size = u64::try_from(file.size()).unwrap_or_default();
            stats.files += 1;
            stats.bytes += size;
            stats.small_files += u64::from(size < small_file_size);
            stats
        })
}

/// Files below the target size in partitions holding at least two of them: what bin-packing
/// would merge.
fn compaction_candidates(table: &DeltaTable, target_file_size: u64) -> u64 {
    let Ok(state) = table.snapshot() else {
        return 0;
    };
    let mut per_partition: BTreeMap<String, u64> = BTreeMap::new();
    for file in state.log_data().iter() {
        if u64::try_from(file.size()).unwrap_or_default() < target_file_size {
            let path = file.path();
            let partition = path
                .rsplit_once('/')
                .map(|(dir, _)| dir)
                .unwrap_or_default();
            *per_partition.entry(partition.to_string()).or_default() += 1;
        }
    }
    per_partition.values().filter(|n| **n > 1).sum()
}

/// The table's partition columns.
pub(crate) fn partition_columns(table: &DeltaTable) -> Vec<String> {
    table
        .snapshot()
        .map(|s| s.metadata().partition_columns().to_vec())
        .unwrap_or_default()
}

/// Writes a checkpoint when `interval` commits or more followed the last one.
async fn checkpoint_if_due(id: &TableId, table: &DeltaTable, interval: u64) -> Result<Option<u64>> {
    let Some(version) = table.version() else {
        return Ok(None);
    };
    let last = last_checkpoint(table).await;
    let since = match last {
        Some(last) => version.saturating_sub(last),
        None => version + 1,
    };
    if since < interval.max(1) || last == Some(version) {
        return Ok(None);
    }
    deltalake::checkpoints::create_checkpoint(table, None)
        .await
        .map_err(|e| LakeError::delta(id, "checkpoint", e))?;
    Ok(Some(version))
}

/// The version of the table's last checkpoint (`_delta_log/_last_checkpoint`), if any.
pub(crate) async fn last_checkpoint(table: &DeltaTable) -> Option<u64> {
    let path = deltalake::Path::from("_delta_log/_last_checkpoint");
    let bytes = table
        .object_store()
        .get(&path)
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("version").and_then(Value::as_u64)
}

/// A clock stopped at one instant (VACUUM's "now").
#[derive(Debug)]
struct FixedClock(i64);

impl Clock for FixedClock {
    fn current_timestamp_millis(&self) -> i64 {
        self.0
    }
}

#[cfg(test)]
#[path = "maintain_tests.rs"]
mod tests;
