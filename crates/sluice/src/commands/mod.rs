//! One module per command; [`dispatch`] routes to them.

mod bench;
mod demo;
mod init;
mod inspect;
mod query;
mod run;
mod scheduler;
mod serve;
mod shopflow_files;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use sluice_core::Project;
use sluice_lake::Lake;
use sluice_orchestrate::StateStore;
use sluice_transform::{CompiledProject, Engine, compile};

use crate::cli::{Cli, Command};

/// Runs the command line.
pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let project = cli.project.clone();
    match cli.command {
        Command::Init { dir } => init::init(&dir),
        Command::Demo {
            dir,
            scale,
            seed,
            no_serve,
            http,
        } => demo::demo(&dir, scale, seed, no_serve, http).await,
        Command::Validate => run::validate(&project),
        Command::Run {
            select,
            full_refresh,
            threads,
        } => run::run(&project, &select, full_refresh, threads, "run").await,
        Command::Test { select } => run::test(&project, &select).await,
        Command::Query { sql, format } => query::query(&project, &sql, &format).await,
        Command::Status => inspect::status(&project).await,
        Command::Runs { show, limit } => inspect::runs(&project, show.as_deref(), limit),
        Command::Lineage { asset } => inspect::lineage(&project, &asset),
        Command::Serve {
            http,
            pg,
            no_pg,
            no_scheduler,
            sensor_interval,
        } => {
            let flags = scheduler::SchedulerFlags {
                enabled: !no_scheduler,
                sensor_interval,
            };
            serve::serve(&project, http, pg, no_pg, flags).await
        }
        Command::Bench { scale, seed, dir } => bench::bench(scale, seed, dir.as_deref()).await,
    }
}

/// A loaded, compiled project with its lake, engine and state.
pub struct Workspace {
    pub compiled: Arc<CompiledProject>,
    pub engine: Engine,
    pub state: Arc<StateStore>,
}

/// Loads and compiles a project, reporting every problem at once.
pub fn load(dir: &Path) -> Result<Arc<CompiledProject>> {
    let project = Project::load(dir).map_err(|e| anyhow!("{e}"))?;
    let compiled = compile(Arc::new(project)).map_err(|errs| {
        anyhow!(
            "{} problem(s) in the project:\n{}",
            errs.len(),
            errs.iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    Ok(Arc::new(compiled))
}

/// Opens everything a command needs.
pub async fn open(dir: &Path) -> Result<Workspace> {
    let compiled = load(dir)?;
    let lake_location = compiled.project.lake_location();
    let lake = Lake::open(&lake_location)
        .with_context(|| format!("opening the lake at {lake_location}"))?;
    let engine = Engine::open(&lake, Some(&compiled))
        .await
        .context("opening the SQL engine over the lake")?;
    let state =
        StateStore::open(&compiled.project.state_path()).context("opening the state database")?;
    Ok(Workspace {
        compiled,
        engine,
        state: Arc::new(state),
    })
}
