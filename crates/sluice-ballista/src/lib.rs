//! An Apache DataFusion Ballista scheduler and executor, built from the Ballista crates at the
//! version whose DataFusion is Sluice's own (docs/distributed.md). The `sluice-ballista` binary runs
//! one of them per process; tests start them in-process with [`start_scheduler`] and
//! [`start_executor`].
//!
//! They are Ballista's stock scheduler and executor (the same library calls as the
//! `ballista-scheduler` / `ballista-executor` binaries, with S3 object stores configured from the
//! session's `s3.*` options), plus what scripts and tests need: the scheduler listens on a socket
//! the caller bound (port 0 works) and the executor reports when the scheduler has accepted it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ballista_core::object_store::{
    runtime_env_with_s3_support, session_config_with_s3_support, session_state_with_s3_support,
};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A scheduler serving on `listener` until its task is dropped or aborted; `external_host` is the
/// name executors and clients reach it by (default: the listener's IP). Returns the address it
/// listens on and its task.
pub async fn start_scheduler(
    listener: TcpListener,
    external_host: Option<String>,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let addr = listener.local_addr().context("read the bound address")?;
    let mut config = SchedulerConfig::default()
        .with_hostname(external_host.unwrap_or_else(|| addr.ip().to_string()))
        .with_port(addr.port())
        .with_override_config_producer(Arc::new(session_config_with_s3_support))
        .with_override_session_builder(Arc::new(session_state_with_s3_support));
    config.bind_host = addr.ip().to_string();
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .context("set up the scheduler's state")?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
            .await
            .context("start the scheduler")?;
    let task = tokio::spawn(async move {
        start_grpc_service_with_listener(listener, scheduler)
            .await
            .context("serve the scheduler")
    });
    Ok((addr, task))
}

/// Where an executor listens and which scheduler it joins.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// Address to listen on.
    pub bind: String,
    /// Name the scheduler, other executors and clients reach it by (default: `bind`).
    pub external_host: Option<String>,
    /// Arrow Flight port (results and shuffle data).
    pub port: u16,
    /// gRPC port (used by a push-scheduling scheduler).
    pub grpc_port: u16,
    /// Tasks run at once (0: one per core).
    pub vcores: usize,
    /// Folder for shuffle files (default: a temporary folder).
    pub work_dir: Option<PathBuf>,
}

/// A running executor: its task, and whether the scheduler has accepted it yet.
pub struct Executor {
    /// The executor's id (as the scheduler knows it).
    pub id: String,
    /// Runs until the process is asked to stop, or the executor fails.
    pub task: JoinHandle<anyhow::Result<()>>,
    health: ballista_executor::health::ExecutorHealth,
}

impl Executor {
    /// Whether the scheduler has answered this executor's last poll for work (from then on, it
    /// hands it tasks).
    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
    }

    /// Waits until [`Executor::is_ready`], the executor stops, or `timeout` passes.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if self.is_ready() {
                return Ok(());
            }
            if self.task.is_finished() {
                anyhow::bail!(
                    "executor {} stopped before the scheduler accepted it",
                    self.id
                );
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "executor {} was not accepted by the scheduler within {timeout:?}",
                    self.id
                );
            }
        }
    }
}

/// Starts an executor that joins the scheduler of `options`.
pub fn start_executor(options: ExecutorOptions) -> Executor {
    let mut config = ExecutorProcessConfig {
        bind_host: options.bind.clone(),
        external_host: Some(options.external_host.unwrap_or(options.bind)),
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host,
        scheduler_port: options.scheduler_port,
        vcores: if options.vcores == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            options.vcores
        },
        work_dir: options.work_dir.map(|d| d.display().to_string()),
        ..ExecutorProcessConfig::default()
    };
    config.override_config_producer = Some(Arc::new(session_config_with_s3_support));
    config.override_runtime_producer = Some(Arc::new(runtime_env_with_s3_support));
    let health = config.health.clone();
    let id = config.executor_id.clone();
    let task = tokio::spawn(async move {
        start_executor_process(Arc::new(config))
            .await
            .map_err(|e| anyhow::anyhow!("executor failed: {e}"))
    });
    Executor { id, task, health }
}
