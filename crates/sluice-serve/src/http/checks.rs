//! `GET /api/checks`: the latest result of every check, worst first, with its failing-row sample
//! (as the principal may read the checked table).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;

/// `GET /api/checks`: `{"summary": {"pass": n, "warn": n, "fail": n}, "checks": [...]}`; checks are
/// ordered fail, warn, pass, then by asset and name.
pub async fn checks(
    State(s): State<AppState>,
    principal: Option<axum::Extension<crate::auth::Principal>>,
) -> Result<Json<Value>, ApiError> {
    let p = principal.as_deref();
    let mut checks = s.state.latest_checks()?;
    // A check's failing-row sample holds rows of its table: only for those who may read it, with
    // the same columns and masks as a read (none under a row filter; [`crate::access::sample`]).
    checks.retain(|c| s.may_read_asset(p, &c.model));
    if let Some(view) = s.access.view(p) {
        for c in &mut checks {
            let access = match s.relation_of(&c.model) {
                Ok(relation) => {
                    let r = sluice_engine::TableReference::from(relation.as_str());
                    view.table(r.schema().unwrap_or("gold"), r.table())
                }
                // Not a table (a check of something else): its sample is not rows of a table.
                Err(_) => continue,
            };
            let sample = std::mem::take(&mut c.sample);
            c.sample = crate::access::sample::restrict_sample(&access, view.pii_key(), sample);
        }
    }
    checks.sort_by(|a, b| {
        (rank(&a.status), &a.model, &a.check_name).cmp(&(rank(&b.status), &b.model, &b.check_name))
    });
    let count = |status: &str| checks.iter().filter(|c| c.status == status).count();
    Ok(Json(json!({
        "summary": {"pass": count("pass"), "warn": count("warn"), "fail": count("fail")},
        "checks": checks,
    })))
}

fn rank(status: &str) -> u8 {
    match status {
        "fail" => 0,
        "warn" => 1,
        "pass" => 3,
        _ => 2,
    }
}
