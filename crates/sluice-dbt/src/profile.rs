//! The SQL dialect of a dbt project: the adapter its profile targets.
//!
//! A dbt project is written for one warehouse, named by the `type:` of its profile's target in
//! `profiles.yml` (`duckdb`, `snowflake`, `bigquery`, `databricks`, `postgres`, …). Sluice plans the
//! models with that warehouse's semantics ([`sluice_transform::dialect`]), so `amount / 100` means
//! what its author saw. The var `sluice_dialect` in `dbt_project.yml` overrides the profile (or stands
//! in for it when there is no `profiles.yml` at hand).
//!
//! `profiles.yml` is looked for where dbt looks: the project folder, `$DBT_PROFILES_DIR`, then
//! `~/.dbt/`. The output is the one `--target` names (an error listing the outputs when there is no
//! such output), else the profile's `target:` (dbt's default when it has none: `dev`), or its only
//! output; what `target.*` shows of it in Jinja is [`crate::target`]'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sluice_core::ConfigError;
use sluice_core::error::Position;
use sluice_core::yaml::{Node, Value, parse_doc};
use sluice_transform::Dialect;

use crate::project_file::DbtProjectFile;

/// The var that names the dialect directly.
pub const DIALECT_VAR: &str = "sluice_dialect";

/// The dialect a project is planned in, and where it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialectSource {
    /// The dialect; `None`: DataFusion's own semantics (no profile found, or an adapter Sluice has no
    /// dialect for).
    pub dialect: Option<Dialect>,
    /// Where it came from (`vars.sluice_dialect`, or `<profiles.yml>: <profile>.outputs.<target>`),
    /// or why there is none.
    pub from: String,
    /// The adapter type as the profile names it (also when Sluice has no dialect for it).
    pub adapter: Option<String>,
    /// What `sluice validate` warns about, with file and line: an adapter Sluice has no dialect for,
    /// whose models then run with DataFusion's semantics.
    pub warning: Option<String>,
    /// The profile output used, for `target.*` in Jinja; `None` when no profile was read.
    pub target: Option<crate::target::TargetOutput>,
}

/// Reads the dialect of the dbt project at `root`, from the output `target` of its profile (or the
/// profile's default output when `target` is `None`).
pub fn dialect(
    root: &Path,
    project_file: &Path,
    dbt: &DbtProjectFile,
    vars: &BTreeMap<String, serde_json::Value>,
    target: Option<&str>,
) -> Result<DialectSource, ConfigError> {
    let from_var = match vars.get(DIALECT_VAR) {
        None => None,
        Some(v) => {
            let invalid = |message: String| ConfigError::Invalid {
                path: project_file.to_path_buf(),
                field: format!("vars.{DIALECT_VAR}"),
                message,
            };
            let name = v
                .as_str()
                .ok_or_else(|| invalid(format!("expected a dialect name, found {v}")))?;
            Some(
                name.parse::<Dialect>()
                    .map_err(|e| invalid(e.to_string()))?,
            )
        }
    };
    let by_var = |target| DialectSource {
        dialect: from_var,
        from: format!("vars.{DIALECT_VAR}"),
        target,
        ..DialectSource::default()
    };
    // The var stands in for the profile; the profile is still read for an explicit `--target`.
    if from_var.is_some() && target.is_none() {
        return Ok(by_var(None));
    }
    let Some(profile) = dbt.entry("profile").and_then(|e| e.node.as_str()) else {
        return Ok(match from_var {
            Some(_) => by_var(None),
            None => DialectSource {
                from: "dbt_project.yml names no profile".into(),
                ..DialectSource::default()
            },
        });
    };
    for file in profile_files(root) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let profiles = parse_doc(&file, &text)?;
        let Some(p) = profiles.get(profile) else {
            continue;
        };
        let read = from_profile(&file, profile, p, target)?;
        return Ok(match from_var {
            Some(_) => by_var(read.target),
            None => read,
        });
    }
    Ok(match from_var {
        Some(_) => by_var(None),
        None => DialectSource {
            from: format!("no profiles.yml with profile `{profile}` was found"),
            ..DialectSource::default()
        },
    })
}

/// Where dbt looks for `profiles.yml`, in order.
fn profile_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("profiles.yml")];
    if let Some(dir) = std::env::var_os("DBT_PROFILES_DIR") {
        files.push(PathBuf::from(dir).join("profiles.yml"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".dbt").join("profiles.yml"));
    }
    files
}

/// The adapter of a profile's target; problems point at their line in `profiles.yml`.
fn from_profile(
    file: &Path,
    name: &str,
    profile: &Node,
    chosen: Option<&str>,
) -> Result<DialectSource, ConfigError> {
    let at = |pos: Position, field: String, message: String| ConfigError::At {
        path: file.to_path_buf(),
        position: pos,
        field,
        message,
    };
    let outputs = match profile.get("outputs") {
        Some(
            node @ Node {
                value: Value::Map(entries),
                ..
            },
        ) if !entries.is_empty() => (node, entries),
        other => {
            return Err(at(
                other.map_or(profile.pos, |n| n.pos),
                format!("{name}.outputs"),
                format!(
                    "expected a map of targets, found {}",
                    other.map_or_else(|| "nothing".into(), Node::describe)
                ),
            ));
        }
    };
    if let Some(t) = chosen
        && outputs.0.get(t).is_none()
    {
        let names = outputs.1.iter().map(|e| e.key.as_str());
        let hint = sluice_core::graph::suggest(t, names.clone())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(at(
            outputs.0.pos,
            format!("{name}.outputs"),
            format!(
                "--target `{t}` names no output of profile `{name}`{hint}; its outputs: {}",
                names.collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let named_node = profile.get("target");
    let named = chosen.unwrap_or_else(|| {
        named_node
            .and_then(Node::as_str)
            // A rendered target (`{{ env_var('DBT_TARGET', 'dev') }}`) is not evaluated here.
            .filter(|t| !t.contains("{{"))
            .unwrap_or("dev")
    });
    let (target, output) = match outputs.0.get(named) {
        Some(o) => (named.to_string(), o),
        None => match outputs.1.as_slice() {
            [only] => (only.key.clone(), &only.node),
            _ => {
                return Err(at(
                    named_node.map_or(outputs.0.pos, |n| n.pos),
                    format!("{name}.target"),
                    format!("target `{named}` is not among the profile's outputs"),
                ));
            }
        },
    };
    let type_node = output.get("type");
    let adapter = type_node.and_then(Node::as_str).ok_or_else(|| {
        at(
            type_node.map_or(output.pos, |n| n.pos),
            format!("{name}.outputs.{target}.type"),
            "expected the adapter type (duckdb, snowflake, bigquery, databricks, postgres, …)"
                .into(),
        )
    })?;
    let from = format!("{}: {name}.outputs.{target}", file.display());
    let dialect = adapter.parse::<Dialect>().ok();
    let warning = dialect.is_none().then(|| {
        format!(
            "{}:{}: field `{name}.outputs.{target}.type`: Sluice has no SQL dialect for the \
             adapter `{adapter}`: models run with DataFusion's semantics, which may compute other \
             figures (set vars.{DIALECT_VAR} in dbt_project.yml to choose one of {})",
            file.display(),
            type_node.map_or(output.pos, |n| n.pos),
            sluice_transform::dialect::DIALECTS
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    Ok(DialectSource {
        dialect,
        from,
        adapter: Some(adapter.to_string()),
        warning,
        target: Some(crate::target::context(file, name, &target, output)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(text: &str) -> DbtProjectFile {
        DbtProjectFile::load(Path::new("dbt_project.yml"), text).unwrap()
    }

    #[test]
    fn reads_the_target_adapter_of_the_profile_in_the_project_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("profiles.yml"),
            "other:\n  outputs:\n    dev: {type: postgres}\njaffle:\n  target: prod\n  outputs:\n    dev:\n      type: duckdb\n    prod:\n      type: snowflake\n      account: x\n",
        )
        .unwrap();
        let dbt = project("name: jaffle_shop\nprofile: jaffle\n");
        let d = dialect(
            dir.path(),
            Path::new("dbt_project.yml"),
            &dbt,
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert_eq!(d.dialect, Some(Dialect::Snowflake));
        assert_eq!(d.adapter.as_deref(), Some("snowflake"));
        assert!(
            d.from.ends_with("profiles.yml: jaffle.outputs.prod"),
            "{}",
            d.from
        );
    }

    #[test]
    fn the_var_wins_and_a_bad_var_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("profiles.yml"),
            "jaffle:\n  outputs:\n    dev: {type: duckdb}\n",
        )
        .unwrap();
        let dbt = project("name: jaffle_shop\nprofile: jaffle\n");
        let mut vars = BTreeMap::new();
        let d = dialect(dir.path(), Path::new("p.yml"), &dbt, &vars, None).unwrap();
        assert_eq!(d.dialect, Some(Dialect::DuckDb));
        vars.insert(DIALECT_VAR.to_string(), serde_json::json!("bigquery"));
        let d = dialect(dir.path(), Path::new("p.yml"), &dbt, &vars, None).unwrap();
        assert_eq!(d.dialect, Some(Dialect::BigQuery));
        assert_eq!(d.from, "vars.sluice_dialect");
        vars.insert(DIALECT_VAR.to_string(), serde_json::json!("oracle"));
        let e = dialect(dir.path(), Path::new("p.yml"), &dbt, &vars, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "p.yml: field `vars.sluice_dialect`: `oracle` is not a known dialect; expected \
             datafusion, postgres, duckdb, snowflake, bigquery or databricks"
        );
    }

    #[test]
    fn an_adapter_without_a_dialect_and_a_missing_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("profiles.yml"),
            "t:\n  outputs:\n    dev: {type: trino}\nu:\n  target: prod\n  outputs:\n    a: {type: duckdb}\n    b: {type: duckdb}\n",
        )
        .unwrap();
        let d = dialect(
            dir.path(),
            Path::new("p.yml"),
            &project("name: x\nprofile: t\n"),
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert_eq!((d.dialect, d.adapter.as_deref()), (None, Some("trino")));
        // The warning points at the adapter's line and column in profiles.yml.
        let w = d
            .warning
            .expect("a warning for an adapter without a dialect");
        assert!(
            w.contains("profiles.yml:3:17: field `t.outputs.dev.type`") && w.contains("`trino`"),
            "{w}"
        );
        let e = dialect(
            dir.path(),
            Path::new("p.yml"),
            &project("name: x\nprofile: u\n"),
            &BTreeMap::new(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("profiles.yml:5:11: field `u.target`") && e.contains("`prod`"),
            "{e}"
        );
    }

    #[test]
    fn target_picks_an_output_and_an_unknown_one_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("profiles.yml"),
            "jaffle:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      schema: dev_alice\n    prod:\n      type: snowflake\n      database: ANALYTICS\n      schema: marts\n      password: secret\n",
        )
        .unwrap();
        let dbt = project("name: jaffle_shop\nprofile: jaffle\n");
        let p = Path::new("p.yml");
        let vars = BTreeMap::new();
        let d = dialect(dir.path(), p, &dbt, &vars, None).unwrap();
        assert_eq!(d.dialect, Some(Dialect::DuckDb));
        let t = d.target.unwrap();
        assert_eq!(
            (t.name.as_str(), &t.context["schema"]),
            ("dev", &serde_json::json!("dev_alice"))
        );
        let d = dialect(dir.path(), p, &dbt, &vars, Some("prod")).unwrap();
        assert_eq!(d.dialect, Some(Dialect::Snowflake));
        let t = d.target.unwrap();
        assert_eq!(t.context["type"], "snowflake");
        assert_eq!(t.context["database"], "ANALYTICS");
        assert_eq!(t.context["name"], "prod");
        assert!(!t.context.contains_key("password"));
        let e = dialect(dir.path(), p, &dbt, &vars, Some("prd"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("profiles.yml:4:5: field `jaffle.outputs`")
                && e.contains("--target `prd` names no output of profile `jaffle` (did you mean `prod`?); its outputs: dev, prod"),
            "{e}"
        );
        // The var sets the dialect; the output still gives `target`.
        let vars = BTreeMap::from([(DIALECT_VAR.to_string(), serde_json::json!("bigquery"))]);
        let d = dialect(dir.path(), p, &dbt, &vars, Some("prod")).unwrap();
        assert_eq!(d.dialect, Some(Dialect::BigQuery));
        assert_eq!(d.target.unwrap().context["schema"], "marts");
    }
}
