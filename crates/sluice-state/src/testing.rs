//! For the tests of the crates that use the state database: which backend they run on.
//!
//! With `SLUICE_TEST_STATE_URL=postgres://user@host:port/db` set, [`TestSchema::from_env`] gives
//! each test a schema of its own on that server (dropped when the test ends, passed or failed), so
//! the same tests run on PostgreSQL; unset, it gives `None` and tests keep their SQLite file.
//! `.ci/run` runs the state-dependent tests a second time this way.

use std::sync::atomic::{AtomicU32, Ordering};

use sluice_core::state_location::{PostgresUrl, StateLocation};

use crate::StateError;
use crate::postgres::{Worker, url_config};

/// The variable naming the PostgreSQL server state-dependent tests run on.
pub const STATE_URL_VAR: &str = "SLUICE_TEST_STATE_URL";

/// A schema of its own for one test, on the server of [`STATE_URL_VAR`]; dropped on drop.
#[derive(Debug)]
pub struct TestSchema {
    url: PostgresUrl,
}

impl TestSchema {
    /// `None` when [`STATE_URL_VAR`] is unset or empty; otherwise a fresh schema named after
    /// `test` (and this process and a counter, so parallel tests and test binaries never share).
    /// A URL that is not PostgreSQL's is an error, not a silent SQLite run.
    pub fn from_env(test: &str) -> Result<Option<TestSchema>, StateError> {
        let Some(value) = std::env::var(STATE_URL_VAR).ok().filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let bad = |message: String| StateError::Postgres {
            location: STATE_URL_VAR.to_string(),
            source: message.into(),
        };
        let base = PostgresUrl::parse(&value).map_err(bad)?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        let schema = format!(
            "t_{name}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let url = base.with_schema(&schema).map_err(bad)?;
        // Left over from an earlier process with the same id (ids are reused).
        drop_schema(&url)?;
        Ok(Some(TestSchema { url }))
    }

    /// The location (`postgres://…?schema=…`), as `state:` would name it.
    pub fn location(&self) -> StateLocation {
        StateLocation::Postgres(self.url.clone())
    }

    /// The location, with the schema left in place after the test (for a test that cannot hold
    /// this guard; `.ci/run` drops the pass's whole database first).
    pub fn keep(self) -> StateLocation {
        let location = self.location();
        std::mem::forget(self);
        location
    }

    /// The URL with its password, for a `sluice.yml` a test writes (a local test server).
    pub fn yaml_value(&self) -> String {
        let base = self.url.connection_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!(
            "{base}{sep}schema={}",
            self.url.schema().unwrap_or_default()
        )
    }
}

/// For tests that cannot hold a [`TestSchema`] (a helper that only writes a project): the
/// `state:` line for a schema named after `key` (say, the project's folder), the same for every
/// call with that key, and left in place (`.ci/run` drops the pass's whole database first).
/// Empty when [`STATE_URL_VAR`] is unset.
pub fn state_line_for(key: &str) -> Result<String, StateError> {
    use std::hash::{Hash, Hasher};
    let Some(value) = std::env::var(STATE_URL_VAR).ok().filter(|v| !v.is_empty()) else {
        return Ok(String::new());
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let sep = if value.contains('?') { '&' } else { '?' };
    let url = format!("{value}{sep}schema=t_k_{:016x}", h.finish());
    PostgresUrl::parse(&url).map_err(|message| StateError::Postgres {
        location: STATE_URL_VAR.to_string(),
        source: message.into(),
    })?;
    Ok(format!("state: '{url}'\n"))
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Also while a failed test unwinds: a cleanup error must not hide the failure.
        let _ = drop_schema(&self.url);
    }
}

fn drop_schema(url: &PostgresUrl) -> Result<(), StateError> {
    let Some(schema) = url.schema() else {
        return Ok(());
    };
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    let worker = Worker::connect_with(url_config(url)?, &url.to_string())?;
    let location = url.to_string();
    worker.call(move |c, rt| {
        rt.block_on(c.batch_execute(&sql))
            .map_err(|e| StateError::Postgres {
                location,
                source: Box::new(e),
            })
    })
}
