//! The state database of Sluice: every table that records what happened (runs, node results, check
//! results, watermarks, schedule ticks, leases, cancels, node logs, run processes, partitions,
//! backfills, incidents and alert deliveries), its ordered migrations and schema version, every
//! query, and the interface a backend implements.
//!
//! Nothing else in the workspace creates, alters, reads or writes a state table. The rest of the
//! workspace holds one [`State`] (`Arc<dyn State>`, from [`connect`]): `sluice-orchestrate`'s
//! `StateStore` wraps it and adds what is the orchestrator's to judge (this process's identity,
//! whether another process is gone, the clock); `sluice-monitor`'s `IncidentStore` wraps the same
//! object; `sluice-serve` and the CLI get it through `StateStore`.
//!
//! ```
//! use sluice_state::{RunControl, RunHistory};
//!
//! let dir = tempfile::tempdir()?;
//! let location = sluice_state::StateLocation::sqlite(dir.path().join(".sluice/state.db"));
//! let state = sluice_state::connect(&location)?;
//! assert!(state.runs(10)?.is_empty());
//! state.request_cancel("run-1", "2026-01-01T00:00:00Z")?;
//! assert!(state.cancel_requested("run-1")?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//!
//! - [`migration`]: [`Migration`], the list [`MIGRATIONS`], the [`StateBackend`] trait and the
//!   backend-neutral runner [`migrate`].
//! - The store traits, each with its records, together [`State`]:
//!   - [`runs`]: [`RunHistory`] — runs, node results, check results, watermarks;
//!   - [`control`]: [`RunControl`] — cancel requests, node leases, tick claims, node logs, stale
//!     inputs;
//!   - [`processes`]: [`RunProcesses`] — run plans, heartbeats, running runs, abandoning a run;
//!   - [`schedule`]: [`Schedules`] — schedule ticks, data-change and attempt marks;
//!   - [`partitions`]: [`Partitions`] — built partition ranges, backfills;
//!   - [`incidents`]: [`Incidents`] — incidents, alert deliveries, the monitor's reads;
//!   - [`auth`]: [`AuthTokens`] — users and API tokens of `sluice serve` (hashes and SCRAM keys
//!     only).
//! - [`postgres`]: the PostgreSQL backend: its connection worker, migrations
//!   ([`postgres::PostgresBackend`]) and every store trait ([`postgres::PostgresStore`]), passing
//!   the conformance suite on a real server; [`postgres::copy`] copies a SQLite state into it.
//! - [`testing`]: which backend the tests of other crates run on (`SLUICE_TEST_STATE_URL`).
//! - [`sqlite`]: the SQLite backend ([`SqliteStore`] implements every trait; [`open`],
//!   [`open_in_memory`] and [`SqliteBackend`] for migrations).
//! - `migrations/<dialect>/NNNN_name.sql`: the SQL of each migration, per dialect.
//! - `tests/conformance/`: the behaviour of every store operation as functions over `&dyn State`,
//!   run on SQLite by `tests/sqlite_store.rs`; a new backend runs the same list.
//!
//! The operations are synchronous and each is one atomic change or one consistent read. Times are
//! passed in by callers (RFC 3339 text, or milliseconds since the Unix epoch for leases, claims and
//! heartbeats), so every expiry is one comparison inside the database.
//!
//! # Versions and upgrades
//!
//! A database records the number of the last migration applied to it (SQLite: `PRAGMA
//! user_version`). Opening applies the missing migrations in order, each in one transaction with the
//! new version, under a write lock, so processes that open one database at once apply each exactly
//! once. A `state.db` made before versions existed has version 0 and the tables of migration 1
//! (`0001_baseline`, written `CREATE … IF NOT EXISTS`): it upgrades in place and keeps its rows. A
//! database with a version newer than this binary knows is refused with
//! [`StateError::NewerSchema`], never used.
//!
//! # How to add a migration
//!
//! 1. Write `migrations/sqlite/NNNN_name.sql` and `migrations/postgres/NNNN_name.sql` with the next
//!    number (`ALTER TABLE … ADD COLUMN`, `CREATE TABLE`, a data fix …). Never edit an applied one.
//! 2. Append a [`Migration`] with that number and name to [`MIGRATIONS`] (a test checks that every
//!    file is listed and that the numbers run 1, 2, … without gaps).
//! 3. Change the queries that use it (in `src/sqlite/`, and in every other backend), and add a test
//!    in `tests/migrations.rs` that builds a database at the previous version with rows and checks
//!    what the upgrade keeps.
//!
//! # How a PostgreSQL backend plugs in (issue 15)
//!
//! 1. Migrations: done. [`postgres::PostgresBackend`] implements [`StateBackend`] — the version in
//!    a one-row table `sluice_schema_version`; reading it and applying a migration each in one
//!    transaction that first takes `pg_advisory_xact_lock` (the equivalent of SQLite's `BEGIN
//!    IMMEDIATE`), re-reads the version, runs the migration's PostgreSQL text and writes the new
//!    version. PostgreSQL's DDL is transactional, so a failed migration leaves nothing behind.
//!    `tests/postgres_backend.rs` runs it against a real server (new database, upgrade from
//!    version 1, four processes at once, a newer database refused).
//! 2. Store: done. [`postgres::PostgresStore`] implements the six traits (so [`State`]) over its
//!    [`postgres::Worker`] (a client on a thread and runtime of its own: see below), and
//!    `tests/postgres_backend.rs` runs every `tests/conformance` test against it (a fresh schema
//!    per test). Its statements are those of `src/sqlite/` with `$n` for `?n` (`ON CONFLICT` upserts,
//!    `RETURNING`, `IS DISTINCT FROM`, window functions); it orders by the `seq` identity column
//!    where SQLite orders by `rowid`; where SQLite takes `BEGIN IMMEDIATE` (range merges, incident
//!    transitions) it takes a transaction-scoped advisory lock on the key it rewrites, and it
//!    reclaims stale alert deliveries `FOR UPDATE SKIP LOCKED`. Leases and tick claims are single
//!    conditional upserts decided by the database's row lock, so workers on several machines agree
//!    without process ids: the process recorded with a lease only lets a caller on the *same*
//!    machine give up a dead holder's lease early.
//! 3. Chosen: done. `state:` is told apart in `sluice-core` ([`StateLocation`]: a SQLite path or
//!    a [`PostgresUrl`], `${ENV}` expanded, shown without its password) before any path
//!    resolution, and [`connect`] opens [`postgres::PostgresStore::connect`] for a URL (a connect
//!    timeout; `?schema=name` keeps the tables in a schema of their own, created if missing).
//!    [`postgres::copy`] is `sluice state migrate --to`; [`peek_version`] is `sluice state
//!    version`; [`testing::TestSchema`] runs other crates' tests on PostgreSQL
//!    (`SLUICE_TEST_STATE_URL`), as `.ci/run` does in a second pass.
//! 4. To do (issue 15): TLS to the server; several workers sharing one schedule (the leases and
//!    claims are ready for it) with a multi-worker test; the scheduler benchmark on PostgreSQL;
//!    the remaining state-dependent tests on PostgreSQL (see `.ci/run` for which run there).
//!
//! The operations are called from inside tokio tasks (the run loop, HTTP handlers) as well as from
//! plain threads. A PostgreSQL implementation must therefore not block on a runtime it is called
//! from (`postgres::Client` would panic there): [`postgres::Worker`] runs its client on a runtime
//! of its own (a thread that owns a `tokio_postgres::Client`, fed by a channel); the other way
//! would be to make the traits async in one step for every caller.

pub mod audit;
pub mod auth;
pub mod control;
pub mod incidents;
pub mod migration;
pub mod partitions;
pub mod postgres;
pub mod processes;
pub mod queue;
pub mod runs;
pub mod schedule;
pub mod sqlite;
pub mod testing;

mod error;

use std::sync::Arc;

pub use sluice_core::state_location::{PostgresUrl, StateLocation};

pub use audit::{AuditLog, AuditRecord};
pub use auth::{AuthTokens, TokenRecord, UserTokens};
pub use control::{LeaseOutcome, LogLine, RunControl};
pub use error::StateError;
pub use incidents::{
    AlertEvent, Breach, Claimed, DeliveryOutcome, DeliveryRecord, Incident, IncidentKind,
    Incidents, LatestResult,
};
pub use migration::{Dialect, MIGRATIONS, Migration, StateBackend, latest_version, migrate};
pub use partitions::{BackfillRecord, FailedPartition, KeyRange, Partitions};
pub use processes::{RunProcesses, RunningRun};
pub use queue::{QueuedRun, RunQueue};
pub use runs::{CheckRecord, NodeRecord, RunHistory, RunProcess, RunRecord};
pub use schedule::{RunMark, Schedules};
pub use sqlite::{SqliteBackend, SqliteStore, open, open_in_memory};

/// The whole state database: every store trait. The rest of the workspace holds one
/// `Arc<dyn State>` (`sluice_orchestrate::StateStore` wraps it) and never sees the backend.
pub trait State:
    RunHistory
    + RunControl
    + RunProcesses
    + RunQueue
    + Schedules
    + Partitions
    + Incidents
    + AuthTokens
    + AuditLog
    + std::fmt::Debug
{
    /// Where the database is, for messages (a file path, or a URL without its password).
    fn location(&self) -> String;
}

/// The schema version of the database at `location`, read without creating or migrating it (0:
/// none there yet), for `sluice state version`.
pub fn peek_version(location: &StateLocation) -> Result<u32, StateError> {
    match location {
        StateLocation::Sqlite(path) if !path.exists() => Ok(0),
        StateLocation::Sqlite(path) => {
            let sqlite = |source| StateError::Sqlite {
                path: path.display().to_string(),
                source,
            };
            let conn = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .map_err(sqlite)?;
            sqlite::schema_version(&conn)
        }
        StateLocation::Postgres(url) => postgres::peek_version(url),
    }
}

/// Opens the state database at `location`, creating and migrating it as needed, on the backend
/// it names: a SQLite file ([`SqliteStore::open`]) or a PostgreSQL database
/// ([`postgres::PostgresStore::connect`]). The one place a backend is chosen.
pub fn connect(location: &StateLocation) -> Result<Arc<dyn State>, StateError> {
    Ok(match location {
        StateLocation::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        StateLocation::Postgres(url) => Arc::new(postgres::PostgresStore::connect(url)?),
    })
}
