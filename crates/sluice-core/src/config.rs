//! `sluice.yml`: the project file.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The contents of `sluice.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project name, shown in the UI and recorded in run history.
    pub name: String,
    /// Where the lake lives: a folder (relative to the project), a `file://` URL, or an object-store
    /// URL: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` or
    /// `abfss://container@account.dfs.core.windows.net/prefix` (`${ENV}` allowed; see
    /// docs/object-storage.md).
    #[serde(default = "default_lake")]
    pub lake: String,
    /// How to reach an object-store lake: endpoint, region, addressing, plain HTTP; credentials only
    /// as `${ENV}` references (see [`crate::lake_options`]).
    #[serde(default)]
    pub lake_options: crate::lake_options::LakeOptions,
    /// State database: a SQLite file path relative to the project (default `.sluice/state.db`), or
    /// a `postgres://user@host:port/db[?schema=name]` URL (`${ENV}` allowed); see
    /// [`crate::state_location`].
    #[serde(default = "default_state")]
    pub state: String,
    /// Listening addresses of `sluice serve`.
    #[serde(default)]
    pub serve: ServeConfig,
    /// Project variables, readable in models as `var('name')`.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Defaults for every node.
    #[serde(default)]
    pub defaults: Defaults,
    /// Optional free-text description.
    #[serde(default)]
    pub description: Option<String>,
    /// Alert channels by owner name (`default`: owners without one); see docs/alerts.md.
    #[serde(default)]
    pub owners: BTreeMap<String, crate::alerts::AlertChannel>,
    /// The target used when `--target` is not given (dbt's profile `target:`); none: the top-level
    /// `lake`, `state` and connections as written.
    #[serde(default)]
    pub target: Option<String>,
    /// Named environments (`dev`, `prod`, …): each may override the lake, the state database, the
    /// connection of any source, and vars. `sluice --target prod run` picks one.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    /// The SQL dialect models are written in (`duckdb`, `snowflake`, `bigquery`, `databricks`,
    /// `postgres`; default: DataFusion's own): models then compute what that warehouse would
    /// (docs/coming-from-dbt.md). A dbt project takes it from its profile.
    #[serde(default)]
    pub dialect: Option<crate::yaml::Spanned<String>>,
    /// Table maintenance (compaction, Z-order, bloom filters, checkpoints, VACUUM, bronze
    /// retention) per layer and per asset; see [`crate::maintenance`] and docs/maintenance.md.
    #[serde(default)]
    pub maintenance: crate::maintenance::MaintenanceConfig,
    /// Where the PII key comes from (`key_file:` or `key: "${ENV}"`; default `$SLUICE_PII_KEY`); see
    /// [`crate::pii`].
    #[serde(default)]
    pub pii: crate::pii::PiiConfig,
    /// The PII key, resolved by [`ProjectConfig::resolve_target`] (`None`: none configured).
    #[serde(skip)]
    pub pii_key: Option<crate::pii::PiiKey>,
}

/// One entry of `targets:` in `sluice.yml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The lake of this target (`${ENV}` allowed).
    #[serde(default)]
    pub lake: Option<String>,
    /// The `lake_options` of this target (replace the project's whole).
    #[serde(default)]
    pub lake_options: Option<crate::lake_options::LakeOptions>,
    /// The state database of this target (`${ENV}` allowed).
    #[serde(default)]
    pub state: Option<String>,
    /// Connection strings by source name (`${ENV}` allowed, as in the source file); each replaces the
    /// `connection:` of `sources/<name>.yml`.
    #[serde(default)]
    pub connections: BTreeMap<String, String>,
    /// Vars of this target (over the project's `vars:`; `--vars` still wins).
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Where this target's models run (replaces `defaults.engine`); see [`crate::engine_spec`].
    #[serde(default)]
    pub engine: Option<crate::engine_spec::EngineSpec>,
}

impl ProjectConfig {
    /// Applies the target `name` (or `target:` when `name` is `None`) and expands `${ENV}` /
    /// `${ENV:-default}` in `lake:` and `state:`. Returns the connection overrides by source name and
    /// the name of the target applied (also set as the var `sluice_target`, which `target.name` reads).
    /// `path` is `sluice.yml`, for errors.
    pub fn resolve_target(
        &mut self,
        name: Option<&str>,
        path: &std::path::Path,
    ) -> Result<(BTreeMap<String, String>, Option<String>), crate::error::ConfigError> {
        let mut connections = BTreeMap::new();
        let mut state_field = "state".to_string();
        let chosen = name.map(str::to_string).or_else(|| self.target.clone());
        if let Some(t) = &chosen {
            let Some(target) = self.targets.get(t).cloned() else {
                let known = self.targets.keys().map(String::as_str);
                let hint = crate::graph::suggest(t, known)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(crate::error::ConfigError::Invalid {
                    path: path.to_path_buf(),
                    field: "targets".into(),
                    message: format!(
                        "no target `{t}`{hint}; defined: {}",
                        if self.targets.is_empty() {
                            "none".to_string()
                        } else {
                            self.targets.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                });
            };
            if let Some(lake) = target.lake {
                self.lake = lake;
            }
            if let Some(options) = target.lake_options {
                self.lake_options = options;
            }
            if let Some(state) = target.state {
                self.state = state;
                state_field = format!("targets.{t}.state");
            }
            self.vars.extend(target.vars);
            if let Some(engine) = target.engine {
                self.defaults.engine = Some(engine);
            }
            self.vars
                .entry("sluice_target".into())
                .or_insert_with(|| serde_json::Value::String(t.clone()));
            connections = target.connections;
        }
        self.lake = crate::env::expand_env(&self.lake, path)?;
        self.lake_options.expand_env(path)?;
        self.state = crate::env::expand_env(&self.state, path)?;
        self.pii_key = self.pii.resolve(path)?;
        // Told apart now, so a malformed URL is reported against the field that holds it.
        let root = path.parent().unwrap_or(std::path::Path::new(""));
        crate::state_location::StateLocation::parse(&self.state, root).map_err(|message| {
            crate::error::ConfigError::Invalid {
                path: path.to_path_buf(),
                field: state_field,
                message,
            }
        })?;
        Ok((connections, chosen))
    }
}

fn default_lake() -> String {
    "lake".to_string()
}

fn default_state() -> String {
    ".sluice/state.db".to_string()
}

/// Addresses for `sluice serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// HTTP API and UI address.
    #[serde(default = "default_http")]
    pub http: String,
    /// PostgreSQL wire protocol address (a port that does not clash with a local PostgreSQL).
    #[serde(default = "default_pg")]
    pub pg: String,
    /// Arrow Flight SQL address (gRPC; ADBC and the Flight SQL JDBC driver connect here).
    #[serde(default = "default_flight")]
    pub flight: String,
    /// Limits that keep one client from exhausting the server (docs/operations.md).
    #[serde(default)]
    pub limits: ServeLimitsConfig,
    /// Host names the HTTP API answers to besides loopback names and the bound address (a request
    /// with any other `Host` header gets 421; this defeats DNS rebinding).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// When the listeners require authentication: `auto` (as soon as the state database holds a
    /// token) or `required` (always, even before the first token). docs/security.md.
    #[serde(default)]
    pub auth: ServeAuth,
    /// TLS certificate and key for both listeners (`--tls-cert` / `--tls-key` override it).
    #[serde(default)]
    pub tls: Option<ServeTlsConfig>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            http: default_http(),
            pg: default_pg(),
            flight: default_flight(),
            limits: ServeLimitsConfig::default(),
            allowed_hosts: Vec::new(),
            auth: ServeAuth::default(),
            tls: None,
        }
    }
}

/// `serve.auth`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServeAuth {
    /// Authentication is on as soon as the state database holds a token.
    #[default]
    Auto,
    /// Authentication is always on.
    Required,
}

/// `serve.tls`: PEM files, relative to the project folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeTlsConfig {
    /// The certificate chain (server certificate first).
    pub cert: String,
    /// The private key.
    pub key: String,
}

/// `serve.limits` as written: every field optional, durations and sizes as text (`30s`, `512MiB`).
/// `sluice-serve` resolves them, with defaults, into its `Limits`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeLimitsConfig {
    /// Longest time one query may run (HTTP and wire; a client's `SET statement_timeout` may only
    /// lower it).
    pub statement_timeout: Option<String>,
    /// Queries running at once over HTTP and the wire; more wait up to `queue_timeout`.
    pub max_concurrent_queries: Option<usize>,
    /// How long a query waits for a slot before the client gets "too busy" (503 / SQLSTATE 53300).
    pub queue_timeout: Option<String>,
    /// Memory all queries and model builds of the process may hold together.
    pub memory_limit: Option<String>,
    /// Memory one query may hold (within `memory_limit`).
    pub query_memory_limit: Option<String>,
    /// Longest SQL text accepted.
    pub max_sql_bytes: Option<String>,
    /// Deepest expression nesting accepted.
    pub max_expr_depth: Option<usize>,
    /// Open HTTP connections; past it new ones get 503.
    pub max_connections: Option<usize>,
    /// Open PostgreSQL wire sessions; past it new ones get SQLSTATE 53300.
    pub pg_max_connections: Option<usize>,
    /// Time a client has to send a request's headers (also how long an idle keep-alive connection
    /// stays open).
    pub header_read_timeout: Option<String>,
    /// A wire session idle this long (no query running) is closed.
    pub pg_idle_timeout: Option<String>,
    /// Largest request body.
    pub max_request_bytes: Option<String>,
    /// Largest request line plus headers.
    pub max_header_bytes: Option<String>,
    /// How long `SIGTERM` waits for in-flight requests before cancelling them.
    pub shutdown_grace: Option<String>,
}

fn default_http() -> String {
    "127.0.0.1:8080".to_string()
}

fn default_pg() -> String {
    "127.0.0.1:5433".to_string()
}

fn default_flight() -> String {
    "127.0.0.1:50051".to_string()
}

/// Defaults applied to every node unless the node overrides them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How many times a node is retried after a transient failure.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry delay; doubles each attempt (with jitter), capped at 30 s.
    #[serde(default = "default_backoff")]
    pub retry_backoff: String,
    /// How many nodes run at once.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Owner for assets that do not name one.
    #[serde(default)]
    pub owner: Option<String>,
    /// Longest delay between two retries (the exponential backoff stops growing there).
    #[serde(default = "default_max_backoff")]
    pub max_retry_backoff: String,
    /// Longest time one attempt of a node may take (none: no limit).
    #[serde(default)]
    pub timeout: Option<String>,
    /// `fail_fast` (downstream of a failure is skipped) or `fail_open` (downstream runs on the last
    /// good data, marked as built from stale input).
    #[serde(default)]
    pub on_failure: Option<String>,
    /// Memory the query engine may hold for every query and model build of a command together
    /// (`2GB`, `512MiB`): sorts, joins and aggregations spill to disk past it (none: unbounded,
    /// except under `sluice serve`, which takes `serve.limits.memory_limit`). docs/memory.md.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// Where models run their SQL: `local` (none: in this process) or a distributed engine,
    /// `{kind: ballista, url: df://host:50050}` (docs/distributed.md). A model's own `engine`
    /// config wins.
    #[serde(default)]
    pub engine: Option<crate::engine_spec::EngineSpec>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            retries: default_retries(),
            retry_backoff: default_backoff(),
            threads: default_threads(),
            owner: None,
            max_retry_backoff: default_max_backoff(),
            timeout: None,
            on_failure: None,
            memory_limit: None,
            engine: None,
        }
    }
}

/// The smallest `defaults.memory_limit` accepted: below it a sort or a join cannot hold even the
/// buffers it needs before it can spill.
pub const MIN_MEMORY_LIMIT: u64 = 16 << 20;

/// Parses `defaults.memory_limit`: a size of at least [`MIN_MEMORY_LIMIT`].
pub fn parse_memory_limit(text: &str) -> Result<u64, String> {
    let bytes = crate::size::parse_size(text)?;
    if bytes < MIN_MEMORY_LIMIT {
        return Err(format!(
            "`{text}` is too small: the engine needs at least 16MiB to sort and join (spilling past it)"
        ));
    }
    Ok(bytes)
}

fn default_max_backoff() -> String {
    "30s".to_string()
}

fn default_retries() -> u32 {
    2
}

fn default_backoff() -> String {
    "200ms".to_string()
}

fn default_threads() -> usize {
    4
}

/// Parses `sluice.yml` once, with every problem at its line and column: the shape (unknown keys with
/// "did you mean", wrong types), then the values later stages parse (durations, sizes, the failure
/// mode), so that a bad value is reported by `validate` rather than by the command that uses it.
pub fn load_project_config(
    path: &std::path::Path,
    text: &str,
) -> Result<ProjectConfig, Vec<crate::ConfigError>> {
    use crate::yaml::{from_node, parse_doc};
    let doc = parse_doc(path, text).map_err(|e| vec![e])?;
    // The shape and the values are checked independently, so that both kinds of problem show.
    let (config, mut errors) = match from_node::<ProjectConfig>(path, &doc, Vec::new(), &[]) {
        Ok(c) => (Some(c), Vec::new()),
        Err(e) => (None, e),
    };
    let mut check = |keys: &[&str], parse: &dyn Fn(&str) -> Result<(), String>| {
        let mut node = Some(&doc);
        for k in keys {
            node = node.and_then(|n| n.get(k));
        }
        if let Some(n) = node
            && let Some(text) = n.as_str()
            && let Err(message) = parse(text)
        {
            errors.push(crate::ConfigError::At {
                path: path.to_path_buf(),
                position: n.pos,
                field: keys.join("."),
                message,
            });
        }
    };
    let duration = |t: &str| crate::duration::parse_duration(t).map(|_| ());
    let size = |t: &str| crate::size::parse_size(t).map(|_| ());
    for key in ["retry_backoff", "max_retry_backoff", "timeout"] {
        check(&["defaults", key], &duration);
    }
    check(&["defaults", "on_failure"], &|t| check_on_failure(t));
    check(&["defaults", "memory_limit"], &|t| {
        parse_memory_limit(t).map(|_| ())
    });
    // Credentials in clear are refused where they are written, top level and per target.
    let targets: Vec<String> = match doc.get("targets").map(|t| &t.value) {
        Some(crate::yaml::Value::Map(entries)) => entries.iter().map(|e| e.key.clone()).collect(),
        _ => Vec::new(),
    };
    check(&["lake"], &crate::lake_options::check_lake_url);
    for target in &targets {
        check(
            &["targets", target, "lake"],
            &crate::lake_options::check_lake_url,
        );
    }
    for key in crate::lake_options::CREDENTIAL_KEYS {
        let credential = |t: &str| crate::lake_options::check_credential(key, t);
        check(&["lake_options", key], &credential);
        for target in &targets {
            check(&["targets", target, "lake_options", key], &credential);
        }
    }
    for key in [
        "statement_timeout",
        "queue_timeout",
        "header_read_timeout",
        "pg_idle_timeout",
        "shutdown_grace",
    ] {
        check(&["serve", "limits", key], &duration);
    }
    for key in [
        "memory_limit",
        "query_memory_limit",
        "max_sql_bytes",
        "max_request_bytes",
        "max_header_bytes",
    ] {
        check(&["serve", "limits", key], &size);
    }
    crate::maintenance::validate(path, &doc, &mut errors);
    match config {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
    }
}

/// The failure modes a node may have (`defaults.on_failure`, a source's `policy.on_failure`, a
/// model's `config(on_failure=…)`).
pub const FAILURE_MODES: &[&str] = &["fail_fast", "fail_open"];

/// Checks a failure mode, with "did you mean".
pub fn check_on_failure(text: &str) -> Result<(), String> {
    if FAILURE_MODES.contains(&text) {
        return Ok(());
    }
    let hint = crate::graph::suggest(text, FAILURE_MODES.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Err(format!(
        "expected `fail_fast` or `fail_open`, found `{text}`{hint}"
    ))
}

#[cfg(test)]
mod target_tests {
    use super::*;

    #[test]
    fn a_bad_memory_limit_is_reported_at_its_line() {
        let path = std::path::Path::new("sluice.yml");
        let c = load_project_config(path, "name: p\ndefaults:\n  memory_limit: 2GB\n").unwrap();
        assert_eq!(c.defaults.memory_limit.as_deref(), Some("2GB"));
        for (value, expected) in [("1MB", "too small"), ("lots", "invalid size")] {
            let text = format!("name: p\ndefaults:\n  threads: 2\n  memory_limit: {value}\n");
            let errors = load_project_config(path, &text).unwrap_err();
            let shown = errors[0].to_string();
            assert!(shown.starts_with("sluice.yml:4:"), "{shown}");
            assert!(shown.contains("defaults.memory_limit"), "{shown}");
            assert!(shown.contains(expected), "{shown}");
        }
    }

    fn config(text: &str) -> ProjectConfig {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn the_engine_is_read_from_defaults_and_targets() {
        use crate::engine_spec::EngineSpec;
        let path = std::path::Path::new("sluice.yml");
        let c = load_project_config(path, "name: p\n").unwrap();
        assert_eq!(c.defaults.engine, None);
        let text = "name: p\ndefaults:\n  engine: {kind: ballista, url: 'df://h:7'}\n\
                    targets:\n  dev:\n    engine: local\n";
        let mut c = load_project_config(path, text).unwrap();
        let Some(EngineSpec::Ballista(b)) = &c.defaults.engine else {
            panic!("{:?}", c.defaults.engine);
        };
        assert_eq!((b.host.as_str(), b.port), ("h", 7));
        c.resolve_target(Some("dev"), path).unwrap();
        assert_eq!(c.defaults.engine, Some(EngineSpec::Local));
        let errors = load_project_config(
            path,
            "name: p\ndefaults:\n  engine: {kind: ballista, url: 'http://h'}\n",
        )
        .unwrap_err();
        let shown = errors[0].to_string();
        assert!(shown.contains("sluice.yml:3"), "{shown}");
        assert!(shown.contains("not a Ballista URL"), "{shown}");
    }

    #[test]
    fn a_target_overrides_lake_state_connections_and_vars() {
        let mut c = config(
            "name: p\nlake: lake\nvars: {a: 1}\ntarget: dev\ntargets:\n  dev: {}\n  prod:\n    lake: s3://bucket/lake\n    state: /var/lib/p/state.db\n    connections: {shop: 'postgres://prod'}\n    vars: {a: 2}\n",
        );
        let p = std::path::Path::new("sluice.yml");
        let (conns, name) = c.clone().resolve_target(None, p).unwrap();
        assert_eq!(name.as_deref(), Some("dev"));
        assert!(conns.is_empty());
        let (conns, _) = c.resolve_target(Some("prod"), p).unwrap();
        assert_eq!(c.lake, "s3://bucket/lake");
        assert_eq!(c.state, "/var/lib/p/state.db");
        assert_eq!(conns["shop"], "postgres://prod");
        assert_eq!(c.vars["a"], 2);
        assert_eq!(c.vars["sluice_target"], "prod");
        let err = config("name: p\ntargets: {prod: {}}\n")
            .resolve_target(Some("prd"), p)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no target `prd` (did you mean `prod`?)"),
            "{err}"
        );
    }

    #[test]
    fn env_in_lake_and_state() {
        let mut c = config(
            "name: p\nlake: '${SLUICE_TEST_LAKE_UNSET:-lake-default}'\nstate: '${SLUICE_TEST_STATE_UNSET}'\n",
        );
        let err = c
            .clone()
            .resolve_target(None, std::path::Path::new("sluice.yml"))
            .unwrap_err();
        assert!(err.to_string().contains("SLUICE_TEST_STATE_UNSET"), "{err}");
        c.state = "s.db".into();
        c.resolve_target(None, std::path::Path::new("sluice.yml"))
            .unwrap();
        assert_eq!(c.lake, "lake-default");
    }

    #[test]
    fn a_malformed_state_url_names_its_field_and_hides_the_password() {
        let p = std::path::Path::new("/p/sluice.yml");
        let err = config("name: p\ntargets:\n  prod: {state: 'postgres://u:secret@h:99999/db'}\n")
            .resolve_target(Some("prod"), p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("targets.prod.state"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let mut c =
            config("name: p\nstate: 'postgresql://u@db/${SLUICE_TEST_STATE_DB_UNSET:-st}'\n");
        c.resolve_target(None, p).unwrap();
        assert_eq!(c.state, "postgresql://u@db/st");
    }

    #[test]
    fn lake_options_unknown_keys_and_clear_secrets_are_refused_at_their_line() {
        let p = std::path::Path::new("/p/sluice.yml");
        let text = "name: p\nlake: s3://b/l\nlake_options:\n  endpont: http://x\n  secret_access_key: hunter2\ntargets:\n  prod:\n    lake_options: {session_token: 'abc'}\n";
        let errors = load_project_config(p, text).unwrap_err();
        let all = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("endpont") && all.contains("endpoint"), "{all}");
        assert!(
            all.contains(":5:") && all.contains("lake_options.secret_access_key"),
            "{all}"
        );
        assert!(
            all.contains("targets.prod.lake_options.session_token"),
            "{all}"
        );
        assert!(!all.contains("hunter2") && !all.contains("abc"), "{all}");

        // Credentials in the lake URL itself, top level and per target.
        let text = "name: p\nlake: 's3://AKIAEXAMPLE:hunter2@b/l'\ntargets:\n  prod:\n    lake: s3://AKIAEXAMPLE@b/l\n";
        let errors = load_project_config(p, text).unwrap_err();
        let all = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains(":2:") && all.contains("field `lake`"), "{all}");
        assert!(all.contains("targets.prod.lake"), "{all}");
        assert!(
            !all.contains("hunter2") && !all.contains("AKIAEXAMPLE"),
            "{all}"
        );
    }

    #[test]
    fn lake_options_take_env_references_and_targets_replace_them() {
        let p = std::path::Path::new("/p/sluice.yml");
        let text = "name: p\nlake: s3://b/l\nlake_options:\n  endpoint: 'http://127.0.0.1:${SLUICE_TEST_S3_PORT_UNSET:-9000}'\n  path_style: true\n  allow_http: true\n  secret_access_key: '${SLUICE_TEST_S3_SECRET_UNSET}'\ntargets:\n  aws:\n    lake_options: {region: eu-west-1}\n";
        let c = load_project_config(p, text).unwrap();
        let mut dev = c.clone();
        // The secret's variable is unset: the error names it (never a value).
        let err = dev.resolve_target(None, p).unwrap_err().to_string();
        assert!(err.contains("SLUICE_TEST_S3_SECRET_UNSET"), "{err}");
        let mut aws = c;
        aws.resolve_target(Some("aws"), p).unwrap();
        assert_eq!(aws.lake_options.region.as_deref(), Some("eu-west-1"));
        assert_eq!(aws.lake_options.endpoint, None);
        assert_eq!(aws.lake_options.path_style, None);
    }
}
