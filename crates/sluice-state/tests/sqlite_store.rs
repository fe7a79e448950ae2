//! The conformance suite (`tests/conformance`) on the SQLite backend: every store operation, on an
//! in-memory database and on a file shared the way processes share `.sluice/state.db`.

mod conformance;

use sluice_state::{SqliteStore, State};

fn run_all(fresh: &dyn Fn() -> Box<dyn State>) {
    for (name, test) in conformance::ALL {
        eprintln!("conformance: {name}");
        test(fresh().as_ref());
    }
}

#[test]
fn every_store_operation_on_an_in_memory_database() {
    run_all(&|| Box::new(SqliteStore::in_memory().unwrap()));
}

#[test]
fn every_store_operation_on_a_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::cell::Cell::new(0);
    run_all(&|| {
        n.set(n.get() + 1);
        let path = dir.path().join(format!("{}/.sluice/state.db", n.get()));
        Box::new(SqliteStore::open(&path).unwrap())
    });
}

#[test]
fn connect_opens_a_migrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let state = sluice_state::connect(&sluice_state::StateLocation::sqlite(&path)).unwrap();
    assert_eq!(state.location(), path.display().to_string());
    assert!(state.runs(1).unwrap().is_empty());
    // A second handle sees what the first wrote (another process, in production).
    state.request_cancel("r1", "t").unwrap();
    assert!(
        sluice_state::connect(&sluice_state::StateLocation::sqlite(&path))
            .unwrap()
            .cancel_requested("r1")
            .unwrap()
    );
}
