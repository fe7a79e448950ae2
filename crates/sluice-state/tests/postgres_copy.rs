//! `state: postgres://…` through [`sluice_state::connect`], and copying a SQLite state database
//! into PostgreSQL (`sluice state migrate --to`), against the server at `SLUICE_TEST_STATE_URL`
//! (default: the local trust server). Each test works in schemas of its own. Without a server the
//! tests are skipped with a message, except under `CI=true`, where they fail.

mod conformance;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sluice_state::postgres::PostgresStore;
use sluice_state::postgres::copy::copy_sqlite;
use sluice_state::testing::TestSchema;
use sluice_state::{
    Breach, IncidentKind, Incidents, PostgresUrl, RunHistory, SqliteStore, State, StateLocation,
    latest_version,
};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema for `test` (`SLUICE_TEST_STATE_URL`, or the local server by default), or `None`
/// (skip) when no server answers outside CI.
fn schema(test: &str) -> Option<TestSchema> {
    if std::env::var(sluice_state::testing::STATE_URL_VAR).is_err() {
        // SAFETY: set before any thread of this test binary reads the environment concurrently
        // would matter; every test sets the same value.
        unsafe { std::env::set_var(sluice_state::testing::STATE_URL_VAR, DEFAULT_URL) };
    }
    match TestSchema::from_env(test) {
        Ok(s) => s,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: PostgreSQL not reachable: {e}");
            None
        }
        Err(e) => panic!("PostgreSQL not reachable under CI=true: {e}"),
    }
}

fn pg_url(s: &TestSchema) -> PostgresUrl {
    match s.location() {
        StateLocation::Postgres(u) => u,
        StateLocation::Sqlite(_) => unreachable!(),
    }
}

/// Every row of every state table of a SQLite file, as text, sorted per table.
fn sqlite_rows(path: &Path) -> BTreeMap<String, Vec<Vec<Option<String>>>> {
    let store = SqliteStore::open(path).unwrap();
    store
        .with(|c| {
            let mut tables = c.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )?;
            let names: Vec<String> = tables
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut out = BTreeMap::new();
            for t in names {
                let cols: Vec<String> = c
                    .prepare(&format!("PRAGMA table_info({t})"))?
                    .query_map([], |r| r.get(1))?
                    .collect::<Result<_, _>>()?;
                let list = cols
                    .iter()
                    .map(|c| format!("CAST({c} AS TEXT)"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut stmt = c.prepare(&format!("SELECT {list} FROM {t}"))?;
                let mut rows: Vec<Vec<Option<String>>> = stmt
                    .query_map([], |r| {
                        (0..cols.len()).map(|i| r.get(i)).collect::<Result<_, _>>()
                    })?
                    .collect::<Result<_, _>>()?;
                rows.sort();
                out.insert(format!("{t}({})", cols.join(",")), rows);
            }
            Ok(out)
        })
        .unwrap()
}

/// The same tables and columns read from PostgreSQL.
fn pg_rows(
    store: &PostgresStore,
    like: &BTreeMap<String, Vec<Vec<Option<String>>>>,
) -> BTreeMap<String, Vec<Vec<Option<String>>>> {
    let keys: Vec<String> = like.keys().cloned().collect();
    store
        .worker()
        .call(move |c, rt| {
            let mut out = BTreeMap::new();
            for key in keys {
                let (t, cols) = key.split_once('(').unwrap();
                let cols: Vec<&str> = cols.trim_end_matches(')').split(',').collect();
                let list = cols
                    .iter()
                    .map(|c| format!("{c}::text"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let rows = rt
                    .block_on(c.query(&format!("SELECT {list} FROM {t}"), &[]))
                    .map_err(|e| sluice_state::StateError::Postgres {
                        location: "test".into(),
                        source: Box::new(e),
                    })?;
                let mut rows: Vec<Vec<Option<String>>> = rows
                    .iter()
                    .map(|r| (0..cols.len()).map(|i| r.get(i)).collect())
                    .collect();
                rows.sort();
                out.insert(key.clone(), rows);
            }
            Ok(out)
        })
        .unwrap()
}

#[test]
fn every_table_is_copied_with_its_rows() {
    // The conformance suite leaves rows in every table; each test's database is copied and compared.
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, test)) in conformance::ALL.iter().enumerate() {
        let Some(target) = schema(&format!("copy{i}")) else {
            return;
        };
        let path = dir.path().join(format!("{i}.db"));
        test(&SqliteStore::open(&path).unwrap());
        let before = sqlite_rows(&path);
        let pg = PostgresStore::connect(&pg_url(&target)).unwrap();
        let report = copy_sqlite(&path, &pg, false).unwrap();
        let expected: Vec<(String, u64)> = before
            .iter()
            .map(|(k, rows)| (k.split('(').next().unwrap().to_string(), rows.len() as u64))
            .collect();
        assert_eq!(report, expected, "{name}: rows per table");
        assert_eq!(pg_rows(&pg, &before), before, "{name}: rows");
    }
}

fn breach(asset: &str) -> Breach {
    Breach {
        asset: asset.into(),
        kind: IncidentKind::Failure,
        severity: "error".into(),
        owner: None,
        message: format!("{asset} failed"),
        run_id: None,
    }
}

#[test]
fn order_and_ids_continue_and_a_filled_target_needs_replace() {
    let Some(target) = schema("copy_order") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let sqlite = SqliteStore::open(&path).unwrap();
    for (i, at) in [
        "2026-01-01T00:00:03Z",
        "2026-01-01T00:00:01Z",
        "2026-01-01T00:00:02Z",
    ]
    .iter()
    .enumerate()
    {
        let process = sluice_state::RunProcess {
            process: "p".into(),
            start_ticks: None,
            heartbeat_ms: 1,
        };
        sqlite
            .start_run(&format!("r{i}"), "run", "", at, &process)
            .unwrap();
    }
    for a in ["a", "b", "c"] {
        sqlite
            .observe_breach(&breach(a), "2026-01-01T00:00:00Z")
            .unwrap();
    }
    sqlite
        .observe_recovery("b", IncidentKind::Failure, "2026-01-01T00:01:00Z", "fixed")
        .unwrap();

    let pg = PostgresStore::connect(&pg_url(&target)).unwrap();
    copy_sqlite(&path, &pg, false).unwrap();
    let ids = |s: &dyn State| {
        s.runs(10)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&pg), ids(&sqlite), "runs in the same order");
    assert_eq!(
        pg.open_incidents().unwrap(),
        sqlite.open_incidents().unwrap()
    );
    assert_eq!(
        pg.recent_incidents(10).unwrap(),
        sqlite.recent_incidents(10).unwrap()
    );
    // The next incident gets a new id, after the copied ones.
    let max = sqlite
        .recent_incidents(10)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .max()
        .unwrap();
    let next = pg
        .observe_breach(&breach("d"), "2026-01-01T00:02:00Z")
        .unwrap()
        .unwrap();
    assert!(next.incident.id > max, "{} after {max}", next.incident.id);

    // A second copy is refused: the target holds rows (and keeps them).
    let err = copy_sqlite(&path, &pg, false).unwrap_err().to_string();
    assert!(
        err.contains("--replace") && err.contains("runs (3)"),
        "{err}"
    );
    assert_eq!(pg.open_incidents().unwrap().len(), 3);
    // With replace, the target is exactly the source again.
    let report = copy_sqlite(&path, &pg, true).unwrap();
    assert!(
        report.contains(&("alert_incidents".to_string(), 3)),
        "{report:?}"
    );
    assert_eq!(
        pg.open_incidents().unwrap(),
        sqlite.open_incidents().unwrap()
    );
    // A missing source is an error, and creates nothing.
    let missing = dir.path().join("nope.db");
    assert!(copy_sqlite(&missing, &pg, true).is_err());
    assert!(!missing.exists());
}

#[test]
fn connect_by_url_creates_its_schema_and_hides_the_password() {
    let Some(target) = schema("connect_url") else {
        return;
    };
    let location = target.location();
    assert_eq!(sluice_state::peek_version(&location).unwrap(), 0);
    let state = sluice_state::connect(&location).unwrap();
    assert_eq!(
        sluice_state::peek_version(&location).unwrap(),
        latest_version()
    );
    assert!(
        state.location().contains("?schema=t_connect_url_"),
        "{}",
        state.location()
    );
    assert!(state.runs(1).unwrap().is_empty());
    // A second connection (another process, in production) sees what the first wrote.
    state.request_cancel("r1", "t").unwrap();
    assert!(
        sluice_state::connect(&location)
            .unwrap()
            .cancel_requested("r1")
            .unwrap()
    );
}

#[test]
fn an_unreachable_server_is_a_prompt_error_naming_host_and_port() {
    let location = StateLocation::parse(
        "postgres://sluice:hunter2@127.0.0.1:1/state?connect_timeout=5",
        Path::new("/"),
    )
    .unwrap();
    let started = Instant::now();
    let err = sluice_state::connect(&location).unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // A bad option is the driver's error, also without the password.
    let location = StateLocation::parse(
        "postgres://sluice:hunter2@127.0.0.1/state?nonsense=1",
        Path::new("/"),
    )
    .unwrap();
    let err = sluice_state::connect(&location).unwrap_err().to_string();
    assert!(
        err.contains("nonsense") && !err.contains("hunter2"),
        "{err}"
    );
}
