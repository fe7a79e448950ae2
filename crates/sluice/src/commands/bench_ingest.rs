//! `sluice bench --ingest-vs-duckdb`: file ingestion side by side with DuckDB, as JSON.
//!
//! Five CSV files and five JSON-lines files of `--ingest-rows` rows each (orders with a date-time
//! column; clickstream events with a nested object) are landed into bronze by the `files` source in
//! this process, and converted to Parquet by DuckDB (`COPY (SELECT * FROM read_csv(…)) TO … (FORMAT
//! parquet)`, through `python3 -m duckdb`'s module) on the same files in the same run. The report
//! gives each side's seconds, MB/s and `sluice / duckdb` (issue 12's target: at most 1.5), and the
//! types each inferred for the date-time column. Without python3's `duckdb` module the DuckDB side
//! is `null` with the reason.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sluice_core::SourceDecl;
use sluice_ingest::sources::files::FilesSource;
use sluice_ingest::{IngestContext, Source};
use sluice_lake::{Lake, TableId};

/// Files of each format.
const FILES: usize = 5;

/// Settings of the ingestion benchmark.
#[derive(Debug, Clone)]
pub struct IngestBench {
    /// Rows per file.
    pub rows: u64,
}

/// Writes the files, lands them with Sluice, converts them with DuckDB, prints the comparison.
pub async fn bench_ingest(settings: &IngestBench, dir: Option<&Path>) -> Result<ExitCode> {
    let temp;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    let t = Instant::now();
    let csv = write_files(&dir.join("data/csv"), "csv", settings.rows, orders_csv)?;
    let jsonl = write_files(
        &dir.join("data/jsonl"),
        "jsonl",
        settings.rows,
        events_jsonl,
    )?;
    let generate_secs = t.elapsed().as_secs_f64();

    let lake_dir = dir.join("lake");
    let lake = Lake::open(lake_dir.to_str().context("lake path")?)?;
    let decl = SourceDecl::parse(
        Path::new("sources/bench.yml"),
        "kind: files\ntables:\n  - name: orders\n    path: data/csv/*.csv\n  - name: events\n    path: data/jsonl/*.jsonl\n",
    )
    .map_err(|e| anyhow::anyhow!("{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    let source = FilesSource::from_decl(&decl, &dir)?;
    let cx = IngestContext::new(lake.clone(), "bench");

    let mut report = serde_json::Map::new();
    report.insert("rows_per_file".into(), json!(settings.rows));
    report.insert("files_per_format".into(), json!(FILES));
    report.insert("generate_secs".into(), json!(generate_secs));
    let duckdb_dir = dir.join("duckdb");
    std::fs::create_dir_all(&duckdb_dir)?;
    for (format, table, files, column) in [
        ("csv", "orders", &csv, "created_at"),
        ("jsonl", "events", &jsonl, "event_timestamp"),
    ] {
        let bytes: u64 = files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .sum();
        let t = Instant::now();
        let landed = source.ingest(table, &cx).await?;
        let sluice_secs = t.elapsed().as_secs_f64();
        let sluice_type = landed_type(&lake, table, column).await?;
        let duck = duckdb(format, files, &duckdb_dir, column);
        let (duck_secs, duck_type, duck_error) = match &duck {
            Ok((secs, ty)) => (Some(*secs), Some(ty.clone()), None),
            Err(e) => (None, None, Some(format!("{e:#}"))),
        };
        let mb = bytes as f64 / 1e6;
        report.insert(
            format.into(),
            json!({
                "bytes": bytes,
                "rows": landed.rows_written,
                "sluice_secs": sluice_secs,
                "sluice_mb_per_sec": mb / sluice_secs.max(1e-9),
                "sluice_type": sluice_type,
                "duckdb_secs": duck_secs,
                "duckdb_mb_per_sec": duck_secs.map(|s| mb / s.max(1e-9)),
                "duckdb_type": duck_type,
                "duckdb_error": duck_error,
                "ratio": duck_secs.map(|d| sluice_secs / d.max(1e-9)),
                "target_ratio": 1.5,
            }),
        );
    }
    println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
    Ok(ExitCode::SUCCESS)
}

/// Writes `FILES` files of `rows` rows each with `line(i)` as row `i`; returns their paths.
fn write_files(
    dir: &Path,
    ext: &str,
    rows: u64,
    line: fn(u64, &mut dyn Write, bool) -> std::io::Result<()>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for f in 0..FILES as u64 {
        let path = dir.join(format!("part-{f:02}.{ext}"));
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        line(0, &mut out, true)?;
        for i in f * rows..(f + 1) * rows {
            line(i, &mut out, false)?;
        }
        out.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

const STATUSES: [&str; 4] = ["placed", "paid", "shipped", "cancelled"];
const PAGES: [&str; 5] = ["/", "/search", "/product", "/cart", "/checkout"];

/// An order row (or the header): the date-time has no zone, as exports from most databases.
fn orders_csv(i: u64, out: &mut dyn Write, header: bool) -> std::io::Result<()> {
    if header {
        return writeln!(out, "order_id,customer_id,amount,status,created_at");
    }
    let seconds = i * 37 % (180 * 86_400);
    writeln!(
        out,
        "{i},{},{}.{:02},{},2025-{:02}-{:02} {:02}:{:02}:{:02}",
        i * 7919 % 100_000,
        i % 500,
        i % 100,
        STATUSES[(i % 4) as usize],
        1 + seconds / (30 * 86_400),
        1 + seconds / 86_400 % 28,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    )
}

/// A clickstream event (JSON lines have no header).
fn events_jsonl(i: u64, out: &mut dyn Write, header: bool) -> std::io::Result<()> {
    if header {
        return Ok(());
    }
    let seconds = i * 13 % (180 * 86_400);
    writeln!(
        out,
        r#"{{"event_id":"e{i:010}","user_id":{},"event_type":"page_view","event_timestamp":"2025-{:02}-{:02}T{:02}:{:02}:{:02}Z","user_agent":"Mozilla/5.0","properties":{{"page":"{}","referrer":"search","device":"mobile"}}}}"#,
        i * 104_729 % 200_000,
        1 + seconds / (30 * 86_400),
        1 + seconds / 86_400 % 28,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
        PAGES[(i % 5) as usize],
    )
}

/// The type Sluice gave `column` of bronze table `bench.<table>`.
async fn landed_type(lake: &Lake, table: &str, column: &str) -> Result<String> {
    let table = lake
        .load(&TableId::bronze("bench", table))
        .await?
        .context("the table was not created")?;
    let schema = sluice_lake::arrow_schema(&table)?;
    Ok(schema
        .field_with_name(column)
        .map(|f| f.data_type().to_string())
        .unwrap_or_else(|_| "(missing)".into()))
}

/// DuckDB converts `files` to Parquet in `out`, one `COPY` each, in one connection; returns the
/// seconds it took and the type it inferred for `column`.
fn duckdb(format: &str, files: &[PathBuf], out: &Path, column: &str) -> Result<(f64, String)> {
    let reader = match format {
        "csv" => "read_csv",
        _ => "read_json",
    };
    let script = r#"
import json, sys, time, duckdb
reader, column, out = sys.argv[1], sys.argv[2], sys.argv[3]
files = sys.argv[4:]
# The progress bar (past 2 s) would print to stdout, where the answer goes.
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
start = time.perf_counter()
for i, f in enumerate(files):
    con.execute(f"COPY (SELECT * FROM {reader}('{f}')) TO '{out}/{reader}-{i}.parquet' (FORMAT parquet)")
secs = time.perf_counter() - start
kind = con.execute(f"SELECT column_type FROM (DESCRIBE SELECT * FROM {reader}('{files[0]}')) WHERE column_name = ?", [column]).fetchone()
print(json.dumps({"secs": secs, "type": kind[0] if kind else None}))
"#;
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(reader)
        .arg(column)
        .arg(out)
        .args(files)
        .output()
        .context("running python3 (DuckDB comes from PyPI: `pip install duckdb`)")?;
    if !output.status.success() {
        anyhow::bail!(
            "DuckDB failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let answer: Value = serde_json::from_slice(&output.stdout).context("DuckDB's answer")?;
    let secs = answer["secs"].as_f64().context("DuckDB's seconds")?;
    let ty = answer["type"].as_str().unwrap_or("").to_string();
    Ok((secs, ty))
}
