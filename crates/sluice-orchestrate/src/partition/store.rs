//! Partition ranges and backfills in the state database.
//!
//! `partition_ranges(asset, grain, lo, hi)` holds the partitions built per asset as merged inclusive
//! ranges of partition indices (see [`super::ranges`]): inserting a range coalesces it with the
//! overlapping and adjacent rows in one transaction, touching only those rows (index on `lo`), so a
//! million built partitions are one row, and listing an asset's ranges is one ordered index scan.
//! `backfills` records each backfill; `backfill_plan` / `backfill_done` hold the partitions it
//! must build and has built (same range encoding), `backfill_failed` the partitions that failed.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::ranges::{Range, RangeSet};
use crate::state::{StateError, StateStore};

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
    /// The ranges touching `lo..=hi` (`pad` = 1 also takes the adjacent ones).
    fn touching(
        &self,
        c: &Connection,
        a: &str,
        b: &str,
        r: Range,
        pad: i64,
    ) -> rusqlite::Result<Vec<Range>> {
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
            out.push(Range::new(lo, hi));
        }
        let mut stmt = c.prepare_cached(&format!(
            "SELECT lo, hi FROM {table} WHERE {ca} = ?1 AND {cb} = ?2 AND lo >= ?3 AND lo <= ?4 ORDER BY lo"
        ))?;
        let rows = stmt.query_map(params![a, b, r.lo, r.hi.saturating_add(pad)], |row| {
            Ok(Range::new(row.get(0)?, row.get(1)?))
        })?;
        for row in rows {
            out.push(row?);
        }
        Ok(out)
    }

    /// Adds `r`, merged with the overlapping and adjacent rows.
    fn insert(&self, c: &Connection, a: &str, b: &str, r: Range) -> rusqlite::Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
        let old = self.touching(&tx, a, b, r, 1)?;
        let mut merged = r;
        for o in &old {
            merged = Range::new(merged.lo.min(o.lo), merged.hi.max(o.hi));
        }
        self.replace(&tx, a, b, &old, &[merged])?;
        tx.commit()
    }

    /// Removes `r`.
    fn remove(&self, c: &Connection, a: &str, b: &str, r: Range) -> rusqlite::Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
        let old = self.touching(&tx, a, b, r, 0)?;
        let mut keep = Vec::new();
        if let Some(first) = old.first()
            && first.lo < r.lo
        {
            keep.push(Range::new(first.lo, r.lo - 1));
        }
        if let Some(last) = old.last()
            && last.hi > r.hi
        {
            keep.push(Range::new(r.hi + 1, last.hi));
        }
        self.replace(&tx, a, b, &old, &keep)?;
        tx.commit()
    }

    fn replace(
        &self,
        c: &Connection,
        a: &str,
        b: &str,
        old: &[Range],
        new: &[Range],
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

    fn list(&self, c: &Connection, a: &str, b: &str) -> rusqlite::Result<RangeSet> {
        let RangeTable {
            table,
            a: ca,
            b: cb,
        } = *self;
        let mut stmt = c.prepare_cached(&format!(
            "SELECT lo, hi FROM {table} WHERE {ca} = ?1 AND {cb} = ?2 ORDER BY lo"
        ))?;
        let rows = stmt.query_map(params![a, b], |row| {
            Ok(Range::new(row.get(0)?, row.get(1)?))
        })?;
        Ok(RangeSet::from_ranges(
            rows.collect::<rusqlite::Result<Vec<_>>>()?,
        ))
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

/// Partition ranges and backfills, over the state database.
pub struct PartitionStore<'a> {
    state: &'a StateStore,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl<'a> PartitionStore<'a> {
    /// The partition tables of `state` (created with the rest of the schema by `sluice-state`).
    /// Fallible only for compatibility with callers written when it created its tables.
    pub fn new(state: &'a StateStore) -> Result<PartitionStore<'a>, StateError> {
        Ok(PartitionStore { state })
    }

    /// Records partitions `lo..=hi` of `asset` (granularity `grain`) as built.
    pub fn record_built(
        &self,
        asset: &str,
        grain: &str,
        lo: i64,
        hi: i64,
    ) -> Result<(), StateError> {
        self.state
            .with(|c| BUILT.insert(c, asset, grain, Range::new(lo, hi)))
    }

    /// Records a set of built partitions (coalesced first: one merge per run of partitions).
    pub fn record_built_set(
        &self,
        asset: &str,
        grain: &str,
        set: &RangeSet,
    ) -> Result<(), StateError> {
        for r in set.ranges() {
            self.record_built(asset, grain, r.lo, r.hi)?;
        }
        Ok(())
    }

    /// Forgets partitions `lo..=hi` of `asset` (they count as never built).
    pub fn forget_built(
        &self,
        asset: &str,
        grain: &str,
        lo: i64,
        hi: i64,
    ) -> Result<(), StateError> {
        self.state
            .with(|c| BUILT.remove(c, asset, grain, Range::new(lo, hi)))
    }

    /// The built partitions of `asset`, as ranges (one ordered index scan).
    pub fn built(&self, asset: &str, grain: &str) -> Result<RangeSet, StateError> {
        self.state.with(|c| BUILT.list(c, asset, grain))
    }

    /// The ids of the backfills, newest first.
    pub fn backfills(&self, limit: usize) -> Result<Vec<BackfillRecord>, StateError> {
        self.state.with(|c| {
            let mut stmt = c.prepare(&format!(
                "{SELECT_BACKFILL} ORDER BY created_at DESC, rowid DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], backfill_from_row)?;
            rows.collect()
        })
    }

    /// One backfill.
    pub fn backfill(&self, id: &str) -> Result<Option<BackfillRecord>, StateError> {
        self.state.with(|c| {
            c.query_row(
                &format!("{SELECT_BACKFILL} WHERE id = ?1"),
                [id],
                backfill_from_row,
            )
            .optional()
        })
    }

    /// The newest unfinished backfill with the same request (what a repeated command resumes).
    pub fn unfinished_like(
        &self,
        selection: &str,
        from: &str,
        to: &str,
        missing: bool,
    ) -> Result<Option<BackfillRecord>, StateError> {
        self.state.with(|c| {
            c.query_row(
                &format!("{SELECT_BACKFILL} WHERE selection = ?1 AND from_key = ?2 AND to_key = ?3 AND missing = ?4 AND status != 'success' ORDER BY created_at DESC, rowid DESC LIMIT 1"),
                params![selection, from, to, missing],
                backfill_from_row,
            )
            .optional()
        })
    }

    /// Records a new backfill and its plan (per asset, the partitions to build).
    pub fn create_backfill(
        &self,
        r: &BackfillRecord,
        plan: &[(String, RangeSet)],
    ) -> Result<(), StateError> {
        self.state.with(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO backfills (id, selection, from_key, to_key, missing, status, created_at, updated_at, run_id, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![r.id, r.selection, r.from, r.to, r.missing, r.status, r.created_at, r.updated_at, r.run_id, r.error],
            )?;
            for (asset, set) in plan {
                for x in set.ranges() {
                    tx.execute(
                        "INSERT INTO backfill_plan (backfill_id, asset, lo, hi) VALUES (?1, ?2, ?3, ?4)",
                        params![r.id, asset, x.lo, x.hi],
                    )?;
                }
            }
            tx.commit()
        })
    }

    /// Sets a backfill's status (and its latest run, error).
    pub fn set_status(
        &self,
        id: &str,
        status: &str,
        run_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        self.state.with(|c| {
            c.execute(
                "UPDATE backfills SET status = ?2, updated_at = ?3, run_id = coalesce(?4, run_id), error = ?5 WHERE id = ?1",
                params![id, status, now(), run_id, error],
            )
            .map(|_| ())
        })
    }

    /// The assets of a backfill's plan.
    pub fn plan_assets(&self, id: &str) -> Result<Vec<String>, StateError> {
        self.state.with(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT asset FROM backfill_plan WHERE backfill_id = ?1 ORDER BY asset",
            )?;
            let rows = stmt.query_map([id], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// The partitions of `asset` a backfill must build.
    pub fn plan(&self, id: &str, asset: &str) -> Result<RangeSet, StateError> {
        self.state.with(|c| PLAN.list(c, id, asset))
    }

    /// The partitions of `asset` a backfill has built.
    pub fn done(&self, id: &str, asset: &str) -> Result<RangeSet, StateError> {
        self.state.with(|c| DONE.list(c, id, asset))
    }

    /// Records partition `k` of `asset` as built by the backfill (and built for the asset), and
    /// clears an earlier failure of it.
    pub fn mark_done(
        &self,
        id: &str,
        asset: &str,
        grain: &str,
        k: i64,
        key: &str,
    ) -> Result<(), StateError> {
        self.state.with(|c| {
            DONE.insert(c, id, asset, Range::new(k, k))?;
            BUILT.insert(c, asset, grain, Range::new(k, k))?;
            c.execute(
                "DELETE FROM backfill_failed WHERE backfill_id = ?1 AND asset = ?2 AND partition_key = ?3",
                params![id, asset, key],
            )
            .map(|_| ())
        })
    }

    /// Records that partition `key` of `asset` failed in the backfill.
    pub fn mark_failed(
        &self,
        id: &str,
        asset: &str,
        key: &str,
        error: &str,
    ) -> Result<(), StateError> {
        self.state.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO backfill_failed (backfill_id, asset, partition_key, error) VALUES (?1, ?2, ?3, ?4)",
                params![id, asset, key, error],
            )
            .map(|_| ())
        })
    }

    /// The failed partitions of a backfill: `(asset, key, error)`, at most `limit`.
    pub fn failed(
        &self,
        id: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, String)>, StateError> {
        self.state.with(|c| {
            let mut stmt = c.prepare(
                "SELECT asset, partition_key, error FROM backfill_failed WHERE backfill_id = ?1 ORDER BY asset, partition_key LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![id, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// How many partitions of a backfill failed.
    pub fn failed_count(&self, id: &str) -> Result<u64, StateError> {
        self.state
            .with(|c| {
                c.query_row(
                    "SELECT count(*) FROM backfill_failed WHERE backfill_id = ?1",
                    [id],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(|n| n.max(0) as u64)
    }
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

pub(crate) fn timestamp() -> String {
    now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ranges_merge_in_the_database() {
        let s = StateStore::in_memory().unwrap();
        let p = PartitionStore::new(&s).unwrap();
        for k in [5, 7, 6, 1, 2, 10] {
            p.record_built("m", "day", k, k).unwrap();
        }
        let pairs = |r: RangeSet| r.ranges().iter().map(|r| (r.lo, r.hi)).collect::<Vec<_>>();
        assert_eq!(
            pairs(p.built("m", "day").unwrap()),
            [(1, 2), (5, 7), (10, 10)]
        );
        p.record_built("m", "day", 3, 4).unwrap();
        assert_eq!(pairs(p.built("m", "day").unwrap()), [(1, 7), (10, 10)]);
        p.forget_built("m", "day", 3, 3).unwrap();
        assert_eq!(
            pairs(p.built("m", "day").unwrap()),
            [(1, 2), (4, 7), (10, 10)]
        );
        assert!(p.built("m", "hour").unwrap().is_empty());
        assert!(p.built("other", "day").unwrap().is_empty());
    }

    #[test]
    fn a_million_partitions_are_a_few_rows_and_list_fast() {
        let s = StateStore::in_memory().unwrap();
        let p = PartitionStore::new(&s).unwrap();
        // A million partitions recorded in chunks, out of order, with three left out.
        let holes = [123_456i64, 500_000, 999_998];
        let keys = (0..1_000_000i64).filter(|k| !holes.contains(k));
        let set = RangeSet::from_keys(keys);
        for r in set.ranges().iter().rev() {
            // Each coalesced run in 100,000-partition slices, as separate inserts.
            let mut lo = r.lo;
            while lo <= r.hi {
                let hi = (lo + 99_999).min(r.hi);
                p.record_built("big", "hour", lo, hi).unwrap();
                lo = hi + 1;
            }
        }
        // Then ten thousand single-partition inserts into what is already there.
        for k in (0..1_000_000).step_by(100).filter(|k| !holes.contains(k)) {
            p.record_built("big", "hour", k, k).unwrap();
        }
        let rows: i64 = s
            .with(|c| {
                c.query_row(
                    "SELECT count(*) FROM partition_ranges WHERE asset = 'big'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(rows, 4);
        let started = std::time::Instant::now();
        let built = p.built("big", "hour").unwrap();
        let listed = started.elapsed();
        assert_eq!(built.count(), 1_000_000 - 3);
        assert!(listed.as_millis() < 50, "listing took {listed:?}");
        let gaps: Vec<i64> = built.gaps(0, 999_999).iter().collect();
        assert_eq!(gaps, holes);
    }

    #[test]
    fn backfill_plan_done_and_failed() {
        let s = StateStore::in_memory().unwrap();
        let p = PartitionStore::new(&s).unwrap();
        let rec = BackfillRecord {
            id: "b1".into(),
            selection: "m".into(),
            from: "2024-01-01".into(),
            to: "2024-01-05".into(),
            missing: false,
            status: "planned".into(),
            created_at: now(),
            updated_at: now(),
            run_id: None,
            error: None,
        };
        p.create_backfill(
            &rec,
            &[("m".into(), RangeSet::from_ranges([Range::new(1, 5)]))],
        )
        .unwrap();
        p.mark_failed("b1", "m", "k2", "boom").unwrap();
        for k in [1, 2, 4] {
            p.mark_done("b1", "m", "day", k, &format!("k{k}")).unwrap();
        }
        let todo = p
            .plan("b1", "m")
            .unwrap()
            .minus(&p.done("b1", "m").unwrap());
        assert_eq!(todo.iter().collect::<Vec<_>>(), [3, 5]);
        assert_eq!(p.failed_count("b1").unwrap(), 0);
        assert_eq!(
            p.unfinished_like("m", "2024-01-01", "2024-01-05", false)
                .unwrap()
                .unwrap()
                .id,
            "b1"
        );
        p.set_status("b1", "success", Some("r1"), None).unwrap();
        assert!(
            p.unfinished_like("m", "2024-01-01", "2024-01-05", false)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            p.backfill("b1").unwrap().unwrap().run_id.as_deref(),
            Some("r1")
        );
    }
}
