//! `sluice compile`: renders the selected models into `target/compiled/<project>/<file>` (dbt's
//! layout) without running anything, and prints the SQL when one model is selected.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::load;
use crate::artifacts::{self, Invocation};
use crate::cli::SelectArgs;

/// `sluice compile`.
pub fn compile(dir: &Path, sel: &SelectArgs) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let resolved = super::select::resolve(&compiled, sel)?;
    let inv = Invocation::new("compile", super::select::invocation_args(sel));
    let root = artifacts::target_dir(&compiled)
        .join("compiled")
        .join(&compiled.project.config.name);
    let mut written = Vec::new();
    for node in &resolved.nodes {
        let Some(m) = compiled.models.get(node) else {
            continue;
        };
        let rel = sluice_transform::select::relative(&compiled.project.root, &m.path);
        let path = root.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &m.sql).with_context(|| format!("writing {}", path.display()))?;
        written.push(node.clone());
    }
    artifacts::write_manifest(&compiled, &inv)?;
    let results = artifacts::run_results::compile_results(&compiled, &written, &inv);
    artifacts::write_json(
        &artifacts::target_dir(&compiled).join("run_results.json"),
        &results,
    )?;
    match written.as_slice() {
        [one] => {
            if let Some(m) = compiled.models.get(one) {
                say!("{}", m.sql.trim_end());
            }
        }
        many => say!("Compiled {} model(s) into {}", many.len(), root.display()),
    }
    Ok(ExitCode::SUCCESS)
}
