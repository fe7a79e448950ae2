//! Rendering model SQL with dbt's Jinja: `ref()`, `source()`, `config()`, `var()`, `is_incremental()`, `this`.
//!
//! The same renderer serves two moments: compiling (to learn each model's dependencies and config
//! without touching data; `is_incremental()` is false) and running (where `is_incremental()` tells whether
//! the model's table already exists). Unknown references are recorded, not fatal, so that validation can
//! report all of them at once.

pub mod builtins;
pub mod ephemeral;
pub mod index;
pub mod locate;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::Map;
use sluice_core::ModelLayer;

use crate::error::TransformError;
use crate::relation::{model_relation, source_relation};

/// What the renderer needs to know about the project.
#[derive(Debug, Clone, Default)]
pub struct RenderScope {
    /// Every model's layer, by name (to turn `ref('x')` into `silver.x`).
    pub models: BTreeMap<String, ModelLayer>,
    /// Every source and its tables.
    pub sources: BTreeMap<String, Vec<String>>,
    /// Project variables (`var('x')`), merged with command-line `--vars`.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Project macros, available to every model.
    pub macros: Arc<crate::macros::MacroPrelude>,
    /// Ephemeral models by name: `ref()` to one inlines its SQL as a CTE.
    pub ephemeral: BTreeMap<String, ephemeral::EphemeralSource>,
    /// The lookups above, shared by every render (rebuilt when their sizes change).
    pub index: index::IndexCache,
}

/// The output of rendering one model.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The SQL to run.
    pub sql: String,
    /// Models named by `ref()`, in order of first use.
    pub refs: Vec<String>,
    /// `(source, table)` pairs named by `source()`.
    pub sources: Vec<(String, String)>,
    /// Settings from `config(...)` calls.
    pub config: Map<String, serde_json::Value>,
    /// `ref()` targets that are not models.
    pub unknown_refs: Vec<String>,
    /// `source()` targets that do not exist, as `source.table`.
    pub unknown_sources: Vec<String>,
}

#[derive(Default)]
struct Captured {
    refs: Vec<String>,
    sources: Vec<(String, String)>,
    config: Map<String, serde_json::Value>,
    unknown_refs: Vec<String>,
    unknown_sources: Vec<String>,
    ephemerals: Vec<String>,
}

/// Renders model (or check) SQL; ephemeral models it refers to are inlined as CTEs.
pub fn render(
    sql: &str,
    path: &Path,
    scope: &RenderScope,
    this: Option<&str>,
    is_incremental: bool,
) -> Result<Rendered, TransformError> {
    render_in_window(sql, path, scope, this, is_incremental, None)
}

/// [`render`] while building a time partition: `partition_start`, `partition_end` and
/// `partition_key` describe `window` (outside a partition build they span all time).
pub fn render_in_window(
    sql: &str,
    path: &Path,
    scope: &RenderScope,
    this: Option<&str>,
    is_incremental: bool,
    window: Option<&crate::partition::PartitionWindow>,
) -> Result<Rendered, TransformError> {
    let (mut rendered, ephemerals) =
        render_raw_with(sql, path, scope, this, is_incremental, window)?;
    if !ephemerals.is_empty() {
        rendered.sql = ephemeral::inline(&rendered.sql, &ephemerals, scope)?;
    }
    Ok(rendered)
}

/// Renders without inlining ephemeral models; returns the ephemeral models referred to.
pub(crate) fn render_raw(
    sql: &str,
    path: &Path,
    scope: &RenderScope,
    this: Option<&str>,
    is_incremental: bool,
) -> Result<(Rendered, Vec<String>), TransformError> {
    render_raw_with(sql, path, scope, this, is_incremental, None)
}

fn render_raw_with(
    sql: &str,
    path: &Path,
    scope: &RenderScope,
    this: Option<&str>,
    is_incremental: bool,
    window: Option<&crate::partition::PartitionWindow>,
) -> Result<(Rendered, Vec<String>), TransformError> {
    let captured = Arc::new(Mutex::new(Captured::default()));
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);

    // One shared copy of the lookups for all renders: cloning them per model is quadratic.
    let index = scope.index.get(scope);
    let idx = index.clone();
    let cap = captured.clone();
    env.add_function(
        "ref",
        move |a: String, b: Option<String>| -> Result<String, Error> {
            // `ref('model')` or dbt's two-argument `ref('package', 'model')`.
            let name = b.unwrap_or(a);
            let mut c = lock(&cap);
            if !c.refs.contains(&name) {
                c.refs.push(name.clone());
            }
            if idx.ephemeral.contains(&name) {
                if !c.ephemerals.contains(&name) {
                    c.ephemerals.push(name.clone());
                }
                return Ok(ephemeral::cte_name(&name));
            }
            Ok(match idx.models.get(&name) {
                Some(layer) => model_relation(*layer, &name),
                None => {
                    c.unknown_refs.push(name.clone());
                    format!("__unknown_ref__.{name}")
                }
            })
        },
    );

    let idx = index.clone();
    let cap = captured.clone();
    env.add_function(
        "source",
        move |src: String, table: String| -> Result<String, Error> {
            let mut c = lock(&cap);
            let pair = (src.clone(), table.clone());
            if !c.sources.contains(&pair) {
                c.sources.push(pair);
            }
            if !idx.sources.get(&src).is_some_and(|t| t.contains(&table)) {
                c.unknown_sources.push(format!("{src}.{table}"));
            }
            Ok(source_relation(&src, &table))
        },
    );

    let cap = captured.clone();
    env.add_function("config", move |kwargs: Kwargs| -> Result<String, Error> {
        let mut c = lock(&cap);
        for key in kwargs.args() {
            let v: Value = kwargs.get(key)?;
            let json = serde_json::to_value(&v).map_err(|e| {
                Error::new(ErrorKind::InvalidOperation, format!("config `{key}`: {e}"))
            })?;
            c.config.insert(key.to_string(), json);
        }
        Ok(String::new())
    });

    let idx = index.clone();
    env.add_function(
        "var",
        move |name: String, default: Option<Value>| -> Result<Value, Error> {
            match idx.vars.get(&name) {
                Some(v) => Ok(Value::from(minijinja::value::Serde(v.clone()))),
                None => default.ok_or_else(|| {
                    Error::new(
                        ErrorKind::UndefinedError,
                        format!(
                            "var `{name}` is not defined in sluice.yml `vars:` and has no default"
                        ),
                    )
                }),
            }
        },
    );

    env.add_function("is_incremental", move || -> bool { is_incremental });
    env.add_function(
        "env_var",
        |name: String, default: Option<String>| -> Result<String, Error> {
            std::env::var(&name).ok().or(default).ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedError,
                    format!("environment variable `{name}` is not set and has no default"),
                )
            })
        },
    );
    if let Some(this) = this {
        env.add_global("this", this.to_string());
    }
    let partition_vars = match window {
        Some(w) => w.vars(),
        None => crate::partition::unbounded_vars(),
    };
    for (name, value) in partition_vars {
        env.add_global(name, value);
    }
    builtins::register(&mut env, scope);

    let prelude = &scope.macros;
    let sql = if prelude.is_empty() {
        env.render_str(sql, ())
            .map_err(|e| template_error(path, sql, &e))?
    } else {
        let source = format!("{}{sql}", prelude.text);
        let out = env.render_str(&source, ()).map_err(|e| {
            // Point at the macro file or at the model's own line.
            match e.line().map(|l| (l, prelude.locate(l))) {
                Some((_, Some((file, line)))) => {
                    let mut err = template_error(&file, &source, &e);
                    if let TransformError::Template { line: l, .. } = &mut err {
                        *l = Some(line);
                    }
                    err
                }
                Some((l, None)) => {
                    let mut err = template_error(path, &source, &e);
                    if let TransformError::Template { line: el, .. } = &mut err {
                        *el = Some(l.saturating_sub(prelude.lines));
                    }
                    err
                }
                None => template_error(path, &source, &e),
            }
        })?;
        // The prelude renders to blank lines only.
        out.trim_start().to_string()
    };
    let c = std::mem::take(&mut *lock(&captured));
    let ephemerals = c.ephemerals;
    Ok((
        Rendered {
            sql,
            refs: c.refs,
            sources: c.sources,
            config: c.config,
            unknown_refs: c.unknown_refs,
            unknown_sources: c.unknown_sources,
        },
        ephemerals,
    ))
}

fn lock(m: &Mutex<Captured>) -> std::sync::MutexGuard<'_, Captured> {
    // A poisoned lock only means another render panicked; the captured data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A render error of `source` (the text minijinja rendered) for `path`; the column comes from the
/// span minijinja reports, which is on the same line of `source` as of the file.
fn template_error(path: &Path, source: &str, e: &Error) -> TransformError {
    let mut message = e.kind().to_string();
    if let Some(d) = e.detail() {
        message = format!("{message}: {d}");
    }
    TransformError::Template {
        path: path.to_path_buf(),
        line: e.line(),
        column: e
            .range()
            .filter(|_| e.line().is_some())
            .map(|r| sluice_core::error::Position::of_offset(source, r.start).column),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> RenderScope {
        let mut s = RenderScope::default();
        s.models.insert("stg_orders".into(), ModelLayer::Silver);
        s.sources.insert("shop".into(), vec!["orders".into()]);
        s.vars.insert("min_amount".into(), serde_json::json!(5));
        s
    }

    #[test]
    fn renders_refs_sources_config_vars() {
        let sql = "{{ config(materialized='incremental', unique_key='order_id') }}\
select * from {{ ref('stg_orders') }} join {{ source('shop', 'orders') }} \
where amount > {{ var('min_amount') }}{% if is_incremental() %} and x > (select max(x) from {{ this }}){% endif %}";
        let r = render(sql, Path::new("m.sql"), &scope(), Some("gold.m"), false).unwrap();
        assert_eq!(
            r.sql,
            "select * from silver.stg_orders join bronze.shop__orders where amount > 5"
        );
        assert_eq!(r.refs, ["stg_orders"]);
        assert_eq!(r.sources, [("shop".to_string(), "orders".to_string())]);
        assert_eq!(r.config["materialized"], "incremental");
        let r = render(sql, Path::new("m.sql"), &scope(), Some("gold.m"), true).unwrap();
        assert!(
            r.sql.ends_with("and x > (select max(x) from gold.m)"),
            "{}",
            r.sql
        );
    }

    #[test]
    fn records_unknown_refs() {
        let r = render(
            "select * from {{ ref('nope') }}, {{ source('shop','x') }}",
            Path::new("m.sql"),
            &scope(),
            None,
            false,
        )
        .unwrap();
        assert_eq!(r.unknown_refs, ["nope"]);
        assert_eq!(r.unknown_sources, ["shop.x"]);
    }

    #[test]
    fn template_errors_name_file_line_and_column() {
        let err = render(
            "select 1\n{{ var('missing') }}",
            Path::new("models/gold/m.sql"),
            &scope(),
            None,
            false,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("models/gold/m.sql:2:4: template error"),
            "{text}"
        );
        assert!(text.contains("var `missing`"), "{text}");
        let err = render("select {{ 1 +", Path::new("m.sql"), &scope(), None, false).unwrap_err();
        assert!(err.to_string().contains("syntax error"), "{err}");
    }
}
