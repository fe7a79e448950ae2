//! The PostgreSQL backend (issue 15): its connection worker, its migrations, and every store trait
//! (so [`crate::State`]), run through the conformance suite by `tests/postgres_backend.rs`.
//! [`crate::connect`] chooses it for `state: postgres://…` ([`PostgresStore::connect`]).
//!
//! The store operations are synchronous and are called from inside tokio tasks as well as from
//! plain threads, so the client cannot block on the caller's runtime. A [`Worker`] owns a
//! `tokio_postgres::Client` on a thread with a runtime of its own; callers hand it a job and wait
//! for its answer on a channel, which is safe from any thread.

use std::sync::mpsc;

use tokio_postgres::{Client, NoTls};

mod audit;
mod auth;
mod control;
pub mod copy;
mod history;
mod incidents;
mod partitions;
mod queue;

use sluice_core::state_location::PostgresUrl;

use crate::StateError;
use crate::migration::{Dialect, MIGRATIONS, Migration, StateBackend, migrate};

/// Serialises migrations across every process using one database (an arbitrary constant: the
/// first bytes of "sluice" in ASCII).
const MIGRATION_LOCK: i64 = 0x736c_7569_6365;

/// How long connecting may take (TCP and the server's answer) when the URL sets no
/// `connect_timeout`.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type Job = Box<dyn FnOnce(&mut Client, &tokio::runtime::Runtime) + Send>;

/// One connection to a PostgreSQL database, on a thread of its own.
#[derive(Debug)]
pub struct Worker {
    jobs: mpsc::Sender<Job>,
    location: String,
}

impl Worker {
    /// Connects with `config` (a `postgres://` URL or `key=value` pairs). `location` names the
    /// database in messages (never with a password).
    pub fn connect(config: &str, location: &str) -> Result<Worker, StateError> {
        let config =
            config
                .parse::<tokio_postgres::Config>()
                .map_err(|e| StateError::Postgres {
                    location: location.to_string(),
                    source: Box::new(e),
                })?;
        Worker::connect_with(config, location)
    }

    /// Connects with a parsed `config`; without a `connect_timeout` of its own it gets
    /// [`CONNECT_TIMEOUT`], so an unreachable server is an error, not a hang.
    pub fn connect_with(
        mut config: tokio_postgres::Config,
        location: &str,
    ) -> Result<Worker, StateError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("sluice");
        }
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::channel::<Result<(), tokio_postgres::Error>>();
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| StateError::Postgres {
            location: location.to_string(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(Box::new(e)))?;
        std::thread::Builder::new()
            .name("sluice-state-postgres".into())
            .spawn(move || {
                let client = runtime.block_on(async {
                    let (client, connection) = config.connect(NoTls).await?;
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::warn!(error = %e, "state database connection ended");
                        }
                    });
                    Ok::<_, tokio_postgres::Error>(client)
                });
                let mut client = match client {
                    Ok(c) => {
                        let _ = ready.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                // Ends when every sender (the worker) is dropped.
                for job in inbox {
                    job(&mut client, &runtime);
                }
            })
            .map_err(|e| failed(Box::new(e)))?;
        match connected.recv() {
            Ok(Ok(())) => Ok(Worker {
                jobs,
                location: location.to_string(),
            }),
            Ok(Err(e)) => Err(failed(Box::new(e))),
            Err(e) => Err(failed(Box::new(e))),
        }
    }

    /// Where the database is, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Runs `f` on the worker's thread with its client and runtime, and waits for its result.
    pub fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client, &tokio::runtime::Runtime) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        let (reply, answer) = mpsc::channel();
        let job: Job = Box::new(move |client, runtime| {
            let _ = reply.send(f(client, runtime));
        });
        let gone = || StateError::Postgres {
            location: self.location.clone(),
            source: "the connection's thread has ended".into(),
        };
        self.jobs.send(job).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

/// [`StateBackend`] over a [`Worker`]: the version in a one-row table, each migration in one
/// transaction under a transaction-scoped advisory lock (the equivalent of SQLite's `BEGIN
/// IMMEDIATE`: a second process waits, then finds the migration applied). PostgreSQL's DDL is
/// transactional, so a failed migration leaves nothing behind.
pub struct PostgresBackend<'w> {
    worker: &'w Worker,
}

impl<'w> PostgresBackend<'w> {
    /// The backend over `worker`'s connection.
    pub fn new(worker: &'w Worker) -> PostgresBackend<'w> {
        PostgresBackend { worker }
    }
}

const VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS sluice_schema_version (version INT NOT NULL)";

async fn read_version(
    client: &impl tokio_postgres::GenericClient,
) -> Result<u32, tokio_postgres::Error> {
    let row = client
        .query_opt("SELECT version FROM sluice_schema_version", &[])
        .await?;
    // A negative value (written by hand) reads as huge: refused as newer, never migrated over.
    Ok(row.map_or(0, |r| u32::try_from(r.get::<_, i32>(0)).unwrap_or(u32::MAX)))
}

impl StateBackend for PostgresBackend<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn location(&self) -> String {
        self.worker.location().to_string()
    }

    fn schema_version(&mut self) -> Result<u32, StateError> {
        let location = self.location();
        self.worker.call(move |client, runtime| {
            runtime
                .block_on(async {
                    // Under the lock: two processes creating the version table at once would
                    // otherwise collide (`CREATE TABLE IF NOT EXISTS` is not race-free).
                    let tx = client.transaction().await?;
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                        .await?;
                    tx.batch_execute(VERSION_TABLE).await?;
                    let version = read_version(&tx).await?;
                    tx.commit().await?;
                    Ok::<_, tokio_postgres::Error>(version)
                })
                .map_err(|e| StateError::Postgres {
                    location,
                    source: Box::new(e),
                })
        })
    }

    fn apply(&mut self, migration: &Migration) -> Result<bool, StateError> {
        let sql = migration.sql(Dialect::Postgres)?;
        let (version, name, location) = (migration.version, migration.name, self.location());
        self.worker.call(move |client, runtime| {
            runtime
                .block_on(async {
                    let tx = client.transaction().await?;
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                        .await?;
                    tx.batch_execute(VERSION_TABLE).await?;
                    if read_version(&tx).await? >= version {
                        return Ok(false);
                    }
                    tx.batch_execute(sql).await?;
                    let v = i32::try_from(version).unwrap_or(i32::MAX);
                    tx.execute("DELETE FROM sluice_schema_version", &[]).await?;
                    tx.execute(
                        "INSERT INTO sluice_schema_version (version) VALUES ($1)",
                        &[&v],
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                })
                .map_err(|e: tokio_postgres::Error| StateError::Migration {
                    path: location,
                    version,
                    name,
                    source: Box::new(e),
                })
        })
    }
}

/// The driver's configuration for `url`: its `schema` becomes the connection's `search_path`
/// (after any `options` the URL sets itself).
pub fn url_config(url: &PostgresUrl) -> Result<tokio_postgres::Config, StateError> {
    let mut config = url
        .connection_url()
        .parse::<tokio_postgres::Config>()
        .map_err(|e| StateError::Postgres {
            location: url.to_string(),
            source: with_cause(&e).into(),
        })?;
    if let Some(schema) = url.schema() {
        // The name is checked (lower-case letters, digits, `_`), so it needs no quoting here.
        let options = match config.get_options() {
            Some(o) => format!("{o} -c search_path={schema}"),
            None => format!("-c search_path={schema}"),
        };
        config.options(&options);
    }
    Ok(config)
}

/// The driver's message with its cause (its configuration errors say only "invalid connection
/// string" at the top).
fn with_cause(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Creates `schema` if missing, under the migration lock (`CREATE SCHEMA IF NOT EXISTS` is not
/// race-free between processes).
fn create_schema(worker: &Worker, schema: &str) -> Result<(), StateError> {
    let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    let location = worker.location().to_string();
    worker.call(move |client, runtime| {
        runtime
            .block_on(async {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                    .await?;
                tx.batch_execute(&sql).await?;
                tx.commit().await
            })
            .map_err(|e| StateError::Postgres {
                location,
                source: Box::new(e),
            })
    })
}

/// The schema version of the database at `url`, read without creating or migrating anything (0:
/// no state tables there yet).
pub fn peek_version(url: &PostgresUrl) -> Result<u32, StateError> {
    let worker = Worker::connect_with(url_config(url)?, &url.to_string())?;
    let location = url.to_string();
    worker.call(move |client, runtime| {
        runtime
            .block_on(async {
                let exists: bool = client
                    .query_one(
                        "SELECT to_regclass('sluice_schema_version') IS NOT NULL",
                        &[],
                    )
                    .await?
                    .get(0);
                if exists {
                    read_version(client).await
                } else {
                    Ok(0)
                }
            })
            .map_err(|e| StateError::Postgres {
                location,
                source: Box::new(e),
            })
    })
}

/// A state database on PostgreSQL: one connection ([`Worker`]), migrated when opened.
#[derive(Debug)]
pub struct PostgresStore {
    worker: Worker,
}

impl PostgresStore {
    /// Connects with `config` and brings the database to the current schema (refusing one a newer
    /// sluice migrated further). `location` names it in messages (never with a password).
    pub fn open(config: &str, location: &str) -> Result<PostgresStore, StateError> {
        let worker = Worker::connect(config, location)?;
        migrate(&mut PostgresBackend::new(&worker), MIGRATIONS)?;
        Ok(PostgresStore { worker })
    }

    /// Connects to `url` (a `state: postgres://…` location): with `?schema=name`, the state
    /// tables live in that schema, created if missing, so several projects can share one database.
    pub fn connect(url: &PostgresUrl) -> Result<PostgresStore, StateError> {
        let worker = Worker::connect_with(url_config(url)?, &url.to_string())?;
        if let Some(schema) = url.schema() {
            create_schema(&worker, schema)?;
        }
        migrate(&mut PostgresBackend::new(&worker), MIGRATIONS)?;
        Ok(PostgresStore { worker })
    }

    /// Where the database is, for messages.
    pub fn location(&self) -> &str {
        self.worker.location()
    }

    /// The connection (for `sluice state migrate`, and tests).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Runs `f` on the connection's thread, turning its error into [`StateError::Postgres`].
    fn exec<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client, &tokio::runtime::Runtime) -> Result<T, tokio_postgres::Error>
        + Send
        + 'static,
    ) -> Result<T, StateError> {
        let location = self.worker.location().to_string();
        self.worker.call(move |client, runtime| {
            f(client, runtime).map_err(|e| StateError::Postgres {
                location,
                source: Box::new(e),
            })
        })
    }
}

impl crate::State for PostgresStore {
    fn location(&self) -> String {
        self.worker.location().to_string()
    }
}
