//! Partition ranges and backfills in the state database.
//!
//! The backend ([`sluice_state::Partitions`]) stores the partitions built per asset as merged
//! inclusive ranges of partition indices (see [`super::ranges`]): recording a range coalesces it
//! with the overlapping and adjacent rows in one transaction, so a million built partitions are one
//! row, and listing an asset's ranges is one ordered index scan. Each backfill has a plan and a done
//! set in the same encoding, and its failed partitions. [`PartitionStore`] speaks [`RangeSet`].

use sluice_state::KeyRange;

/// A backfill as recorded (defined by `sluice-state`, whose backends store it).
pub use sluice_state::BackfillRecord;

use super::ranges::{Range, RangeSet};
use crate::state::{StateError, StateStore};

/// Partition ranges and backfills, over the state database.
pub struct PartitionStore<'a> {
    state: &'a StateStore,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn to_set(ranges: Vec<KeyRange>) -> RangeSet {
    RangeSet::from_ranges(ranges.into_iter().map(|r| Range::new(r.lo, r.hi)))
}

fn to_keys(set: &RangeSet) -> Vec<KeyRange> {
    set.ranges()
        .iter()
        .map(|r| KeyRange::new(r.lo, r.hi))
        .collect()
}

impl<'a> PartitionStore<'a> {
    /// The partition tables of `state` (created with the rest of the schema by `sluice-state`).
    /// Fallible only for compatibility with callers written when it created its tables.
    pub fn new(state: &'a StateStore) -> Result<PartitionStore<'a>, StateError> {
        Ok(PartitionStore { state })
    }

    fn db(&self) -> &dyn sluice_state::State {
        &**self.state.backend()
    }

    /// Records partitions `lo..=hi` of `asset` (granularity `grain`) as built.
    pub fn record_built(
        &self,
        asset: &str,
        grain: &str,
        lo: i64,
        hi: i64,
    ) -> Result<(), StateError> {
        self.db().record_built(asset, grain, KeyRange::new(lo, hi))
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
        self.db().forget_built(asset, grain, KeyRange::new(lo, hi))
    }

    /// The built partitions of `asset`, as ranges (one ordered index scan).
    pub fn built(&self, asset: &str, grain: &str) -> Result<RangeSet, StateError> {
        self.db().built(asset, grain).map(to_set)
    }

    /// The backfills, newest first.
    pub fn backfills(&self, limit: usize) -> Result<Vec<BackfillRecord>, StateError> {
        self.db().backfills(limit)
    }

    /// One backfill.
    pub fn backfill(&self, id: &str) -> Result<Option<BackfillRecord>, StateError> {
        self.db().backfill(id)
    }

    /// The newest unfinished backfill with the same request (what a repeated command resumes).
    pub fn unfinished_like(
        &self,
        selection: &str,
        from: &str,
        to: &str,
        missing: bool,
    ) -> Result<Option<BackfillRecord>, StateError> {
        self.db()
            .unfinished_backfill_like(selection, from, to, missing)
    }

    /// Records a new backfill and its plan (per asset, the partitions to build).
    pub fn create_backfill(
        &self,
        r: &BackfillRecord,
        plan: &[(String, RangeSet)],
    ) -> Result<(), StateError> {
        let plan: Vec<(String, Vec<KeyRange>)> = plan
            .iter()
            .map(|(asset, set)| (asset.clone(), to_keys(set)))
            .collect();
        self.db().create_backfill(r, &plan)
    }

    /// Sets a backfill's status (and its latest run, error).
    pub fn set_status(
        &self,
        id: &str,
        status: &str,
        run_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        self.db()
            .set_backfill_status(id, status, run_id, error, &now())
    }

    /// The assets of a backfill's plan.
    pub fn plan_assets(&self, id: &str) -> Result<Vec<String>, StateError> {
        self.db().backfill_plan_assets(id)
    }

    /// The partitions of `asset` a backfill must build.
    pub fn plan(&self, id: &str, asset: &str) -> Result<RangeSet, StateError> {
        self.db().backfill_plan(id, asset).map(to_set)
    }

    /// The partitions of `asset` a backfill has built.
    pub fn done(&self, id: &str, asset: &str) -> Result<RangeSet, StateError> {
        self.db().backfill_done(id, asset).map(to_set)
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
        self.db().mark_partition_done(id, asset, grain, k, key)
    }

    /// Records that partition `key` of `asset` failed in the backfill.
    pub fn mark_failed(
        &self,
        id: &str,
        asset: &str,
        key: &str,
        error: &str,
    ) -> Result<(), StateError> {
        self.db().mark_partition_failed(id, asset, key, error)
    }

    /// The failed partitions of a backfill: `(asset, key, error)`, at most `limit`.
    pub fn failed(
        &self,
        id: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, String)>, StateError> {
        Ok(self
            .db()
            .failed_partitions(id, limit)?
            .into_iter()
            .map(|f| (f.asset, f.key, f.error))
            .collect())
    }

    /// How many partitions of a backfill failed.
    pub fn failed_count(&self, id: &str) -> Result<u64, StateError> {
        self.db().failed_partition_count(id)
    }
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
        let db = std::sync::Arc::new(sluice_state::SqliteStore::in_memory().unwrap());
        let s = StateStore::from_backend(db.clone());
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
        let rows: i64 = db
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
