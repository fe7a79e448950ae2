//! Freshness: how old an asset's newest data is, against its SLA.
//!
//! An asset's data is as new as its last successful run that wrote rows (`rows_out > 0` in the state
//! database): an ingestion that found nothing new, or an incremental model that added nothing, does
//! not make it fresher. A `table` model is rebuilt in full, so every successful rebuild counts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sluice_core::alerts::FreshnessSla;

/// An asset's freshness against its SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FreshnessState {
    /// Newer than `warn_after` (and `error_after`).
    Fresh,
    /// Older than `warn_after`.
    Warn,
    /// Older than `error_after`.
    Error,
    /// Never wrote data: nothing to measure yet (no alert; a failing build alerts on its own).
    NoData,
    /// The asset declares no SLA.
    NoSla,
}

impl FreshnessState {
    /// `fresh`, `warn`, `error`, `no_data`, `no_sla`.
    pub fn as_str(self) -> &'static str {
        match self {
            FreshnessState::Fresh => "fresh",
            FreshnessState::Warn => "warn",
            FreshnessState::Error => "error",
            FreshnessState::NoData => "no_data",
            FreshnessState::NoSla => "no_sla",
        }
    }

    /// Whether the SLA is breached.
    pub fn is_breach(self) -> bool {
        matches!(self, FreshnessState::Warn | FreshnessState::Error)
    }
}

/// The state of data last updated at `last_update`, seen at `now`. Exactly at a bound is still
/// within it: `warn_after: 26h` warns from 26 h and one moment.
pub fn evaluate(
    sla: &FreshnessSla,
    last_update: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> FreshnessState {
    let Some(last) = last_update else {
        return FreshnessState::NoData;
    };
    let age = (now - last).to_std().unwrap_or(Duration::ZERO);
    if sla.error_after.is_some_and(|e| age > e) {
        FreshnessState::Error
    } else if sla.warn_after.is_some_and(|w| age > w) {
        FreshnessState::Warn
    } else {
        FreshnessState::Fresh
    }
}

/// A duration the way project files write it, in its largest whole unit: `26h`, `2d`, `90m`, `45s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 || d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let (unit, size) = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
        .into_iter()
        .find(|(_, size)| secs.is_multiple_of(*size))
        .unwrap_or(("s", 1));
    format!("{}{unit}", secs / size)
}

/// An age for people: `42s`, `17m`, `3.5h`, `2.1d`.
pub fn format_age(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        format!("{:.0}m", s / 60.0)
    } else if s < 86_400.0 * 2.0 {
        format!("{:.1}h", s / 3600.0)
    } else {
        format!("{:.1}d", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sla(warn: Option<u64>, error: Option<u64>) -> FreshnessSla {
        FreshnessSla {
            warn_after: warn.map(|h| Duration::from_secs(h * 3600)),
            error_after: error.map(|h| Duration::from_secs(h * 3600)),
        }
    }

    #[test]
    fn grades_age_against_both_bounds() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let h = |n: i64| t0 + chrono::Duration::hours(n);
        let s = sla(Some(2), Some(6));
        assert_eq!(evaluate(&s, None, t0), FreshnessState::NoData);
        assert_eq!(evaluate(&s, Some(t0), h(1)), FreshnessState::Fresh);
        assert_eq!(
            evaluate(&s, Some(t0), h(2)),
            FreshnessState::Fresh,
            "at the bound"
        );
        assert_eq!(evaluate(&s, Some(t0), h(3)), FreshnessState::Warn);
        assert_eq!(evaluate(&s, Some(t0), h(7)), FreshnessState::Error);
        // Only an error bound: straight from fresh to error.
        assert_eq!(
            evaluate(&sla(None, Some(6)), Some(t0), h(5)),
            FreshnessState::Fresh
        );
        assert_eq!(
            evaluate(&sla(None, Some(6)), Some(t0), h(7)),
            FreshnessState::Error
        );
        // A clock behind the last update (another machine's) is not a breach.
        assert_eq!(evaluate(&s, Some(h(1)), t0), FreshnessState::Fresh);
    }

    #[test]
    fn formats_durations_like_project_files() {
        assert_eq!(format_duration(Duration::from_secs(26 * 3600)), "26h");
        assert_eq!(format_duration(Duration::from_secs(2 * 86_400)), "2d");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_age(Duration::from_secs(5400)), "1.5h");
        assert_eq!(format_age(Duration::from_secs(42)), "42s");
    }
}
