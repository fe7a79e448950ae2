//! `sluice demo`: generate ShopFlow's data, run its whole lifecycle, serve it.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use sluice_ingest::generator::{GeneratorConfig, generate};
use sluice_orchestrate::NodeStatus;

use super::shopflow_files::SHOPFLOW_FILES;
use super::{run, serve};

/// Writes the example project into `dir` (project files are refreshed; the lake and state are kept).
pub fn write_example(dir: &Path) -> Result<()> {
    for (rel, text) in SHOPFLOW_FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The demo.
pub async fn demo(
    dir: &Path,
    scale: f64,
    seed: u64,
    no_serve: bool,
    http: Option<String>,
    postgres: Option<super::demo_postgres::LiveSettings>,
) -> Result<ExitCode> {
    if !(scale > 0.0 && scale.is_finite()) {
        anyhow::bail!("--scale must be a positive number, got {scale}");
    }
    let started = Instant::now();
    write_example(dir)?;
    println!("ShopFlow project written to {}", dir.display());
    let report = generate(&GeneratorConfig { scale, seed }, &dir.join("data"))
        .context("generating ShopFlow data")?;
    println!(
        "Generated (scale {scale}, seed {seed}) in {:.2}s: {} customers, {} products, {} orders, {} order items, {} payments, {} events in {} files, {} CRM accounts",
        report.seconds,
        report.customers,
        report.products,
        report.orders,
        report.order_items,
        report.payments,
        report.events,
        report.event_files,
        report.crm_accounts
    );
    if let Some(pg) = &postgres {
        super::demo_postgres::prepare(dir, &pg.url).await?;
    }
    let ws = super::open_for_serving(dir).await?;
    let opts = run::options(&ws, "", "demo")?;
    let summary = run::execute(&ws, opts).await?;
    let built = summary.count(NodeStatus::Success);
    println!(
        "Demo finished in {:.1}s: {built} asset(s) built. Explore: sluice --project {} status | runs | query \"select * from gold.daily_sales_by_category limit 10\"",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    let failed = summary.count(NodeStatus::Failed) > 0;
    if no_serve {
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(pg) = postgres {
        super::demo_postgres::spawn_live_shop(pg.url, pg.rate, seed);
    }
    let addr = http.unwrap_or_else(|| ws.compiled.project.config.serve.http.clone());
    let pg = ws.compiled.project.config.serve.pg.clone();
    demo_token(&ws, &addr)?;
    let flight = ws.compiled.project.config.serve.flight.clone();
    serve::serve_workspace(ws, &addr, Some(&pg), Some(&flight)).await?;
    Ok(ExitCode::SUCCESS)
}

/// A demo served beyond loopback (`--http 0.0.0.0:8080` in a container) needs authentication
/// (docs/security.md): without a token yet, one is made for user `demo` and printed, so the demo
/// still starts with one command.
fn demo_token(ws: &super::Workspace, addr: &str) -> Result<()> {
    let exposed = addr
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| !a.ip().is_loopback());
    let open = sluice_serve::auth::mode(&ws.state, false).map_err(|e| anyhow::anyhow!("{e}"))?
        == sluice_serve::auth::AuthMode::Open;
    if exposed && open {
        let t = sluice_serve::auth::create_token(
            &ws.state,
            "demo",
            sluice_serve::auth::Role::Admin,
            None,
            chrono::Utc::now(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "Serving beyond loopback requires a token; made one for user `demo` (revoke it with \
             `sluice auth token revoke {}`): {}",
            t.record.id, t.secret
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_example_matches_folder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shopflow");
        for (rel, text) in SHOPFLOW_FILES {
            let on_disk = std::fs::read_to_string(root.join(rel)).unwrap();
            assert_eq!(&on_disk, text, "{rel} differs from the embedded copy");
        }
    }
}
