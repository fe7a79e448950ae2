//! `sluice serve`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::open;
use super::scheduler::{self, SchedulerFlags, Stop};

/// Serves the HTTP API and (unless `no_pg`) the PostgreSQL wire protocol until Ctrl-C / SIGTERM.
pub async fn serve(
    dir: &Path,
    http: Option<String>,
    pg: Option<String>,
    no_pg: bool,
    flags: SchedulerFlags,
) -> Result<ExitCode> {
    let ws = open(dir).await?;
    let addr = http.unwrap_or_else(|| ws.compiled.project.config.serve.http.clone());
    let pg = (!no_pg).then(|| pg.unwrap_or_else(|| ws.compiled.project.config.serve.pg.clone()));
    serve_workspace_with(ws, &addr, pg.as_deref(), &flags).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves an opened workspace: HTTP on `addr`, PostgreSQL on `pg` when given, and the scheduler.
pub async fn serve_workspace(ws: super::Workspace, addr: &str, pg: Option<&str>) -> Result<()> {
    serve_workspace_with(ws, addr, pg, &SchedulerFlags::default()).await
}

/// [`serve_workspace`] with explicit scheduler flags. The scheduler runs alongside the servers and
/// stops on the same signal, after letting its in-flight runs finish.
pub async fn serve_workspace_with(
    ws: super::Workspace,
    addr: &str,
    pg: Option<&str>,
    flags: &SchedulerFlags,
) -> Result<()> {
    // Runs whose process died (SIGKILL) become `abandoned` now, also with --no-scheduler.
    if let Err(e) = ws.state.reap_abandoned_runs() {
        tracing::warn!(error = %e, "cannot look for abandoned runs");
    }
    let scheduler = scheduler::prepare(&ws, flags)?;
    let alerts = super::alerts::Watch::new(&ws, scheduler.as_ref());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let pg = match pg {
        Some(pg_addr) => Some(sluice_serve::pg::PgServer::bind(&ws.engine, pg_addr).await?),
        None => None,
    };
    say!("Serving the Sluice API at http://{local}/  (Ctrl-C to stop)");
    say!("  try: curl http://{local}/api/assets");
    // Dropping the handle (an early return) stops the endpoint too.
    let pg = pg.map(|server| {
        let banner = format!(
            "PostgreSQL wire protocol at {} ({})",
            server.local_addr(),
            server.psql_command()
        );
        say!("{banner}");
        server.spawn()
    });
    let app = sluice_serve::router(sluice_serve::AppState::new(
        ws.compiled,
        ws.engine,
        ws.state,
    ));
    scheduler::announce(scheduler.as_ref())?;
    let stop = Stop::on(shutdown_signal());
    let (served, scheduled, ()) = tokio::join!(
        async {
            let r = sluice_serve::serve(listener, app, stop.wait()).await;
            stop.trigger();
            r
        },
        scheduler::run(scheduler, &stop),
        alerts.run(&stop),
    );
    served?;
    scheduled?;
    if let Some(pg) = pg {
        pg.stop().await?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
