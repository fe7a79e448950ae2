//! `sluice bench --cdc`: end-to-end lag of PostgreSQL CDC at a steady change rate.
//!
//! Writers apply inserts and updates to a PostgreSQL table at `rate` changes per second while a
//! continuous capture (`mode: cdc`) lands them in bronze. The lag of a change is the time from its
//! source commit (`_commit_ts`) to the Delta commit that made it visible in bronze (the commit's
//! timestamp in the Delta log), over every change; reported as p50/p99/max with the rate reached.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sluice_core::SourceDecl;
use sluice_ingest::sources::postgres::PostgresSource;
use sluice_ingest::sources::postgres::cdc::Until;
use sluice_ingest::{IngestContext, Source};
use sluice_lake::{Lake, TableId};
use sluice_transform::Engine;
use sluice_transform::arrow::array::{Array, AsArray};
use sluice_transform::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use tokio_postgres::NoTls;

/// What the CDC benchmark does.
pub struct CdcBench {
    /// The PostgreSQL database (libpq URL or key=value string).
    pub url: String,
    /// Changes per second the writers aim at.
    pub rate: u64,
    /// How long the writers run (`10s`).
    pub duration: String,
}

/// Writers' tick: every tick applies `rate / TICKS_PER_SEC` changes in one transaction per writer.
const TICKS_PER_SEC: u64 = 50;
const WRITERS: u64 = 2;

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| "connecting to PostgreSQL for the CDC benchmark")?;
    tokio::spawn(conn);
    Ok(client)
}

/// Runs the benchmark and prints its JSON report.
pub async fn bench_cdc(settings: &CdcBench) -> Result<ExitCode> {
    let duration = sluice_core::duration::parse_duration(&settings.duration)
        .map_err(|e| anyhow::anyhow!("--cdc-duration: {e}"))?;
    if settings.rate == 0 {
        bail!("--cdc-rate must be at least 1");
    }
    let admin = connect(&settings.url).await?;
    let tag = format!(
        "{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp() % 100_000
    );
    let schema = format!("sluice_bench_cdc_{tag}");
    let slot = format!("sluice_bench_{tag}");
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.changes (id int8 PRIMARY KEY, v int4, note text)"
        ))
        .await
        .context("creating the benchmark table")?;
    let result = measure(settings, duration, &schema, &slot).await;
    // Never leave a slot behind: it would pin WAL.
    for _ in 0..50 {
        let dropped = admin
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
    let _ = admin
        .batch_execute(&format!(
            "DROP PUBLICATION IF EXISTS {slot}; DROP SCHEMA IF EXISTS {schema} CASCADE"
        ))
        .await;
    let report = result?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    settings: &CdcBench,
    duration: Duration,
    schema: &str,
    slot: &str,
) -> Result<serde_json::Value> {
    let decl = SourceDecl::parse(std::path::Path::new("sources/bench.yml"), &format!(
            "kind: postgres\nconnection: {}\nschema: {schema}\ntables:\n  - name: changes\n    mode: cdc\n    slot: {slot}\n",
            serde_json::to_string(&settings.url)?
        ))
    .map_err(|e| anyhow::anyhow!(sluice_core::ConfigError::many(e)))?;
    let source = PostgresSource::from_decl(&decl, std::path::Path::new("."))?;
    let dir = tempfile::tempdir().context("creating a temporary lake")?;
    let lake = Lake::open(dir.path().to_str().context("lake path")?)?;
    let id = TableId::bronze("bench", "changes");
    // The (empty) snapshot, so that the slot exists before any change.
    source
        .ingest("changes", &IngestContext::new(lake.clone(), "bench-setup"))
        .await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let capture = {
        let lake = lake.clone();
        tokio::spawn(async move {
            source
                .capture(
                    "changes",
                    &IngestContext::new(lake, "bench"),
                    Until::Stopped {
                        stop: stop_rx,
                        flush_interval: Duration::from_millis(100),
                    },
                )
                .await
        })
    };

    // Writers: per tick, half inserts (new rows) and half updates (of rows inserted earlier).
    let per_tick = (settings.rate / TICKS_PER_SEC / WRITERS).max(1) as i64;
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS as i64 {
        let client = connect(&settings.url).await?;
        let table = format!("{schema}.changes");
        writers.push(tokio::spawn(async move {
            let mut changes = 0u64;
            let mut next = w * 1_000_000_000 + 1;
            let mut tick = 0u32;
            let every = Duration::from_secs(1) / TICKS_PER_SEC as u32;
            while started.elapsed() < duration {
                let inserts = per_tick - per_tick / 2;
                let updates = per_tick / 2;
                let from = next;
                next += inserts;
                let sql = format!(
                    "BEGIN; INSERT INTO {table} SELECT g, 0, 'n' FROM generate_series({from}, {}) g; \
                     UPDATE {table} SET v = v + 1 WHERE id BETWEEN {} AND {}; COMMIT;",
                    next - 1,
                    (from - updates).max(w * 1_000_000_000 + 1),
                    from - 1
                );
                client.batch_execute(&sql).await?;
                changes += inserts as u64 + updates.min(from - 1 - w * 1_000_000_000) as u64;
                tick += 1;
                let due = started + every * tick;
                tokio::time::sleep_until(due.into()).await;
            }
            Ok::<u64, tokio_postgres::Error>(changes)
        }));
    }
    let mut changes = 0u64;
    for w in writers {
        changes += w.await.context("a writer stopped")??;
    }
    let write_secs = started.elapsed().as_secs_f64();

    // Wait until every change is visible in bronze, then stop the capture.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let landed = count(&lake, &id).await?;
        if landed >= changes || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let captured = capture.await.context("the capture stopped")??;

    // Lag of every change: the Delta commit's time minus the source commit's time.
    let history = lake.history(&id, usize::MAX).await?;
    let commit_ms: HashMap<String, i64> = history
        .iter()
        .filter_map(|c| {
            let batch = c.metadata.get("sluice.batch_id")?.as_str()?.to_string();
            Some((batch, c.timestamp?.timestamp_millis()))
        })
        .collect();
    let engine = Engine::open(&lake, None).await?;
    let batches = engine
        .query("SELECT _batch_id, _commit_ts FROM bronze.bench__changes WHERE _op <> 'r'")
        .await?;
    let mut lags: Vec<f64> = Vec::new();
    for b in &batches {
        // Parquet reads may hand strings back as views: normalize.
        let batch_ids = sluice_transform::arrow::compute::cast(
            b.column(0),
            &sluice_transform::arrow::datatypes::DataType::Utf8,
        )?;
        let batch_ids = batch_ids.as_string::<i32>();
        let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            if ts.is_null(i) {
                continue;
            }
            if let Some(visible) = commit_ms.get(batch_ids.value(i)) {
                lags.push((*visible as f64) - ts.value(i) as f64 / 1000.0);
            }
        }
    }
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if lags.is_empty() {
            return 0.0;
        }
        let i = ((lags.len() as f64 - 1.0) * p).round() as usize;
        lags[i.min(lags.len() - 1)].max(0.0)
    };
    Ok(json!({
        "cdc": {
            "target_changes_per_sec": settings.rate,
            "changes": changes,
            "achieved_changes_per_sec": changes as f64 / write_secs,
            "landed": lags.len(),
            "bronze_commits": captured.commits,
            "lag_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
            "measured": "source commit (_commit_ts) to the Delta commit that made the change visible in bronze; flush interval 100 ms",
        }
    }))
}

async fn count(lake: &Lake, id: &TableId) -> Result<u64> {
    if !lake.exists(id).await? {
        return Ok(0);
    }
    let engine = Engine::open(lake, None).await?;
    let b = engine
        .query("SELECT count(*) FROM bronze.bench__changes WHERE _op <> 'r'")
        .await?;
    Ok(b.first()
        .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
        .unwrap_or(0)
        .max(0) as u64)
}
