//! Migrations of the state database: order, versions, idempotence, upgrading a `state.db` made by
//! sluice before schema versions existed, refusing a newer one, concurrent opens; and the PostgreSQL
//! text of every migration, run against a real server.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Barrier};

use rusqlite::Connection;
use sluice_state::sqlite::schema_version;
use sluice_state::{MIGRATIONS, Migration, SqliteBackend, StateError, latest_version, migrate};

/// The state schema exactly as sluice created it before versions (frozen; see the file's header).
const SCHEMA_V0: &str = include_str!("fixtures/state_schema_v0.sql");

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Tables and indexes with their columns (name, declared type, not null, default, pk): the shape a
/// query depends on, whatever the DDL text looked like.
fn shape(conn: &Connection) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let objects: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (kind, name, sql) in objects {
        let described = if kind == "table" {
            conn.prepare(&format!("PRAGMA table_info(\"{name}\")"))
                .unwrap()
                .query_map([], |r| {
                    Ok(format!(
                        "{} {} notnull={} default={:?} pk={}",
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?
                    ))
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        } else {
            // Index text, whitespace-normalised (the `IF NOT EXISTS` is not stored).
            vec![sql.split_whitespace().collect::<Vec<_>>().join(" ")]
        };
        out.insert(format!("{kind} {name}"), described);
    }
    out
}

/// A `state.db` as sluice made it before schema versions: today's tables, user_version 0, rows in
/// every area (runs, nodes, checks, watermarks, leases, logs, partitions, backfills, incidents).
fn old_database(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.execute_batch(SCHEMA_V0).unwrap();
    c.execute_batch(
        "INSERT INTO runs (run_id, command, selection, status, started_at, finished_at, nodes_ok)
           VALUES ('r1', 'run', '', 'success', '2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', 2);
         INSERT INTO node_runs (run_id, node, kind, status, attempts, rows_out, started_at, finished_at, duration_ms, version)
           VALUES ('r1', 'silver.orders', 'model', 'success', 1, 42, '2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z', 1000, 3);
         INSERT INTO check_results (run_id, check_name, model, kind, severity, status, failing_rows, sample, checked_at)
           VALUES ('r1', 'not_null_id', 'silver.orders', 'not_null', 'error', 'pass', 0, '[]', '2026-01-01T00:00:02Z');
         INSERT INTO watermarks VALUES ('shop.orders', '\"2026-01-01\"', 'r1', '2026-01-01T00:00:02Z');
         INSERT INTO schedule_ticks VALUES ('shop.orders', '2026-01-01T00:00:00Z');
         INSERT INTO leases VALUES ('silver.orders', 'r1', 123);
         INSERT INTO node_logs VALUES ('r1', 'silver.orders', '2026-01-01T00:00:01Z', 'info', 'built');
         INSERT INTO run_processes VALUES ('r1', 'boot:1:2', 5, 99, NULL);
         INSERT INTO partition_ranges VALUES ('silver.orders', 'day', 1, 1000);
         INSERT INTO backfills (id, selection, from_key, to_key, missing, status, created_at, updated_at)
           VALUES ('b1', 'silver.orders', '2024-01-01', '', 0, 'success', 'a', 'b');
         INSERT INTO alert_incidents (asset, kind, severity, status, opened_at, updated_at, message)
           VALUES ('silver.orders', 'failure', 'error', 'open', 'a', 'a', 'boom');
         INSERT INTO alert_deliveries (incident_id, event, status, created_at, claimed_at)
           VALUES (1, 'opened', 'sent', 'a', 'a');",
    )
    .unwrap();
    assert_eq!(schema_version(&c).unwrap(), 0);
}

fn count(c: &Connection, table: &str) -> i64 {
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_new_database_gets_every_migration_and_the_latest_version() {
    let dir = tempdir();
    let path = dir.path().join("nested/.sluice/state.db");
    let c = sluice_state::open(&path).unwrap();
    assert!(path.is_file(), "the folder and file are created");
    assert_eq!(schema_version(&c).unwrap(), latest_version());
    assert_eq!(latest_version(), MIGRATIONS.len() as u32);
    let journal: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    // Every table a crate uses exists.
    for table in [
        "runs",
        "node_runs",
        "check_results",
        "watermarks",
        "schedule_ticks",
        "run_cancels",
        "leases",
        "lease_owners",
        "tick_claims",
        "node_logs",
        "stale_inputs",
        "run_processes",
        "partition_ranges",
        "backfills",
        "backfill_plan",
        "backfill_done",
        "backfill_failed",
        "alert_incidents",
        "alert_deliveries",
    ] {
        assert_eq!(count(&c, table), 0, "{table}");
    }
}

#[test]
fn migrations_apply_in_order_each_setting_its_version() {
    // A synthetic history whose later steps depend on the earlier ones: out of order, they fail.
    let steps = [
        Migration {
            version: 1,
            name: "one",
            sqlite: "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);",
            postgres: None,
        },
        Migration {
            version: 2,
            name: "two",
            sqlite: "ALTER TABLE t ADD COLUMN b TEXT; UPDATE t SET b = 'x' || (SELECT max(v) FROM seen);",
            postgres: None,
        },
        Migration {
            version: 3,
            name: "three",
            sqlite: "INSERT INTO t (a, b) SELECT count(*) + 1, 'three' FROM t;",
            postgres: None,
        },
    ];
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch("CREATE TABLE seen (v INTEGER); INSERT INTO seen VALUES (7);")
        .unwrap();
    // Up to 2 first: the version says so, and 3 has not run.
    let v = migrate(&mut SqliteBackend::new(&c, "mem"), &steps[..2]).unwrap();
    assert_eq!(v, 2);
    assert_eq!(schema_version(&c).unwrap(), 2);
    assert_eq!(count(&c, "t"), 1);
    // Then the rest: only 3 runs (1 and 2 again would fail: the table and column exist).
    assert_eq!(
        migrate(&mut SqliteBackend::new(&c, "mem"), &steps).unwrap(),
        3
    );
    let rows: Vec<(i64, String)> = c
        .prepare("SELECT a, b FROM t ORDER BY a")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(1, "x7".to_string()), (2, "three".to_string())]);
}

#[test]
fn a_failing_migration_rolls_back_and_keeps_the_previous_version() {
    let steps = [
        Migration {
            version: 1,
            name: "one",
            sqlite: "CREATE TABLE t (a INTEGER);",
            postgres: None,
        },
        Migration {
            version: 2,
            name: "broken",
            sqlite: "CREATE TABLE u (a INTEGER); INSERT INTO nowhere VALUES (1);",
            postgres: None,
        },
    ];
    let c = Connection::open_in_memory().unwrap();
    let err = migrate(&mut SqliteBackend::new(&c, "mem"), &steps).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::Migration {
                version: 2,
                name: "broken",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("0002_broken"), "{err}");
    assert_eq!(schema_version(&c).unwrap(), 1);
    let u: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'u'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(u, 0, "the failed migration's table was rolled back");
}

#[test]
fn reopening_is_idempotent() {
    let dir = tempdir();
    let path = dir.path().join("state.db");
    let first = sluice_state::open(&path).unwrap();
    first
        .execute(
            "INSERT INTO runs (run_id, command, selection, status, started_at) VALUES ('r', 'run', '', 'running', 'now')",
            [],
        )
        .unwrap();
    let before = shape(&first);
    drop(first);
    for _ in 0..3 {
        let again = sluice_state::open(&path).unwrap();
        assert_eq!(schema_version(&again).unwrap(), latest_version());
        assert_eq!(shape(&again), before);
        assert_eq!(count(&again, "runs"), 1);
    }
}

#[test]
fn a_state_db_from_before_versions_upgrades_in_place_and_keeps_its_rows() {
    let dir = tempdir();
    let path = dir.path().join("state.db");
    old_database(&path);
    let upgraded = sluice_state::open(&path).unwrap();
    assert_eq!(schema_version(&upgraded).unwrap(), latest_version());
    for (table, rows) in [
        ("runs", 1),
        ("node_runs", 1),
        ("check_results", 1),
        ("watermarks", 1),
        ("schedule_ticks", 1),
        ("leases", 1),
        ("node_logs", 1),
        ("run_processes", 1),
        ("partition_ranges", 1),
        ("backfills", 1),
        ("alert_incidents", 1),
        ("alert_deliveries", 1),
    ] {
        assert_eq!(count(&upgraded, table), rows, "{table}");
    }
    let (status, rows_out): (String, i64) = upgraded
        .query_row(
            "SELECT r.status, n.rows_out FROM runs r JOIN node_runs n USING (run_id)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((status.as_str(), rows_out), ("success", 42));
    // The upgraded database has exactly the shape of a new one.
    let fresh = sluice_state::open(&dir.path().join("fresh.db")).unwrap();
    assert_eq!(shape(&upgraded), shape(&fresh));
    // And it keeps working: the incident id sequence continues after the old row.
    upgraded
        .execute(
            "INSERT INTO alert_incidents (asset, kind, severity, status, opened_at, updated_at, message)
             VALUES ('gold.x', 'freshness', 'warn', 'open', 'a', 'a', 'late')",
            [],
        )
        .unwrap();
    assert_eq!(upgraded.last_insert_rowid(), 2);
}

#[test]
fn an_older_state_db_missing_later_tables_gains_them() {
    // Databases of earlier builds lacked tables added since (schedule_ticks, lease_owners,
    // run_processes, the partition and incident tables): opening creates them.
    let dir = tempdir();
    let path = dir.path().join("state.db");
    old_database(&path);
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE schedule_ticks; DROP TABLE lease_owners; DROP TABLE run_processes;
             DROP TABLE backfill_failed; DROP TABLE alert_deliveries; DROP TABLE alert_incidents;",
        )
        .unwrap();
    let upgraded = sluice_state::open(&path).unwrap();
    let fresh = sluice_state::open(&dir.path().join("fresh.db")).unwrap();
    assert_eq!(shape(&upgraded), shape(&fresh));
    assert_eq!(count(&upgraded, "runs"), 1);
    assert_eq!(count(&upgraded, "run_processes"), 0);
}

#[test]
fn a_state_db_at_version_1_gains_the_start_index_and_keeps_its_rows() {
    let dir = tempdir();
    let path = dir.path().join("state.db");
    {
        let c = Connection::open(&path).unwrap();
        let at_v1 = migrate(&mut SqliteBackend::new(&c, "v1"), &MIGRATIONS[..1]).unwrap();
        assert_eq!(at_v1, 1);
        c.execute_batch(
            "INSERT INTO runs (run_id, command, selection, status, started_at) VALUES ('r1', 'run', '', 'success', 't');
             INSERT INTO node_runs (run_id, node, kind, status, attempts, started_at, finished_at, duration_ms)
             VALUES ('r1', 'a', 'model', 'success', 1, 't1', 't2', 5);",
        )
        .unwrap();
    }
    let upgraded = sluice_state::open(&path).unwrap();
    assert_eq!(schema_version(&upgraded).unwrap(), latest_version());
    assert_eq!(count(&upgraded, "node_runs"), 1);
    let index: i64 = upgraded
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'node_runs_by_node_start'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    let fresh = sluice_state::open(&dir.path().join("fresh.db")).unwrap();
    assert_eq!(shape(&upgraded), shape(&fresh));
}

#[test]
fn a_state_db_at_version_3_gains_the_token_tables_and_keeps_its_rows() {
    let dir = tempdir();
    let path = dir.path().join("state.db");
    {
        let c = Connection::open(&path).unwrap();
        let at_v3 = migrate(&mut SqliteBackend::new(&c, "v3"), &MIGRATIONS[..3]).unwrap();
        assert_eq!(at_v3, 3);
        c.execute_batch(
            "INSERT INTO runs (run_id, command, selection, status, started_at) VALUES ('r1', 'run', '', 'queued', 't');
             INSERT INTO run_queue (run_id, request, queued_at) VALUES ('r1', '{}', 't');",
        )
        .unwrap();
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('auth_users', 'auth_tokens')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }
    let upgraded = sluice_state::open(&path).unwrap();
    assert_eq!(schema_version(&upgraded).unwrap(), latest_version());
    assert_eq!(count(&upgraded, "run_queue"), 1);
    assert_eq!(count(&upgraded, "auth_users"), 0);
    assert_eq!(count(&upgraded, "auth_tokens"), 0);
    let fresh = sluice_state::open(&dir.path().join("fresh.db")).unwrap();
    assert_eq!(shape(&upgraded), shape(&fresh));
}

#[test]
fn a_database_from_a_newer_sluice_is_refused() {
    let dir = tempdir();
    let path = dir.path().join("state.db");
    drop(sluice_state::open(&path).unwrap());
    let newer = latest_version() + 1;
    Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE from_the_future (x INTEGER); PRAGMA user_version = {newer};"
        ))
        .unwrap();
    let err = sluice_state::open(&path).unwrap_err();
    match &err {
        StateError::NewerSchema {
            found,
            known,
            path: p,
        } => {
            assert_eq!((*found, *known), (newer, latest_version()));
            assert!(p.ends_with("state.db"), "{p}");
        }
        other => panic!("expected NewerSchema, got {other}"),
    }
    assert!(err.to_string().contains("upgrade sluice"), "{err}");
    // Refusing changed nothing.
    let c = Connection::open(&path).unwrap();
    assert_eq!(schema_version(&c).unwrap(), newer);
}

#[test]
fn concurrent_opens_of_a_new_database_both_succeed() {
    for round in 0..5 {
        let dir = tempdir();
        let path = Arc::new(dir.path().join(format!("state-{round}.db")));
        let threads = 4;
        let start = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (path, start) = (Arc::clone(&path), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    let c = sluice_state::open(&path)?;
                    schema_version(&c)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), latest_version());
        }
    }
}

#[test]
fn concurrent_upgrades_of_an_old_database_apply_once_and_keep_rows() {
    let dir = tempdir();
    let path = Arc::new(dir.path().join("state.db"));
    old_database(&path);
    let start = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (path, start) = (Arc::clone(&path), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                sluice_state::open(&path).map(|c| count(&c, "node_runs"))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 1);
    }
}

#[test]
fn concurrent_migrations_that_are_not_idempotent_run_once() {
    // `ADD COLUMN` and `INSERT` fail or double when run twice: each process must find the version
    // already moved (under its write lock) and skip.
    let steps = [
        Migration {
            version: 1,
            name: "table",
            sqlite: "CREATE TABLE t (a INTEGER);",
            postgres: None,
        },
        Migration {
            version: 2,
            name: "column_and_row",
            sqlite: "ALTER TABLE t ADD COLUMN b TEXT; INSERT INTO t VALUES (1, 'once');",
            postgres: None,
        },
    ];
    let dir = tempdir();
    let path = Arc::new(dir.path().join("state.db"));
    let threads = 4;
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (path, start) = (Arc::clone(&path), Arc::clone(&start));
            std::thread::spawn(move || {
                let c = Connection::open(&*path).unwrap();
                c.busy_timeout(sluice_state::sqlite::BUSY_TIMEOUT).unwrap();
                start.wait();
                migrate(&mut SqliteBackend::new(&c, "shared"), &steps)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 2);
    }
    let c = Connection::open(&*path).unwrap();
    assert_eq!(count(&c, "t"), 1);
}

/// A backend whose first version read is stale (0), as when another process applied the
/// migrations between this one's read and its write lock.
struct StaleFirstRead<'c> {
    inner: SqliteBackend<'c>,
    stale: bool,
}

impl sluice_state::StateBackend for StaleFirstRead<'_> {
    fn dialect(&self) -> sluice_state::Dialect {
        self.inner.dialect()
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    fn schema_version(&mut self) -> Result<u32, StateError> {
        if std::mem::take(&mut self.stale) {
            return Ok(0);
        }
        self.inner.schema_version()
    }
    fn apply(&mut self, migration: &Migration) -> Result<bool, StateError> {
        self.inner.apply(migration)
    }
}

#[test]
fn a_migration_applied_meanwhile_by_another_process_is_skipped_under_the_lock() {
    let steps = [
        Migration {
            version: 1,
            name: "table",
            sqlite: "CREATE TABLE t (a INTEGER);",
            postgres: None,
        },
        Migration {
            version: 2,
            name: "column_and_row",
            sqlite: "ALTER TABLE t ADD COLUMN b TEXT; INSERT INTO t VALUES (1, 'once');",
            postgres: None,
        },
    ];
    let c = Connection::open_in_memory().unwrap();
    assert_eq!(
        migrate(&mut SqliteBackend::new(&c, "mem"), &steps).unwrap(),
        2
    );
    let mut late = StaleFirstRead {
        inner: SqliteBackend::new(&c, "mem"),
        stale: true,
    };
    assert_eq!(migrate(&mut late, &steps).unwrap(), 2);
    assert_eq!(count(&c, "t"), 1, "migration 2 ran once");
}

/// The PostgreSQL text of every migration, applied twice (idempotent) in a schema of its own on the
/// server at `SLUICE_TEST_PG_URL` (default: local trust). Without a server the test is skipped with
/// a message, except under `CI=true`, where it fails.
#[test]
fn postgres_migrations_apply_on_a_real_server() {
    let url = std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                client
            }
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("skipping: PostgreSQL not reachable at `{url}`: {e}");
                return;
            }
            Err(e) => panic!("PostgreSQL not reachable at `{url}` under CI=true: {e}"),
        };
        let schema = format!("sluice_state_test_{}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema};"
            ))
            .await
            .unwrap();
        let mut result = Ok(());
        for pass in 0..2 {
            for m in MIGRATIONS {
                let sql = m.sql(sluice_state::Dialect::Postgres).unwrap();
                if let Err(e) = client.batch_execute(sql).await {
                    result = Err(format!("pass {pass}: {:04}_{}: {e:?}", m.version, m.name));
                }
            }
        }
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
                &[&schema],
            )
            .await
            .unwrap()
            .get(0);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
        result.unwrap();
        let sqlite_tables = {
            let c = sluice_state::open_in_memory().unwrap();
            count(&c, "sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        };
        assert_eq!(tables, sqlite_tables, "the same tables in both dialects");
    });
}
