//! Prepared statements (what ADBC and JDBC use for every query with parameters, and JDBC for every
//! query): the SQL and its bound parameters, kept by the server under an opaque handle.
//!
//! A handle is a number; the server keeps at most [`MAX_PREPARED`] statements, dropping the least
//! recently used beyond that, so clients that never close theirs cannot grow the server's memory.
//! Binding parameters (`DoPut`) returns the same handle: clients that expect the handle to change
//! with the parameters (stateless prepared statements) and clients that keep the first one both work.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sluice_engine::ParamValues;
use tonic::Status;

/// Prepared statements kept at once.
pub const MAX_PREPARED: usize = 4096;

/// One prepared statement.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The statement as the client sent it.
    pub sql: String,
    /// The values bound last, if any.
    pub params: Option<ParamValues>,
    /// When it was last used (a tick of the store), for eviction.
    used: u64,
}

/// The server's prepared statements.
#[derive(Debug, Default)]
pub struct PreparedStatements {
    next: AtomicU64,
    statements: Mutex<HashMap<u64, Prepared>>,
}

impl PreparedStatements {
    /// Keeps `sql` and returns its handle.
    pub fn create(&self, sql: String) -> Vec<u8> {
        let id = self.tick();
        let mut statements = self.lock();
        if statements.len() >= MAX_PREPARED
            && let Some(oldest) = statements
                .iter()
                .min_by_key(|(_, p)| p.used)
                .map(|(id, _)| *id)
        {
            statements.remove(&oldest);
        }
        statements.insert(
            id,
            Prepared {
                sql,
                params: None,
                used: id,
            },
        );
        handle_of(id)
    }

    /// The statement behind `handle`.
    pub fn get(&self, handle: &[u8]) -> Result<Prepared, Status> {
        let id = id_of(handle)?;
        let tick = self.tick();
        let mut statements = self.lock();
        let p = statements.get_mut(&id).ok_or_else(|| unknown(id))?;
        p.used = tick;
        Ok(p.clone())
    }

    /// Binds `params` to the statement behind `handle`.
    pub fn bind(&self, handle: &[u8], params: ParamValues) -> Result<(), Status> {
        let id = id_of(handle)?;
        let tick = self.tick();
        let mut statements = self.lock();
        let p = statements.get_mut(&id).ok_or_else(|| unknown(id))?;
        p.params = Some(params);
        p.used = tick;
        Ok(())
    }

    /// Forgets the statement behind `handle` (closing an unknown one is not an error: it may have
    /// been evicted).
    pub fn close(&self, handle: &[u8]) -> Result<(), Status> {
        let id = id_of(handle)?;
        self.lock().remove(&id);
        Ok(())
    }

    /// Statements kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn tick(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Prepared>> {
        // A panic while holding the lock leaves a plain map behind: still usable.
        self.statements.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn handle_of(id: u64) -> Vec<u8> {
    format!("sluice-prepared-{id}").into_bytes()
}

fn id_of(handle: &[u8]) -> Result<u64, Status> {
    std::str::from_utf8(handle)
        .ok()
        .and_then(|h| h.strip_prefix("sluice-prepared-"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            Status::invalid_argument(
                "not a prepared statement handle of this server; create the statement again",
            )
        })
}

fn unknown(id: u64) -> Status {
    Status::not_found(format!(
        "prepared statement {id} does not exist (it was closed, evicted after {MAX_PREPARED} \
         newer ones, or the server restarted); prepare it again"
    ))
}

#[cfg(test)]
mod tests {
    use sluice_engine::ScalarValue;
    use tonic::Code;

    use super::*;

    #[test]
    fn create_bind_get_close() {
        let store = PreparedStatements::default();
        let h = store.create("select $1".into());
        assert!(store.get(&h).unwrap().params.is_none());
        store
            .bind(&h, ParamValues::from(vec![ScalarValue::Int64(Some(7))]))
            .unwrap();
        let p = store.get(&h).unwrap();
        assert_eq!(p.sql, "select $1");
        assert!(p.params.is_some());
        store.close(&h).unwrap();
        assert_eq!(store.get(&h).unwrap_err().code(), Code::NotFound);
        assert!(store.is_empty());
    }

    #[test]
    fn foreign_handles_are_invalid_arguments() {
        let store = PreparedStatements::default();
        assert_eq!(
            store.get(b"nope").unwrap_err().code(),
            Code::InvalidArgument
        );
        assert_eq!(
            store.get(&[0xff, 0xfe]).unwrap_err().code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn the_least_recently_used_goes_first_past_the_cap() {
        let store = PreparedStatements::default();
        let first = store.create("select 1".into());
        let second = store.create("select 2".into());
        for i in 0..MAX_PREPARED - 2 {
            store.create(format!("select {i}"));
        }
        // Using the first keeps it; the second is now the least recently used.
        store.get(&first).unwrap();
        store.create("select 'one more'".into());
        assert_eq!(store.len(), MAX_PREPARED);
        assert!(store.get(&first).is_ok());
        assert_eq!(store.get(&second).unwrap_err().code(), Code::NotFound);
    }
}
