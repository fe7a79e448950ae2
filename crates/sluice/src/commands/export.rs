//! `sluice export ASSET --to PATH`: an asset's rows to a Parquet, CSV or JSON-lines file (or stdout),
//! streamed batch by batch through the engine, never collected.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use sluice_serve::Format;
use sluice_serve::query::filter::Filter;
use sluice_transform::Engine;
use sluice_transform::arrow::datatypes::DataType;

use super::load;

/// What to export.
#[derive(Debug)]
pub struct ExportArgs {
    /// A model (`mart_revenue`, `gold.mart_revenue`) or a source table (`shop.orders`).
    pub asset: String,
    /// `parquet`, `csv` or `jsonl`; default from the file extension.
    pub format: Option<String>,
    /// The file, or `-` for stdout.
    pub to: String,
    /// A SQL condition.
    pub filter: Option<String>,
    /// `COLUMN=VALUE` or `COLUMN=FROM..TO`.
    pub partitions: Vec<String>,
}

/// Runs the export and prints a one-line summary on stderr.
pub async fn export(dir: &Path, args: ExportArgs) -> Result<ExitCode> {
    let to_stdout = args.to == "-";
    let format = output_format(args.format.as_deref(), &args.to)?;
    let compiled = load(dir)?;
    let relation = sluice_serve::export::relation_of(&compiled, &args.asset)?;
    let lake = super::open_lake(&compiled)?;
    let engine = Engine::open(&lake, Some(&compiled)).await?;
    let exists = engine.context().table_exist(relation.as_str())?;
    if !exists {
        bail!(
            "`{}` has not been built yet; run `sluice run --select {}` first",
            args.asset,
            args.asset
        );
    }
    let sql = match &args.filter {
        Some(w) => format!("SELECT * FROM {relation} WHERE ({w})"),
        None => format!("SELECT * FROM {relation}"),
    };
    let mut df = engine
        .plan(&sql)
        .await
        .with_context(|| format!("--where `{}`", args.filter.as_deref().unwrap_or("")))?;
    for p in &args.partitions {
        let columns: Vec<(String, DataType)> = df
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        for f in partition_filters(p)? {
            let Some((_, dtype)) = columns.iter().find(|(n, _)| *n == f.column) else {
                bail!(
                    "--partition {p}: `{}` has no column `{}`; its columns: {}",
                    args.asset,
                    f.column,
                    columns
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let expr = f.expr(dtype).map_err(|e| anyhow!("--partition {p}: {e}"))?;
            df = df.filter(expr)?;
        }
    }
    let started = Instant::now();
    let stream = df.execute_stream().await?;
    let path = (!to_stdout).then(|| Path::new(&args.to));
    let report = sluice_serve::export::file::export_to(stream, format, path).await?;
    eprintln!(
        "Exported {} row(s) of {} to {} ({}, {} bytes) in {:.2} s",
        report.rows,
        relation,
        if to_stdout { "stdout" } else { &args.to },
        format.name(),
        report.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The format from `--format`, or from the file's extension.
fn output_format(format: Option<&str>, to: &str) -> Result<Format> {
    let name = match format {
        Some(f) => f.to_string(),
        None => {
            let ext = Path::new(to)
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            match ext.as_deref() {
                Some("parquet" | "pq") => "parquet".into(),
                Some("csv") => "csv".into(),
                Some("jsonl" | "ndjson") => "jsonl".into(),
                Some("json") => "json".into(),
                Some("arrow" | "arrows") => "arrow".into(),
                _ if to == "-" => bail!("exporting to stdout needs --format parquet|csv|jsonl"),
                _ => bail!(
                    "cannot tell the format from `{to}`; give --format parquet|csv|jsonl or a \
                     .parquet, .csv or .jsonl file name"
                ),
            }
        }
    };
    Format::from_name(&name).ok_or_else(|| {
        anyhow!("unknown --format `{name}`; expected parquet, csv or jsonl (also json, arrow)")
    })
}

/// `col=value` is one equality; `col=from..to` a range with both ends included.
fn partition_filters(spec: &str) -> Result<Vec<Filter>> {
    let Some((column, value)) = spec.split_once('=') else {
        bail!("--partition `{spec}`: expected COLUMN=VALUE or COLUMN=FROM..TO");
    };
    let column = column.trim();
    let parse = |raw: String| Filter::parse(column, &raw).map_err(|e| anyhow!("--partition: {e}"));
    match value.split_once("..") {
        Some((from, to)) => Ok(vec![
            parse(format!("gte.{}", from.trim()))?,
            parse(format!("lte.{}", to.trim()))?,
        ]),
        None => Ok(vec![parse(format!("eq.{}", value.trim()))?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_flag_or_the_extension() {
        assert_eq!(output_format(None, "x/a.parquet").unwrap(), Format::Parquet);
        assert_eq!(output_format(None, "a.JSONL").unwrap(), Format::Ndjson);
        assert_eq!(output_format(Some("csv"), "a.txt").unwrap(), Format::Csv);
        assert_eq!(output_format(Some("jsonl"), "-").unwrap(), Format::Ndjson);
        let e = output_format(None, "-").unwrap_err().to_string();
        assert!(e.contains("needs --format"), "{e}");
        let e = output_format(Some("xlsx"), "a").unwrap_err().to_string();
        assert!(e.contains("unknown --format `xlsx`"), "{e}");
    }

    #[test]
    fn partitions_are_an_equality_or_an_inclusive_range() {
        let f = partition_filters("_ingest_date=2026-11-01").unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].raw, "eq.2026-11-01");
        let f = partition_filters("day = 2026-11-01..2026-11-30").unwrap();
        assert_eq!(
            f.iter().map(|f| f.raw.as_str()).collect::<Vec<_>>(),
            ["gte.2026-11-01", "lte.2026-11-30"]
        );
        assert!(partition_filters("nope").is_err());
    }
}
