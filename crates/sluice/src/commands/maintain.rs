//! `sluice maintain [--select SEL] [--dry-run]`: table maintenance by hand (docs/maintenance.md).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sluice_orchestrate::StateStore;
use sluice_orchestrate::maintain::{self, MaintainOptions, TableOutcome};

use super::{load, select};
use crate::cli::SelectArgs;

/// Maintains every selected table that exists, prints one row per table, and exits non-zero when
/// one of them failed.
pub async fn maintain(dir: &Path, sel: &SelectArgs, dry_run: bool) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let selection = select::resolve(&compiled, sel)?;
    let lake = super::open_lake(&compiled)?.with_bloom_filters(maintain::bloom_filters(&compiled));
    let state_location = compiled.project.state_location()?;
    let state = StateStore::open(&state_location)
        .with_context(|| format!("opening the state database {state_location}"))?;
    let targets = maintain::targets(&compiled, Some(&selection.nodes));
    let opts = MaintainOptions {
        dry_run,
        only_due: false,
        selection: selection.display,
        now: None,
    };
    let pass = maintain::maintain(&compiled, &lake, &state, &targets, &opts).await?;
    let rows: Vec<Vec<String>> = pass.tables.iter().filter_map(row).collect();
    if rows.is_empty() {
        println!("No table to maintain: nothing selected has been built yet.");
    } else {
        println!(
            "{}",
            crate::table::render(
                &[
                    "asset",
                    "files before",
                    "files after",
                    "bytes before",
                    "bytes after",
                    "compacted",
                    "vacuumed files",
                    "versions vacuumed",
                    "notes",
                ],
                rows,
            )
        );
    }
    match (&pass.run_id, dry_run) {
        (_, true) => println!("Dry run: nothing was changed."),
        (Some(id), false) => println!("Recorded as run {id} (`sluice runs show {id}`)."),
        (None, false) => {}
    }
    let failed = pass.tables.iter().any(|t| t.error.is_some());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A table's row: `None` for a table not built yet.
fn row(t: &TableOutcome) -> Option<Vec<String>> {
    if let Some(error) = &t.error {
        let mut cells = vec![t.asset.clone()];
        cells.extend(std::iter::repeat_n("-".to_string(), 7));
        cells.push(format!("FAILED: {error}"));
        return Some(cells);
    }
    let r = t.report.as_ref()?;
    let mut notes = Vec::new();
    if !r.zordered_by.is_empty() {
        notes.push(format!("z-ordered by {}", r.zordered_by.join(", ")));
    }
    if let Some(v) = r.checkpoint {
        notes.push(format!("checkpoint at v{v}"));
    }
    if let Some(e) = &t.expired
        && e.rows > 0
    {
        notes.push(maintain::describe_expired(e));
    }
    Some(vec![
        t.asset.clone(),
        r.before.files.to_string(),
        r.after.files.to_string(),
        r.before.bytes.to_string(),
        r.after.bytes.to_string(),
        if r.dry_run {
            format!("{} files", r.files_compacted)
        } else {
            format!("{} -> {}", r.files_compacted, r.files_written)
        },
        format!("{} ({} bytes)", r.vacuumed_files, r.vacuumed_bytes),
        r.versions_vacuumed.to_string(),
        notes.join("; "),
    ])
}
