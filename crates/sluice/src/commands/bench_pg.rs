//! `sluice bench --pg-rows N`: batch throughput of the PostgreSQL source into bronze.
//!
//! A wide table (20 columns: integers, doubles, numerics, text, timestamps, booleans, a uuid and a
//! jsonb) of N rows is generated inside PostgreSQL (`generate_series`; kept between runs of the same
//! size), then a project with one `kind: postgres`, `mode: full` table lands it into bronze through
//! the real run loop (parallel chunked reads, type mapping, Arrow batches, Delta commit). Reported:
//! rows/s, MB/s of the table's size in PostgreSQL (heap, without indexes), the Parquet size landed,
//! and the process's peak resident memory (the load streams, so it stays well below the table size).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use sluice_orchestrate::{NodeStatus, RunOptions};
use tokio_postgres::NoTls;

/// What the batch benchmark does.
pub struct PgBench {
    /// The PostgreSQL database.
    pub url: String,
    /// Rows in the benchmark table.
    pub rows: u64,
    /// Nodes (and parallel chunk readers' runs) at once.
    pub threads: usize,
}

const SCHEMA: &str = "sluice_bench";
const TABLE: &str = "wide";

/// Creates (or keeps, when it already has `rows` rows) the wide benchmark table.
async fn prepare(client: &tokio_postgres::Client, rows: u64) -> Result<f64> {
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        .await?;
    let existing: Option<i64> = client
        .query_opt(
            "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&SCHEMA, &TABLE],
        )
        .await?
        .map(|r| r.get(0));
    let count: Option<i64> = match existing {
        Some(_) => Some(
            client
                .query_one(&format!("SELECT count(*) FROM {SCHEMA}.{TABLE}"), &[])
                .await?
                .get(0),
        ),
        None => None,
    };
    if count != Some(rows as i64) {
        let t = Instant::now();
        eprintln!("Generating {rows} rows in {SCHEMA}.{TABLE} (kept for the next run)...");
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {SCHEMA}.{TABLE};
                 CREATE TABLE {SCHEMA}.{TABLE} (
                   id bigint PRIMARY KEY, customer_id integer, product_id integer, quantity smallint,
                   unit_price numeric(12,2), discount numeric(5,4), amount double precision,
                   tax double precision, status text, channel text, country text, city text,
                   email text, created_at timestamptz, updated_at timestamptz, shipped boolean,
                   returned boolean, order_uuid uuid, note text, attributes jsonb);
                 INSERT INTO {SCHEMA}.{TABLE}
                 SELECT g, (g * 7919) % 100000, (g * 104729) % 5000, (g % 9 + 1)::smallint,
                   ((g % 10000) / 100.0)::numeric(12,2), ((g % 30) / 100.0)::numeric(5,4),
                   (g % 100000) / 3.0, (g % 1000) / 7.0,
                   (ARRAY['placed','paid','shipped','delivered','refunded'])[g % 5 + 1],
                   (ARRAY['web','app','store'])[g % 3 + 1],
                   (ARRAY['DE','FR','US','GB','ES','IT'])[g % 6 + 1],
                   'city_' || (g % 500), 'user' || (g % 100000) || '@example.com',
                   timestamptz '2026-01-01' + make_interval(secs => g),
                   timestamptz '2026-01-01' + make_interval(secs => g + 3600),
                   g % 2 = 0, g % 17 = 0, md5(g::text)::uuid,
                   CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || md5((g * 3)::text) END,
                   jsonb_build_object('gift', g % 11 = 0, 'items', g % 9 + 1)
                 FROM generate_series(1::bigint, {rows}::bigint) AS g;
                 ANALYZE {SCHEMA}.{TABLE};"
            ))
            .await
            .context("generating the benchmark table")?;
        eprintln!("Generated in {:.1}s", t.elapsed().as_secs_f64());
    }
    let bytes: i64 = client
        .query_one(&format!("SELECT pg_table_size('{SCHEMA}.{TABLE}')"), &[])
        .await?
        .get(0);
    Ok(bytes as f64 / 1e6)
}

/// Runs the benchmark and prints its JSON report.
pub async fn bench_pg(settings: &PgBench) -> Result<ExitCode> {
    if settings.rows == 0 {
        bail!("--pg-rows must be at least 1");
    }
    let (client, conn) = tokio_postgres::connect(&settings.url, NoTls)
        .await
        .context("connecting to PostgreSQL for the batch benchmark")?;
    tokio::spawn(conn);
    let table_mb = prepare(&client, settings.rows).await?;

    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let root = dir.path();
    std::fs::create_dir_all(root.join("sources"))?;
    std::fs::write(
        root.join("sluice.yml"),
        format!(
            "name: pg_bench\ndefaults:\n  threads: {}\n",
            settings.threads
        ),
    )?;
    std::fs::write(
        root.join("sources/pg.yml"),
        format!(
            "kind: postgres\nconnection: \"{}\"\nschema: {SCHEMA}\ntables:\n  - name: {TABLE}\n    mode: full\n    primary_key: [id]\n",
            settings.url.replace('"', "\\\"")
        ),
    )?;
    let ws = super::open(root).await?;
    let opts = RunOptions {
        command: "bench".into(),
        threads: settings.threads,
        ..super::run::options(&ws, "", "bench")?
    };
    let t = Instant::now();
    let cpu_before = cpu_seconds();
    let summary = sluice_orchestrate::run(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        opts,
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let node = summary
        .nodes
        .first()
        .ok_or_else(|| anyhow!("the benchmark run ran nothing"))?;
    if node.status != NodeStatus::Success {
        bail!(
            "landing the benchmark table failed: {}",
            node.error.as_deref().unwrap_or("unknown error")
        );
    }
    let landed = node.output.rows_out.unwrap_or(0);
    if landed != settings.rows {
        bail!("landed {landed} rows, expected {}", settings.rows);
    }
    let lake_mb = dir_size(&root.join("lake/bronze")) as f64 / 1e6;
    let report = json!({
        "postgres_batch": {
            "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
            "rows": landed,
            "columns": 20,
            "seconds": secs,
            "rows_per_sec": landed as f64 / secs,
            "source_table_mb": table_mb,
            "source_mb_per_sec": table_mb / secs,
            "bronze_parquet_mb": lake_mb,
            "peak_rss_mb": peak_rss_mb(),
            // Sluice's own CPU time during the load (PostgreSQL's backends are not counted): the
            // throughput per core it used.
            "cpu_seconds": cpu,
            "source_mb_per_cpu_sec": cpu.map(|c| table_mb / c),
            "threads": settings.threads,
        }
    });
    drop(ws);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// The process's peak resident memory (`VmHWM`, Linux), in MB: a full load streams into its one
/// commit, so this stays far below the table's size.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0 / 1e6)
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (Linux), in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at its closing parenthesis;
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // In USER_HZ clock ticks, which the Linux ABI fixes at 100 per second.
    Some((utime + stime) / 100.0)
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
