//! The profile output a run uses (`--target`, else the profile's `target:`), as dbt's `target`
//! variable shows it in Jinja: `target.name`, `.type`, `.schema`, `.database`, `.threads`,
//! `.profile_name` and the output's other settings — never its secrets (passwords, tokens, keys),
//! which Sluice does not read.
//!
//! `{{ env_var('X') }}` and `{{ env_var('X', 'default') }}` in an output's values are rendered, as
//! dbt renders `profiles.yml` (a value that cannot be rendered is left out). dbt's aliases apply: `dbname` is also `database` (PostgreSQL), and a
//! BigQuery `project` / `dataset` are `database` / `schema`.

use std::path::Path;

use serde_json::{Map, Value as Json};
use sluice_core::yaml::{Node, Value};

/// The output a run uses and what `target` shows of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetOutput {
    /// The output's name (`target.name`).
    pub name: String,
    /// The `target` object for Jinja.
    pub context: Map<String, Json>,
}

/// Parts of a key that mark a secret: its value is never read.
const SECRET_PARTS: &[&str] = &[
    "pass",
    "token",
    "secret",
    "private_key",
    "keyfile",
    "credential",
    "auth",
];

/// The `target` context of the output `output` (named `target`) of profile `profile`.
pub fn context(file: &Path, profile: &str, target: &str, output: &Node) -> TargetOutput {
    let mut ctx = Map::new();
    if let Value::Map(entries) = &output.value {
        for e in entries {
            let key = e.key.to_ascii_lowercase();
            if SECRET_PARTS.iter().any(|s| key.contains(s)) {
                continue;
            }
            let value = match &e.node.value {
                // A value that cannot be rendered here (an unset variable without a default, say a
                // host only CI has) is left out rather than failing every command: `target.<key>`
                // is then undefined, as the output's unread settings are.
                Value::Str(s) if s.contains("{{") => match render(s) {
                    Ok(v) => Json::String(v),
                    Err(message) => {
                        tracing::debug!(
                            "{}:{}: field `{profile}.outputs.{target}.{}` left out of `target`: {message}",
                            file.display(),
                            e.node.pos,
                            e.key
                        );
                        continue;
                    }
                },
                Value::Str(s) => Json::String(s.clone()),
                Value::Bool(b) => Json::Bool(*b),
                Value::Int(i) => Json::from(*i),
                Value::UInt(u) => Json::from(*u),
                Value::Float(f) => Json::from(*f),
                _ => continue,
            };
            ctx.insert(e.key.clone(), value);
        }
    }
    let is_bigquery = ctx.get("type").and_then(Json::as_str) == Some("bigquery");
    let alias = |ctx: &mut Map<String, Json>, from: &str, to: &str| {
        if let Some(v) = ctx.get(from).cloned() {
            ctx.entry(to.to_string()).or_insert(v);
        }
    };
    alias(&mut ctx, "dbname", "database");
    if is_bigquery {
        alias(&mut ctx, "project", "database");
        alias(&mut ctx, "dataset", "schema");
    }
    ctx.entry("threads".to_string()).or_insert(Json::from(1));
    ctx.insert("name".into(), target.into());
    ctx.insert("target_name".into(), target.into());
    ctx.insert("profile_name".into(), profile.into());
    TargetOutput {
        name: target.to_string(),
        context: ctx,
    }
}

/// Renders `{{ env_var(...) }}` in a profile value.
fn render(text: &str) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.add_function(
        "env_var",
        |name: String, default: Option<String>| -> Result<String, minijinja::Error> {
            match (std::env::var(&name), default) {
                (Ok(v), _) => Ok(v),
                (Err(_), Some(d)) => Ok(d),
                (Err(_), None) => Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("env_var('{name}'): the variable is not set and has no default"),
                )),
            }
        },
    );
    env.render_str(text, ()).map_err(|e| match e.detail() {
        Some(d) => d.to_string(),
        None => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::yaml::parse_doc;

    #[test]
    fn shows_settings_and_aliases_but_no_secrets() {
        let doc = parse_doc(
            Path::new("profiles.yml"),
            "type: postgres\nhost: db\ndbname: analytics\nschema: \"{{ env_var('SLUICE_TEST_UNSET_SCHEMA', 'dbt_ci') }}\"\nuser: ci\npassword: hunter2\nthreads: 8\n",
        )
        .unwrap();
        let t = context(Path::new("profiles.yml"), "jaffle", "ci", &doc);
        assert_eq!(t.name, "ci");
        assert_eq!(t.context["database"], "analytics");
        assert_eq!(t.context["schema"], "dbt_ci");
        assert_eq!(t.context["threads"], 8);
        assert_eq!(t.context["profile_name"], "jaffle");
        assert!(!t.context.contains_key("password"));

        let doc = parse_doc(
            Path::new("profiles.yml"),
            "type: bigquery\nproject: acme\ndataset: marts\nkeyfile: /k.json\nschema_x: \"{{ env_var('SLUICE_TEST_UNSET_X') }}\"\n",
        )
        .unwrap();
        let t = context(Path::new("profiles.yml"), "p", "prod", &doc);
        assert_eq!(t.context["database"], "acme");
        assert_eq!(t.context["schema"], "marts");
        assert!(!t.context.contains_key("keyfile"));
        // An unset variable without a default leaves the key out.
        assert!(!t.context.contains_key("schema_x"));
    }
}
