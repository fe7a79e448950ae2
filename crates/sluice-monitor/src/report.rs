//! Every asset's freshness and open incidents, for `sluice status` and `GET /api/freshness`. Reading
//! it changes nothing: only [`crate::Monitor`] opens and resolves incidents.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sluice_orchestrate::StateStore;
use sluice_transform::CompiledProject;

use crate::config::{AlertConfig, Route};
use crate::error::MonitorError;
use crate::freshness::{FreshnessState, evaluate, format_duration};
use crate::incidents::{Incident, IncidentStore};

/// One asset's freshness, owner and open incidents.
#[derive(Debug, Clone, Serialize)]
pub struct AssetFreshness {
    /// Asset name.
    pub asset: String,
    /// `source` or `model`.
    pub kind: &'static str,
    /// Owner.
    pub owner: Option<String>,
    /// The `owners:` key whose channel gets its alerts (`default` when the owner has none);
    /// `None`: nobody is told.
    pub alert_route: Option<String>,
    /// When it last wrote new data (RFC 3339).
    pub last_updated: Option<String>,
    /// Seconds since then.
    pub age_seconds: Option<i64>,
    /// The SLA's warning bound (`26h`).
    pub warn_after: Option<String>,
    /// The SLA's error bound.
    pub error_after: Option<String>,
    /// `fresh`, `warn`, `error`, `no_data` or `no_sla`.
    pub state: FreshnessState,
    /// Open incidents (freshness and failure).
    pub open_incidents: Vec<Incident>,
}

/// The freshness of every source table and model at `now`, from the project's state database
/// `state`.
pub fn freshness_report(
    compiled: &CompiledProject,
    state: &StateStore,
    now: DateTime<Utc>,
) -> Result<Vec<AssetFreshness>, MonitorError> {
    let config = AlertConfig::from_project(compiled);
    let store = IncidentStore::new(state.backend().clone());
    let last = store.last_data_updates()?;
    let open = store.open_incidents()?;
    Ok(config
        .assets
        .values()
        .map(|a| {
            let updated = last.get(&a.name).copied();
            let state = match &a.sla {
                Some(sla) => evaluate(sla, updated, now),
                None => FreshnessState::NoSla,
            };
            let alert_route = match config.route(a.owner.as_deref()) {
                Route::To { via, .. } | Route::Broken { via, .. } => Some(via),
                Route::Nowhere => None,
            };
            AssetFreshness {
                asset: a.name.clone(),
                kind: a.kind.as_str(),
                owner: a.owner.clone(),
                alert_route,
                last_updated: updated.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                age_seconds: updated.map(|t| (now - t).num_seconds().max(0)),
                warn_after: a.sla.and_then(|s| s.warn_after).map(format_duration),
                error_after: a.sla.and_then(|s| s.error_after).map(format_duration),
                state,
                open_incidents: open.iter().filter(|i| i.asset == a.name).cloned().collect(),
            }
        })
        .collect())
}
