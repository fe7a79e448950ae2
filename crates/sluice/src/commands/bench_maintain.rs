//! `sluice bench --maintenance`: query latency on a bronze table as micro-batches leave it (many
//! small files) and after `sluice maintain` compacted it (Z-ordered on the lookup column, with a
//! bloom filter on it), as JSON.
//!
//! The table is generated in place: `--scale` million order rows landed in `--maintenance-batches`
//! appends, one ingestion date per append (ten dates), as a streaming source or a frequent
//! schedule leaves bronze. Each query runs five times on each layout; the report gives the median.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sluice_lake::{Lake, MaintainSpec, TableId, WriteSpec};
use sluice_transform::Engine;
use sluice_transform::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch,
};
use sluice_transform::arrow::datatypes::{DataType, Field, Schema};

/// The queries timed on each layout: a point lookup, a range filter, a full aggregation.
const QUERIES: [(&str, &str); 3] = [
    (
        "point_lookup",
        "select sum(amount) from bronze.bench__orders where customer_id = 4242",
    ),
    (
        "range_filter",
        "select count(*) from bronze.bench__orders where customer_id between 1000 and 1100",
    ),
    (
        "aggregate_by_day",
        "select _ingest_date, sum(amount) from bronze.bench__orders group by _ingest_date",
    ),
];

const RUNS: usize = 5;

/// Settings of the maintenance benchmark.
#[derive(Debug, Clone)]
pub struct MaintainBench {
    /// Millions of rows.
    pub scale: f64,
    /// Appends (one small file each).
    pub batches: usize,
}

/// Builds the fragmented table, times the queries, compacts, times them again.
pub async fn bench_maintain(settings: &MaintainBench, dir: Option<&Path>) -> Result<ExitCode> {
    let temp;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    let lake = Lake::open(dir.join("lake").to_str().context("lake path")?)?;
    let id = TableId::bronze("bench", "orders");
    let rows = (settings.scale * 1_000_000.0).max(1.0) as usize;
    let batches = settings.batches.max(1);
    let per_batch = rows.div_ceil(batches);
    let spec = WriteSpec::append().partitioned_by(["_ingest_date"]);
    let t = Instant::now();
    for b in 0..batches {
        let start = b * per_batch;
        let end = rows.min(start + per_batch);
        if start >= end {
            break;
        }
        lake.write(&id, vec![orders(start, end, b)?], &spec).await?;
    }
    let land_secs = t.elapsed().as_secs_f64();

    let before_stats = lake.file_stats(&id, u64::MAX).await?.unwrap_or_default();
    let uncompacted = time_queries(&lake).await?;

    let t = Instant::now();
    let maintain = MaintainSpec {
        zorder_by: vec!["customer_id".into()],
        bloom_filter_columns: vec!["customer_id".into()],
        vacuum: None,
        ..MaintainSpec::default()
    };
    lake.maintain(&id, &maintain).await?;
    let compact_secs = t.elapsed().as_secs_f64();
    let after_stats = lake.file_stats(&id, u64::MAX).await?.unwrap_or_default();
    let compacted = time_queries(&lake).await?;

    let mut queries = serde_json::Map::new();
    for ((name, _), (before, after)) in QUERIES.iter().zip(uncompacted.iter().zip(&compacted)) {
        queries.insert(
            (*name).to_string(),
            json!({
                "uncompacted_ms": before,
                "compacted_ms": after,
                "speedup": if *after > 0.0 { before / after } else { 0.0 },
            }),
        );
    }
    let report = json!({
        "maintenance": {
            "rows": rows,
            "appends": batches,
            "land_seconds": land_secs,
            "files_before": before_stats.files,
            "bytes_before": before_stats.bytes,
            "files_after": after_stats.files,
            "bytes_after": after_stats.bytes,
            "maintain_seconds": compact_secs,
            "maintain": "z-order on customer_id, bloom filter on customer_id, checkpoint",
            "queries_median_of": RUNS,
            "queries": Value::Object(queries),
        }
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// Rows `start..end` of the generated orders, all on ingestion date `batch % 10`.
fn orders(start: usize, end: usize, batch: usize) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("_ingest_date", DataType::Date32, false),
    ]));
    let ids = (start as i64)..(end as i64);
    // A multiplicative hash spreads customers over every file, as real orders do.
    let customers = ids
        .clone()
        .map(|i| (i.wrapping_mul(2_654_435_761) & 0xFFFF_FFFF) % 100_000);
    let amounts = ids.clone().map(|i| (i % 10_000) as f64 / 100.0);
    let day = 20_454 + (batch % 10) as i32;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(ids.clone())),
        Arc::new(Int64Array::from_iter_values(customers)),
        Arc::new(Float64Array::from_iter_values(amounts)),
        Arc::new(Date32Array::from_iter_values(ids.map(|_| day))),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The median latency of each query, in milliseconds, on a fresh engine (the latest version).
async fn time_queries(lake: &Lake) -> Result<Vec<f64>> {
    let engine = Engine::open(lake, None).await?;
    let mut out = Vec::new();
    for (_, sql) in QUERIES {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            engine.query(sql).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        out.push(times[RUNS / 2]);
    }
    Ok(out)
}
