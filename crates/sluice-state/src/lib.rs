//! The state database of Sluice: every table that records what happened (runs, node results, check
//! results, watermarks, schedule ticks, leases, cancels, node logs, run processes, partitions,
//! backfills, incidents and alert deliveries), its ordered migrations and its schema version.
//!
//! Nothing else in the workspace creates or alters a state table. The crates that read and write
//! them (`sluice-orchestrate`, `sluice-monitor`; `sluice-serve` and the CLI through orchestrate) get
//! their connection from [`open`], which creates the database if needed and migrates it; their query
//! code stays next to the logic it serves.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let conn = sluice_state::open(&dir.path().join(".sluice/state.db"))?;
//! assert_eq!(sluice_state::sqlite::schema_version(&conn)?, sluice_state::latest_version());
//! let runs: i64 = conn.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))?;
//! assert_eq!(runs, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//!
//! - [`migration`]: [`Migration`], the list [`MIGRATIONS`], the [`StateBackend`] trait and the
//!   backend-neutral runner [`migrate`].
//! - [`runs`]: the run history as a trait, [`RunHistory`] (runs, node results, check results,
//!   watermarks), and its records.
//! - [`sqlite`]: the SQLite backend ([`open`], [`open_in_memory`], [`SqliteBackend`] for
//!   migrations, [`SqliteStore`] for the store traits).
//! - `migrations/<dialect>/NNNN_name.sql`: the SQL of each migration, per dialect.
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
//! 3. Change the query code that uses it, and add a test in `tests/migrations.rs` that builds a
//!    database at the previous version with rows and checks what the upgrade keeps.
//!
//! # How a PostgreSQL backend plugs in (issue 15)
//!
//! The migration layer is already backend-neutral: [`migrate`] only talks to a [`StateBackend`],
//! and every [`Migration`] carries its PostgreSQL text (`migrations/postgres/`; the baseline is
//! checked against a real server in `tests/migrations.rs`). A PostgreSQL backend:
//!
//! 1. implements [`StateBackend`]: `dialect()` = [`Dialect::Postgres`]; the version in a one-row
//!    table (`CREATE TABLE IF NOT EXISTS sluice_schema_version (version INT NOT NULL)`); `apply()` in
//!    one transaction that first takes `pg_advisory_xact_lock(<constant>)` (the equivalent of SQLite's
//!    `BEGIN IMMEDIATE`), re-reads the version, runs the migration's PostgreSQL text and writes the
//!    new version; PostgreSQL's DDL is transactional, so a failed migration leaves nothing behind;
//! 2. is chosen by `state:` in `sluice.yml` (`postgres://…` → PostgreSQL, else a SQLite path) where
//!    the CLI opens the state store today (`StateStore::open` in `sluice-orchestrate`);
//! 3. implements the store traits. The run history is one already: [`RunHistory`] (runs, node
//!    results, check results, watermarks), implemented for SQLite by [`SqliteStore`] and called by
//!    `sluice-orchestrate`'s `StateStore`, which would hold a `Box<dyn RunHistory>` instead. The
//!    rest are still inherent methods over a `rusqlite::Connection`, each group a trait to cut the
//!    same way: `control.rs` (cancels, leases, tick claims, node logs, stale inputs), `abandon.rs`
//!    (run processes, heartbeats, abandoning), `schedule/store.rs` (schedule ticks, data-change and
//!    attempt marks), `partition/store.rs` (partition ranges, backfills) in orchestrate, and
//!    `incidents.rs` (incidents, deliveries) in monitor. Their SQL differs in PostgreSQL where it
//!    uses `rowid` (the baseline adds a `seq` identity column to order by), `INSERT OR
//!    REPLACE`/`OR IGNORE` (`ON CONFLICT … DO UPDATE`/`DO NOTHING`), and SQLite's bare columns
//!    beside `max()` (`DISTINCT ON`).
//!
//! The store operations are synchronous and are called from inside tokio tasks (the run loop, HTTP
//! handlers) as well as from plain threads. A PostgreSQL implementation must therefore not block on
//! a runtime it is called from (`postgres::Client` would panic there): run its client on a runtime
//! of its own (a thread that owns a `tokio_postgres::Client`, fed by a channel), or make the traits
//! async in one step for every caller.

pub mod migration;
pub mod runs;
pub mod sqlite;

mod error;

pub use error::StateError;
pub use migration::{Dialect, MIGRATIONS, Migration, StateBackend, latest_version, migrate};
pub use runs::{CheckRecord, NodeRecord, RunHistory, RunProcess, RunRecord};
pub use sqlite::{SqliteBackend, SqliteStore, open, open_in_memory};
