//! PostgreSQL CDC under SIGKILL: `sluice run` of a `mode: cdc` table is killed at random moments
//! (during the snapshot, between a Delta write and its commit, after a commit before the slot is
//! acknowledged) while the application keeps changing the table. After a final run, every change
//! landed exactly once, and the silver current-state table (`materialized: merge`) equals the source
//! table row by row.
//!
//! Needs the local PostgreSQL with `wal_level = logical` (`.ci/run` sets it): fails under `CI=true`
//! when it is missing, skips otherwise.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{query_f64, query_json, sluice_ok, write};
use tokio_postgres::{Client, NoTls};

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_string())
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn connect() -> Option<Client> {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    match tokio_postgres::connect(&pg_url(), NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            let level: String = client
                .query_one("SHOW wal_level", &[])
                .await
                .unwrap()
                .get(0);
            if level != "logical" {
                assert!(!ci, "wal_level is {level}; .ci/run sets it to logical");
                eprintln!("skipping: wal_level is {level}, not logical");
                return None;
            }
            Some(client)
        }
        Err(e) => {
            assert!(!ci, "PostgreSQL is not reachable under CI=true: {e}");
            eprintln!("skipping: PostgreSQL is not reachable: {e}");
            None
        }
    }
}

/// Changes a few random rows in one or two transactions; returns how many row changes it made.
async fn mutate(client: &Client, table: &str, rng: &mut Rng, next_id: &mut i64) -> u64 {
    let mut changes = 0;
    for _ in 0..=rng.below(2) {
        let tx = client.simple_query("BEGIN").await.map(|_| ());
        tx.unwrap();
        for _ in 0..=rng.below(4) {
            let n = match rng.below(10) {
                0..=3 => {
                    *next_id += 1;
                    client
                        .execute(
                            &format!("INSERT INTO {table} VALUES ($1, $2, $3)"),
                            &[
                                &*next_id,
                                &format!("new {next_id}"),
                                &(rng.below(1000) as i32),
                            ],
                        )
                        .await
                        .unwrap()
                }
                4..=7 => {
                    let id = 1 + rng.below(*next_id as u64) as i64;
                    client
                        .execute(
                            &format!(
                                "UPDATE {table} SET v = v + 1, name = name || '.' WHERE id = $1"
                            ),
                            &[&id],
                        )
                        .await
                        .unwrap()
                }
                _ => {
                    let id = 1 + rng.below(*next_id as u64) as i64;
                    client
                        .execute(&format!("DELETE FROM {table} WHERE id = $1"), &[&id])
                        .await
                        .unwrap()
                }
            };
            changes += n;
        }
        client.simple_query("COMMIT").await.unwrap();
    }
    changes
}

async fn slot_exists(client: &Client, slot: &str) -> bool {
    client
        .query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .unwrap()
        .is_some()
}

/// A killed run keeps its node leases until they expire (30 s); expire them now, as time would.
fn expire_leases(dir: &Path) {
    if let Ok(db) = rusqlite::Connection::open(dir.join(".sluice/state.db")) {
        let _ = db.execute("DELETE FROM leases", []);
    }
}

fn project(dir: &Path, table: &str, slot: &str) {
    write(
        dir,
        "sluice.yml",
        "name: cdc_crash\ndefaults:\n  retries: 0\n",
    );
    write(
        dir,
        "sources/shop.yml",
        &format!(
            "kind: postgres\nconnection: \"{}\"\ncommit_rows: 150\ntables:\n  - name: {table}\n    \
             mode: cdc\n    slot: {slot}\n    primary_key: [id]\n",
            pg_url()
        ),
    );
    write(
        dir,
        "models/silver/current.sql",
        &format!(
            "{{{{ config(materialized='merge', unique_key='id') }}}}\n\
             select id, name, v, _op, _lsn, _seq from {{{{ source('shop', '{table}') }}}}\n"
        ),
    );
}

#[test]
fn killed_cdc_runs_lose_and_duplicate_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(client) = rt.block_on(connect()) else {
        return;
    };
    let suffix = format!(
        "{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let table = format!("cdc_crash_{suffix}");
    let slot = format!("sluice_it_crash_{suffix}");
    rt.block_on(client.batch_execute(&format!(
        "CREATE TABLE public.{table} (id int8 PRIMARY KEY, name text, v int4); \
         INSERT INTO public.{table} SELECT g, 'row ' || g, g % 97 FROM generate_series(1, 3000) g;"
    )))
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &table, &slot);

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut next_id = 3000i64;
    let mut changes_after_slot = 0u64;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..20 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
                .arg("--project")
                .arg(dir)
                .args(["run", "--threads", "1"])
                .env("SLUICE_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(50 + rng.below(900)));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            expire_leases(dir);
            // The application keeps writing; changes made once the slot exists must all arrive.
            let has_slot = rt.block_on(slot_exists(&client, &slot));
            let n = rt.block_on(mutate(
                &client,
                &format!("public.{table}"),
                &mut rng,
                &mut next_id,
            ));
            if has_slot {
                changes_after_slot += n;
            }
        }
        assert!(
            changes_after_slot > 0,
            "no change was made while the slot existed"
        );
        // A run to completion (a second one lands nothing new).
        sluice_ok(dir, &["run"]);
        sluice_ok(dir, &["run"]);

        let bronze = format!("bronze.shop__{table}");
        // Exactly once: one bronze row per change made after the slot existed, each (_lsn, _seq)
        // once, each snapshot row once.
        let streamed = query_f64(
            dir,
            &format!("select count(*) from {bronze} where _op <> 'r'"),
        );
        let distinct = query_f64(
            dir,
            &format!(
                "select count(*) from (select distinct _lsn, _seq from {bronze} where _op <> 'r')"
            ),
        );
        assert_eq!(streamed, distinct, "a change landed twice");
        assert_eq!(
            streamed, changes_after_slot as f64,
            "bronze holds {streamed} changes; {changes_after_slot} were made after the slot existed"
        );
        let snapshot = query_f64(
            dir,
            &format!("select count(*) from {bronze} where _op = 'r'"),
        );
        let snapshot_ids = query_f64(
            dir,
            &format!("select count(distinct id) from {bronze} where _op = 'r'"),
        );
        assert_eq!(snapshot, snapshot_ids, "a snapshot row landed twice");

        // Silver equals the source, row by row.
        let silver = query_json(dir, "select id, name, v from silver.current order by id");
        let source: Vec<(i64, String, i32)> = rt
            .block_on(client.query(
                &format!("SELECT id, name, v FROM public.{table} ORDER BY id"),
                &[],
            ))
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(silver.len(), source.len(), "row counts differ");
        for (s, (id, name, v)) in silver.iter().zip(&source) {
            assert_eq!(s["id"].as_i64(), Some(*id), "{s}");
            assert_eq!(s["name"].as_str(), Some(name.as_str()), "{s}");
            assert_eq!(s["v"].as_i64(), Some(i64::from(*v)), "{s}");
        }
    }));
    rt.block_on(async {
        for _ in 0..50 {
            let dropped = client
                .query(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot],
                )
                .await;
            if dropped.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = client
            .batch_execute(&format!(
                "DROP PUBLICATION IF EXISTS {slot}; DROP TABLE IF EXISTS public.{table}"
            ))
            .await;
    });
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `sluice bench --cdc` measures lag at a steady rate and lands every change it made.
#[test]
fn bench_reports_cdc_lag() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    if rt.block_on(connect()).is_none() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "bench",
            "--cdc",
            "--cdc-rate",
            "2000",
            "--cdc-duration",
            "1s",
            "--pg-url",
        ])
        .arg(pg_url())
        .env("SLUICE_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let cdc = &report["cdc"];
    let changes = cdc["changes"].as_u64().unwrap();
    assert!(changes > 1000, "{report}");
    assert_eq!(cdc["landed"].as_u64(), Some(changes), "{report}");
    let p50 = cdc["lag_ms"]["p50"].as_f64().unwrap();
    let p99 = cdc["lag_ms"]["p99"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p99, "{report}");
}
