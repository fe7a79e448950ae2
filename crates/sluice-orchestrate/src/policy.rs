//! Failure policies: how often a node is retried, how long it may take, and what its failure does
//! to its downstream.
//!
//! A policy comes from, in order of precedence: the model's `config(...)` (or its properties
//! `config:`), the source file's `policy:` block, and `defaults:` in `sluice.yml`.
//!
//! ```yaml
//! # sluice.yml
//! defaults: {retries: 2, retry_backoff: 200ms, max_retry_backoff: 30s, timeout: 30m, on_failure: fail_fast}
//! # sources/shop_app.yml
//! policy: {retries: 5, retry_backoff: 1s, timeout: 10m, on_failure: fail_open}
//! ```
//!
//! Only transient errors (connection refused or reset, timeouts, locks, HTTP 429/5xx) are retried;
//! a SQL error or a failed check fails the same way every time and is not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::Deserialize;
use sluice_core::duration::parse_duration;
use sluice_transform::CompiledProject;

/// What a node's failure does to the nodes that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// The downstream is skipped (and marked stale); independent branches still run.
    #[default]
    FailFast,
    /// The downstream still runs, on the last good version of this node's data, and is marked as
    /// built from stale input.
    FailOpen,
}

impl OnFailure {
    /// `fail_fast` or `fail_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::FailFast => "fail_fast",
            OnFailure::FailOpen => "fail_open",
        }
    }

    fn parse(text: &str) -> Result<OnFailure, String> {
        match text {
            "fail_fast" => Ok(OnFailure::FailFast),
            "fail_open" => Ok(OnFailure::FailOpen),
            other => Err(format!(
                "`{other}` is not a failure mode; expected fail_fast or fail_open"
            )),
        }
    }
}

/// One node's retry, timeout and failure settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePolicy {
    /// Retries after a transient failure (attempts = retries + 1).
    pub retries: u32,
    /// Delay before the first retry; it doubles each retry, with jitter.
    pub retry_backoff: Duration,
    /// The delay stops growing here.
    pub max_retry_backoff: Duration,
    /// Longest time one attempt may take; a timed-out attempt is a transient failure.
    pub timeout: Option<Duration>,
    /// What the failure does downstream.
    pub on_failure: OnFailure,
}

impl Default for NodePolicy {
    fn default() -> Self {
        Self {
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            max_retry_backoff: Duration::from_secs(30),
            timeout: None,
            on_failure: OnFailure::FailFast,
        }
    }
}

impl NodePolicy {
    /// The delays between attempts: exponential from `retry_backoff`, capped at `max_retry_backoff`,
    /// with jitter, `retries` of them.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.retry_backoff)
            .with_max_delay(self.max_retry_backoff.max(self.retry_backoff))
            .with_max_times(self.retries as usize)
            .with_jitter()
            .build()
    }
}

/// A policy setting that could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {field}: {message}", file.display())]
pub struct PolicyProblem {
    /// The file that holds the setting.
    pub file: PathBuf,
    /// The field, e.g. `policy.timeout` or `config.on_failure`.
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

/// Every problem found while reading the project's policies.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PolicyErrors(pub Vec<PolicyProblem>);

/// The `policy:` block of a source file (and the shape of the defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDecl {
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    retry_backoff: Option<String>,
    #[serde(default)]
    max_retry_backoff: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    on_failure: Option<String>,
}

/// The policy of every node of a project.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    default: NodePolicy,
    nodes: HashMap<String, NodePolicy>,
}

impl Policies {
    /// Everything on `base` (tests and callers that set no policy).
    pub fn uniform(base: NodePolicy) -> Policies {
        Policies {
            default: base,
            nodes: HashMap::new(),
        }
    }

    /// Resolves every node's policy: `base` (the run's retries and backoff) overlaid with the rest of
    /// `sluice.yml` defaults, then each source file's `policy:` and each model's config.
    pub fn from_project(
        project: &CompiledProject,
        base: NodePolicy,
    ) -> Result<Policies, PolicyErrors> {
        let mut problems = Vec::new();
        let config_file = project.project.root.join("sluice.yml");
        let d = &project.project.config.defaults;
        let defaults = PolicyDecl {
            retries: None,
            retry_backoff: None,
            max_retry_backoff: Some(d.max_retry_backoff.clone()),
            timeout: d.timeout.clone(),
            on_failure: d.on_failure.clone(),
        };
        let default = overlay(&base, &defaults, &config_file, "defaults", &mut problems);
        let mut nodes = HashMap::new();
        for decl in &project.project.sources {
            let block = source_policy(&decl.text, &decl.path, &mut problems);
            if let Some(block) = block {
                let policy = overlay(&default, &block, &decl.path, "policy", &mut problems);
                for table in &decl.tables {
                    nodes.insert(decl.asset_name(&table.name), policy.clone());
                }
            }
        }
        for (name, model) in &project.models {
            let c = &model.config;
            let decl = PolicyDecl {
                retries: c.retries,
                retry_backoff: c.retry_backoff.clone(),
                max_retry_backoff: None,
                timeout: c.timeout.clone(),
                on_failure: c.on_failure.clone(),
            };
            let policy = overlay(&default, &decl, &model.path, "config", &mut problems);
            if policy != default {
                nodes.insert(name.clone(), policy);
            }
        }
        if problems.is_empty() {
            Ok(Policies { default, nodes })
        } else {
            Err(PolicyErrors(problems))
        }
    }

    /// The policy of `node`.
    pub fn get(&self, node: &str) -> &NodePolicy {
        self.nodes.get(node).unwrap_or(&self.default)
    }
}

fn source_policy(text: &str, path: &Path, problems: &mut Vec<PolicyProblem>) -> Option<PolicyDecl> {
    // The connector validates the rest of the file (with line numbers); only `policy:` is read here.
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    let block = doc.get("policy")?;
    match serde_yaml_ng::from_value::<PolicyDecl>(block.clone()) {
        Ok(p) => Some(p),
        Err(e) => {
            problems.push(PolicyProblem {
                file: path.to_path_buf(),
                field: "policy".into(),
                message: format!(
                    "{e} (expected retries, retry_backoff, max_retry_backoff, timeout, on_failure)"
                ),
            });
            None
        }
    }
}

fn overlay(
    base: &NodePolicy,
    decl: &PolicyDecl,
    file: &Path,
    prefix: &str,
    problems: &mut Vec<PolicyProblem>,
) -> NodePolicy {
    let mut out = base.clone();
    let mut problem = |field: &str, message: String| {
        problems.push(PolicyProblem {
            file: file.to_path_buf(),
            field: format!("{prefix}.{field}"),
            message,
        })
    };
    if let Some(r) = decl.retries {
        out.retries = r;
    }
    let mut duration = |field: &str, text: &Option<String>| -> Option<Duration> {
        let text = text.as_ref()?;
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                problem(field, e.to_string());
                None
            }
        }
    };
    if let Some(d) = duration("retry_backoff", &decl.retry_backoff) {
        out.retry_backoff = d;
    }
    if let Some(d) = duration("max_retry_backoff", &decl.max_retry_backoff) {
        out.max_retry_backoff = d;
    }
    if let Some(d) = duration("timeout", &decl.timeout) {
        if d.is_zero() {
            problem("timeout", "must be longer than zero".into());
        } else {
            out.timeout = Some(d);
        }
    }
    if let Some(text) = &decl.on_failure {
        match OnFailure::parse(text) {
            Ok(f) => out.on_failure = f,
            Err(m) => problem("on_failure", m),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stop_at_the_cap() {
        let p = NodePolicy {
            retries: 6,
            retry_backoff: Duration::from_millis(100),
            max_retry_backoff: Duration::from_millis(400),
            ..NodePolicy::default()
        };
        let d: Vec<Duration> = p.delays().collect();
        assert_eq!(d.len(), 6);
        // Jitter adds up to one more base delay on top of the exponential value.
        assert!(d[0] >= Duration::from_millis(100) && d[0] <= Duration::from_millis(200));
        assert!(d[2] >= Duration::from_millis(400));
        assert!(d.iter().all(|x| *x <= Duration::from_millis(800)), "{d:?}");
    }

    #[test]
    fn overlay_reads_every_field_and_names_bad_ones() {
        let mut problems = Vec::new();
        let decl = PolicyDecl {
            retries: Some(5),
            retry_backoff: Some("1s".into()),
            max_retry_backoff: Some("1m".into()),
            timeout: Some("10m".into()),
            on_failure: Some("fail_open".into()),
        };
        let p = overlay(
            &NodePolicy::default(),
            &decl,
            Path::new("sources/a.yml"),
            "policy",
            &mut problems,
        );
        assert!(problems.is_empty());
        assert_eq!(p.retries, 5);
        assert_eq!(p.retry_backoff, Duration::from_secs(1));
        assert_eq!(p.max_retry_backoff, Duration::from_secs(60));
        assert_eq!(p.timeout, Some(Duration::from_secs(600)));
        assert_eq!(p.on_failure, OnFailure::FailOpen);

        let bad = PolicyDecl {
            timeout: Some("soon".into()),
            on_failure: Some("fail_slow".into()),
            ..PolicyDecl::default()
        };
        overlay(
            &NodePolicy::default(),
            &bad,
            Path::new("models/gold/m.sql"),
            "config",
            &mut problems,
        );
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with("models/gold/m.sql: config.timeout:"),
            "{text:?}"
        );
        assert!(
            text[1].contains("`fail_slow` is not a failure mode"),
            "{text:?}"
        );
    }

    #[test]
    fn out_of_range_backoff_is_a_problem_and_the_largest_does_not_overflow() {
        let mut problems = Vec::new();
        let decl = PolicyDecl {
            retry_backoff: Some("99999999999999999999d".into()),
            timeout: Some("18446744073709551615s".into()),
            ..PolicyDecl::default()
        };
        let p = overlay(
            &NodePolicy::default(),
            &decl,
            Path::new("sluice.yml"),
            "defaults",
            &mut problems,
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].message.contains("at most 36500d"),
            "{problems:?}"
        );
        assert_eq!(p.retry_backoff, NodePolicy::default().retry_backoff);
        // The longest accepted backoff, doubled many times, saturates instead of panicking.
        let max = sluice_core::duration::MAX_DURATION;
        let p = NodePolicy {
            retries: 200,
            retry_backoff: max,
            max_retry_backoff: max,
            ..NodePolicy::default()
        };
        assert_eq!(p.delays().count(), 200);
        assert!(p.delays().all(|d| d <= max * 2));
    }

    #[test]
    fn a_source_policy_block_with_an_unknown_key_is_a_problem() {
        let mut problems = Vec::new();
        let text = "kind: files\npolicy:\n  retries: 3\n  retry_delay: 1s\ntables: []\n";
        assert!(source_policy(text, Path::new("sources/s.yml"), &mut problems).is_none());
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("retry_delay"),
            "{:?}",
            problems[0]
        );
        let ok = "kind: files\npolicy: {retries: 3, on_failure: fail_open}\n";
        let p = source_policy(ok, Path::new("sources/s.yml"), &mut problems).unwrap();
        assert_eq!(p.retries, Some(3));
    }
}
