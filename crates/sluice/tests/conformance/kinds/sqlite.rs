//! `kind: sqlite`: a database file in the project, read incrementally by `id`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use crate::{
    ConformanceSource, Drift, SourceOptions, Upstream, Watermark, amount, email, extra, note,
    secret,
};

pub struct Sqlite;

impl ConformanceSource for Sqlite {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn provision(
        &self,
        project: &Path,
        name: &str,
        rows: u64,
        payload: usize,
        _unit: u64,
    ) -> Option<Box<dyn Upstream>> {
        let path = project.join(format!("data/{name}.db"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, email TEXT, secret TEXT, amount REAL, note TEXT)",
        )
        .unwrap();
        let mut up = SqliteUpstream {
            path,
            conn,
            next: 1,
            payload,
            with_extra: false,
        };
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
        // README: "SQLite lets any value into any column: a value that does not convert sends its
        // row to quarantine."
        "amount"
    }

    fn memory_note(&self) -> &'static str {
        "an incremental load commits every `commit_rows` rows, and the reader waits while a chunk commits"
    }
}

struct SqliteUpstream {
    path: PathBuf,
    conn: Connection,
    next: u64,
    payload: usize,
    with_extra: bool,
}

impl Upstream for SqliteUpstream {
    fn append(&mut self, rows: u64) {
        let tx = self.conn.transaction().unwrap();
        {
            let sql = if self.with_extra {
                "INSERT INTO items (id, email, secret, amount, note, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            } else {
                "INSERT INTO items (id, email, secret, amount, note) VALUES (?1, ?2, ?3, ?4, ?5)"
            };
            let mut stmt = tx.prepare(sql).unwrap();
            for id in self.next..self.next + rows {
                let i = id as i64;
                if self.with_extra {
                    stmt.execute(params![
                        i,
                        email(id),
                        secret(id),
                        amount(id),
                        note(id, self.payload),
                        extra(id)
                    ])
                    .unwrap();
                } else {
                    stmt.execute(params![
                        i,
                        email(id),
                        secret(id),
                        amount(id),
                        note(id, self.payload)
                    ])
                    .unwrap();
                }
            }
        }
        tx.commit().unwrap();
        self.next += rows;
    }

    fn add_column(&mut self) {
        self.conn
            .execute_batch("ALTER TABLE items ADD COLUMN extra TEXT")
            .unwrap();
        self.with_extra = true;
    }

    fn insert_bad_row(&mut self) -> u64 {
        let id = self.next;
        self.conn
            .execute(
                "INSERT INTO items (id, email, secret, amount, note) VALUES (?1, ?2, ?3, 'lots', 'bad')",
                params![id as i64, email(id), secret(id)],
            )
            .unwrap();
        self.next += 1;
        id
    }

    fn max_id(&self) -> u64 {
        self.next - 1
    }

    fn source_yaml(&self, opts: &SourceOptions) -> String {
        let mut yaml = format!("kind: sqlite\nconnection: {}\n", self.path.display());
        if let Some(n) = opts.commit_rows {
            // Small batches too, so that a chunk is several batches as in a real load.
            yaml.push_str(&format!("commit_rows: {n}\nbatch_size: {}\n", n.min(1000)));
        }
        yaml.push_str("tables:\n  - name: items\n    mode: incremental\n    cursor: id\n    primary_key: [id]\n");
        if opts.pii {
            yaml.push_str("    pii: {email: hash, secret: drop}\n");
        }
        yaml
    }
}
