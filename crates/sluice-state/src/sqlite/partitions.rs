//! [`Partitions`] on SQLite (tables `partition_ranges`, `backfills`, `backfill_plan`,
//! `backfill_done`, `backfill_failed`).
//!
//! Inserting a range coalesces it with the overlapping and adjacent rows in one `BEGIN IMMEDIATE`
//! transaction, touching only those rows (primary key on `lo`), so a million built partitions are
//! one row, and listing an asset's ranges is one ordered index scan.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::StateError;
use crate::partitions::{BackfillRecord, FailedPartition, KeyRange, Partitions};

/// A range table and the two columns that scope its rows.
#[derive(Clone, Copy)]
struct RangeTable {
    table: &'static str,
    a: &'static str,
    b: &'static str,
}

const BUILT: RangeTable = RangeTable {
    table: "partition_ranges",
    a: "asset",
    b: "grain",
};
const PLAN: RangeTable = RangeTable {
    table: "backfill_plan",
    a: "backfill_id",
    b: "asset",
};
const DONE: RangeTable = RangeTable {
    table: "backfill_done",
    a: "backfill_id",
    b: "asset",
};

impl RangeTable {
    /// The ranges touching `r` (`pad` = 1 also takes the adjacent ones), in order.
    fn touching(
        &self,
        c: &Connection,
        a: &str,
        b: &str,
        r: KeyRange,
        pad: i64,
    ) -> rusqlite::Result<Vec<KeyRange>> {
        let RangeTable {
            table,
            a: ca,
            b: cb,
        } = *self;
        let mut out = Vec::new();
        let before: Option<(i64, i64)> = c
            .query_row(
                &format!("SELECT lo, hi FROM {table} WHERE {ca} = ?1 AND {cb} = ?2 AND lo < ?3 ORDER BY lo DESC LIMIT 1"),
                params![a, b, r.lo],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((lo, hi)) = before
            && hi.saturating_add(pad) >= r.lo
        {
            out.push(KeyRange::new(lo, hi));
        }
        let mut stmt = c.prepare_cached(&format!(
            "SELECT lo, hi FROM {table} WHERE {ca} = ?1 AND {cb} = ?2 AND lo >= ?3 AND lo <= ?4 ORDER BY lo"
        ))?;
        let rows = stmt.query_map(params![a, b, r.lo, r.hi.saturating_add(pad)], |row| {
            Ok(KeyRange::new(row.get(0)?, row.get(1)?))
        })?;
        for row in rows {
            out.push(row?);
        }
        Ok(out)
    }

    /// Adds `r`, merged with the overlapping and adjacent rows (inside the caller's transaction).
    fn insert(&self, c: &Connection, a: &str, b: &str, r: KeyRange) -> rusqlite::Result<()> {
        let old = self.touching(c, a, b, r, 1)?;
        let mut merged = r;
        for o in &old {
            merged = KeyRange::new(merged.lo.min(o.lo), merged.hi.max(o.hi));
        }
        self.replace(c, a, b, &old, &[merged])
    }

    /// Removes `r` (inside the caller's transaction).
    fn remove(&self, c: &Connection, a: &str, b: &str, r: KeyRange) -> rusqlite::Result<()> {
        let old = self.touching(c, a, b, r, 0)?;
        let mut keep = Vec::new();
        if let Some(first) = old.first()
            && first.lo < r.lo
        {
            keep.push(KeyRange::new(first.lo, r.lo - 1));
        }
        if let Some(last) = old.last()
            && last.hi > r.hi
        {
            keep.push(KeyRange::new(r.hi + 1, last.hi));
        }
        self.replace(c, a, b, &old, &keep)
    }

    fn replace(
        &self,
        c: &Connection,
        a: &str,
        b: &str,
        old: &[KeyRange],
        new: &[KeyRange],
    ) -> rusqlite::Result<()> {
        let RangeTable {
            table,
            a: ca,
            b: cb,
        } = *self;
        for o in old {
            c.execute(
                &format!("DELETE FROM {table} WHERE {ca} = ?1 AND {cb} = ?2 AND lo = ?3"),
                params![a, b, o.lo],
            )?;
        }
        for n in new {
            c.execute(
                &format!("INSERT INTO {table} ({ca}, {cb}, lo, hi) VALUES (?1, ?2, ?3, ?4)"),
                params![a, b, n.lo, n.hi],
            )?;
        }
        Ok(())
    }

    fn list(&self, c: &Connection, a: &str, b: &str) -> rusqlite::Result<Vec<KeyRange>> {
        let RangeTable {
            table,
            a: ca,
            b: cb,
        } = *self;
        let mut stmt = c.prepare_cached(&format!(
            "SELECT lo, hi FROM {table} WHERE {ca} = ?1 AND {cb} = ?2 ORDER BY lo"
        ))?;
        let rows = stmt.query_map(params![a, b], |row| {
            Ok(KeyRange::new(row.get(0)?, row.get(1)?))
        })?;
        rows.collect()
    }
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the ranges are read,
/// so two processes merging into one asset cannot both read the same rows.
fn immediate<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

const SELECT_BACKFILL: &str = "SELECT id, selection, from_key, to_key, missing, status, created_at, updated_at, run_id, error FROM backfills";

fn backfill_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BackfillRecord> {
    Ok(BackfillRecord {
        id: r.get(0)?,
        selection: r.get(1)?,
        from: r.get(2)?,
        to: r.get(3)?,
        missing: r.get(4)?,
        status: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        run_id: r.get(8)?,
        error: r.get(9)?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Partitions for SqliteStore {
    fn record_built(&self, asset: &str, grain: &str, range: KeyRange) -> Result<(), StateError> {
        self.with(|c| immediate(c, |tx| BUILT.insert(tx, asset, grain, range)))
    }

    fn forget_built(&self, asset: &str, grain: &str, range: KeyRange) -> Result<(), StateError> {
        self.with(|c| immediate(c, |tx| BUILT.remove(tx, asset, grain, range)))
    }

    fn built(&self, asset: &str, grain: &str) -> Result<Vec<KeyRange>, StateError> {
        self.with(|c| BUILT.list(c, asset, grain))
    }

    fn backfills(&self, n: usize) -> Result<Vec<BackfillRecord>, StateError> {
        self.with(|c| {
            // SQLite's table has no `seq` column: its rowid is the insertion order.
            let mut stmt = c.prepare(&format!(
                "{SELECT_BACKFILL} ORDER BY created_at DESC, rowid DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit(n)], backfill_from_row)?;
            rows.collect()
        })
    }

    fn backfill(&self, id: &str) -> Result<Option<BackfillRecord>, StateError> {
        self.with(|c| {
            c.query_row(
                &format!("{SELECT_BACKFILL} WHERE id = ?1"),
                [id],
                backfill_from_row,
            )
            .optional()
        })
    }

    fn unfinished_backfill_like(
        &self,
        selection: &str,
        from: &str,
        to: &str,
        missing: bool,
    ) -> Result<Option<BackfillRecord>, StateError> {
        self.with(|c| {
            c.query_row(
                &format!("{SELECT_BACKFILL} WHERE selection = ?1 AND from_key = ?2 AND to_key = ?3 AND missing = ?4 AND status <> 'success' ORDER BY created_at DESC, rowid DESC LIMIT 1"),
                params![selection, from, to, missing],
                backfill_from_row,
            )
            .optional()
        })
    }

    fn create_backfill(
        &self,
        r: &BackfillRecord,
        plan: &[(String, Vec<KeyRange>)],
    ) -> Result<(), StateError> {
        self.with(|c| {
            immediate(c, |tx| {
                tx.execute(
                    "INSERT INTO backfills (id, selection, from_key, to_key, missing, status, created_at, updated_at, run_id, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![r.id, r.selection, r.from, r.to, r.missing, r.status, r.created_at, r.updated_at, r.run_id, r.error],
                )?;
                for (asset, ranges) in plan {
                    for x in ranges {
                        tx.execute(
                            "INSERT INTO backfill_plan (backfill_id, asset, lo, hi) VALUES (?1, ?2, ?3, ?4)",
                            params![r.id, asset, x.lo, x.hi],
                        )?;
                    }
                }
                Ok(())
            })
        })
    }

    fn set_backfill_status(
        &self,
        id: &str,
        status: &str,
        run_id: Option<&str>,
        error: Option<&str>,
        at: &str,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE backfills SET status = ?2, updated_at = ?3, run_id = coalesce(?4, run_id), error = ?5 WHERE id = ?1",
                params![id, status, at, run_id, error],
            )
            .map(|_| ())
        })
    }

    fn backfill_plan_assets(&self, id: &str) -> Result<Vec<String>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT asset FROM backfill_plan WHERE backfill_id = ?1 ORDER BY asset",
            )?;
            let rows = stmt.query_map([id], |r| r.get(0))?;
            rows.collect()
        })
    }

    fn backfill_plan(&self, id: &str, asset: &str) -> Result<Vec<KeyRange>, StateError> {
        self.with(|c| PLAN.list(c, id, asset))
    }

    fn backfill_done(&self, id: &str, asset: &str) -> Result<Vec<KeyRange>, StateError> {
        self.with(|c| DONE.list(c, id, asset))
    }

    fn mark_partition_done(
        &self,
        id: &str,
        asset: &str,
        grain: &str,
        index: i64,
        key: &str,
    ) -> Result<(), StateError> {
        let k = KeyRange::new(index, index);
        self.with(|c| {
            immediate(c, |tx| {
                DONE.insert(tx, id, asset, k)?;
                BUILT.insert(tx, asset, grain, k)?;
                tx.execute(
                    "DELETE FROM backfill_failed WHERE backfill_id = ?1 AND asset = ?2 AND partition_key = ?3",
                    params![id, asset, key],
                )
                .map(|_| ())
            })
        })
    }

    fn mark_partition_failed(
        &self,
        id: &str,
        asset: &str,
        key: &str,
        error: &str,
    ) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO backfill_failed (backfill_id, asset, partition_key, error) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (backfill_id, asset, partition_key) DO UPDATE SET error = excluded.error",
                params![id, asset, key, error],
            )
            .map(|_| ())
        })
    }

    fn failed_partitions(&self, id: &str, n: usize) -> Result<Vec<FailedPartition>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT asset, partition_key, error FROM backfill_failed WHERE backfill_id = ?1
                 ORDER BY asset, partition_key LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![id, limit(n)], |r| {
                Ok(FailedPartition {
                    asset: r.get(0)?,
                    key: r.get(1)?,
                    error: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    fn failed_partition_count(&self, id: &str) -> Result<u64, StateError> {
        self.with(|c| {
            c.query_row(
                "SELECT count(*) FROM backfill_failed WHERE backfill_id = ?1",
                [id],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n.max(0) as u64)
    }
}
