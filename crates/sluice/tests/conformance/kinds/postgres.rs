//! `kind: postgres`: a schema of its own in the local PostgreSQL (database `test`), read incrementally
//! by `id`. Skipped outside CI when the server is down, failed under `CI=true`.

use std::path::Path;

use tokio_postgres::{Client, NoTls};

use crate::harness::service;
use crate::{ConformanceSource, Drift, SourceOptions, Upstream, Watermark, email, secret};

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string())
}

pub struct Postgres;

impl ConformanceSource for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn provision(
        &self,
        _project: &Path,
        name: &str,
        rows: u64,
        payload: usize,
        _unit: u64,
    ) -> Option<Box<dyn Upstream>> {
        if std::env::var("SLUICE_TEST_PG_URL").is_err() {
            service("127.0.0.1:5432", "PostgreSQL")?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (client, conn) = rt
            .block_on(tokio_postgres::connect(&pg_url(), NoTls))
            .unwrap_or_else(|e| panic!("PostgreSQL at `{}`: {e}", pg_url()));
        rt.spawn(conn);
        let schema = format!("sluice_conf_{name}").to_lowercase();
        let mut up = PgUpstream {
            rt,
            client,
            schema,
            next: 1,
            payload,
            with_extra: false,
        };
        up.exec(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.items (id int8 PRIMARY KEY, email text, secret text, \
             amount numeric, note text)",
            s = up.schema
        ));
        up.append(rows);
        Some(Box::new(up))
    }

    fn watermark(&self) -> Watermark {
        Watermark::Cursor("id")
    }

    fn drift(&self) -> Drift {
        // Each run prepares `SELECT *` again and bronze commits merge new columns (documented for
        // CDC in docs/sources/postgres.md; the suite holds the other modes to it).
        Drift::AddsColumn
    }

    fn quarantine_column(&self) -> &'static str {
        // docs/sources/postgres.md: a `numeric` (no precision) value needing rounding goes to
        // quarantine with the column and the reason.
        "amount"
    }

    fn memory_note(&self) -> &'static str {
        "an incremental load is streamed and commits every `commit_rows` rows"
    }
}

struct PgUpstream {
    rt: tokio::runtime::Runtime,
    client: Client,
    schema: String,
    next: u64,
    payload: usize,
    with_extra: bool,
}

impl PgUpstream {
    fn exec(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for PgUpstream {
    fn drop(&mut self) {
        let _ = self.rt.block_on(
            self.client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)),
        );
    }
}

impl Upstream for PgUpstream {
    fn append(&mut self, rows: u64) {
        if rows == 0 {
            return;
        }
        let (from, to) = (self.next, self.next + rows - 1);
        // The same values as crate::{email, secret, amount, extra}; the note is PostgreSQL's own.
        let reps = self.payload / 32 + 1;
        let (cols, vals) = if self.with_extra {
            (", extra", ", 'x' || g")
        } else {
            ("", "")
        };
        self.exec(&format!(
            "INSERT INTO {s}.items (id, email, secret, amount, note{cols}) \
             SELECT g, 'user' || g || '@example.com', 's3cret-' || g, g + 0.25, \
             left(repeat(md5(g::text), {reps}), {len}){vals} FROM generate_series({from}, {to}) g",
            s = self.schema,
            len = self.payload
        ));
        self.next += rows;
    }

    fn add_column(&mut self) {
        self.exec(&format!(
            "ALTER TABLE {}.items ADD COLUMN extra text",
            self.schema
        ));
        self.with_extra = true;
    }

    fn insert_bad_row(&mut self) -> u64 {
        let id = self.next;
        // Eleven digits after the point: decimal(38,10) would round it.
        self.exec(&format!(
            "INSERT INTO {}.items (id, email, secret, amount, note) VALUES ({id}, '{}', '{}', 1.00000000001, 'bad')",
            self.schema,
            email(id),
            secret(id)
        ));
        self.next += 1;
        id
    }

    fn max_id(&self) -> u64 {
        self.next - 1
    }

    fn source_yaml(&self, opts: &SourceOptions) -> String {
        let mut yaml = format!(
            "kind: postgres\nconnection: \"{}\"\nschema: {}\n",
            pg_url(),
            self.schema
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
