//! `sluice`: the command line that wires the lifecycle together.

/// `println!` that ignores a closed stdout: a long-running server must not die because whoever
/// started it stopped reading (a closed pipe makes `println!` panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod artifacts;
mod cli;
mod color;
mod commands;
mod progress;
mod table;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    if let Err(e) = load_dotenv(&cli.project) {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if cli.verbose {
            "info,deltalake_core=warn"
        } else {
            "error"
        })
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Text => logs.init(),
        // One JSON object per line: timestamp, level, target, fields (message included), spans.
        cli::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    // Planning walks expressions recursively: the threads get stacks deep enough for every
    // expression the SQL limits admit (queries themselves run on sluice_transform's query runtime).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(sluice_engine::QUERY_THREAD_STACK)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // Do not wait for blocking work nobody awaits any more (a server cut off after its grace).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Loads `<project>/.env` into the environment (variables already set win, as with dbt and docker
/// compose). Runs first in `main`, before any thread exists: changing the environment is only sound
/// while nothing else can read it.
fn load_dotenv(project: &std::path::Path) -> Result<(), sluice_core::ConfigError> {
    for (key, value) in sluice_core::env::dotenv_to_apply(project)? {
        // SAFETY: single-threaded here (no runtime, no logger, no other thread has started yet).
        unsafe { std::env::set_var(key, value) };
    }
    Ok(())
}
