//! Built partitions and backfills.

use super::*;

fn ranges(v: &[KeyRange]) -> Vec<(i64, i64)> {
    v.iter().map(|r| (r.lo, r.hi)).collect()
}

pub fn built_partitions(s: &dyn State) {
    let put = |lo, hi| s.record_built("m", "day", KeyRange::new(lo, hi)).unwrap();
    for k in [5, 7, 6, 1, 2, 10] {
        put(k, k);
    }
    assert_eq!(
        ranges(&s.built("m", "day").unwrap()),
        [(1, 2), (5, 7), (10, 10)]
    );
    // Backwards is the same range; overlapping and adjacent ranges merge.
    put(4, 3);
    assert_eq!(ranges(&s.built("m", "day").unwrap()), [(1, 7), (10, 10)]);
    put(6, 12);
    assert_eq!(ranges(&s.built("m", "day").unwrap()), [(1, 12)]);
    s.forget_built("m", "day", KeyRange::new(3, 3)).unwrap();
    s.forget_built("m", "day", KeyRange::new(11, 20)).unwrap();
    assert_eq!(ranges(&s.built("m", "day").unwrap()), [(1, 2), (4, 10)]);
    s.forget_built("m", "day", KeyRange::new(0, 100)).unwrap();
    assert!(s.built("m", "day").unwrap().is_empty());
    put(1, 1);
    assert!(s.built("m", "hour").unwrap().is_empty());
    assert!(s.built("other", "day").unwrap().is_empty());
    // Far apart keys (hour partitions over centuries) keep their values.
    s.record_built("big", "hour", KeyRange::new(-5, i64::MAX - 1))
        .unwrap();
    assert_eq!(
        ranges(&s.built("big", "hour").unwrap()),
        [(-5, i64::MAX - 1)]
    );
}

fn backfill(id: &str, created: &str) -> BackfillRecord {
    BackfillRecord {
        id: id.into(),
        selection: "m".into(),
        from: "2024-01-01".into(),
        to: "2024-01-05".into(),
        missing: false,
        status: "planned".into(),
        created_at: created.into(),
        updated_at: created.into(),
        run_id: None,
        error: None,
    }
}

pub fn backfills(s: &dyn State) {
    assert!(s.backfills(10).unwrap().is_empty());
    let b1 = backfill("b1", "2026-01-01T00:00:00Z");
    s.create_backfill(
        &b1,
        &[
            ("m".into(), vec![KeyRange::new(1, 5)]),
            ("a".into(), vec![KeyRange::new(1, 1), KeyRange::new(3, 3)]),
        ],
    )
    .unwrap();
    s.create_backfill(&backfill("b2", "2026-01-02T00:00:00Z"), &[])
        .unwrap();
    s.create_backfill(&backfill("b3", "2026-01-02T00:00:00Z"), &[])
        .unwrap();
    assert!(
        s.create_backfill(&b1, &[]).is_err(),
        "a backfill id is recorded once"
    );
    let listed: Vec<String> = s.backfills(10).unwrap().into_iter().map(|b| b.id).collect();
    assert_eq!(
        listed,
        ["b3", "b2", "b1"],
        "newest first, later recorded first"
    );
    assert_eq!(s.backfills(1).unwrap().len(), 1);
    assert_eq!(s.backfill("b1").unwrap(), Some(b1.clone()));
    assert_eq!(s.backfill("nope").unwrap(), None);
    assert_eq!(s.backfill_plan_assets("b1").unwrap(), ["a", "m"]);
    assert_eq!(
        ranges(&s.backfill_plan("b1", "a").unwrap()),
        [(1, 1), (3, 3)]
    );

    s.mark_partition_failed("b1", "m", "k2", "boom").unwrap();
    s.mark_partition_failed("b1", "m", "k2", "boom again")
        .unwrap();
    s.mark_partition_failed("b1", "m", "k3", "bang").unwrap();
    s.mark_partition_failed("b1", "a", "k9", "bust").unwrap();
    assert_eq!(s.failed_partition_count("b1").unwrap(), 3);
    let failed: Vec<(String, String, String)> = s
        .failed_partitions("b1", 2)
        .unwrap()
        .into_iter()
        .map(|f| (f.asset, f.key, f.error))
        .collect();
    assert_eq!(
        failed,
        [
            ("a".into(), "k9".into(), "bust".into()),
            ("m".into(), "k2".into(), "boom again".into())
        ]
    );
    for k in [1, 2, 4] {
        s.mark_partition_done("b1", "m", "day", k, &format!("k{k}"))
            .unwrap();
    }
    assert_eq!(
        ranges(&s.backfill_done("b1", "m").unwrap()),
        [(1, 2), (4, 4)]
    );
    assert_eq!(
        ranges(&s.built("m", "day").unwrap()),
        [(1, 2), (4, 4)],
        "done is built"
    );
    assert_eq!(s.failed_partition_count("b1").unwrap(), 2, "k2 cleared");

    let like = |missing| {
        s.unfinished_backfill_like("m", "2024-01-01", "2024-01-05", missing)
            .unwrap()
            .map(|b| b.id)
    };
    assert_eq!(like(false).as_deref(), Some("b3"));
    assert_eq!(like(true), None);
    s.set_backfill_status("b3", "success", Some("r3"), None, "t3")
        .unwrap();
    s.set_backfill_status("b2", "success", None, None, "t2")
        .unwrap();
    assert_eq!(like(false).as_deref(), Some("b1"));
    s.set_backfill_status("b1", "running", Some("r1"), None, "t4")
        .unwrap();
    s.set_backfill_status("b1", "failed", None, Some("2 failed"), "t5")
        .unwrap();
    let b = s.backfill("b1").unwrap().unwrap();
    assert_eq!(
        (
            b.status.as_str(),
            b.run_id.as_deref(),
            b.error.as_deref(),
            b.updated_at.as_str()
        ),
        ("failed", Some("r1"), Some("2 failed"), "t5"),
        "a status without a run keeps the latest run"
    );
}
