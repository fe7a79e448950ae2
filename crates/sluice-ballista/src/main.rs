//! `sluice-ballista`: an Apache DataFusion Ballista scheduler or executor, built from the Ballista
//! crates at the version whose DataFusion is Sluice's own (docs/distributed.md).
//!
//! It is the stock `ballista-scheduler` / `ballista-executor` (same library calls, same S3 support
//! through the session's `s3.*` options and the `AWS_*` environment), with two additions that make
//! it easy to start from scripts and tests: the scheduler may listen on port 0 and prints the
//! address it got, and the executor prints a line once the scheduler has accepted it.
//!
//! ```text
//! sluice-ballista scheduler --bind 0.0.0.0 --port 50050
//! sluice-ballista executor --scheduler sched-host:50050 --bind 0.0.0.0 --port 50051 --grpc-port 50052
//! ```
//!
//! Both print one line on standard output when ready (`sluice-ballista scheduler listening on
//! ADDR`, `sluice-ballista executor ready ...`); logs go to standard error (`RUST_LOG`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_ballista::{ExecutorOptions, start_executor, start_scheduler};

/// A Ballista scheduler or executor for Sluice's distributed model SQL.
#[derive(Debug, Parser)]
#[command(name = "sluice-ballista", version)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Plans jobs and hands their tasks to executors (gRPC; `engine.url: df://HOST:PORT`).
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Port to listen on (0: any free port, printed on standard output).
        #[arg(long, default_value_t = 50050)]
        port: u16,
        /// Host name executors and clients reach this scheduler by (default: `--bind`).
        #[arg(long)]
        external_host: Option<String>,
    },
    /// Runs tasks: reads the lake's files, shuffles, and serves results over Arrow Flight.
    Executor {
        /// The scheduler, `HOST:PORT`.
        #[arg(long, default_value = "localhost:50050")]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Host name the scheduler, other executors and clients reach this executor by (default:
        /// `--bind`).
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port (results and shuffle data).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// gRPC port (used by a push-scheduling scheduler).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        vcores: usize,
        /// Folder for shuffle files (default: a temporary folder).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // Plans are deep recursive structures: Ballista's own binaries use 32 MiB stacks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 << 20)
        .build()
        .context("start the async runtime")?;
    runtime.block_on(run(cli.role))
}

async fn run(role: Role) -> anyhow::Result<()> {
    match role {
        Role::Scheduler {
            bind,
            port,
            external_host,
        } => {
            let listener = tokio::net::TcpListener::bind((bind.as_str(), port))
                .await
                .with_context(|| format!("listen on {bind}:{port}"))?;
            let (addr, task) = start_scheduler(listener, external_host).await?;
            println!("sluice-ballista scheduler listening on {addr}");
            task.await.context("scheduler task")?
        }
        Role::Executor {
            scheduler,
            bind,
            external_host,
            port,
            grpc_port,
            vcores,
            work_dir,
        } => {
            let (scheduler_host, scheduler_port) = host_port(&scheduler)?;
            let flight = format!("{}:{port}", external_host.as_deref().unwrap_or(&bind));
            let mut executor = start_executor(ExecutorOptions {
                scheduler_host,
                scheduler_port,
                bind,
                external_host,
                port,
                grpc_port,
                vcores,
                work_dir,
            });
            // Ready once the scheduler has answered a poll for work; until then (a scheduler not
            // started yet) the executor keeps trying.
            let mut announced = false;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    finished = &mut executor.task => {
                        return finished.context("executor task")?;
                    }
                    _ = tick.tick(), if !announced => {
                        if executor.is_ready() {
                            println!("sluice-ballista executor ready: id {}, flight {flight}", executor.id);
                            announced = true;
                        }
                    }
                }
            }
        }
    }
}

/// `HOST:PORT` (the port is required).
fn host_port(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .with_context(|| format!("`{text}`: expected HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("`{text}`: `{port}` is not a port"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}
