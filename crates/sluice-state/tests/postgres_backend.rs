//! The PostgreSQL backend against a real server (`SLUICE_TEST_PG_URL`, default: local trust), each
//! test in a schema of its own: its migrations, and every conformance test of the store traits. Without a server the tests are skipped with a message,
//! except under `CI=true`, where they fail.

mod conformance;

use sluice_state::postgres::{PostgresBackend, PostgresStore, Worker};
use sluice_state::{MIGRATIONS, latest_version, migrate};

fn url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string())
}

/// A fresh schema named after `test`, and a worker whose connection uses it; `None` (skip) without
/// a server.
fn fresh(test: &str) -> Option<(String, Worker)> {
    let schema = format!("sluice_state_{test}_{}", std::process::id());
    let admin = match Worker::connect(&url(), "admin") {
        Ok(w) => w,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: PostgreSQL not reachable at `{}`: {e}", url());
            return None;
        }
        Err(e) => panic!("PostgreSQL not reachable under CI=true: {e}"),
    };
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};");
    admin
        .call(move |c, rt| {
            rt.block_on(c.batch_execute(&sql))
                .map_err(|e| sluice_state::StateError::Postgres {
                    location: "admin".into(),
                    source: Box::new(e),
                })
        })
        .unwrap();
    Some((schema.clone(), connect(&schema)))
}

/// [`fresh`], with the schema dropped when the returned guard goes.
fn fresh_guarded(test: &str) -> Option<(Cleanup, String, Worker)> {
    fresh(test).map(|(schema, w)| (Cleanup(schema.clone()), schema, w))
}

fn connect(schema: &str) -> Worker {
    Worker::connect(
        &format!("{} options='-c search_path={schema}'", url()),
        &format!("test schema {schema}"),
    )
    .unwrap()
}

fn tables(w: &Worker, schema: &str) -> i64 {
    let schema = schema.to_string();
    w.call(move |c, rt| {
        rt.block_on(c.query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        ))
        .map(|r| r.get(0))
        .map_err(|e| sluice_state::StateError::Postgres {
            location: "test".into(),
            source: Box::new(e),
        })
    })
    .unwrap()
}

fn drop_schema(w: &Worker, schema: &str) {
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    // Also from Drop while a failed test unwinds: errors are ignored there.
    let _ = w.call(move |c, rt| {
        rt.block_on(c.batch_execute(&sql))
            .map_err(|e| sluice_state::StateError::Postgres {
                location: "test".into(),
                source: Box::new(e),
            })
    });
}

/// Drops its schema when the test ends, passed or failed.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(w) = Worker::connect(&url(), "cleanup") {
            drop_schema(&w, &self.0);
        }
    }
}

#[test]
fn a_new_database_is_migrated_once_to_the_latest_version() {
    let Some((_cleanup, schema, w)) = fresh_guarded("new") else {
        return;
    };
    let mut backend = PostgresBackend::new(&w);
    assert_eq!(migrate(&mut backend, MIGRATIONS).unwrap(), latest_version());
    assert_eq!(migrate(&mut backend, MIGRATIONS).unwrap(), latest_version());
    // Every state table, and the version table.
    let sqlite_tables = {
        let c = sluice_state::open_in_memory().unwrap();
        c.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    assert_eq!(tables(&w, &schema), sqlite_tables + 1);
    // A database at version 1 is upgraded in place.
    let (_cleanup1, schema1, w1) = fresh_guarded("v1").unwrap();
    assert_eq!(
        migrate(&mut PostgresBackend::new(&w1), &MIGRATIONS[..1]).unwrap(),
        1
    );
    assert_eq!(
        migrate(&mut PostgresBackend::new(&w1), MIGRATIONS).unwrap(),
        latest_version()
    );
    drop_schema(&w, &schema);
    drop_schema(&w1, &schema1);
}

#[test]
fn concurrent_migrations_apply_each_step_once() {
    let Some((_cleanup, schema, w)) = fresh_guarded("concurrent") else {
        return;
    };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let schema = schema.clone();
            std::thread::spawn(move || {
                let w = connect(&schema);
                migrate(&mut PostgresBackend::new(&w), MIGRATIONS)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), latest_version());
    }
    drop_schema(&w, &schema);
}

#[test]
fn a_database_from_a_newer_sluice_is_refused() {
    let Some((_cleanup, schema, w)) = fresh_guarded("newer") else {
        return;
    };
    let newer = i32::try_from(latest_version() + 1).unwrap();
    w.call(move |c, rt| {
        rt.block_on(async {
            c.batch_execute("CREATE TABLE sluice_schema_version (version INT NOT NULL)")
                .await?;
            c.execute("INSERT INTO sluice_schema_version VALUES ($1)", &[&newer])
                .await
        })
        .map_err(|e| sluice_state::StateError::Postgres {
            location: "test".into(),
            source: Box::new(e),
        })
    })
    .unwrap();
    let err = migrate(&mut PostgresBackend::new(&w), MIGRATIONS).unwrap_err();
    assert!(
        matches!(err, sluice_state::StateError::NewerSchema { .. }),
        "{err}"
    );
    assert_eq!(tables(&w, &schema), 1, "nothing was created");
    drop_schema(&w, &schema);
}

#[test]
fn usable_from_inside_a_tokio_runtime() {
    // The store is called from async tasks (the run loop, HTTP handlers): the worker's own runtime
    // must not be entered from the caller's.
    let Some((_cleanup, schema, w)) = fresh_guarded("in_runtime") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let version = rt.block_on(async { migrate(&mut PostgresBackend::new(&w), MIGRATIONS) });
    assert_eq!(version.unwrap(), latest_version());
    drop_schema(&w, &schema);
}

#[test]
fn every_store_operation_conforms() {
    for (i, (name, test)) in conformance::ALL.iter().enumerate() {
        eprintln!("conformance on PostgreSQL: {name}");
        // Short: PostgreSQL cuts identifiers at 63 bytes.
        let Some((_cleanup, schema, _w)) = fresh_guarded(&format!("store{i}")) else {
            return;
        };
        let store = PostgresStore::open(
            &format!("{} options='-c search_path={schema}'", url()),
            &schema,
        )
        .unwrap();
        test(&store);
    }
}
