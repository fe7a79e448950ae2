//! `sluice serve`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::open;

/// Serves the HTTP API until Ctrl-C / SIGTERM.
pub async fn serve(dir: &Path, http: Option<String>) -> Result<ExitCode> {
    let ws = open(dir).await?;
    let addr = http.unwrap_or_else(|| ws.compiled.project.config.serve.http.clone());
    serve_workspace(ws, &addr).await?;
    Ok(ExitCode::SUCCESS)
}

/// Serves an opened workspace.
pub async fn serve_workspace(ws: super::Workspace, addr: &str) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!("Serving the Sluice API at http://{local}/  (Ctrl-C to stop)");
    println!("  try: curl http://{local}/api/assets");
    let app = sluice_serve::router(sluice_serve::AppState::new(
        ws.compiled,
        ws.engine,
        ws.state,
    ));
    sluice_serve::serve(listener, app, shutdown_signal()).await?;
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
