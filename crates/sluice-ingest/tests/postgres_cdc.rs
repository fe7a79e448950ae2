//! `mode: cdc` against a real PostgreSQL server (`wal_level = logical`; `.ci/run` sets it).
//!
//! The server comes from `SLUICE_TEST_PG_URL` (default `host=127.0.0.1 port=5432 user=postgres
//! dbname=test`). Each test works in its own schema with its own slot and publication, all dropped
//! when the test ends (an abandoned slot would pin WAL). When the server cannot be reached, or does
//! not run with `wal_level = logical`, the tests fail under `CI=true` and are skipped otherwise.

use arrow::array::{Array, RecordBatch};
use arrow::util::display::array_value_to_string;
use rand::{Rng, SeedableRng};
use sluice_core::SourceDecl;
use sluice_engine::SessionContext;
use sluice_ingest::{IngestContext, build_source};
use sluice_lake::{Lake, TableId};
use tokio_postgres::{Client, NoTls};

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string())
}

/// A schema, slot and publication of their own for one test; all dropped when the guard goes.
struct CdcDb {
    client: Client,
    schema: String,
    slot: String,
}

impl Drop for CdcDb {
    fn drop(&mut self) {
        let (schema, slot) = (self.schema.clone(), self.slot.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&pg_url(), NoTls).await {
                    tokio::spawn(conn);
                    drop_slot(&client, &slot).await;
                    let _ = client
                        .batch_execute(&format!(
                            "DROP PUBLICATION IF EXISTS \"{slot}\"; \
                             DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                        ))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Drops a slot, waiting a little for the walsender of a closed connection to let it go.
async fn drop_slot(client: &Client, slot: &str) {
    for _ in 0..50 {
        let r = client
            .query(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = $1",
                &[&slot],
            )
            .await;
        if r.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn cdc_db(test: &str) -> Option<CdcDb> {
    let url = pg_url();
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let (client, conn) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !ci,
                "PostgreSQL is not reachable at `{url}` under CI=true: {e:?}"
            );
            eprintln!("skipping {test}: PostgreSQL is not reachable at `{url}`: {e}");
            return None;
        }
    };
    tokio::spawn(conn);
    let level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .unwrap()
        .get(0);
    if level != "logical" {
        assert!(
            !ci,
            "CDC tests need wal_level = logical (is {level}); .ci/run sets it"
        );
        eprintln!("skipping {test}: wal_level is {level}, not logical");
        return None;
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let schema = format!("sluice_cdc_{test}_{id}");
    client
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();
    Some(CdcDb {
        client,
        slot: format!("sluice_it_{test}_{id}"),
        schema,
    })
}

impl CdcDb {
    async fn exec(&self, sql: &str) {
        let sql = format!("SET search_path = \"{}\"; {sql}", self.schema);
        self.client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    async fn texts(&self, sql: &str) -> Vec<Vec<String>> {
        let sql = format!("SET search_path = \"{}\"; {sql}", self.schema);
        let mut out = Vec::new();
        for m in self.client.simple_query(&sql).await.unwrap() {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                out.push(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                );
            }
        }
        out
    }

    fn source(&self, tables: &str, commit_rows: usize) -> SourceDecl {
        let text = format!(
            "kind: postgres\nconnection: \"{}\"\nschema: {}\ncommit_rows: {commit_rows}\n{tables}",
            pg_url(),
            self.schema
        );
        SourceDecl::parse(std::path::Path::new("sources/shop.yml"), &text).unwrap()
    }
}

async fn sql(lake: &Lake, id: &TableId, query: &str) -> Vec<Vec<String>> {
    let provider = lake.table_provider(id).await.unwrap().unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    let batches: Vec<RecordBatch> = ctx.sql(query).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(r) {
                            "NULL".to_string()
                        } else {
                            array_value_to_string(c, r).unwrap()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The current state bronze describes: the latest change per key, deletes removed.
async fn current_state(lake: &Lake, id: &TableId, columns: &str) -> Vec<Vec<String>> {
    sql(
        lake,
        id,
        &format!(
            "SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY id \
             ORDER BY _lsn DESC, _seq DESC) AS rn FROM t) WHERE rn = 1 AND _op <> 'd' ORDER BY id"
        ),
    )
    .await
}

#[tokio::test]
async fn snapshot_then_stream_equals_the_source_after_a_random_workload() {
    let Some(db) = cdc_db("stream").await else {
        return;
    };
    db.exec(
        "CREATE TABLE customers (id int8 PRIMARY KEY, name text NOT NULL, \
         balance numeric(10,2), tags text[]); \
         INSERT INTO customers SELECT g, 'c' || g, g * 1.25, ARRAY['t' || (g % 3)] \
         FROM generate_series(1, 40) g;",
    )
    .await;
    let decl = db.source(
        &format!(
            "tables:\n  - name: customers\n    mode: cdc\n    slot: {}\n",
            db.slot
        ),
        7,
    );
    let source = build_source(&decl, std::path::Path::new(".")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let id = TableId::bronze("shop", "customers");

    // The snapshot: 40 rows in chunks of 7 (6 commits), then an empty stream.
    let r = source
        .ingest("customers", &IngestContext::new(lake.clone(), "run1"))
        .await
        .unwrap();
    assert_eq!(r.rows_written, 40, "{r:?}");
    assert_eq!(r.commits, 6, "{r:?}");
    assert_eq!(
        sql(
            &lake,
            &id,
            "SELECT _op, count(*), count(DISTINCT _lsn), count(_commit_ts) FROM t GROUP BY _op"
        )
        .await,
        vec![vec!["r", "40", "1", "0"]]
    );

    // A random workload in multi-statement transactions, with a column added half-way.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut next_id = 41;
    for round in 0..4 {
        if round == 2 {
            db.exec("ALTER TABLE customers ADD COLUMN note text").await;
        }
        for _ in 0..15 {
            let mut statements = Vec::new();
            for _ in 0..rng.random_range(1..=4) {
                match rng.random_range(0..10) {
                    0..=3 => {
                        statements.push(format!(
                            "INSERT INTO customers (id, name, balance) VALUES ({next_id}, 'n{next_id}', {})",
                            rng.random_range(0..10_000) as f64 / 100.0
                        ));
                        next_id += 1;
                    }
                    4..=7 => {
                        let id = rng.random_range(1..next_id);
                        let set = if round >= 2 {
                            format!("note = 'note {id}', balance = balance + 1")
                        } else {
                            "balance = balance + 1, name = name || '+'".to_string()
                        };
                        statements.push(format!("UPDATE customers SET {set} WHERE id = {id}"));
                    }
                    _ => {
                        let id = rng.random_range(1..next_id);
                        statements.push(format!("DELETE FROM customers WHERE id = {id}"));
                    }
                }
            }
            db.exec(&format!("BEGIN; {}; COMMIT;", statements.join("; ")))
                .await;
        }
        let r = source
            .ingest(
                "customers",
                &IngestContext::new(lake.clone(), format!("run{round}")),
            )
            .await
            .unwrap();
        assert!(r.rows_written > 0, "round {round}: {r:?}");
    }

    // Bronze, applied in _lsn order, equals the source row by row.
    let columns = "id, name, CAST(balance AS VARCHAR), array_to_string(tags, ','), note";
    let from_bronze = current_state(&lake, &id, columns).await;
    let from_source = db
        .texts(
            "SELECT id, name, balance::text, coalesce(array_to_string(tags, ','), 'NULL'), \
             coalesce(note, 'NULL') FROM customers ORDER BY id",
        )
        .await;
    assert_eq!(from_bronze.len(), from_source.len());
    for (b, s) in from_bronze.iter().zip(&from_source) {
        assert_eq!(b, s);
    }
    // The added column reached bronze, and notes were captured.
    let notes = sql(&lake, &id, "SELECT count(note) FROM t").await;
    assert_ne!(notes[0][0], "0");

    // Every change landed exactly once: one bronze row per change the server decoded.
    let bronze_changes = sql(&lake, &id, "SELECT count(*) FROM t WHERE _op <> 'r'").await[0][0]
        .parse::<u64>()
        .unwrap();
    let distinct = sql(
        &lake,
        &id,
        "SELECT count(*) FROM (SELECT DISTINCT _lsn, _seq FROM t WHERE _op <> 'r')",
    )
    .await[0][0]
        .parse::<u64>()
        .unwrap();
    assert_eq!(bronze_changes, distinct, "a change landed twice");

    // Nothing new: nothing lands; and the slot was acknowledged up to what bronze holds.
    let r = source
        .ingest("customers", &IngestContext::new(lake.clone(), "again"))
        .await
        .unwrap();
    assert_eq!(r.rows_written, 0, "{r:?}");
    let landed = sql(&lake, &id, "SELECT max(_lsn) FROM t").await[0][0]
        .parse::<i64>()
        .unwrap();
    let confirmed = db
        .texts(&format!(
            "SELECT (confirmed_flush_lsn - '0/0')::text FROM pg_replication_slots WHERE slot_name = '{}'",
            db.slot
        ))
        .await[0][0]
        .parse::<i64>()
        .unwrap();
    assert!(
        confirmed >= landed,
        "slot at {confirmed}, bronze at {landed}"
    );
}

#[tokio::test]
async fn transactions_keys_and_truncate_are_captured_in_commit_order() {
    let Some(db) = cdc_db("ops").await else {
        return;
    };
    db.exec("CREATE TABLE items (id int4, k text, v int4, PRIMARY KEY (id, k))")
        .await;
    let decl = db.source(
        &format!(
            "tables:\n  - name: items\n    mode: cdc\n    slot: {}\n",
            db.slot
        ),
        1000,
    );
    let source = build_source(&decl, std::path::Path::new(".")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let id = TableId::bronze("shop", "items");
    let r = source
        .ingest("items", &IngestContext::new(lake.clone(), "r0"))
        .await
        .unwrap();
    assert_eq!(r.rows_written, 0);
    db.exec(
        "BEGIN; INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2); \
         UPDATE items SET v = 10 WHERE id = 1; COMMIT; \
         UPDATE items SET id = 3 WHERE id = 2; \
         DELETE FROM items WHERE id = 1; \
         TRUNCATE items; INSERT INTO items VALUES (9, 'z', 9);",
    )
    .await;
    source
        .ingest("items", &IngestContext::new(lake.clone(), "r1"))
        .await
        .unwrap();
    let rows = sql(
        &lake,
        &id,
        "SELECT _op, id, k, v, _seq FROM t ORDER BY _lsn, _seq",
    )
    .await;
    let ops: Vec<String> = rows
        .iter()
        .map(|r| format!("{}:{}:{}", r[0], r[1], r[3]))
        .collect();
    assert_eq!(
        ops,
        [
            "c:1:1",
            "c:2:2",
            "u:1:10", // one transaction, in statement order
            "d:2:NULL",
            "u:3:2", // a changed key: the old key is deleted
            "d:1:NULL",
            "t:NULL:NULL",
            "c:9:9"
        ]
    );
    // The first transaction's three changes share one _lsn and one commit time.
    let first = sql(
        &lake,
        &id,
        "SELECT count(DISTINCT _lsn), count(DISTINCT _commit_ts) FROM t WHERE _op = 'c' AND id < 9 OR (_op = 'u' AND v = 10)",
    )
    .await;
    assert_eq!(first, vec![vec!["1", "1"]]);
}
