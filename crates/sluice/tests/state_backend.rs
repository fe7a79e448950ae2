//! `state: postgres://…` end to end through the binary: a URL is never taken for a SQLite path,
//! a bad or unreachable one is a clear error without the password, and `sluice state migrate`
//! copies a project's SQLite state into PostgreSQL, where `sluice runs` reads it back. Against the
//! server at `SLUICE_TEST_STATE_URL` (default: the local trust server); skipped without one,
//! except under `CI=true`.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::write;
use sluice_state::testing::{STATE_URL_VAR, TestSchema};

/// `sluice` with exactly the state this test names (never the CLI tests' PostgreSQL override).
fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(dir)
        .args(args)
        .env("SLUICE_LOG", "error")
        .env_remove("SLUICE_STATE_DB")
        .output()
        .expect("run sluice")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = sluice(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sluice {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = sluice(dir, args);
    assert!(!out.status.success(), "sluice {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn project(dir: &Path, state: Option<&str>) {
    let state = state.map(|s| format!("state: '{s}'\n")).unwrap_or_default();
    write(dir, "sluice.yml", &format!("name: st\n{state}"));
    write(
        dir,
        "sources/app.yml",
        "kind: sqlite\nconnection: app.db\ntables:\n  - name: items\n",
    );
    let conn = rusqlite::Connection::open(dir.join("app.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER); INSERT INTO items VALUES (1);",
    )
    .unwrap();
}

#[test]
fn a_bad_or_unreachable_url_is_a_clear_error_and_never_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(
        dir,
        Some("postgresql://sluice:hunter2@127.0.0.1:1/state?connect_timeout=3"),
    );
    let started = Instant::now();
    let err = fails(dir, &["runs"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!dir.join("postgresql:").exists(), "a URL became a folder");
    assert!(!dir.join(".sluice").exists());

    project(dir, Some("postgres://sluice:hunter2@db:99999/state"));
    let err = fails(dir, &["runs"]);
    assert!(err.contains("sluice.yml") && err.contains("state"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // `--state-db` is checked too (over a valid `state:`; an invalid one fails first).
    project(dir, None);
    let err = fails(dir, &["--state-db", "mysql://root@h/db", "runs"]);
    assert!(
        err.contains("--state-db") && err.contains("not a state backend"),
        "{err}"
    );
}

#[test]
fn migrate_copies_the_sqlite_state_into_postgres() {
    if std::env::var(STATE_URL_VAR).is_err() {
        // SAFETY: the only variable this test binary sets, before it starts any thread of its own.
        unsafe { std::env::set_var(STATE_URL_VAR, "postgres://postgres@127.0.0.1:5432/test") };
    }
    let target = match TestSchema::from_env("cli_migrate") {
        Ok(Some(t)) => t,
        Ok(None) => unreachable!(),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: PostgreSQL not reachable: {e}");
            return;
        }
        Err(e) => panic!("PostgreSQL not reachable under CI=true: {e}"),
    };
    let url = target.yaml_value();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, None);
    let out = ok(dir, &["run"]);
    let run_id = common::run_id_of(&out);

    let copied = ok(dir, &["state", "migrate", "--to", &url]);
    let row = |table: &str| {
        copied
            .lines()
            .find(|l| l.split('|').nth(1).map(str::trim) == Some(table))
            .unwrap_or_else(|| panic!("no {table} row:\n{copied}"))
            .split('|')
            .nth(2)
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(row("runs"), "1", "{copied}");
    assert_eq!(row("node_runs"), "1", "{copied}");
    assert!(copied.contains("copied"), "{copied}");

    // The copy is what the project reads once `state:` names it.
    let listed = ok(dir, &["--state-db", &url, "runs"]);
    assert!(listed.contains(&run_id), "{listed}");
    let shown = ok(dir, &["--state-db", &url, "runs", &run_id]);
    assert!(shown.contains("app.items"), "{shown}");
    let version = ok(dir, &["--state-db", &url, "state", "version"]);
    assert!(version.contains("backend:        postgres"), "{version}");
    assert!(
        version.contains(&format!(
            "schema version: {}",
            sluice_state::latest_version()
        )),
        "{version}"
    );
    let local = ok(dir, &["state", "version"]);
    assert!(local.contains("backend:        sqlite"), "{local}");

    // A second copy would mix two histories: refused, unless --replace.
    let err = fails(dir, &["state", "migrate", "--to", &url]);
    assert!(err.contains("--replace"), "{err}");
    ok(dir, &["state", "migrate", "--to", &url, "--replace"]);
    // A run on PostgreSQL state, then its history holds both.
    let second = common::run_id_of(&ok(dir, &["--state-db", &url, "run"]));
    let listed = ok(dir, &["--state-db", &url, "runs"]);
    assert!(
        listed.contains(&run_id) && listed.contains(&second),
        "{listed}"
    );
}
