//! The databases the relational connector suite (`tests/relational.rs`) runs against, one row per
//! driver of the kit: SQLite always (a file in a temporary folder), PostgreSQL from
//! `SLUICE_TEST_PG_URL` (default `host=127.0.0.1 port=5432 user=postgres dbname=test`) and MySQL /
//! MariaDB from `SLUICE_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`) when they can
//! be reached. Each test works in its own schema or database, dropped when the test ends; a server
//! that cannot be reached fails the test under `CI=true` and is skipped (with a message) otherwise.

#![allow(dead_code)]

use mysql_async::prelude::Queryable;
use sluice_core::SourceDecl;

/// The relational drivers, in the order the suite runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Sqlite,
    Postgres,
    Mysql,
}

pub const DRIVERS: [Driver; 3] = [Driver::Sqlite, Driver::Postgres, Driver::Mysql];

pub fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string())
}

pub fn mysql_url() -> String {
    std::env::var("SLUICE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

enum Conn {
    Sqlite {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

/// One test's own database (a SQLite file, a PostgreSQL schema or a MySQL database).
pub struct TestDb {
    pub driver: Driver,
    /// The schema (PostgreSQL) or database (MySQL) of this test; the file stem for SQLite.
    pub name: String,
    conn: Conn,
}

fn unique(test: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("sluice_it_{test}_{}", &id[..12])
}

fn unreachable(what: &str, url: &str, test: &str, e: impl std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is not reachable at `{url}` under CI=true: {e}");
    }
    eprintln!("skipping {test}: {what} is not reachable at `{url}`: {e}");
}

/// The test's database on `driver`, or `None` (skip) when its server cannot be reached.
pub async fn open(driver: Driver, test: &str) -> Option<TestDb> {
    let name = unique(test);
    let conn = match driver {
        Driver::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("{name}.db"));
            rusqlite::Connection::open(&path).unwrap();
            Conn::Sqlite { _dir: dir, path }
        }
        Driver::Postgres => {
            let url = pg_url();
            let (client, conn) = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                Ok(c) => c,
                Err(e) => {
                    unreachable("PostgreSQL", &url, test, e);
                    return None;
                }
            };
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
                .await
                .unwrap();
            Conn::Postgres(client)
        }
        Driver::Mysql => {
            let url = mysql_url();
            let mut conn = match mysql_async::Conn::from_url(url.as_str()).await {
                Ok(c) => c,
                Err(e) => {
                    unreachable("MySQL/MariaDB", &url, test, e);
                    return None;
                }
            };
            conn.query_drop(format!("CREATE DATABASE `{name}`"))
                .await
                .unwrap();
            conn.query_drop(format!("USE `{name}`")).await.unwrap();
            // Permissive mode, so that the dirty values a real legacy database holds can be inserted.
            conn.query_drop("SET SESSION sql_mode = '', time_zone = '+00:00'")
                .await
                .unwrap();
            Conn::Mysql(conn)
        }
    };
    Some(TestDb { driver, name, conn })
}

/// The test's database on every driver that can be reached.
pub async fn each(test: &str) -> Vec<TestDb> {
    let mut out = Vec::new();
    for d in DRIVERS {
        out.extend(open(d, test).await);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (driver, name) = (self.driver, self.name.clone());
        if driver == Driver::Sqlite {
            return;
        }
        // Drop runs outside async; use a short-lived runtime on another thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                match driver {
                    Driver::Postgres => {
                        if let Ok((client, conn)) =
                            tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await
                        {
                            tokio::spawn(conn);
                            let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                            let _ = client.batch_execute(&sql).await;
                        }
                    }
                    Driver::Mysql => {
                        if let Ok(mut c) = mysql_async::Conn::from_url(mysql_url()).await {
                            let sql = format!("DROP DATABASE IF EXISTS `{name}`");
                            let _ = c.query_drop(sql).await;
                            let _ = c.disconnect().await;
                        }
                    }
                    Driver::Sqlite => {}
                }
            });
        })
        .join();
    }
}

impl TestDb {
    /// The `kind:` of this driver.
    pub fn kind(&self) -> &'static str {
        match self.driver {
            Driver::Sqlite => "sqlite",
            Driver::Postgres => "postgres",
            Driver::Mysql => "mysql",
        }
    }

    /// Runs one or more statements.
    pub async fn exec(&mut self, sql: &str) {
        let kind = self.kind();
        let ctx = |e: &dyn std::fmt::Display| format!("{kind}: {sql}: {e}");
        match &mut self.conn {
            Conn::Sqlite { path, .. } => {
                let c = rusqlite::Connection::open(&*path).unwrap();
                c.execute_batch(sql)
                    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
            }
            Conn::Postgres(client) => {
                let sql = format!("SET search_path = \"{}\", public; {sql}", self.name);
                client
                    .batch_execute(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
            }
            Conn::Mysql(conn) => {
                conn.query_drop(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{}", ctx(&e)));
            }
        }
    }

    /// A source file of this driver reading this test's database (`body`: the rest of the file).
    pub fn source(&self, name: &str, body: &str) -> SourceDecl {
        let head = match &self.conn {
            Conn::Sqlite { path, .. } => format!("connection: \"{}\"\n", path.display()),
            Conn::Postgres(_) => format!("connection: \"{}\"\nschema: {}\n", pg_url(), self.name),
            Conn::Mysql(_) => {
                let base = mysql_url();
                let root = base.rsplit_once('/').map_or(base.as_str(), |(r, _)| r);
                format!("connection: \"{root}/{}\"\n", self.name)
            }
        };
        let text = format!("kind: {}\n{head}{body}", self.kind());
        SourceDecl::parse(std::path::Path::new(&format!("sources/{name}.yml")), &text).unwrap()
    }

    /// The PostgreSQL connection of a `Driver::Postgres` database.
    pub fn pg(&self) -> &tokio_postgres::Client {
        match &self.conn {
            Conn::Postgres(client) => client,
            _ => panic!("{} has no PostgreSQL connection", self.kind()),
        }
    }

    /// `table` as a query of this test names it (schema- or database-qualified).
    pub fn table_ref(&self, table: &str) -> String {
        match self.driver {
            Driver::Sqlite => table.to_string(),
            _ => format!("{}.{table}", self.name),
        }
    }

    /// `_source` of the rows landed from `table`.
    pub fn origin(&self, table: &str) -> String {
        match &self.conn {
            Conn::Sqlite { path, .. } => {
                format!("sqlite:{}", path.file_name().unwrap().to_string_lossy())
            }
            _ => format!("{}:{}.{table}", self.kind(), self.name),
        }
    }

    /// The column type of a timestamp cursor.
    pub fn timestamp_type(&self) -> &'static str {
        match self.driver {
            Driver::Sqlite => "text",
            Driver::Postgres => "timestamptz",
            Driver::Mysql => "datetime(6)",
        }
    }

    /// A timestamp `seconds` after 2024-01-01 00:00:00 UTC as a SQL literal of
    /// [`TestDb::timestamp_type`].
    pub fn timestamp(&self, seconds: u32) -> String {
        let t = format!(
            "2024-01-01 {:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
        match self.driver {
            Driver::Postgres => format!("'{t}+00'"),
            _ => format!("'{t}'"),
        }
    }

    /// The watermark the connector records for [`TestDb::timestamp`]`(seconds)`.
    pub fn timestamp_mark(&self, seconds: u32) -> serde_json::Value {
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        match self.driver {
            // SQLite keeps the text as stored.
            Driver::Sqlite => format!("2024-01-01 {h:02}:{m:02}:{s:02}").into(),
            Driver::Postgres => format!("2024-01-01T{h:02}:{m:02}:{s:02}.000000Z").into(),
            Driver::Mysql => format!("2024-01-01 {h:02}:{m:02}:{s:02}.000000").into(),
        }
    }
}
