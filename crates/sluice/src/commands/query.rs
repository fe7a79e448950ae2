//! `sluice query "SQL"`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use sluice_transform::{Engine, pretty};

use super::load;

/// Runs read-only SQL and prints the result.
pub async fn query(dir: &Path, sql: &str, format: &str) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let lake = super::open_lake(&compiled)?;
    let engine = Engine::open(&lake, Some(&compiled)).await?;
    let batches = engine.query(sql).await?;
    match format {
        "table" => println!("{}", pretty(&batches)),
        "csv" => {
            let mut w = sluice_transform::arrow::csv::Writer::new(std::io::stdout());
            for b in &batches {
                w.write(b)?;
            }
        }
        "json" => {
            let mut w = sluice_transform::arrow::json::LineDelimitedWriter::new(std::io::stdout());
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        other => bail!("unknown --format `{other}`; expected table, csv or json"),
    }
    Ok(ExitCode::SUCCESS)
}
