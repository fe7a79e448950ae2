//! [`Partitions`] on PostgreSQL: the statements and range merging of `sqlite/partitions.rs`. Where
//! SQLite takes its write lock (`BEGIN IMMEDIATE`), a merge here takes a transaction-scoped advisory
//! lock on the scope it rewrites (table, asset, grain or backfill), so two workers merging into one
//! asset serialise and neither reads rows the other is replacing.

use tokio_postgres::{Error, GenericClient, Row};

use super::PostgresStore;
use crate::StateError;
use crate::partitions::{BackfillRecord, FailedPartition, KeyRange, Partitions};

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
    async fn lock(&self, c: &impl GenericClient, a: &str, b: &str) -> Result<(), Error> {
        let key = format!("{}\u{1f}{a}\u{1f}{b}", self.table);
        c.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
            .await
            .map(|_| ())
    }

    async fn touching(
        &self,
        c: &impl GenericClient,
        a: &str,
        b: &str,
        r: KeyRange,
        pad: i64,
    ) -> Result<Vec<KeyRange>, Error> {
        let RangeTable {
            table,
            a: ca,
            b: cb,
        } = *self;
        let mut out = Vec::new();
        let before = c
            .query_opt(
                &format!("SELECT lo, hi FROM {table} WHERE {ca} = $1 AND {cb} = $2 AND lo < $3 ORDER BY lo DESC LIMIT 1"),
                &[&a, &b, &r.lo],
            )
            .await?;
        if let Some(row) = before {
            let (lo, hi): (i64, i64) = (row.get(0), row.get(1));
            if hi.saturating_add(pad) >= r.lo {
                out.push(KeyRange::new(lo, hi));
            }
        }
        let rows = c
            .query(
                &format!("SELECT lo, hi FROM {table} WHERE {ca} = $1 AND {cb} = $2 AND lo >= $3 AND lo <= $4 ORDER BY lo"),
                &[&a, &b, &r.lo, &r.hi.saturating_add(pad)],
            )
            .await?;
        out.extend(rows.iter().map(|row| KeyRange::new(row.get(0), row.get(1))));
        Ok(out)
    }

    async fn insert(
        &self,
        c: &impl GenericClient,
        a: &str,
        b: &str,
        r: KeyRange,
    ) -> Result<(), Error> {
        self.lock(c, a, b).await?;
        let old = self.touching(c, a, b, r, 1).await?;
        let mut merged = r;
        for o in &old {
            merged = KeyRange::new(merged.lo.min(o.lo), merged.hi.max(o.hi));
        }
        self.replace(c, a, b, &old, &[merged]).await
    }

    async fn remove(
        &self,
        c: &impl GenericClient,
        a: &str,
        b: &str,
        r: KeyRange,
    ) -> Result<(), Error> {
        self.lock(c, a, b).await?;
        let old = self.touching(c, a, b, r, 0).await?;
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
        self.replace(c, a, b, &old, &keep).await
    }

    async fn replace(
        &self,
        c: &impl GenericClient,
        a: &str,
        b: &str,
        old: &[KeyRange],
        new: &[KeyRange],
    ) -> Result<(), Error> {
        let RangeTable {
            table,
            a: ca,
            b: cb,
        } = *self;
        for o in old {
            c.execute(
                &format!("DELETE FROM {table} WHERE {ca} = $1 AND {cb} = $2 AND lo = $3"),
                &[&a, &b, &o.lo],
            )
            .await?;
        }
        for n in new {
            c.execute(
                &format!("INSERT INTO {table} ({ca}, {cb}, lo, hi) VALUES ($1, $2, $3, $4)"),
                &[&a, &b, &n.lo, &n.hi],
            )
            .await?;
        }
        Ok(())
    }

    async fn list(&self, c: &impl GenericClient, a: &str, b: &str) -> Result<Vec<KeyRange>, Error> {
        let RangeTable {
            table,
            a: ca,
            b: cb,
        } = *self;
        let rows = c
            .query(
                &format!("SELECT lo, hi FROM {table} WHERE {ca} = $1 AND {cb} = $2 ORDER BY lo"),
                &[&a, &b],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| KeyRange::new(row.get(0), row.get(1)))
            .collect())
    }
}

const SELECT_BACKFILL: &str = "SELECT id, selection, from_key, to_key, missing, status, created_at, updated_at, run_id, error FROM backfills";

fn backfill_from_row(r: &Row) -> BackfillRecord {
    BackfillRecord {
        id: r.get(0),
        selection: r.get(1),
        from: r.get(2),
        to: r.get(3),
        missing: r.get::<_, i64>(4) != 0,
        status: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
        run_id: r.get(8),
        error: r.get(9),
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresStore {
    fn ranges(&self, t: RangeTable, a: &str, b: &str) -> Result<Vec<KeyRange>, StateError> {
        let (a, b) = (a.to_string(), b.to_string());
        self.exec(move |c, rt| rt.block_on(t.list(c, &a, &b)))
    }

    fn change_ranges(
        &self,
        t: RangeTable,
        a: &str,
        b: &str,
        r: KeyRange,
        add: bool,
    ) -> Result<(), StateError> {
        let (a, b) = (a.to_string(), b.to_string());
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                if add {
                    t.insert(&tx, &a, &b, r).await?;
                } else {
                    t.remove(&tx, &a, &b, r).await?;
                }
                tx.commit().await
            })
        })
    }
}

impl Partitions for PostgresStore {
    fn record_built(&self, asset: &str, grain: &str, range: KeyRange) -> Result<(), StateError> {
        self.change_ranges(BUILT, asset, grain, range, true)
    }

    fn forget_built(&self, asset: &str, grain: &str, range: KeyRange) -> Result<(), StateError> {
        self.change_ranges(BUILT, asset, grain, range, false)
    }

    fn built(&self, asset: &str, grain: &str) -> Result<Vec<KeyRange>, StateError> {
        self.ranges(BUILT, asset, grain)
    }

    fn backfills(&self, n: usize) -> Result<Vec<BackfillRecord>, StateError> {
        self.exec(move |c, rt| {
            let sql = format!("{SELECT_BACKFILL} ORDER BY created_at DESC, seq DESC LIMIT $1");
            let rows = rt.block_on(c.query(&sql, &[&limit(n)]))?;
            Ok(rows.iter().map(backfill_from_row).collect())
        })
    }

    fn backfill(&self, id: &str) -> Result<Option<BackfillRecord>, StateError> {
        let id = id.to_string();
        self.exec(move |c, rt| {
            let sql = format!("{SELECT_BACKFILL} WHERE id = $1");
            let row = rt.block_on(c.query_opt(&sql, &[&id]))?;
            Ok(row.as_ref().map(backfill_from_row))
        })
    }

    fn unfinished_backfill_like(
        &self,
        selection: &str,
        from: &str,
        to: &str,
        missing: bool,
    ) -> Result<Option<BackfillRecord>, StateError> {
        let (selection, from, to, missing) = (
            selection.to_string(),
            from.to_string(),
            to.to_string(),
            i64::from(missing),
        );
        self.exec(move |c, rt| {
            let sql = format!("{SELECT_BACKFILL} WHERE selection = $1 AND from_key = $2 AND to_key = $3 AND missing = $4 AND status <> 'success' ORDER BY created_at DESC, seq DESC LIMIT 1");
            let row = rt.block_on(c.query_opt(&sql, &[&selection, &from, &to, &missing]))?;
            Ok(row.as_ref().map(backfill_from_row))
        })
    }

    fn create_backfill(
        &self,
        record: &BackfillRecord,
        plan: &[(String, Vec<KeyRange>)],
    ) -> Result<(), StateError> {
        let (r, plan) = (record.clone(), plan.to_vec());
        self.exec(move |c, rt| {
            rt.block_on(async {
                let tx = c.transaction().await?;
                tx.execute(
                    "INSERT INTO backfills (id, selection, from_key, to_key, missing, status, created_at, updated_at, run_id, error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[&r.id, &r.selection, &r.from, &r.to, &i64::from(r.missing), &r.status, &r.created_at, &r.updated_at, &r.run_id, &r.error],
                )
                .await?;
                for (asset, ranges) in &plan {
                    for x in ranges {
                        tx.execute(
                            "INSERT INTO backfill_plan (backfill_id, asset, lo, hi) VALUES ($1, $2, $3, $4)",
                            &[&r.id, asset, &x.lo, &x.hi],
                        )
                        .await?;
                    }
                }
                tx.commit().await
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
        let (id, status, run_id, error, at) = (
            id.to_string(),
            status.to_string(),
            run_id.map(str::to_string),
            error.map(str::to_string),
            at.to_string(),
        );
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "UPDATE backfills SET status = $2, updated_at = $3, run_id = coalesce($4, run_id), error = $5 WHERE id = $1",
                &[&id, &status, &at, &run_id, &error],
            ))
            .map(|_| ())
        })
    }

    fn backfill_plan_assets(&self, id: &str) -> Result<Vec<String>, StateError> {
        let id = id.to_string();
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                "SELECT DISTINCT asset FROM backfill_plan WHERE backfill_id = $1 ORDER BY asset",
                &[&id],
            ))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn backfill_plan(&self, id: &str, asset: &str) -> Result<Vec<KeyRange>, StateError> {
        self.ranges(PLAN, id, asset)
    }

    fn backfill_done(&self, id: &str, asset: &str) -> Result<Vec<KeyRange>, StateError> {
        self.ranges(DONE, id, asset)
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
        let (id, asset, grain, key) = (
            id.to_string(),
            asset.to_string(),
            grain.to_string(),
            key.to_string(),
        );
        self.exec(move |c, rt| {
            rt.block_on(async {
                // Locks in one order everywhere (a backfill's done set, then the asset's built set).
                let tx = c.transaction().await?;
                DONE.insert(&tx, &id, &asset, k).await?;
                BUILT.insert(&tx, &asset, &grain, k).await?;
                tx.execute(
                    "DELETE FROM backfill_failed WHERE backfill_id = $1 AND asset = $2 AND partition_key = $3",
                    &[&id, &asset, &key],
                )
                .await?;
                tx.commit().await
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
        let (id, asset, key, error) = (
            id.to_string(),
            asset.to_string(),
            key.to_string(),
            error.to_string(),
        );
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "INSERT INTO backfill_failed (backfill_id, asset, partition_key, error) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (backfill_id, asset, partition_key) DO UPDATE SET error = excluded.error",
                &[&id, &asset, &key, &error],
            ))
            .map(|_| ())
        })
    }

    fn failed_partitions(&self, id: &str, n: usize) -> Result<Vec<FailedPartition>, StateError> {
        let id = id.to_string();
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                "SELECT asset, partition_key, error FROM backfill_failed WHERE backfill_id = $1
                 ORDER BY asset, partition_key LIMIT $2",
                &[&id, &limit(n)],
            ))?;
            Ok(rows
                .iter()
                .map(|r| FailedPartition {
                    asset: r.get(0),
                    key: r.get(1),
                    error: r.get(2),
                })
                .collect())
        })
    }

    fn failed_partition_count(&self, id: &str) -> Result<u64, StateError> {
        let id = id.to_string();
        self.exec(move |c, rt| {
            let row = rt.block_on(c.query_one(
                "SELECT count(*) FROM backfill_failed WHERE backfill_id = $1",
                &[&id],
            ))?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }
}
