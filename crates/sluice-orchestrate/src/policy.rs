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
use sluice_core::duration::parse_duration;
use sluice_core::error::Position;
use sluice_core::source::PolicyDecl;
use sluice_core::yaml::{HumanDuration, Spanned};
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
            other => Err(sluice_core::config::check_on_failure(other)
                .err()
                .unwrap_or_else(|| format!("`{other}` is not a failure mode"))),
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
#[error("{}{}: field `{field}`: {message}", file.display(), position.map(|p| format!(":{p}")).unwrap_or_default())]
pub struct PolicyProblem {
    /// The file that holds the setting.
    pub file: PathBuf,
    /// Where the value is written, when known.
    pub position: Option<Position>,
    /// The field, e.g. `policy.timeout` or `config.on_failure`.
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

/// Every problem found while reading the project's policies.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PolicyErrors(pub Vec<PolicyProblem>);

/// A setting as read: its value (or why it could not be read) and where it is written.
type Setting<T> = Option<(Result<T, String>, Option<Position>)>;

/// The settings one layer (defaults, a source's `policy:`, a model's config) overrides.
#[derive(Debug, Default)]
struct Overrides {
    retries: Option<u32>,
    retry_backoff: Setting<Duration>,
    max_retry_backoff: Setting<Duration>,
    timeout: Setting<Duration>,
    on_failure: Setting<String>,
}

/// A duration written as text (sluice.yml defaults, a model's config).
fn text_duration(text: &Option<String>) -> Setting<Duration> {
    text.as_ref().map(|t| (parse_duration(t), None))
}

/// A duration the project loader already parsed, with its position.
fn parsed_duration(d: &Option<Spanned<HumanDuration>>) -> Setting<Duration> {
    d.as_ref().map(|d| (Ok(d.value.0), d.position()))
}

impl Overrides {
    fn of_source(p: &PolicyDecl) -> Overrides {
        Overrides {
            retries: p.retries,
            retry_backoff: parsed_duration(&p.retry_backoff),
            max_retry_backoff: parsed_duration(&p.max_retry_backoff),
            timeout: parsed_duration(&p.timeout),
            on_failure: p
                .on_failure
                .as_ref()
                .map(|f| (Ok(f.value.clone()), f.position())),
        }
    }
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
        let defaults = Overrides {
            retries: None,
            retry_backoff: None,
            max_retry_backoff: text_duration(&Some(d.max_retry_backoff.clone())),
            timeout: text_duration(&d.timeout),
            on_failure: d.on_failure.clone().map(|f| (Ok(f), None)),
        };
        let default = overlay(&base, &defaults, &config_file, "defaults", &mut problems);
        let mut nodes = HashMap::new();
        for decl in &project.project.sources {
            if let Some(block) = &decl.policy {
                let block = Overrides::of_source(block);
                let policy = overlay(&default, &block, &decl.path, "policy", &mut problems);
                for table in &decl.tables {
                    nodes.insert(decl.asset_name(&table.name), policy.clone());
                }
            }
        }
        for (name, model) in &project.models {
            let c = &model.config;
            let decl = Overrides {
                retries: c.retries,
                retry_backoff: text_duration(&c.retry_backoff),
                max_retry_backoff: None,
                timeout: text_duration(&c.timeout),
                on_failure: c.on_failure.clone().map(|f| (Ok(f), None)),
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

fn overlay(
    base: &NodePolicy,
    decl: &Overrides,
    file: &Path,
    prefix: &str,
    problems: &mut Vec<PolicyProblem>,
) -> NodePolicy {
    let mut out = base.clone();
    let mut problem = |field: &str, position: Option<Position>, message: String| {
        problems.push(PolicyProblem {
            file: file.to_path_buf(),
            position,
            field: format!("{prefix}.{field}"),
            message,
        })
    };
    if let Some(r) = decl.retries {
        out.retries = r;
    }
    let mut read =
        |field: &str, setting: &Setting<Duration>| -> Option<(Duration, Option<Position>)> {
            match setting.as_ref()? {
                (Ok(d), pos) => Some((*d, *pos)),
                (Err(e), pos) => {
                    problem(field, *pos, e.clone());
                    None
                }
            }
        };
    if let Some((d, _)) = read("retry_backoff", &decl.retry_backoff) {
        out.retry_backoff = d;
    }
    if let Some((d, _)) = read("max_retry_backoff", &decl.max_retry_backoff) {
        out.max_retry_backoff = d;
    }
    let timeout = read("timeout", &decl.timeout);
    let on_failure = decl.on_failure.as_ref().map(|(text, pos)| {
        let parsed = match text {
            Ok(t) => OnFailure::parse(t),
            Err(e) => Err(e.clone()),
        };
        (parsed, *pos)
    });
    if let Some((d, pos)) = timeout {
        if d.is_zero() {
            problem(
                "timeout",
                pos,
                "expected a duration longer than zero, found `0`".into(),
            );
        } else {
            out.timeout = Some(d);
        }
    }
    match on_failure {
        Some((Ok(f), _)) => out.on_failure = f,
        Some((Err(m), pos)) => problem("on_failure", pos, m),
        None => {}
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

    fn text(t: &str) -> Setting<Duration> {
        text_duration(&Some(t.to_string()))
    }

    #[test]
    fn overlay_reads_every_field_and_names_bad_ones() {
        let mut problems = Vec::new();
        let decl = Overrides {
            retries: Some(5),
            retry_backoff: text("1s"),
            max_retry_backoff: text("1m"),
            timeout: text("10m"),
            on_failure: Some((Ok("fail_open".into()), None)),
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

        let bad = Overrides {
            timeout: text("soon"),
            on_failure: Some((Ok("fail_opn".into()), None)),
            ..Overrides::default()
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
            text[0].starts_with("models/gold/m.sql: field `config.timeout`:"),
            "{text:?}"
        );
        assert!(
            text[1].contains("found `fail_opn` (did you mean `fail_open`?)"),
            "{text:?}"
        );
    }

    #[test]
    fn out_of_range_backoff_is_a_problem_and_the_largest_does_not_overflow() {
        let mut problems = Vec::new();
        let decl = Overrides {
            retry_backoff: text("99999999999999999999d"),
            timeout: text("18446744073709551615s"),
            ..Overrides::default()
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
    fn a_source_policy_comes_parsed_with_positions() {
        let path = Path::new("sources/s.yml");
        // An unknown key or a bad duration stops at the loader, with its place.
        let errs = sluice_core::SourceDecl::parse(
            path,
            "kind: files\npolicy:\n  retries: 3\n  retry_delay: 1s\ntables: []\n",
        )
        .unwrap_err();
        assert!(
            errs[0].to_string().starts_with(
                "sources/s.yml:4:3: field `policy.retry_delay`: unknown field `retry_delay`"
            ),
            "{errs:?}"
        );
        let decl = sluice_core::SourceDecl::parse(
            path,
            "kind: files\npolicy: {retries: 3, timeout: 0s, on_failure: fail_slow}\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let block = Overrides::of_source(decl.policy.as_ref().unwrap());
        let p = overlay(
            &NodePolicy::default(),
            &block,
            path,
            "policy",
            &mut problems,
        );
        assert_eq!(p.retries, 3);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "sources/s.yml:2:31: field `policy.timeout`: expected a duration longer than zero, found `0`",
                "sources/s.yml:2:47: field `policy.on_failure`: expected `fail_fast` or `fail_open`, found `fail_slow`"
            ]
        );
    }
}
