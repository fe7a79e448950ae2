//! `engine:` — where a model's SQL runs: in this process (`local`, the default) or on a distributed
//! DataFusion engine (`ballista`, an Apache DataFusion Ballista scheduler). Written in `sluice.yml`
//! (`defaults.engine`, or a target's `engine`) and per model (`config(engine=...)` or the model's
//! properties `config: {engine: ...}`); docs/distributed.md.
//!
//! ```yaml
//! defaults:
//!   engine: {kind: ballista, url: "df://scheduler:50050", connect_timeout: 10s}
//! ```
//!
//! `engine: local` (or `{kind: local}`) runs a model in the process even when the default is
//! distributed.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The kinds `engine.kind` accepts.
pub const ENGINE_KINDS: &[&str] = &["local", "ballista"];

/// The keys an `engine:` map accepts.
const ENGINE_KEYS: &[&str] = &["kind", "url", "connect_timeout"];

/// The port of a Ballista scheduler when the URL names none (Ballista's default).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// How long a model waits for the scheduler to accept a connection when `connect_timeout` is not
/// given.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a model's SELECT runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "Value")]
pub enum EngineSpec {
    /// In this process, on the engine over the lake (the default).
    #[default]
    Local,
    /// On a Ballista cluster: its scheduler plans and its executors run the plan; the result
    /// streams back to this process, which stages, checks and commits it.
    Ballista(BallistaSpec),
}

/// A Ballista scheduler to run SQL on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BallistaSpec {
    /// The URL as written (after `${ENV}` expansion): `df://host:port`.
    pub url: String,
    /// The scheduler's host.
    pub host: String,
    /// The scheduler's gRPC port.
    pub port: u16,
    /// How long to wait for the scheduler to accept a connection before the model fails.
    pub connect_timeout: Duration,
}

impl EngineSpec {
    /// Parses an `engine:` value: `local`, `ballista` (which then lacks its URL: an error), or a
    /// map `{kind, url, connect_timeout}`. `${ENV}` / `${ENV:-default}` expand in `url`. Every
    /// error names the key at fault and what was expected.
    pub fn from_value(value: &Value) -> Result<EngineSpec, String> {
        match value {
            Value::String(kind) => Self::from_parts(kind, None, None),
            Value::Object(map) => {
                if let Some(unknown) = map.keys().find(|k| !ENGINE_KEYS.contains(&k.as_str())) {
                    let hint = crate::graph::suggest(unknown, ENGINE_KEYS.iter().copied())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown key `{unknown}`{hint}; an engine takes {}",
                        ENGINE_KEYS.join(", ")
                    ));
                }
                let text = |key: &str| -> Result<Option<&str>, String> {
                    match map.get(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(s)) => Ok(Some(s.as_str())),
                        Some(other) => Err(format!("`{key}`: expected text, found {other}")),
                    }
                };
                let Some(kind) = text("kind")? else {
                    return Err(format!(
                        "`kind` is missing; expected one of {}",
                        ENGINE_KINDS.join(", ")
                    ));
                };
                Self::from_parts(kind, text("url")?, text("connect_timeout")?)
            }
            other => Err(format!(
                "expected `local`, or a map such as {{kind: ballista, url: \"df://host:50050\"}}, found {other}"
            )),
        }
    }

    fn from_parts(
        kind: &str,
        url: Option<&str>,
        connect_timeout: Option<&str>,
    ) -> Result<EngineSpec, String> {
        match kind {
            "local" => {
                if url.is_some() || connect_timeout.is_some() {
                    return Err(
                        "`kind: local` takes no `url` or `connect_timeout` (it runs in this process)"
                            .into(),
                    );
                }
                Ok(EngineSpec::Local)
            }
            "ballista" => {
                let Some(url) = url else {
                    return Err(
                        "`kind: ballista` needs `url: df://host:port` (the Ballista scheduler)"
                            .into(),
                    );
                };
                let connect_timeout = match connect_timeout {
                    None => DEFAULT_CONNECT_TIMEOUT,
                    Some(t) => crate::duration::parse_duration(t)
                        .map_err(|e| format!("`connect_timeout`: {e}"))?,
                };
                if connect_timeout.is_zero() {
                    return Err("`connect_timeout` must be longer than 0s".into());
                }
                let url = crate::env::expand_env(url, std::path::Path::new("engine.url"))
                    .map_err(|e| e.to_string())?;
                let (host, port) = parse_scheduler_url(&url)?;
                Ok(EngineSpec::Ballista(BallistaSpec {
                    url,
                    host,
                    port,
                    connect_timeout,
                }))
            }
            other => {
                let hint = crate::graph::suggest(other, ENGINE_KINDS.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                Err(format!(
                    "engine kind `{other}` is not supported{hint}; expected one of {}",
                    ENGINE_KINDS.join(", ")
                ))
            }
        }
    }

    /// Whether the SQL runs in this process.
    pub fn is_local(&self) -> bool {
        matches!(self, EngineSpec::Local)
    }
}

impl TryFrom<Value> for EngineSpec {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        EngineSpec::from_value(&value)
    }
}

/// `df://host[:port]` → (host, port); the port defaults to [`DEFAULT_SCHEDULER_PORT`].
fn parse_scheduler_url(url: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("`url`: `{url}` {why}; expected df://host:port");
    let Some(rest) = url.strip_prefix("df://") else {
        return Err(bad("is not a Ballista URL"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(bad("names no host"));
    }
    if authority.contains(['/', '?', '#', '@']) {
        return Err(bad("has a path, query or user part"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 address without a port (`[::1]`) has colons inside its brackets.
        Some((host, port)) if !port.ends_with(']') => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("has an invalid port"))?;
            (host, port)
        }
        _ => (authority, DEFAULT_SCHEDULER_PORT),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("names no host"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ballista(v: Value) -> BallistaSpec {
        match EngineSpec::from_value(&v) {
            Ok(EngineSpec::Ballista(b)) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn local_is_the_default_and_can_be_written() {
        assert_eq!(EngineSpec::default(), EngineSpec::Local);
        assert_eq!(
            EngineSpec::from_value(&json!("local")).unwrap(),
            EngineSpec::Local
        );
        assert_eq!(
            EngineSpec::from_value(&json!({"kind": "local"})).unwrap(),
            EngineSpec::Local
        );
    }

    #[test]
    fn a_ballista_engine_has_a_host_a_port_and_a_timeout() {
        let b = ballista(json!({"kind": "ballista", "url": "df://sched.internal:50055"}));
        assert_eq!((b.host.as_str(), b.port), ("sched.internal", 50055));
        assert_eq!(b.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let b =
            ballista(json!({"kind": "ballista", "url": "df://10.0.0.7", "connect_timeout": "3s"}));
        assert_eq!((b.host.as_str(), b.port), ("10.0.0.7", 50050));
        assert_eq!(b.connect_timeout, Duration::from_secs(3));
        let b = ballista(json!({"kind": "ballista", "url": "df://[::1]:7000/"}));
        assert_eq!((b.host.as_str(), b.port), ("::1", 7000));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let cases = [
            (json!("ballista"), "needs `url"),
            (
                json!({"kind": "balista", "url": "df://h"}),
                "did you mean `ballista`",
            ),
            (
                json!({"kind": "ballista", "url": "http://h:1"}),
                "not a Ballista URL",
            ),
            (
                json!({"kind": "ballista", "url": "df://h:99999"}),
                "invalid port",
            ),
            (json!({"kind": "ballista", "url": "df://"}), "names no host"),
            (json!({"kind": "ballista", "url": "df://h/x"}), "path"),
            (
                json!({"kind": "ballista", "url": "df://h", "connect_timout": "1s"}),
                "did you mean `connect_timeout`",
            ),
            (
                json!({"kind": "ballista", "url": "df://h", "connect_timeout": "soon"}),
                "connect_timeout",
            ),
            (
                json!({"kind": "ballista", "url": "df://h", "connect_timeout": "0s"}),
                "longer than 0s",
            ),
            (json!({"kind": "local", "url": "df://h"}), "takes no `url`"),
            (json!({"url": "df://h"}), "`kind` is missing"),
            (json!(3), "expected `local`"),
        ];
        for (value, expected) in cases {
            let e = EngineSpec::from_value(&value).unwrap_err();
            assert!(e.contains(expected), "{value}: {e}");
        }
    }

    #[test]
    fn the_url_expands_environment_variables() {
        let b = ballista(
            json!({"kind": "ballista", "url": "df://${SLUICE_TEST_NO_SUCH_VAR:-fallback}:1"}),
        );
        assert_eq!((b.host.as_str(), b.port), ("fallback", 1));
        let e = EngineSpec::from_value(
            &json!({"kind": "ballista", "url": "df://${SLUICE_TEST_NO_SUCH_VAR}"}),
        )
        .unwrap_err();
        assert!(e.contains("SLUICE_TEST_NO_SUCH_VAR"), "{e}");
    }
}
