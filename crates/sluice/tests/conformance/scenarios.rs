//! The scenarios, generic over [`ConformanceSource`]. Each works in a project and an upstream of its
//! own; what is asserted holds whatever the timing of a kill.

use std::time::Duration;

use crate::harness::{
    BRONZE, KillAt, PII_KEY, Project, QUARANTINE, as_u64, run_killed, run_peak_rss,
};
use crate::{ConformanceSource, Drift, SourceOptions, Upstream, Watermark, email, extra, secret};

/// Longest a kill waits for its moment; a run that gets there sooner is killed sooner.
const KILL_LIMIT: Duration = Duration::from_secs(60);

/// Bronze holds whole commits only and the watermark covers no more than them: ids `1..=m`, each
/// once, and no recorded high-water mark beyond `m` (kinds without one record none at all).
fn assert_committed_state(
    kind: &dyn ConformanceSource,
    p: &Project,
    up: &dyn Upstream,
    when: &str,
) {
    let k = kind.kind();
    let (rows, distinct, max) = p.bronze_ids();
    assert_eq!(
        rows, distinct,
        "{k}: {when}: a row landed twice ({rows} rows, {distinct} ids)"
    );
    assert_eq!(
        distinct, max,
        "{k}: {when}: bronze holds {distinct} distinct ids up to {max}: a row below a landed one is missing"
    );
    assert!(
        max <= up.max_id(),
        "{k}: {when}: id {max} was never written"
    );
    let state = p.state_watermark();
    let commits = p.commit_watermarks();
    match kind.watermark() {
        Watermark::Cursor(column) => {
            if let Some(w) = &state {
                let w = as_u64(w).unwrap_or_else(|| panic!("{k}: state watermark {w}"));
                assert!(
                    w <= max,
                    "{k}: {when}: the state database's watermark {w} is past the largest committed {column} {max}"
                );
            }
            for w in &commits {
                let v = as_u64(w).unwrap_or_else(|| panic!("{k}: commit watermark {w}"));
                assert!(
                    v <= max,
                    "{k}: {when}: a commit records watermark {v}, past the largest committed {column} {max}"
                );
            }
        }
        Watermark::None(why) => {
            assert!(
                state.is_none() && commits.is_empty(),
                "{k} has no high-water mark ({why}), yet one is recorded: state {state:?}, commits {commits:?}"
            );
        }
    }
}

/// `sluice run` killed at several moments while the upstream keeps growing; then a run to completion
/// lands exactly the upstream rows.
pub fn resume_after_sigkill(kind: &dyn ConformanceSource) {
    let p = Project::new();
    let Some(mut up) = p.provision(kind, "resume", 3000, 200, 300) else {
        return;
    };
    p.source(
        up.as_ref(),
        &SourceOptions {
            commit_rows: Some(300),
            ..SourceOptions::default()
        },
    );
    let moments = [
        KillAt::Spawned,
        KillAt::Commits(1),
        KillAt::UncommittedFile,
        KillAt::Commits(3),
        KillAt::UncommittedFile,
        KillAt::Commits(2),
    ];
    let mut interrupted = 0;
    for at in moments {
        interrupted += usize::from(run_killed(&p, at, KILL_LIMIT));
        assert_committed_state(kind, &p, up.as_ref(), &format!("after a SIGKILL at {at:?}"));
        up.append(900);
    }
    // Each run has at least three commits to make, so the commit-count moments come mid-run.
    assert!(
        interrupted >= 2,
        "{}: only {interrupted} kill(s) found the run still running",
        kind.kind()
    );
    p.run();
    let total = up.max_id();
    assert_eq!(
        p.bronze_ids(),
        (total, total, total),
        "{}: after the final run bronze must hold ids 1..={total}, each once",
        kind.kind()
    );
    assert_committed_state(kind, &p, up.as_ref(), "after the final run");
    p.run();
    assert_eq!(
        p.bronze_ids().0,
        total,
        "{}: a run with nothing new landed rows",
        kind.kind()
    );
}

/// The mark equals the largest landed cursor after a run, moves only with commits, and kinds without
/// one record none.
pub fn high_water_mark_only_after_commit(kind: &dyn ConformanceSource) {
    let p = Project::new();
    let Some(mut up) = p.provision(kind, "hwm", 1000, 100, 250) else {
        return;
    };
    let opts = SourceOptions {
        commit_rows: Some(250),
        ..SourceOptions::default()
    };
    p.source(up.as_ref(), &opts);
    p.run();
    assert_committed_state(kind, &p, up.as_ref(), "after the first run");
    up.append(1000);
    run_killed(&p, KillAt::UncommittedFile, KILL_LIMIT);
    assert_committed_state(
        kind,
        &p,
        up.as_ref(),
        "after a SIGKILL between a write and its commit",
    );
    p.run();
    p.run();
    let k = kind.kind();
    match kind.watermark() {
        Watermark::Cursor(column) => {
            let state = p.state_watermark().and_then(|w| as_u64(&w));
            assert_eq!(
                state,
                Some(up.max_id()),
                "{k}: after a complete run the state database's mark is the largest {column}"
            );
            let marks: Vec<u64> = p.commit_watermarks().iter().filter_map(as_u64).collect();
            assert_eq!(
                marks.last().copied(),
                Some(up.max_id()),
                "{k}: the newest commit's mark"
            );
            assert!(
                marks.windows(2).all(|w| w[0] <= w[1]),
                "{k}: the mark went back: {marks:?}"
            );
        }
        Watermark::None(_) => assert_committed_state(kind, &p, up.as_ref(), "after two runs"),
    }
    assert_eq!(p.bronze_ids().0, up.max_id(), "{k}: every row landed once");
}

/// A column added upstream reaches bronze as the kind documents.
pub fn schema_drift(kind: &dyn ConformanceSource) {
    let p = Project::new();
    let Some(mut up) = p.provision(kind, "drift", 200, 50, 100) else {
        return;
    };
    p.source(up.as_ref(), &SourceOptions::default());
    p.run();
    up.add_column();
    up.append(100);
    let k = kind.kind();
    match kind.drift() {
        Drift::AddsColumn => {
            p.run();
            assert_eq!(
                p.bronze_ids(),
                (300, 300, 300),
                "{k}: every row landed once"
            );
            let old = p.number(&format!(
                "select count(*) from {BRONZE} where id <= 200 and extra is null"
            ));
            assert_eq!(
                old, 200.0,
                "{k}: rows landed before the column existed read NULL"
            );
            let new = p.rows(&format!(
                "select id, extra from {BRONZE} where id > 200 order by id"
            ));
            assert_eq!(new.len(), 100, "{k}");
            for r in &new {
                let id = as_u64(&r["id"]).unwrap();
                assert_eq!(r["extra"].as_str(), Some(extra(id).as_str()), "{k}: {r}");
            }
        }
    }
}

/// A row that cannot land goes to quarantine, once, with a reason naming the column; the rest lands.
pub fn quarantine_with_reasons(kind: &dyn ConformanceSource) {
    let p = Project::new();
    let Some(mut up) = p.provision(kind, "quarantine", 100, 50, 100) else {
        return;
    };
    p.source(up.as_ref(), &SourceOptions::default());
    p.run();
    let bad = up.insert_bad_row();
    up.append(50);
    p.run();
    p.run();
    let k = kind.kind();
    let column = kind.quarantine_column();
    let (rows, distinct, max) = p.bronze_ids();
    assert_eq!(
        (rows, distinct, max),
        (150, 150, 151),
        "{k}: the good rows land once"
    );
    assert_eq!(
        p.number(&format!("select count(*) from {BRONZE} where id = {bad}")),
        0.0,
        "{k}: the bad row must not land"
    );
    let q = p.rows(&format!("select reason, raw from {QUARANTINE}"));
    assert_eq!(
        q.len(),
        1,
        "{k}: exactly the bad row is quarantined, once: {q:?}"
    );
    let reason = q[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("`{column}`")),
        "{k}: the reason must name the column `{column}`: {reason}"
    );
    let raw = q[0]["raw"].as_str().unwrap_or_default();
    assert!(
        raw.contains(&bad.to_string()),
        "{k}: the raw row keeps the values: {raw}"
    );
}

/// The `hash` rule under the harness's PII key (`pii: {key: ...}` in its sluice.yml).
fn keyed_hash(s: &str) -> String {
    sluice_ingest::landing::hash(&sluice_core::pii::PiiKey::new(PII_KEY.as_bytes()), s)
}

/// `pii: {email: hash, secret: drop}`: no clear value in bronze, nor in quarantine.
pub fn pii_rules(kind: &dyn ConformanceSource) {
    let p = Project::new();
    let Some(mut up) = p.provision(kind, "pii", 200, 50, 100) else {
        return;
    };
    p.source(
        up.as_ref(),
        &SourceOptions {
            pii: true,
            ..SourceOptions::default()
        },
    );
    p.run();
    let k = kind.kind();
    let sample = p.rows(&format!("select * from {BRONZE} order by id"));
    assert_eq!(sample.len(), 200, "{k}");
    for r in &sample {
        assert!(r.get("secret").is_none(), "{k}: `secret` is dropped: {r}");
        let id = as_u64(&r["id"]).unwrap();
        assert_eq!(
            r["email"].as_str(),
            Some(keyed_hash(&email(id)).as_str()),
            "{k}: `email` is its HMAC-SHA-256 under the project's key"
        );
        let text = r.to_string();
        assert!(
            !text.contains(&email(id)) && !text.contains(&secret(id)),
            "{k}: a clear PII value landed: {text}"
        );
    }
    // A rejected row is kept in the lake too: its PII must be protected there as well.
    let bad = up.insert_bad_row();
    p.run();
    let q = p.rows(&format!("select * from {QUARANTINE}"));
    assert_eq!(q.len(), 1, "{k}: {q:?}");
    let text = q[0].to_string();
    assert!(
        !text.contains(&email(bad)) && !text.contains(&secret(bad)),
        "{k}: quarantine keeps the clear PII of row {bad} although the table's pii rules hash/drop it \
         (`{QUARANTINE}` is readable over SQL, HTTP and the PostgreSQL protocol): {text}"
    );
}

/// Rows of the smaller load (1 KiB each); the larger has four times as many.
const MEMORY_ROWS: u64 = 20_000;
const MEMORY_PAYLOAD: usize = 1024;

/// Lands `rows` rows into a project of its own; returns the peak resident memory of the run.
fn memory_load(kind: &dyn ConformanceSource, rows: u64) -> Option<u64> {
    let p = Project::new();
    let up = p.provision(kind, "memory", rows, MEMORY_PAYLOAD, u64::MAX)?;
    p.source(
        up.as_ref(),
        &SourceOptions {
            commit_rows: Some(4000),
            ..SourceOptions::default()
        },
    );
    let peak = run_peak_rss(&p);
    assert_eq!(p.bronze_ids(), (rows, rows, rows), "{}", kind.kind());
    Some(peak)
}

/// Landing four times the data raises the peak resident memory by far less than the extra data.
pub fn bounded_memory(kind: &dyn ConformanceSource) {
    let Some(small) = memory_load(kind, MEMORY_ROWS) else {
        return;
    };
    let Some(large) = memory_load(kind, 4 * MEMORY_ROWS) else {
        return;
    };
    let extra = 3 * MEMORY_ROWS * MEMORY_PAYLOAD as u64;
    let grew = large.saturating_sub(small);
    eprintln!(
        "{}: peak RSS {} MB for {} rows, {} MB for {} rows",
        kind.kind(),
        small >> 20,
        MEMORY_ROWS,
        large >> 20,
        4 * MEMORY_ROWS
    );
    assert!(
        grew < extra / 2,
        "{}: peak RSS grew by {} MB for {} MB more data; {}",
        kind.kind(),
        grew >> 20,
        extra >> 20,
        kind.memory_note()
    );
}

/// The same kind on a lake in object storage (`lake: s3://…` on a real S3-protocol server, its keys
/// in the project's `.env` as an operator keeps them): the first run lands every row, a second run
/// lands only the new ones (the kind's incremental or file-by-file progress works against the
/// bucket), a bad row goes to the quarantine table in the bucket, and nothing of the lake is on
/// local disk.
pub fn lands_on_s3(kind: &dyn ConformanceSource) {
    let Some(server) = sluice_lake::testing::S3Server::start("conformance") else {
        return;
    };
    let p = Project::new();
    let Some(mut up) = p.provision(kind, "s3", 40, 50, 20) else {
        return;
    };
    p.on_s3(&server);
    p.source(up.as_ref(), &SourceOptions::default());
    let k = kind.kind();
    p.run();
    let counts = |p: &Project| {
        let row = p.rows(&format!(
            "select count(*) as n, count(distinct id) as d, max(id) as m from {BRONZE}"
        ));
        let get = |key: &str| as_u64(&row[0][key]).unwrap_or_else(|| panic!("{key} in {row:?}"));
        (get("n"), get("d"), get("m"))
    };
    assert_eq!(counts(&p), (40, 40, 40), "{k}: the first run on S3");
    let bad = up.insert_bad_row();
    up.append(10);
    p.run();
    assert_eq!(
        counts(&p),
        (50, 50, 51),
        "{k}: the second run on S3 lands the new good rows once"
    );
    let q = p.rows(&format!("select raw from {QUARANTINE}"));
    assert_eq!(q.len(), 1, "{k}: the bad row is quarantined once: {q:?}");
    assert!(
        q[0]["raw"]
            .as_str()
            .is_some_and(|raw| raw.contains(&bad.to_string())),
        "{k}: {q:?}"
    );
    assert!(
        !p.dir.join("lake").exists(),
        "{k}: the lake is in the bucket, not on disk"
    );
    let lake = sluice_lake::Lake::open_with(&server.lake_url("conf"), &server.options()).unwrap();
    let tables = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(lake.list_tables())
        .unwrap();
    assert!(
        tables.contains(&sluice_lake::TableId::bronze("conf", "items")),
        "{k}: {tables:?}"
    );
}
