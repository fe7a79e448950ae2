//! `maintenance:` in `sluice.yml`: when and how lake tables are compacted, Z-ordered, checkpointed,
//! vacuumed, and (bronze) expired. See docs/maintenance.md.
//!
//! ```yaml
//! maintenance:
//!   bronze:
//!     after_commits: 20          # compact once 20 commits landed since the last compaction
//!     after_small_files: 50      # ... or once 50 files are below small_file_size
//!     vacuum_retention: 7d
//!     retention: {days: 90, action: move, cold_location: /mnt/cold/lake}
//!   gold:
//!     after_commits: 5
//!     schedule: "0 3 * * *"     # ... and every night at 03:00 UTC, in `sluice serve`
//!   assets:
//!     fct_orders: {zorder_by: [customer_id, order_date], bloom_filter_columns: [order_id]}
//! ```
//!
//! A policy per layer, and per asset (by its name in the graph) over its layer's, key by key.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{ConfigError, Position};
use crate::yaml::{Node, Value};

/// Size compaction aims at, by default.
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 128 * 1024 * 1024;
/// Files below this count as small, by default.
pub const DEFAULT_SMALL_FILE_SIZE: u64 = 32 * 1024 * 1024;
/// VACUUM retention and its minimum, by default (Delta's `deletedFileRetentionDuration`).
pub const DEFAULT_VACUUM_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Commits between two checkpoints, by default.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 10;
/// The column bronze rows are aged by for retention.
pub const BRONZE_DATE_COLUMN: &str = "_ingest_date";

/// `maintenance:` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// The policy of bronze tables (ingested sources).
    #[serde(default)]
    pub bronze: Option<MaintenancePolicy>,
    /// The policy of silver models.
    #[serde(default)]
    pub silver: Option<MaintenancePolicy>,
    /// The policy of gold models.
    #[serde(default)]
    pub gold: Option<MaintenancePolicy>,
    /// Policies of single assets by name (a model, or a source table as `source.table`), over
    /// their layer's policy key by key.
    #[serde(default)]
    pub assets: BTreeMap<String, MaintenancePolicy>,
}

/// One maintenance policy: every key optional (unset: the layer's, then the default).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaintenancePolicy {
    /// Maintain automatically (after a run publishes) once this many commits landed since the last
    /// compaction.
    pub after_commits: Option<u64>,
    /// Maintain automatically once this many files are below `small_file_size`.
    pub after_small_files: Option<u64>,
    /// Maintain on a schedule, whatever the triggers above say: a cron expression (UTC), `@daily`,
    /// `every 6h`… (the forms of a source's `schedule:`), run by `sluice serve`'s scheduler.
    pub schedule: Option<String>,
    /// Files below this size are small (default `32MiB`).
    pub small_file_size: Option<String>,
    /// Size compaction aims at (default `128MiB`).
    pub target_file_size: Option<String>,
    /// Z-order each partition on these columns when compacting.
    pub zorder_by: Option<Vec<String>>,
    /// Write Parquet bloom filters on these columns (every write, and compaction).
    pub bloom_filter_columns: Option<Vec<String>>,
    /// Write a Delta checkpoint once this many commits followed the last one (default 10).
    pub checkpoint_interval: Option<u64>,
    /// VACUUM deletes files removed longer ago than this (default `7d`).
    pub vacuum_retention: Option<String>,
    /// The shortest `vacuum_retention` accepted (default `7d`); `sluice maintain` refuses less.
    pub min_vacuum_retention: Option<String>,
    /// Bronze only: delete, or move to a cold lake, partitions older than some days.
    pub retention: Option<RetentionConfig>,
}

/// `retention:` of a bronze policy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Partitions whose ingestion date is more than this many days ago expire.
    pub days: u32,
    /// `delete` (default) or `move` (to `cold_location`, then delete).
    #[serde(default)]
    pub action: RetentionAction,
    /// The cold lake (a folder or `file://` URL, relative to the project) for `action: move`.
    #[serde(default)]
    pub cold_location: Option<String>,
}

/// What happens to expired partitions.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RetentionAction {
    /// Deleted (the files go at the next VACUUM past its retention).
    #[default]
    Delete,
    /// Copied to the cold lake, then deleted.
    Move,
}

/// A policy with every default applied and every value parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPolicy {
    /// See [`MaintenancePolicy::after_commits`].
    pub after_commits: Option<u64>,
    /// See [`MaintenancePolicy::after_small_files`].
    pub after_small_files: Option<u64>,
    /// See [`MaintenancePolicy::schedule`] (as written; the scheduler parses it).
    pub schedule: Option<String>,
    /// Bytes.
    pub small_file_size: u64,
    /// Bytes.
    pub target_file_size: u64,
    /// Z-order columns.
    pub zorder_by: Vec<String>,
    /// Bloom filter columns.
    pub bloom_filter_columns: Vec<String>,
    /// Commits between checkpoints.
    pub checkpoint_interval: u64,
    /// VACUUM retention.
    pub vacuum_retention: Duration,
    /// Its minimum.
    pub min_vacuum_retention: Duration,
    /// Bronze retention.
    pub retention: Option<RetentionConfig>,
}

impl ResolvedPolicy {
    /// Whether the policy maintains tables on its own after runs (`after_commits`,
    /// `after_small_files`); a `schedule` maintains them in `sluice serve` besides.
    pub fn is_automatic(&self) -> bool {
        self.after_commits.is_some() || self.after_small_files.is_some()
    }
}

impl MaintenancePolicy {
    /// `self`, with the keys it leaves unset taken from `base`.
    fn over(&self, base: &MaintenancePolicy) -> MaintenancePolicy {
        MaintenancePolicy {
            after_commits: self.after_commits.or(base.after_commits),
            after_small_files: self.after_small_files.or(base.after_small_files),
            schedule: self.schedule.clone().or(base.schedule.clone()),
            small_file_size: self
                .small_file_size
                .clone()
                .or(base.small_file_size.clone()),
            target_file_size: self
                .target_file_size
                .clone()
                .or(base.target_file_size.clone()),
            zorder_by: self.zorder_by.clone().or(base.zorder_by.clone()),
            bloom_filter_columns: self
                .bloom_filter_columns
                .clone()
                .or(base.bloom_filter_columns.clone()),
            checkpoint_interval: self.checkpoint_interval.or(base.checkpoint_interval),
            vacuum_retention: self
                .vacuum_retention
                .clone()
                .or(base.vacuum_retention.clone()),
            min_vacuum_retention: self
                .min_vacuum_retention
                .clone()
                .or(base.min_vacuum_retention.clone()),
            retention: self.retention.clone().or(base.retention.clone()),
        }
    }

    /// Defaults applied and values parsed (already validated by [`validate`]; a value that does
    /// not parse falls back to its default).
    fn resolve(&self) -> ResolvedPolicy {
        let size = |text: &Option<String>, default| {
            text.as_deref()
                .and_then(|t| crate::size::parse_size(t).ok())
                .unwrap_or(default)
        };
        let duration = |text: &Option<String>| {
            text.as_deref()
                .and_then(|t| crate::duration::parse_duration(t).ok())
                .unwrap_or(DEFAULT_VACUUM_RETENTION)
        };
        ResolvedPolicy {
            after_commits: self.after_commits,
            after_small_files: self.after_small_files,
            schedule: self
                .schedule
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            small_file_size: size(&self.small_file_size, DEFAULT_SMALL_FILE_SIZE),
            target_file_size: size(&self.target_file_size, DEFAULT_TARGET_FILE_SIZE),
            zorder_by: self.zorder_by.clone().unwrap_or_default(),
            bloom_filter_columns: self.bloom_filter_columns.clone().unwrap_or_default(),
            checkpoint_interval: self
                .checkpoint_interval
                .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL),
            vacuum_retention: duration(&self.vacuum_retention),
            min_vacuum_retention: duration(&self.min_vacuum_retention),
            retention: self.retention.clone(),
        }
    }
}

impl MaintenanceConfig {
    /// The policy of `asset` in `layer` (`bronze`, `silver` or `gold`).
    pub fn resolve(&self, layer: &str, asset: &str) -> ResolvedPolicy {
        let layer_policy = match layer {
            "bronze" => self.bronze.clone(),
            "silver" => self.silver.clone(),
            "gold" => self.gold.clone(),
            _ => None,
        }
        .unwrap_or_default();
        let mut policy = match self.assets.get(asset) {
            Some(own) => own.over(&layer_policy),
            None => layer_policy,
        };
        // Retention is a bronze matter: models are rebuilt from bronze, never aged out.
        if layer != "bronze" {
            policy.retention = None;
        }
        policy.resolve()
    }
}

/// Checks the values of `maintenance:` in the parsed `sluice.yml` (`doc`), each problem at its line.
pub fn validate(path: &std::path::Path, doc: &Node, errors: &mut Vec<ConfigError>) {
    let Some(root) = doc.get("maintenance") else {
        return;
    };
    let mut at = |pos: Position, field: String, message: String| {
        errors.push(ConfigError::At {
            path: path.to_path_buf(),
            position: pos,
            field,
            message,
        });
    };
    let mut policies: Vec<(String, &Node, bool)> = ["bronze", "silver", "gold"]
        .into_iter()
        .filter_map(|layer| {
            root.get(layer)
                .map(|n| (layer.to_string(), n, layer == "bronze"))
        })
        .collect();
    if let Some(Node {
        value: Value::Map(entries),
        ..
    }) = root.get("assets")
    {
        for e in entries {
            policies.push((format!("assets.{}", e.key), &e.node, true));
        }
    }
    for (name, node, retention_allowed) in policies {
        let field = |key: &str| format!("maintenance.{name}.{key}");
        for key in ["small_file_size", "target_file_size"] {
            if let Some(n) = node.get(key)
                && let Some(text) = n.as_str()
                && let Err(message) = crate::size::parse_size(text)
            {
                at(n.pos, field(key), message);
            }
        }
        let mut durations = BTreeMap::new();
        for key in ["vacuum_retention", "min_vacuum_retention"] {
            if let Some(n) = node.get(key)
                && let Some(text) = n.as_str()
            {
                match crate::duration::parse_duration(text) {
                    Ok(d) => {
                        durations.insert(key, (d, n.pos, text.to_string()));
                    }
                    Err(message) => at(n.pos, field(key), message),
                }
            }
        }
        if let Some((retention, pos, text)) = durations.get("vacuum_retention") {
            let (minimum, min_text) = durations
                .get("min_vacuum_retention")
                .map(|(d, _, t)| (*d, t.clone()))
                .unwrap_or((DEFAULT_VACUUM_RETENTION, "7d (the default)".to_string()));
            if *retention < minimum {
                at(
                    *pos,
                    field("vacuum_retention"),
                    format!(
                        "{text} is shorter than min_vacuum_retention {min_text}: VACUUM would delete \
                         files that readers of retained versions need; raise it, or lower \
                         min_vacuum_retention"
                    ),
                );
            }
        }
        if let Some(n) = node.get("schedule")
            && n.as_str().is_none_or(|text| text.trim().is_empty())
        {
            at(
                n.pos,
                field("schedule"),
                "expected a schedule: a cron expression (`0 3 * * *`, UTC), `@daily` or `every 6h`"
                    .into(),
            );
        }
        if let Some(n) = node.get("checkpoint_interval")
            && matches!(n.value, Value::UInt(0))
        {
            at(
                n.pos,
                field("checkpoint_interval"),
                "must be at least 1".into(),
            );
        }
        if let Some(r) = node.get("retention") {
            if !retention_allowed {
                at(
                    r.pos,
                    field("retention"),
                    "retention applies to bronze tables only (models are rebuilt from bronze)"
                        .into(),
                );
            }
            let is_move = r.get("action").and_then(Node::as_str) == Some("move");
            if is_move && r.get("cold_location").is_none() {
                at(
                    r.pos,
                    field("retention"),
                    "`action: move` needs a `cold_location` (the lake old partitions move to)"
                        .into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        let path = std::path::Path::new("sluice.yml");
        match crate::config::load_project_config(path, text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn layers_and_assets_resolve_key_by_key() {
        let text = "name: p\nmaintenance:\n  bronze:\n    after_commits: 20\n    vacuum_retention: 14d\n    retention: {days: 30}\n  gold:\n    after_small_files: 5\n    target_file_size: 64MiB\n    schedule: '0 3 * * *'\n  assets:\n    fct: {zorder_by: [a, b], after_commits: 3}\n    dim: {schedule: '@hourly'}\n";
        let config =
            crate::config::load_project_config(std::path::Path::new("sluice.yml"), text).unwrap();
        let m = &config.maintenance;
        let bronze = m.resolve("bronze", "shop.orders");
        assert_eq!(bronze.after_commits, Some(20));
        assert_eq!(bronze.vacuum_retention, Duration::from_secs(14 * 86_400));
        assert_eq!(bronze.retention.as_ref().map(|r| r.days), Some(30));
        let fct = m.resolve("gold", "fct");
        assert_eq!(fct.after_commits, Some(3));
        assert_eq!(fct.after_small_files, Some(5));
        assert_eq!(fct.target_file_size, 64 * 1024 * 1024);
        assert_eq!(fct.zorder_by, vec!["a", "b"]);
        assert_eq!(fct.vacuum_retention, DEFAULT_VACUUM_RETENTION);
        assert_eq!(
            fct.schedule.as_deref(),
            Some("0 3 * * *"),
            "the layer's schedule"
        );
        assert_eq!(
            m.resolve("gold", "dim").schedule.as_deref(),
            Some("@hourly")
        );
        assert_eq!(bronze.schedule, None);
        let silver = m.resolve("silver", "stg");
        assert!(!silver.is_automatic());
        assert_eq!(silver.checkpoint_interval, DEFAULT_CHECKPOINT_INTERVAL);
    }

    #[test]
    fn bad_values_are_reported_at_their_line() {
        let errs = errors(
            "name: p\nmaintenance:\n  bronze:\n    vacuum_retention: 1d\n    small_file_size: lots\n  silver:\n    retention: {days: 3}\n    schedule: ''\n  gold:\n    retention: {days: 3, action: move}\n    after_comits: 3\n",
        );
        let all = errs.join("\n");
        assert!(
            all.contains("sluice.yml:4:")
                && all.contains("1d is shorter than min_vacuum_retention 7d"),
            "{all}"
        );
        assert!(
            all.contains("sluice.yml:5:") && all.contains("maintenance.bronze.small_file_size"),
            "{all}"
        );
        assert!(
            all.contains("retention applies to bronze tables only"),
            "{all}"
        );
        assert!(all.contains("needs a `cold_location`"), "{all}");
        assert!(all.contains("after_comits"), "{all}");
        assert!(
            all.contains("sluice.yml:8:") && all.contains("maintenance.silver.schedule"),
            "{all}"
        );
        // A lower minimum makes a shorter retention acceptable.
        assert!(
            errors("name: p\nmaintenance:\n  bronze: {vacuum_retention: 1d, min_vacuum_retention: 12h}\n")
                .is_empty()
        );
    }
}
