//! Monitoring: freshness SLAs, ownership and alerts.
//!
//! Assets declare an `owner:` and a `freshness: {warn_after, error_after}` SLA; `sluice.yml` maps
//! owners to alert channels (`owners: {finance: {webhook: ...}, default: {command: ...}}`). The
//! [`Monitor`] turns what it sees into **incidents** — one per asset and kind (`freshness`,
//! `failure`) while the trouble lasts — and alerts the owner exactly once when an incident opens,
//! once if a freshness incident escalates from `warn` to `error`, and once when it resolves: no
//! storms, however often runs fail or sweeps look, and however many processes watch one state
//! database.
//!
//! - [`Monitor::after_run`]: a node that failed after its retries opens a failure incident; its next
//!   success resolves it. The CLI calls it after `sluice run` and after every scheduled run.
//! - [`Monitor::reconcile_failures`]: the same from each node's latest result in the run history,
//!   for runs this process did not see (`POST /api/runs`, another process); `sluice serve` sweeps it.
//! - [`Monitor::check_freshness`]: compares each SLA with the time the asset last wrote new data;
//!   `sluice serve` sweeps every 30 s, and `sluice run` once after its run.
//! - [`freshness_report`]: every asset's state and open incidents (`sluice status`, `/api/freshness`).
//!
//! Alerts are a JSON body with a Slack/Teams-compatible `text` field, POSTed to a webhook (retried on
//! connection errors, 429 and 5xx, with a timeout) or piped to a command. A failed delivery is logged
//! and recorded, never an error of the run. User guide: `docs/alerts.md`.
//!
//! Modules: [`config`] (owners, SLAs, channels, validation), [`freshness`] (evaluation),
//! [`incidents`] (the state tables and their transitions), [`deliver`] (webhook, command),
//! [`monitor`], [`report`].

pub mod config;
pub mod deliver;
pub mod error;
pub mod freshness;
pub mod incidents;
pub mod monitor;
pub mod report;

#[cfg(test)]
mod tests;

pub use config::{AlertConfig, Problems, validate};
pub use deliver::{Alert, DeliveryOptions, DeliveryStatus, Outcome};
pub use error::MonitorError;
pub use freshness::FreshnessState;
pub use incidents::{AlertEvent, Incident, IncidentKind, IncidentStore};
pub use monitor::{Delivered, Monitor};
pub use report::{AssetFreshness, freshness_report};
