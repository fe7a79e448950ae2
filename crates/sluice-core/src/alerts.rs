//! What project files say about alerting: freshness SLAs on assets and the owners' alert channels.
//!
//! ```yaml
//! # sluice.yml
//! owners:
//!   finance: {webhook: "${FINANCE_WEBHOOK}"}      # Slack/Teams-compatible incoming webhook
//!   data-platform: {command: "notify-send sluice"}  # JSON on stdin, SLUICE_ALERT_* variables
//!   default: {command: "cat >> .sluice/alerts.jsonl"}
//!
//! # models/gold/schema.yml
//! models:
//!   - name: daily_sales
//!     owner: finance
//!     freshness: {warn_after: 26h, error_after: 50h}
//! ```
//!
//! Parsing lives here so that every command reports a bad value with its file; evaluating SLAs and
//! sending alerts is `sluice-monitor`'s job.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::duration::parse_duration;

/// The `owners:` key whose channel receives the alerts of owners that have none of their own.
pub const DEFAULT_OWNER: &str = "default";

/// Where one owner's alerts go: an incoming webhook (JSON POST) or a shell command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertChannel {
    /// URL receiving a JSON POST with a `text` field (Slack, Teams, Mattermost, …); `${ENV}` allowed.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Run with `sh -c` in the project folder; the alert is on stdin (JSON) and in `SLUICE_ALERT_*`.
    #[serde(default)]
    pub command: Option<String>,
}

impl AlertChannel {
    /// Checks that exactly one of `webhook` and `command` is set.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.webhook, &self.command) {
            (Some(_), Some(_)) => Err(
                "set either `webhook` or `command`, not both (declare a second owner for a second channel)"
                    .into(),
            ),
            (None, None) => Err(
                "needs `webhook: <url>` or `command: <shell command>`".into(),
            ),
            _ => Ok(()),
        }
    }
}

/// A freshness SLA: how old an asset's newest data may get before its owner hears about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessSla {
    /// Older than this: `warn`.
    pub warn_after: Option<Duration>,
    /// Older than this: `error`.
    pub error_after: Option<Duration>,
}

impl FreshnessSla {
    /// Parses `{warn_after: 2h, error_after: 6h}`; each bound is a duration (`30m`, `26h`, `7d`) or
    /// dbt's `{count: 12, period: hour}`. At least one bound is required, and `warn_after` may not
    /// exceed `error_after`.
    pub fn from_json(value: &Value) -> Result<FreshnessSla, String> {
        let Value::Object(map) = value else {
            return Err(format!(
                "expected a map like `{{warn_after: 2h, error_after: 6h}}`, found {value}"
            ));
        };
        if let Some(k) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "warn_after" | "error_after"))
        {
            return Err(format!(
                "unknown field `{k}`, expected `warn_after` or `error_after` \
                 (add `column:` to check the newest value of a column instead)"
            ));
        }
        let warn_after = map.get("warn_after").map(bound).transpose()?.flatten();
        let error_after = map.get("error_after").map(bound).transpose()?.flatten();
        if warn_after.is_none() && error_after.is_none() {
            return Err("needs `warn_after` and/or `error_after` (e.g. `26h`)".into());
        }
        if let (Some(w), Some(e)) = (warn_after, error_after)
            && w > e
        {
            return Err("`warn_after` is longer than `error_after`".into());
        }
        Ok(FreshnessSla {
            warn_after,
            error_after,
        })
    }

    /// Parses a value from a YAML document (see [`FreshnessSla::from_json`]).
    pub fn from_yaml(value: &serde_yaml_ng::Value) -> Result<FreshnessSla, String> {
        let json = serde_json::to_value(value).map_err(|e| format!("not representable: {e}"))?;
        FreshnessSla::from_json(&json)
    }
}

fn bound(v: &Value) -> Result<Option<Duration>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_duration(s).map(Some),
        Value::Object(o) => {
            let count = o
                .get("count")
                .and_then(Value::as_f64)
                .ok_or("dbt-style bound needs a numeric `count`")?;
            let unit = match o.get("period").and_then(Value::as_str) {
                Some("minute") => 60.0,
                Some("hour") => 3600.0,
                Some("day") => 86400.0,
                other => {
                    return Err(format!(
                        "`period` must be minute, hour or day, found {other:?}"
                    ));
                }
            };
            crate::duration::duration_from_count(count, unit).map(Some)
        }
        other => Err(format!("expected a duration like `26h`, found {other}")),
    }
}

impl<'de> Deserialize<'de> for FreshnessSla {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        FreshnessSla::from_json(&v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_durations_and_dbt_bounds() {
        let s = FreshnessSla::from_json(&json!({"warn_after": "2h", "error_after": "6h"})).unwrap();
        assert_eq!(s.warn_after, Some(Duration::from_secs(7200)));
        assert_eq!(s.error_after, Some(Duration::from_secs(21600)));
        let s = FreshnessSla::from_json(&json!({"error_after": {"count": 1, "period": "day"}}))
            .unwrap();
        assert_eq!(
            (s.warn_after, s.error_after),
            (None, Some(Duration::from_secs(86400)))
        );
        // Used to panic in Duration::from_secs_f64.
        for bad in [
            json!({"error_after": {"count": 1e300, "period": "day"}}),
            json!({"error_after": "99999999999999999999d"}),
        ] {
            let e = FreshnessSla::from_json(&bad).unwrap_err();
            assert!(e.contains("100 years"), "{e}");
        }
    }

    #[test]
    fn rejects_bad_slas() {
        let err = |v| FreshnessSla::from_json(&v).unwrap_err();
        assert!(err(json!({})).contains("needs `warn_after`"));
        assert!(err(json!({"warn_after": "soon"})).contains("soon"));
        assert!(err(json!({"warn_after": "6h", "error_after": "2h"})).contains("longer"));
        assert!(err(json!({"warn": "6h"})).contains("unknown field `warn`"));
        assert!(err(json!("6h")).contains("expected a map"));
    }

    #[test]
    fn a_channel_is_a_webhook_or_a_command() {
        let c: AlertChannel = serde_yaml_ng::from_str("webhook: http://x\n").unwrap();
        assert!(c.validate().is_ok());
        assert!(
            AlertChannel::default()
                .validate()
                .unwrap_err()
                .contains("needs")
        );
        let both = AlertChannel {
            webhook: Some("http://x".into()),
            command: Some("true".into()),
        };
        assert!(both.validate().unwrap_err().contains("not both"));
        assert!(serde_yaml_ng::from_str::<AlertChannel>("email: a@b\n").is_err());
    }
}
