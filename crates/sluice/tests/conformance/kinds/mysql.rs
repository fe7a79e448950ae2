//! `kind: mysql`: a database of its own in the local MariaDB/MySQL, read incrementally by `id`.
//! Skipped outside CI when the server is down, failed under `CI=true`.

use std::fmt::Write as _;
use std::path::Path;

use mysql_async::prelude::Queryable;

use crate::harness::service;
use crate::{
    ConformanceSource, Drift, SourceOptions, Upstream, Watermark, amount, email, extra, secret,
};

fn server_url() -> String {
    std::env::var("SLUICE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

pub struct Mysql;

impl ConformanceSource for Mysql {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn provision(
        &self,
        _project: &Path,
        name: &str,
        rows: u64,
        payload: usize,
        _unit: u64,
    ) -> Option<Box<dyn Upstream>> {
        if std::env::var("SLUICE_TEST_MYSQL_URL").is_err() {
            service("127.0.0.1:3306", "MySQL/MariaDB")?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conn = rt
            .block_on(mysql_async::Conn::from_url(server_url()))
            .unwrap_or_else(|e| panic!("MySQL/MariaDB at `{}`: {e}", server_url()));
        let db = format!("sluice_conf_{name}").to_lowercase();
        let mut up = MyUpstream {
            rt,
            conn: Some(conn),
            db,
            next: 1,
            payload,
            with_extra: false,
        };
        up.exec(&format!("CREATE DATABASE `{}`", up.db));
        up.exec(&format!(
            "CREATE TABLE `{}`.items (id bigint PRIMARY KEY, email varchar(100), secret varchar(100), \
             amount double, active tinyint(1), note text)",
            up.db
        ));
        up.append(rows);
        Some(Box::new(up))
    }

    fn watermark(&self) -> Watermark {
        Watermark::Cursor("id")
    }

    fn drift(&self) -> Drift {
        // Each run reads the table's current columns; bronze commits merge new ones.
        Drift::AddsColumn
    }

    fn quarantine_column(&self) -> &'static str {
        // docs/sources/mysql.md: "a `tinyint(1)` holding anything but 0/1 goes to quarantine".
        "active"
    }

    fn memory_note(&self) -> &'static str {
        "an incremental load is streamed and commits every `commit_rows` rows"
    }
}

struct MyUpstream {
    rt: tokio::runtime::Runtime,
    conn: Option<mysql_async::Conn>,
    db: String,
    next: u64,
    payload: usize,
    with_extra: bool,
}

impl MyUpstream {
    fn exec(&mut self, sql: &str) {
        let conn = self.conn.as_mut().unwrap();
        self.rt
            .block_on(conn.query_drop(sql))
            .unwrap_or_else(|e| panic!("{}: {e}", &sql[..sql.len().min(200)]));
    }
}

impl Drop for MyUpstream {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let db = self.db.clone();
            self.rt.block_on(async move {
                let _ = conn
                    .query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
                    .await;
                let _ = conn.disconnect().await;
            });
        }
    }
}

impl Upstream for MyUpstream {
    fn append(&mut self, rows: u64) {
        let end = self.next + rows;
        let reps = self.payload / 32 + 1;
        let cols = if self.with_extra { ", extra" } else { "" };
        while self.next < end {
            let stop = end.min(self.next + 1000);
            let mut sql = format!(
                "INSERT INTO `{}`.items (id, email, secret, amount, active, note{cols}) VALUES ",
                self.db
            );
            for id in self.next..stop {
                let sep = if id == self.next { "" } else { "," };
                let _ = write!(
                    sql,
                    "{sep}({id}, '{}', '{}', {}, 1, LEFT(REPEAT(MD5({id}), {reps}), {})",
                    email(id),
                    secret(id),
                    amount(id),
                    self.payload
                );
                if self.with_extra {
                    let _ = write!(sql, ", '{}'", extra(id));
                }
                sql.push(')');
            }
            self.exec(&sql);
            self.next = stop;
        }
    }

    fn add_column(&mut self) {
        let sql = format!("ALTER TABLE `{}`.items ADD COLUMN extra text", self.db);
        self.exec(&sql);
        self.with_extra = true;
    }

    fn insert_bad_row(&mut self) -> u64 {
        let id = self.next;
        let sql = format!(
            "INSERT INTO `{}`.items (id, email, secret, amount, active, note) VALUES ({id}, '{}', '{}', 1.5, 5, 'bad')",
            self.db,
            email(id),
            secret(id)
        );
        self.exec(&sql);
        self.next += 1;
        id
    }

    fn max_id(&self) -> u64 {
        self.next - 1
    }

    fn source_yaml(&self, opts: &SourceOptions) -> String {
        let mut yaml = format!(
            "kind: mysql\nconnection: \"{}\"\ndatabase: {}\n",
            server_url(),
            self.db
        );
        if let Some(n) = opts.commit_rows {
            yaml.push_str(&format!("commit_rows: {n}\nbatch_size: {}\n", n.min(1000)));
        }
        yaml.push_str("tables:\n  - name: items\n    mode: incremental\n    cursor: id\n    primary_key: [id]\n");
        if opts.pii {
            yaml.push_str("    pii: {email: hash, secret: drop}\n");
        }
        yaml
    }
}
