//! Run control from the command line: `sluice runs show` (timeline and logs), `sluice retry` (only
//! what failed and its downstream), `sluice runs cancel` (from another process) and Ctrl-C.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{run_id_of, sluice, sluice_ok, write};

/// `a -> b` (b fails until fixed), `c` independent.
fn project(dir: &std::path::Path) {
    write(dir, "sluice.yml", "name: rc\ndefaults:\n  retries: 0\n");
    write(dir, "models/silver/a.sql", "select 1 as x");
    write(
        dir,
        "models/silver/b.sql",
        "select x, no_such_column from {{ ref('a') }}",
    );
    write(
        dir,
        "models/gold/b_down.sql",
        "select x from {{ ref('b') }}",
    );
    write(dir, "models/gold/c.sql", "select 2 as y");
}

#[test]
fn retry_reruns_only_the_failures_and_their_downstream() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let out = sluice(dir, &["run"]);
    assert!(!out.status.success());
    let first = run_id_of(&String::from_utf8_lossy(&out.stdout));

    // The timeline shows every node with a bar; the failure's log says why it was not retried.
    let shown = sluice_ok(dir, &["runs", "show", &first]);
    for node in ["a", "b", "b_down", "c"] {
        assert!(
            shown.lines().any(|l| l.starts_with(&format!("| {node} "))),
            "{node} in {shown}"
        );
    }
    assert!(shown.contains('█'), "a timeline bar: {shown}");
    assert!(shown.contains("log of b:"), "{shown}");
    assert!(
        shown.contains("attempt 1 failed (permanent, not retried)"),
        "{shown}"
    );
    assert!(
        !shown.contains("log of c:"),
        "successes' logs only with --logs"
    );
    assert!(sluice_ok(dir, &["runs", "show", "--logs", &first]).contains("log of c:"));

    // Fix the model, retry: b and b_down run, a and c do not run again.
    write(dir, "models/silver/b.sql", "select x from {{ ref('a') }}");
    let retried = sluice_ok(dir, &["retry", &first]);
    assert!(retried.contains("Retrying 2 node(s)"), "{retried}");
    let second = run_id_of(&retried);
    let detail = sluice_ok(dir, &["runs", &second]);
    let ran: Vec<&str> = detail
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .filter(|n| *n != "node")
        .collect();
    assert_eq!(ran.len(), 2, "{detail}");
    assert!(ran.contains(&"b") && ran.contains(&"b_down"), "{detail}");
    assert!(detail.contains("(retry) success"), "{detail}");

    // Nothing left to retry, and an unknown run is named.
    let again = sluice(dir, &["retry", &second]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to retry"));
    let unknown = sluice(dir, &["retry", "nope"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no run `nope`"));
}

/// A project whose only source stays locked (a transient error, retried for a long time), so the
/// run keeps going until it is cancelled.
fn stuck_project(dir: &std::path::Path) -> rusqlite::Connection {
    write(
        dir,
        "sluice.yml",
        "name: stuck\ndefaults:\n  retries: 100\n  retry_backoff: 200ms\n  max_retry_backoff: 200ms\n",
    );
    write(
        dir,
        "sources/app.yml",
        "kind: sqlite\nconnection: app.db\nbusy_timeout: 1ms\ntables:\n  - name: items\n",
    );
    write(
        dir,
        "models/silver/items.sql",
        "select * from {{ source('app', 'items') }}",
    );
    let conn = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    conn.execute_batch("CREATE TABLE items (id INTEGER); INSERT INTO items VALUES (1);")
        .unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE; UPDATE items SET id = 2;")
        .unwrap();
    conn
}

fn spawn_run(dir: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(dir)
        .arg("run")
        .env("SLUICE_LOG", "error")
        .envs(common::state_db(dir).map(|s| ("SLUICE_STATE_DB", s)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The id of the run shown as `running` by `sluice runs`.
fn running_run(dir: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = sluice_ok(dir, &["runs"]);
        if let Some(line) = list.lines().find(|l| l.contains("running")) {
            return line.split('|').nth(1).unwrap().trim().to_string();
        }
        assert!(Instant::now() < deadline, "no running run: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_run_is_cancelled_from_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _lock = stuck_project(dir);
    let child = spawn_run(dir);
    let id = running_run(dir);
    let asked = Instant::now();
    let out = sluice_ok(dir, &["runs", "cancel", &id]);
    assert!(out.contains("Cancel requested"), "{out}");
    let done = child.wait_with_output().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "it stopped promptly"
    );
    assert_eq!(done.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains(&format!("Run {id} cancelled")), "{stdout}");
    let shown = sluice_ok(dir, &["runs", "show", &id]);
    assert!(shown.contains("cancelled"), "{shown}");
    // The model never started: it is cancelled, not failed.
    let items = shown.lines().find(|l| l.starts_with("| items ")).unwrap();
    assert!(items.contains("cancelled"), "{shown}");
    // Cancelling a finished run is refused.
    let again = sluice(dir, &["runs", "cancel", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not running"));
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_the_run_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _lock = stuck_project(dir);
    let child = spawn_run(dir);
    let id = running_run(dir);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(130), "{done:?}");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("Cancelling the run"), "{stderr}");
    let list = sluice_ok(dir, &["runs"]);
    let row = list.lines().find(|l| l.contains(&id)).unwrap();
    assert!(row.contains("cancelled"), "recorded as cancelled: {list}");
}
