//! `sluice state version` (backend, location, schema version) and `sluice state migrate --to
//! postgres://…` (copy the project's SQLite state into PostgreSQL).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use sluice_state::StateLocation;
use sluice_state::postgres::PostgresStore;
use sluice_state::postgres::copy::copy_sqlite;

use super::load;
use crate::table;

/// The project's state location (`state:`, after `--target` and `${ENV}`).
fn location(dir: &Path) -> Result<StateLocation> {
    let compiled = load(dir)?;
    Ok(compiled.project.state_location()?)
}

/// Prints the backend, where the database is (never a password) and its schema version, read
/// without creating or migrating anything.
pub fn version(dir: &Path) -> Result<ExitCode> {
    let location = location(dir)?;
    let found = sluice_state::peek_version(&location)
        .with_context(|| format!("reading the state database {location}"))?;
    let known = sluice_state::latest_version();
    println!("backend:        {}", location.backend());
    println!("location:       {location}");
    println!(
        "schema version: {found}{}",
        match found {
            0 => " (no state yet: created on first use)".to_string(),
            v if v < known => format!(" (upgraded to {known} on next use)"),
            v if v > known => format!(" (newer than this sluice, which knows {known})"),
            _ => String::new(),
        }
    );
    println!("this sluice:    {known}");
    Ok(ExitCode::SUCCESS)
}

/// Copies the project's SQLite state into the PostgreSQL database `to` (`${ENV}` expanded), in
/// one transaction; a target with rows is refused unless `replace`.
pub fn migrate(dir: &Path, to: &str, replace: bool) -> Result<ExitCode> {
    let from = match location(dir)? {
        StateLocation::Sqlite(path) => path,
        StateLocation::Postgres(url) => {
            bail!("the project's state is already in PostgreSQL ({url}): nothing to migrate from")
        }
    };
    let to = sluice_core::env::expand_env(to, Path::new("--to")).map_err(|e| anyhow!("{e}"))?;
    let url = match StateLocation::parse(&to, dir) {
        Ok(StateLocation::Postgres(url)) => url,
        Ok(StateLocation::Sqlite(_)) => {
            bail!("--to: expected a postgres:// or postgresql:// URL")
        }
        Err(e) => bail!("--to: {e}"),
    };
    let target = PostgresStore::connect(&url)
        .with_context(|| format!("opening the target state database {url}"))?;
    let report = copy_sqlite(&from, &target, replace)
        .with_context(|| format!("copying {} into {url}", from.display()))?;
    let total: u64 = report.iter().map(|(_, n)| n).sum();
    let rows = report
        .into_iter()
        .map(|(t, n)| vec![t, n.to_string()])
        .collect();
    println!("{}", table::render(&["table", "rows"], rows));
    println!(
        "copied {total} rows from {} into {url} (schema version {}).",
        from.display(),
        sluice_state::latest_version()
    );
    println!(
        "To use it, set in sluice.yml:  state: {url}  (with the password, or a ${{ENV}} for it)"
    );
    Ok(ExitCode::SUCCESS)
}
