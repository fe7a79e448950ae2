//! Sending one alert: the JSON body, the webhook POST (with retries and a timeout) and the command.
//!
//! A delivery never fails the caller: its [`Outcome`] is recorded with the incident and logged.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Channel, Route};
use crate::incidents::{AlertEvent, Claimed, IncidentKind};

/// The alert as sent: the webhook's JSON body and the command's stdin. `text` is what Slack, Teams
/// and Mattermost incoming webhooks display; the other fields are for machines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// One line for people.
    pub text: String,
    /// Project name.
    pub project: String,
    /// The asset.
    pub asset: String,
    /// Its owner.
    pub owner: Option<String>,
    /// `freshness` or `failure`.
    pub kind: IncidentKind,
    /// `open` (opened or escalated) or `resolved`.
    pub status: &'static str,
    /// `opened`, `escalated` or `resolved`.
    pub event: AlertEvent,
    /// `warn` or `error`.
    pub severity: String,
    /// Incident number (the same in the opening and the resolving alert).
    pub incident_id: i64,
    /// When the incident opened (RFC 3339).
    pub opened_at: String,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// What is (or was) wrong: the error, or the age of the data against the SLA.
    pub message: String,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// The last failing run (failures).
    pub run_id: Option<String>,
}

impl Alert {
    /// The alert announcing `claimed` in `project`.
    pub fn new(project: &str, claimed: &Claimed) -> Alert {
        let i = &claimed.incident;
        let owner = i
            .owner
            .as_deref()
            .map(|o| format!(", owner {o}"))
            .unwrap_or_default();
        let text = match (claimed.event, i.kind) {
            (AlertEvent::Opened, IncidentKind::Failure) => format!(
                "[{project}] FAILED {}: {} (incident #{}{owner})",
                i.asset, i.message, i.id
            ),
            (AlertEvent::Opened, IncidentKind::Freshness) => format!(
                "[{project}] STALE ({}) {}: {} (incident #{}{owner})",
                i.severity, i.asset, i.message, i.id
            ),
            (AlertEvent::Escalated, _) => format!(
                "[{project}] STILL STALE, now error: {}: {} (incident #{}{owner})",
                i.asset, i.message, i.id
            ),
            (AlertEvent::Resolved, kind) => format!(
                "[{project}] RESOLVED {} {}: {} (incident #{} opened {})",
                i.asset,
                kind.as_str(),
                i.resolution.as_deref().unwrap_or("recovered"),
                i.id,
                i.opened_at
            ),
        };
        Alert {
            text,
            project: project.to_string(),
            asset: i.asset.clone(),
            owner: i.owner.clone(),
            kind: i.kind,
            status: if claimed.event == AlertEvent::Resolved {
                "resolved"
            } else {
                "open"
            },
            event: claimed.event,
            severity: i.severity.clone(),
            incident_id: i.id,
            opened_at: i.opened_at.clone(),
            resolved_at: i.resolved_at.clone(),
            message: i.message.clone(),
            resolution: i.resolution.clone(),
            run_id: i.run_id.clone(),
        }
    }
}

/// How deliveries behave.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Per webhook request.
    pub timeout: Duration,
    /// Webhook attempts (connection errors, timeouts, 429 and 5xx are retried; other 4xx are not).
    pub attempts: u32,
    /// Delay before the second attempt; doubles after each.
    pub backoff: Duration,
    /// How long a command may run before it is killed.
    pub command_timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_secs(1),
            command_timeout: Duration::from_secs(30),
        }
    }
}

pub use crate::incidents::{DeliveryStatus, Outcome};

/// Sends `alert` along `route`; `root` is where commands run.
pub async fn deliver(
    client: &reqwest::Client,
    route: &Route,
    alert: &Alert,
    root: &Path,
    opts: &DeliveryOptions,
) -> Outcome {
    let (via, channel) = match route {
        Route::Nowhere => {
            return Outcome {
                status: DeliveryStatus::Skipped,
                route: None,
                channel: None,
                attempts: 0,
                error: Some(format!(
                    "no channel for owner `{}` and no `default` in sluice.yml `owners:`",
                    alert.owner.as_deref().unwrap_or("(none)")
                )),
            };
        }
        Route::Broken { via, reason } => {
            return Outcome {
                status: DeliveryStatus::Failed,
                route: Some(via.clone()),
                channel: None,
                attempts: 0,
                error: Some(format!("channel `owners.{via}` is unusable: {reason}")),
            };
        }
        Route::To { via, channel } => (via, channel),
    };
    let (attempts, result) = match channel {
        Channel::Webhook(url) => post(client, url, alert, opts).await,
        Channel::Command(cmd) => {
            let (cmd, alert, root, timeout) = (
                cmd.clone(),
                alert.clone(),
                root.to_path_buf(),
                opts.command_timeout,
            );
            let r = tokio::task::spawn_blocking(move || run_command(&cmd, &alert, &root, timeout))
                .await
                .unwrap_or_else(|e| Err(format!("command task failed: {e}")));
            (1, r)
        }
    };
    Outcome {
        status: if result.is_ok() {
            DeliveryStatus::Sent
        } else {
            DeliveryStatus::Failed
        },
        route: Some(via.clone()),
        channel: Some(channel.kind()),
        attempts,
        error: result.err(),
    }
}

/// POSTs the alert; returns the attempts made and the last error.
async fn post(
    client: &reqwest::Client,
    url: &str,
    alert: &Alert,
    opts: &DeliveryOptions,
) -> (u32, Result<(), String>) {
    let attempts = opts.attempts.max(1);
    let mut delay = opts.backoff;
    let mut last = String::new();
    for attempt in 1..=attempts {
        match client
            .post(url)
            .timeout(opts.timeout)
            .json(alert)
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => return (attempt, Ok(())),
            Ok(resp) => {
                let status = resp.status();
                last = format!("webhook answered HTTP {status}");
                if !(status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS) {
                    return (attempt, Err(last));
                }
            }
            // Without the URL: an incoming-webhook URL usually holds its secret token.
            Err(e) => last = format!("webhook request failed: {}", e.without_url()),
        }
        if attempt < attempts {
            tracing::debug!(attempt, error = %last, "webhook delivery failed; retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    (attempts, Err(last))
}

/// Runs `cmd` with `sh -c` in `root`, the alert as JSON on stdin and in `SLUICE_ALERT_*` variables.
fn run_command(cmd: &str, alert: &Alert, root: &Path, timeout: Duration) -> Result<(), String> {
    // One line of JSON, so that `cat >> alerts.jsonl` keeps a JSON-lines file.
    let mut body =
        serde_json::to_vec(alert).map_err(|e| format!("cannot encode the alert: {e}"))?;
    body.push(b'\n');
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(root)
        .env("SLUICE_ALERT_PROJECT", &alert.project)
        .env("SLUICE_ALERT_ASSET", &alert.asset)
        .env("SLUICE_ALERT_OWNER", alert.owner.as_deref().unwrap_or(""))
        .env("SLUICE_ALERT_KIND", alert.kind.as_str())
        .env("SLUICE_ALERT_STATUS", alert.status)
        .env("SLUICE_ALERT_EVENT", alert.event.as_str())
        .env("SLUICE_ALERT_SEVERITY", &alert.severity)
        .env("SLUICE_ALERT_INCIDENT", alert.incident_id.to_string())
        .env("SLUICE_ALERT_TEXT", &alert.text)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `sh -c {cmd}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input may exit first: a broken pipe is not a failure.
        let _ = stdin.write_all(&body);
    }
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let _ = s.read_to_string(&mut text);
        }
        text
    });
    // `None`: a timeout too long to represent never expires.
    let deadline = Instant::now().checked_add(timeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("command timed out after {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for the command: {e}")),
        }
    };
    let err = reader.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        let tail: String = err
            .trim()
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(format!("command exited with {status}: {tail}"))
    }
}
