//! `--select`, `--exclude` and `--state`: resolving a command's selection into graph nodes.

use std::collections::BTreeSet;

use anyhow::{Result, anyhow};
use serde_json::{Map, Value};
use sluice_transform::CompiledProject;

use crate::artifacts::state::{PreviousManifest, StateFacts};
use crate::cli::SelectArgs;

/// A resolved selection.
pub struct Resolved {
    /// The selected nodes.
    pub nodes: BTreeSet<String>,
    /// The selection as the user wrote it (recorded in the run history).
    pub display: String,
}

/// Resolves `sel` over `compiled` (empty `--select`: every node).
pub fn resolve(compiled: &CompiledProject, sel: &SelectArgs) -> Result<Resolved> {
    let states = match &sel.state {
        Some(dir) => Some(PreviousManifest::load(dir)?.compare(compiled)),
        None => None,
    };
    let facts = StateFacts {
        project: compiled,
        states,
    };
    let nodes = sluice_core::selector::select(
        &compiled.graph,
        &facts,
        &sel.select_text(),
        &sel.exclude_text(),
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(Resolved {
        nodes,
        display: display(sel),
    })
}

/// `a b --exclude c --state dir`, or the empty text for everything.
pub fn display(sel: &SelectArgs) -> String {
    let mut out = sel.select_text();
    if !sel.exclude.is_empty() {
        out = format!("{out} --exclude {}", sel.exclude_text())
            .trim()
            .to_string();
    }
    if let Some(state) = &sel.state {
        out = format!("{out} --state {}", state.display())
            .trim()
            .to_string();
    }
    out
}

/// The invocation's `args` for the artifacts: selection, target and vars as given.
pub fn invocation_args(sel: &SelectArgs) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("select".into(), sel.select.clone().into());
    args.insert("exclude".into(), sel.exclude.clone().into());
    if let Some(state) = &sel.state {
        args.insert("state".into(), state.display().to_string().into());
    }
    let settings = super::settings();
    if let Some(target) = &settings.target {
        args.insert("target".into(), target.clone().into());
    }
    if !settings.vars.is_empty() {
        args.insert(
            "vars".into(),
            Value::Object(settings.vars.clone().into_iter().collect()),
        );
    }
    args
}
