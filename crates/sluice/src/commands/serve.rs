//! `sluice serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use sluice_core::config::ServeAuth;
use sluice_serve::auth::AuthMode;

use super::open_for_serving;
use super::scheduler::{self, SchedulerFlags, Stop};
use crate::cli::ServeRole;

/// Where `sluice serve` listens: the flags, each falling back to sluice.yml's `serve` section.
#[derive(Debug, Clone, Default)]
pub struct Listen {
    /// `--http`.
    pub http: Option<String>,
    /// `--pg`.
    pub pg: Option<String>,
    /// `--no-pg`.
    pub no_pg: bool,
    /// `--flight`.
    pub flight: Option<String>,
    /// `--no-flight`.
    pub no_flight: bool,
}

/// Serves what `role` names until Ctrl-C / SIGTERM: the HTTP API, (unless `--no-pg`) the PostgreSQL
/// wire protocol, (unless `--no-flight`) Arrow Flight SQL and the scheduler for `all`; no scheduler
/// for `api`; only the scheduler and the health and readiness probes for `scheduler`.
pub async fn serve(
    dir: &Path,
    listen: Listen,
    role: ServeRole,
    flags: SchedulerFlags,
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<ExitCode> {
    let ws = open_for_serving(dir).await?;
    let config = &ws.compiled.project.config.serve;
    let addr = listen.http.unwrap_or_else(|| config.http.clone());
    let serves_queries = role != ServeRole::Scheduler;
    let pg =
        (serves_queries && !listen.no_pg).then(|| listen.pg.unwrap_or_else(|| config.pg.clone()));
    let flight = (serves_queries && !listen.no_flight)
        .then(|| listen.flight.unwrap_or_else(|| config.flight.clone()));
    let tls = tls.or_else(|| {
        let root = &ws.compiled.project.root;
        config
            .tls
            .as_ref()
            .map(|t| (root.join(&t.cert), root.join(&t.key)))
    });
    serve_workspace_as(
        ws,
        &addr,
        pg.as_deref(),
        flight.as_deref(),
        role,
        &flags,
        tls,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves an opened workspace: HTTP on `addr`, PostgreSQL on `pg` and Flight SQL on `flight` when
/// given, and the scheduler.
pub async fn serve_workspace(
    ws: super::Workspace,
    addr: &str,
    pg: Option<&str>,
    flight: Option<&str>,
) -> Result<()> {
    serve_workspace_as(
        ws,
        addr,
        pg,
        flight,
        ServeRole::All,
        &SchedulerFlags::default(),
        None,
    )
    .await
}

/// Whether authentication is on (docs/security.md), refusing to serve data on a non-loopback
/// address without it and warning about the open development mode on loopback.
fn check_exposure(
    ws: &super::Workspace,
    data_addrs: &[(&str, SocketAddr)],
    tls: bool,
) -> Result<AuthMode> {
    let required = ws.compiled.project.config.serve.auth == ServeAuth::Required;
    let mode = sluice_serve::auth::mode(&ws.state, required)
        .map_err(|e| anyhow!("cannot read the tokens of the state database: {e}"))?;
    let exposed: Vec<String> = data_addrs
        .iter()
        .filter(|(_, a)| !a.ip().is_loopback())
        .map(|(what, a)| format!("{what} on {a}"))
        .collect();
    match mode {
        AuthMode::Open if !exposed.is_empty() => bail!(
            "refusing to serve {} without authentication: anyone who can reach it could read \
             every table and start runs. Create a token with `sluice auth token create --user \
             NAME --role reader` (authentication is on as soon as one exists) or set `serve.auth: \
             required` in sluice.yml; or bind to 127.0.0.1 (--http, --pg) for local development",
            exposed.join(" and ")
        ),
        AuthMode::Open if data_addrs.is_empty() => {}
        AuthMode::Open => {
            tracing::warn!(
                "authentication is off: serving on loopback only, open to every local user \
                 (development mode)"
            );
        }
        AuthMode::Required => {
            if !tls && !exposed.is_empty() {
                tracing::warn!(
                    "serving {} without TLS: tokens and data cross the network in clear; use --tls-cert and --tls-key",
                    exposed.join(" and ")
                );
            }
            if ws.state.backend().token_count().unwrap_or(0) == 0 {
                tracing::warn!(
                    "serve.auth is required but no token exists: every request is refused until `sluice auth token create`"
                );
            }
        }
    }
    Ok(mode)
}

/// [`serve_workspace`] for one role, with explicit scheduler flags. The scheduler runs alongside
/// the servers and stops on the same signal, after letting its in-flight runs finish.
async fn serve_workspace_as(
    ws: super::Workspace,
    addr: &str,
    pg: Option<&str>,
    flight: Option<&str>,
    role: ServeRole,
    flags: &SchedulerFlags,
    tls: Option<(PathBuf, PathBuf)>,
) -> Result<()> {
    let tls = match tls {
        Some((cert, key)) => {
            Some(sluice_serve::tls::TlsFiles::load(&cert, &key).map_err(|e| anyhow!("{e}"))?)
        }
        None => None,
    };
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
    let mut app_state = sluice_serve::AppState::with_limits(
        ws.compiled.clone(),
        ws.engine.clone(),
        ws.state.clone(),
        limits.clone(),
    );
    app_state.queue_runs = flags.queue_runs;
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
    let flight = match flight {
        Some(flight_addr) => Some(
            sluice_serve::flight::FlightServer::bind_with(
                &ws.engine,
                flight_addr,
                app_state.queries.clone(),
                &limits,
            )
            .await?,
        ),
        None => None,
    };
    // The scheduler role's HTTP answers only the probes, which show no data.
    let mut data_addrs = Vec::new();
    if role != ServeRole::Scheduler {
        data_addrs.push(("the HTTP API", local));
    }
    if let Some(server) = &pg {
        data_addrs.push(("the PostgreSQL wire", server.local_addr()));
    }
    if let Some(server) = &flight {
        data_addrs.push(("Arrow Flight SQL", server.local_addr()));
    }
    let auth = check_exposure(&ws, &data_addrs, tls.is_some())?;
    app_state.auth = auth;
    // access.yml: grants, masks and row filters on every listener (docs/security.md).
    let access = sluice_serve::access::Access::new(
        ws.compiled.project.access.clone(),
        ws.compiled.project.config.pii_key.clone(),
        Some(sluice_serve::audit::Auditor::new(ws.state.clone())),
    );
    if access.configured() && auth == AuthMode::Open {
        tracing::warn!(
            "access.yml is not enforced while authentication is off: without a token there is no \
             user to apply it to"
        );
    }
    app_state.access = access.clone();
    let pg = match pg {
        Some(mut server) => {
            if auth == AuthMode::Required {
                server = server.with_auth(sluice_serve::auth::WireAuth {
                    state: ws.state.clone(),
                });
            }
            server = server.with_access(access.clone());
            if let Some(files) = &tls {
                server = server.with_tls(files.pg_acceptor().map_err(|e| anyhow!("{e}"))?);
            }
            Some(server)
        }
        None => None,
    };
    let flight = match flight {
        Some(mut server) => {
            if auth == AuthMode::Required {
                server = server.with_auth((*ws.state).clone());
            }
            server = server.with_access(access.clone(), Some(limits.query_memory_limit));
            if tls.is_some() {
                // tonic is built without its TLS feature: Flight SQL stays in clear, so only on
                // loopback (behind a TLS-terminating proxy elsewhere; docs/flight-sql.md).
                if !server.local_addr().ip().is_loopback() {
                    bail!(
                        "Arrow Flight SQL cannot serve TLS yet, and {} is not a loopback address: \
                         bind it to 127.0.0.1 (--flight) behind a TLS-terminating proxy, or pass \
                         --no-flight",
                        server.local_addr()
                    );
                }
                tracing::warn!(addr = %server.local_addr(), "Arrow Flight SQL is served without TLS (loopback only)");
            }
            Some(server)
        }
        None => None,
    };
    let http_tls = match &tls {
        Some(files) => Some(files.http_acceptor().map_err(|e| anyhow!("{e}"))?),
        None => None,
    };
    let scheme = if http_tls.is_some() { "https" } else { "http" };
    if role == ServeRole::Scheduler {
        say!(
            "Serving health and readiness probes at {scheme}://{local}/api/ready  (--role scheduler; Ctrl-C to stop)"
        );
    } else {
        say!("Serving the Sluice API at {scheme}://{local}/  (Ctrl-C to stop)");
        if auth == AuthMode::Required {
            say!("  try: curl -H \"Authorization: Bearer $TOKEN\" {scheme}://{local}/api/assets");
        } else {
            say!("  try: curl {scheme}://{local}/api/assets");
            say!(
                "Authentication: off (development mode, loopback only; `sluice auth token create` \
                 turns it on)"
            );
        }
    }
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
    let flight = flight.map(|server| {
        say!(
            "Arrow Flight SQL at {} ({})",
            server.local_addr(),
            server.url()
        );
        server.spawn()
    });
    let queries = app_state.queries.clone();
    let (engine, compiled) = (ws.engine.clone(), ws.compiled.clone());
    let app = match role {
        ServeRole::Scheduler => sluice_serve::http::health::probe_router(app_state),
        ServeRole::All | ServeRole::Api => sluice_serve::router(app_state),
    };
    scheduler::announce(scheduler.as_ref(), flags)?;
    let stop = Stop::on(shutdown_signal());
    let work = async {
        tokio::join!(
            async {
                let r = sluice_serve::server::serve_https(
                    listener,
                    app,
                    &limits,
                    Some(hosts),
                    http_tls,
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
            sync_lake(&engine, &compiled, &stop),
        )
    };
    // In-flight runs get the grace period too (plus the HTTP drain's); a run still going after it is
    // left to its atomic commits: what it did not commit never becomes visible, and the next start
    // marks it abandoned so it can be retried.
    let deadline = async {
        stop.wait().await;
        tokio::time::sleep(limits.shutdown_grace.saturating_mul(2)).await;
    };
    let (served, scheduled, (), ()) = tokio::select! {
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
    if let Some(flight) = flight {
        flight.stop().await?;
    }
    Ok(())
}

/// How often a serving process reads the lake for commits other processes made (a scheduler
/// elsewhere, `sluice run`), so that its API answers with the latest data.
pub const LAKE_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the engine on the lake's latest commits until `stop` flips.
async fn sync_lake(
    engine: &sluice_transform::Engine,
    compiled: &sluice_transform::CompiledProject,
    stop: &Stop,
) {
    let stopped = stop.wait();
    tokio::pin!(stopped);
    let mut tick = tokio::time::interval(LAKE_SYNC_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            _ = tick.tick() => {}
        }
        match engine.sync_lake(Some(compiled)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(tables = n, "picked up the lake's latest commits"),
            Err(e) => tracing::warn!(error = %e, "cannot read the lake's latest commits"),
        }
    }
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
