//! `sluice serve`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::open_for_serving;
use super::scheduler::{self, SchedulerFlags, Stop};

/// Serves the HTTP API and (unless `no_pg`) the PostgreSQL wire protocol until Ctrl-C / SIGTERM.
pub async fn serve(
    dir: &Path,
    http: Option<String>,
    pg: Option<String>,
    no_pg: bool,
    flags: SchedulerFlags,
) -> Result<ExitCode> {
    let ws = open_for_serving(dir).await?;
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
    let limits = super::serve_limits(&ws.compiled)?;
    // Runs whose process died (SIGKILL) become `abandoned` now, also with --no-scheduler.
    if let Err(e) = ws.state.reap_abandoned_runs() {
        tracing::warn!(error = %e, "cannot look for abandoned runs");
    }
    let scheduler = scheduler::prepare(&ws, flags)?;
    let alerts = super::alerts::Watch::new(&ws, scheduler.as_ref());
    if let Some(n) = sluice_serve::server::raise_open_file_limit() {
        tracing::info!(open_files = n, "open-file limit");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let hosts = sluice_serve::server::AllowedHosts::new(
        Some(local),
        &ws.compiled.project.config.serve.allowed_hosts,
    );
    let app_state = sluice_serve::AppState::with_limits(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        limits.clone(),
    );
    let pg = match pg {
        Some(pg_addr) => Some(
            sluice_serve::pg::PgServer::bind_with(
                &ws.engine,
                pg_addr,
                app_state.queries.clone(),
                &limits,
            )
            .await?,
        ),
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
    let queries = app_state.queries.clone();
    let app = sluice_serve::router(app_state);
    scheduler::announce(scheduler.as_ref())?;
    let stop = Stop::on(shutdown_signal());
    let work = async {
        tokio::join!(
            async {
                let r = sluice_serve::server::serve_http(
                    listener,
                    app,
                    &limits,
                    Some(hosts),
                    stop.wait(),
                )
                .await;
                // Whatever outlived the grace period is cut off with its connection; say so to its
                // clients rather than leave the work running.
                queries.cancel_all();
                stop.trigger();
                r
            },
            scheduler::run(scheduler, &stop),
            alerts.run(&stop),
        )
    };
    // In-flight runs get the grace period too (plus the HTTP drain's); a run still going after it is
    // left to its atomic commits: what it did not commit never becomes visible, and the next start
    // marks it abandoned so it can be retried.
    let deadline = async {
        stop.wait().await;
        tokio::time::sleep(limits.shutdown_grace.saturating_mul(2)).await;
    };
    let (served, scheduled, ()) = tokio::select! {
        done = work => done,
        () = deadline => {
            tracing::warn!(grace = ?limits.shutdown_grace, "in-flight work did not finish within the grace period; stopping anyway");
            say!("Stopped (in-flight work cut off after the grace period)");
            return Ok(());
        }
    };
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
