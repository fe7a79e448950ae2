//! `sluice ls`: the selected nodes, without running anything (dbt's `ls`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use serde_json::json;
use sluice_core::selector::{NodeFacts, ResourceType};

use super::load;
use crate::artifacts::{self, Invocation};
use crate::cli::{LsOutput, SelectArgs};

/// `sluice ls`.
pub fn ls(dir: &Path, sel: &SelectArgs, output: LsOutput, types: &[String]) -> Result<ExitCode> {
    let compiled = load(dir)?;
    let known = ["model", "seed", "snapshot", "source", "export", "all"];
    if let Some(bad) = types.iter().find(|t| !known.contains(&t.as_str())) {
        return Err(anyhow!(
            "--resource-type {bad}: expected one of {}",
            known.join(", ")
        ));
    }
    let resolved = super::select::resolve(&compiled, sel)?;
    let wanted =
        |t: ResourceType| types.is_empty() || types.iter().any(|w| w == "all" || w == t.as_str());
    let inv = Invocation::new("ls", super::select::invocation_args(sel));
    artifacts::write_manifest(&compiled, &inv)?;
    let order = compiled.graph.topological_order()?;
    for node in order.iter().filter(|n| resolved.nodes.contains(*n)) {
        let kind = compiled.resource_type(node);
        if !wanted(kind) {
            continue;
        }
        let line = match output {
            LsOutput::Name => node.clone(),
            LsOutput::Path => compiled.node_path(node).unwrap_or_default(),
            LsOutput::Selector => {
                let fqn = compiled.fqn(node).join(".");
                match kind {
                    ResourceType::Source => format!("source:{fqn}"),
                    ResourceType::Export => format!("export:{fqn}"),
                    _ => fqn,
                }
            }
            LsOutput::Json => {
                let m = compiled.models.get(node);
                json!({
                    "name": node,
                    "resource_type": kind.as_str(),
                    "package_name": compiled.project.config.name,
                    "original_file_path": compiled.node_path(node),
                    "unique_id": artifacts::unique_id(&compiled, node),
                    "fqn": compiled.fqn(node),
                    "tags": compiled.tags_of(node),
                    "config": m.map(|m| json!({"materialized": m.config.materialized.as_str()})),
                    "depends_on": {"nodes": compiled.graph.parents(node).collect::<Vec<_>>()},
                })
                .to_string()
            }
        };
        say!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
