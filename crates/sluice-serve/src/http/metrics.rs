//! `GET /metrics`: the platform's state in the Prometheus text format (the HTTP request counts come
//! from [`crate::counters`]).
//!
//! The text is written by hand: five metric families do not justify a metrics registry, and the state
//! gauges are read from the graph and the state database at scrape time, so they are never stale.
//!
//! ```text
//! sluice_build_info{version="0.1.0"} 1
//! sluice_assets{layer="gold"} 4
//! sluice_runs_total{status="success"} 12
//! sluice_checks{status="fail"} 1
//! sluice_http_requests_total{route="/api/assets/{name}/rows",status="200"} 57
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::ApiError;

/// `GET /metrics`.
pub async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let text = render(&s)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// The exposition text.
pub fn render(s: &AppState) -> Result<String, ApiError> {
    let mut out = String::new();
    family(
        &mut out,
        "sluice_build_info",
        "gauge",
        "Version of the running sluice binary.",
        [(vec![("version", env!("CARGO_PKG_VERSION").to_string())], 1)],
    );

    let mut assets: BTreeMap<String, u64> = ["bronze", "silver", "gold"]
        .into_iter()
        .map(|l| (l.to_string(), 0))
        .collect();
    for name in s.compiled.graph.nodes() {
        let layer = match s.compiled.models.get(name) {
            Some(m) => m.layer.as_str().to_string(),
            // Exports are nodes, not tables of a layer.
            None if matches!(
                s.compiled.node_id(name),
                Some(sluice_core::NodeId::Export(_))
            ) =>
            {
                continue;
            }
            None => "bronze".to_string(),
        };
        *assets.entry(layer).or_insert(0) += 1;
    }
    family(
        &mut out,
        "sluice_assets",
        "gauge",
        "Assets (source tables and models) in the project, by layer.",
        assets
            .into_iter()
            .map(|(layer, n)| (vec![("layer", layer)], n)),
    );

    let mut runs = counts([
        "success",
        "partial",
        "failed",
        "running",
        "cancelled",
        "abandoned",
    ]);
    // Every run, newest first; a count query on the state store would spare loading the rows.
    for r in s.state.runs(i64::MAX as usize)? {
        *runs.entry(r.status).or_insert(0) += 1;
    }
    family(
        &mut out,
        "sluice_runs_total",
        "counter",
        "Runs recorded in the state database, by status.",
        runs.into_iter().map(|(st, n)| (vec![("status", st)], n)),
    );

    let mut checks = counts(["pass", "warn", "fail"]);
    for c in s.state.latest_checks()? {
        *checks.entry(c.status).or_insert(0) += 1;
    }
    family(
        &mut out,
        "sluice_checks",
        "gauge",
        "Checks by the status of their latest result.",
        checks.into_iter().map(|(st, n)| (vec![("status", st)], n)),
    );

    family(
        &mut out,
        "sluice_http_requests_total",
        "counter",
        "HTTP requests served since start, by route template and status.",
        s.metrics
            .snapshot()
            .into_iter()
            .map(|(route, status, n)| (vec![("route", route), ("status", status.to_string())], n)),
    );
    Ok(out)
}

fn counts<const N: usize>(known: [&str; N]) -> BTreeMap<String, u64> {
    known.into_iter().map(|k| (k.to_string(), 0)).collect()
}

/// Writes one metric family: `# HELP`, `# TYPE` and its samples.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// Escapes a label value (backslash, double quote, newline) as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_type_and_escaped_labels() {
        let mut out = String::new();
        family(
            &mut out,
            "x_total",
            "counter",
            "Things.",
            [(vec![("route", "a\"b\\c\nd".to_string())], 3)],
        );
        assert_eq!(
            out,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{route=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }
}
