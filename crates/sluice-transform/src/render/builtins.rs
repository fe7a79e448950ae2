//! dbt's everyday Jinja context beyond `ref`/`source`/`config`: `target`, `adapter` basics,
//! `run_started_at`, `execute`, `log`, `return`, `exceptions`, `fromjson`.
//!
//! What is deliberately absent (package macros, `run_query`, `adapter.get_relation` …) is reported by
//! `sluice-dbt`'s scan before rendering, with the file and line.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State};

use super::RenderScope;

/// When this process started its run: one value for every model rendered in it, as in dbt.
pub fn run_started_at() -> DateTime<Utc> {
    static STARTED: OnceLock<DateTime<Utc>> = OnceLock::new();
    *STARTED.get_or_init(Utc::now)
}

/// The var holding the `target` object of a dbt profile's output (type, schema, database, …), set
/// by `sluice-dbt`; its keys replace the defaults of `target`.
pub const TARGET_CONTEXT_VAR: &str = "sluice_target_context";

/// Adds the globals and functions to `env`.
pub(crate) fn register(env: &mut Environment<'_>, scope: &RenderScope) {
    let target_name = scope
        .vars
        .get("sluice_target")
        .and_then(|v| v.as_str())
        .unwrap_or("dev")
        .to_string();
    let mut target = serde_json::json!({
        "name": target_name,
        "target_name": target_name,
        "type": "sluice",
        "database": "sluice",
        "schema": "silver",
        "threads": 4,
        "profile_name": "sluice",
    });
    if let (serde_json::Value::Object(t), Some(serde_json::Value::Object(output))) =
        (&mut target, scope.vars.get(TARGET_CONTEXT_VAR))
    {
        t.extend(output.clone());
    }
    env.add_global("target", Value::from(minijinja::value::Serde(target)));
    env.add_global("execute", true);
    env.add_global(
        "run_started_at",
        Value::from_object(RunStartedAt(run_started_at())),
    );
    env.add_global("adapter", Value::from_object(Adapter));
    env.add_global("exceptions", Value::from_object(Exceptions));
    env.add_global(
        "dbt",
        Value::from_object(crate::cross_db::CrossDb { utils: false }),
    );
    env.add_global(
        "dbt_utils",
        Value::from_object(crate::cross_db::CrossDb { utils: true }),
    );
    env.add_function(
        "log",
        |msg: Value, info: Option<bool>, kwargs: Kwargs| -> Result<String, Error> {
            let info = match kwargs.get::<Option<bool>>("info")? {
                Some(i) => i,
                None => info.unwrap_or(false),
            };
            if info {
                tracing::info!(target: "sluice::jinja", "{msg}");
            } else {
                tracing::debug!(target: "sluice::jinja", "{msg}");
            }
            Ok(String::new())
        },
    );
    // dbt macros `return()` a value; here the value becomes the macro's output (text), which covers
    // the common use of returning SQL fragments.
    env.add_function("return", |v: Value| -> Value { v });
    env.add_function("fromjson", |s: String| -> Result<Value, Error> {
        let v: serde_json::Value = serde_json::from_str(&s)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}")))?;
        Ok(Value::from(minijinja::value::Serde(v)))
    });
}

/// `run_started_at`: renders as `YYYY-MM-DD HH:MM:SS.ffffff+00:00`; `strftime(fmt)` and `isoformat()`.
#[derive(Debug)]
struct RunStartedAt(DateTime<Utc>);

impl Object for RunStartedAt {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (fmt,): (String,) = from_args(args)?;
                Ok(Value::from(self.0.format(&fmt).to_string()))
            }
            "isoformat" => Ok(Value::from(self.0.to_rfc3339())),
            "timestamp" => Ok(Value::from(self.0.timestamp() as f64)),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M:%S%.6f+00:00"))
    }
}

/// `adapter`: `quote(name)` and `dispatch(macro)` (resolving `sluice__x`, `default__x`, then `x`).
#[derive(Debug)]
struct Adapter;

impl Object for Adapter {
    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "quote" => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from(format!("\"{}\"", name.replace('"', "\"\""))))
            }
            "dispatch" => {
                let (name, _namespace): (String, Option<Value>) = from_args(args)?;
                for candidate in [
                    format!("sluice__{name}"),
                    format!("postgres__{name}"),
                    format!("default__{name}"),
                    name.clone(),
                ] {
                    if let Some(m) = state.lookup(&candidate).filter(|v| !v.is_undefined()) {
                        return Ok(m);
                    }
                }
                Err(Error::new(
                    ErrorKind::UndefinedError,
                    format!(
                        "adapter.dispatch: no macro `default__{name}` or `{name}` in the project's macros"
                    ),
                ))
            }
            other => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("adapter.{other}() is not supported (it needs a warehouse connection)"),
            )),
        }
    }
}

/// `exceptions.raise_compiler_error(msg)` and `exceptions.warn(msg)`.
#[derive(Debug)]
struct Exceptions;

impl Object for Exceptions {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (msg,): (String,) = from_args(args)?;
        match method {
            "raise_compiler_error" => Err(Error::new(ErrorKind::InvalidOperation, msg)),
            "warn" => {
                tracing::warn!(target: "sluice::jinja", "{msg}");
                Ok(Value::from(""))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}
