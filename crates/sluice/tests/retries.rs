//! Transient failures are retried with backoff; permanent ones are not.

mod common;

use common::{sluice, sluice_ok, write};

#[test]
fn a_locked_source_database_is_retried_until_it_frees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "sluice.yml",
        "name: r\ndefaults:\n  retries: 6\n  retry_backoff: 150ms\n",
    );
    write(
        dir,
        "sources/app.yml",
        "kind: sqlite\nconnection: app.db\nbusy_timeout: 1ms\ntables:\n  - name: items\n",
    );
    let db = dir.join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER, name TEXT); INSERT INTO items VALUES (1, 'a'), (2, 'b');",
    )
    .unwrap();
    // The application holds an exclusive lock for a while, as a long write transaction would.
    conn.execute_batch("BEGIN EXCLUSIVE; UPDATE items SET name = 'c' WHERE id = 2;")
        .unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        conn.execute_batch("COMMIT;").unwrap();
    });
    let out = sluice_ok(dir, &["run"]);
    holder.join().unwrap();
    assert!(out.contains("1 succeeded, 0 failed"), "{out}");
    let run_id = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let detail = sluice_ok(dir, &["runs", &run_id]);
    let row = detail.lines().find(|l| l.contains("app.items")).unwrap();
    let attempts: u32 = row.split('|').nth(4).unwrap().trim().parse().unwrap();
    assert!(
        attempts > 1,
        "the lock must have caused at least one retry: {detail}"
    );
    assert_eq!(
        common::query_f64(
            dir,
            "select count(*) from bronze.app__items where name = 'c'"
        ),
        1.0
    );
}

#[test]
fn a_sql_error_is_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: r\ndefaults:\n  retries: 3\n");
    write(
        dir,
        "models/gold/bad.sql",
        "select no_such_column from (select 1 as x) t",
    );
    let out = sluice(dir, &["run"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run_id = stdout
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let detail = sluice_ok(dir, &["runs", &run_id]);
    let row = detail.lines().find(|l| l.contains("bad")).unwrap();
    assert_eq!(row.split('|').nth(4).unwrap().trim(), "1", "{detail}");
}
