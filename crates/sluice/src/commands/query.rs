//! `sluice query "SQL"`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use sluice_serve::access::Access;
use sluice_serve::auth::{Principal, Role};
use sluice_transform::{CompiledProject, Engine, pretty};

use super::load;

/// Runs read-only SQL and prints the result; with `as_principal` (`USER:ROLE`), as that user
/// reads over `sluice serve` (access.yml's grants, masks and row filters).
pub async fn query(
    dir: &Path,
    sql: &str,
    format: &str,
    as_principal: Option<&str>,
) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let lake = super::open_lake(&compiled)?;
    let mut engine = Engine::open(&lake, Some(&compiled)).await?;
    if let Some(spec) = as_principal {
        engine = governed(&compiled, &engine, spec)?;
    }
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

/// `engine` as `spec` (`USER:ROLE`) sees it under the project's access.yml.
fn governed(compiled: &CompiledProject, engine: &Engine, spec: &str) -> Result<Engine> {
    let (user, role) = spec
        .split_once(':')
        .filter(|(u, r)| !u.is_empty() && !r.is_empty())
        .ok_or_else(|| anyhow!("--as `{spec}`: expected USER:ROLE, like `ana:analyst`"))?;
    let role: Role = role.parse().map_err(|e| anyhow!("--as `{spec}`: {e}"))?;
    let access = Access::new(
        compiled.project.access.clone(),
        compiled.project.config.pii_key.clone(),
        None,
    );
    if let Role::Named(name) = &role
        && compiled
            .project
            .access
            .as_ref()
            .is_none_or(|a| a.role(name).is_none())
    {
        bail!(
            "--as `{spec}`: unknown role `{name}`: use reader, operator, admin or a role defined \
             under `roles:` in access.yml"
        );
    }
    let principal = Principal {
        user: user.to_string(),
        role,
        token_id: String::new(),
    };
    match access.view(Some(&principal)) {
        Some(view) => sluice_serve::access::session::engine_for(engine, view)
            .map_err(|e| anyhow!("--as `{spec}`: {e}")),
        None => Ok(engine.clone()),
    }
}
