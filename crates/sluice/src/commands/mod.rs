//! One module per command; [`dispatch`] routes to them.

mod alerts;
mod auth;
mod backfill;
mod bench;
mod bench_cdc;
mod bench_dbt;
mod bench_distributed;
mod bench_ingest;
mod bench_maintain;
mod bench_pg;
mod bench_scheduler;
mod bench_serve;
mod bench_serve_bulk;
mod bench_soak;
mod compile_sql;
mod demo;
mod demo_postgres;
mod export;
mod history;
mod init;
mod inspect;
mod ls;
mod maintain;
mod query;
mod run;
mod runs;
mod scheduler;
pub mod select;
mod serve;
mod shopflow_files;
mod state;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, anyhow};
use sluice_core::Project;
use sluice_lake::Lake;
use sluice_orchestrate::StateStore;
use sluice_transform::{CompiledProject, Engine, compile};

use crate::cli::{AuthAction, Cli, Command, RunsAction, StateAction};

/// `--target` and `--vars`: they apply to every project a command loads.
#[derive(Debug, Default)]
pub struct LoadSettings {
    /// `--target`.
    pub target: Option<String>,
    /// `--state-db` / `SLUICE_STATE_DB`.
    pub state_db: Option<String>,
    /// `--vars`, parsed.
    pub vars: BTreeMap<String, serde_json::Value>,
}

static SETTINGS: OnceLock<LoadSettings> = OnceLock::new();

fn settings() -> &'static LoadSettings {
    SETTINGS.get_or_init(LoadSettings::default)
}

/// Parses `--vars`: a YAML (or JSON) mapping.
pub fn parse_vars(text: &str) -> Result<BTreeMap<String, serde_json::Value>> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let value: serde_json::Value =
        serde_yaml_ng::from_str(text).map_err(|e| anyhow!("--vars: not YAML or JSON: {e}"))?;
    match value {
        serde_json::Value::Object(map) => Ok(map.into_iter().collect()),
        serde_json::Value::Null => Ok(BTreeMap::new()),
        other => Err(anyhow!(
            "--vars: expected a mapping such as '{{days: 7}}', found {other}"
        )),
    }
}

/// Runs the command line.
pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let project = cli.project.clone();
    let vars = match &cli.vars {
        Some(text) => parse_vars(text)?,
        None => BTreeMap::new(),
    };
    let _ = SETTINGS.set(LoadSettings {
        target: cli.target.clone(),
        state_db: cli.state_db.clone().filter(|s| !s.is_empty()),
        vars,
    });
    match cli.command {
        Command::Init { dir } => init::init(&dir),
        Command::Demo {
            dir,
            scale,
            seed,
            no_serve,
            http,
            source,
            pg_url,
            rate,
        } => {
            let postgres =
                (source == "postgres").then_some(demo_postgres::LiveSettings { url: pg_url, rate });
            demo::demo(&dir, scale, seed, no_serve, http, postgres).await
        }
        Command::Validate => run::validate(&project),
        Command::Run {
            sel,
            full_refresh,
            threads,
        } => run::run(&project, &sel, full_refresh, threads, "run").await,
        Command::Test { sel } => run::test(&project, &sel).await,
        Command::Ls {
            sel,
            output,
            resource_type,
        } => ls::ls(&project, &sel, output, &resource_type),
        Command::Compile { sel } => compile_sql::compile(&project, &sel),
        Command::Query {
            sql,
            format,
            as_principal,
        } => query::query(&project, &sql, &format, as_principal.as_deref()).await,
        Command::Status => inspect::status(&project).await,
        Command::Runs {
            action,
            show,
            limit,
        } => match (action, show) {
            (Some(RunsAction::Show { run_id, logs }), _) => runs::show(&project, &run_id, logs),
            (Some(RunsAction::Cancel { run_id }), _) => runs::cancel(&project, &run_id),
            (None, Some(run_id)) => runs::show(&project, &run_id, false),
            (None, None) => runs::list(&project, limit),
        },
        Command::Auth {
            action: AuthAction::Token { action },
        } => auth::token(&project, action),
        Command::State { action } => match action {
            StateAction::Version => state::version(&project),
            StateAction::Migrate { to, replace } => state::migrate(&project, &to, replace),
        },
        Command::Retry { run_id, threads } => runs::retry(&project, &run_id, threads).await,
        Command::Backfill {
            sel,
            from,
            to,
            missing,
            threads,
            resume,
        } => {
            let args = backfill::BackfillArgs {
                sel,
                from,
                to,
                missing,
                threads,
                resume,
            };
            backfill::backfill(&project, args).await
        }
        Command::Partitions { asset, json } => backfill::partitions(&project, &asset, json),
        Command::History { asset, limit, json } => {
            history::history(&project, &asset, limit, json).await
        }
        Command::Restore {
            asset,
            version,
            timestamp,
        } => {
            let target = match (version, timestamp) {
                (Some(v), _) => history::RestoreTarget::Version(v),
                (None, Some(t)) => history::RestoreTarget::Timestamp(t),
                (None, None) => return Err(anyhow!("give --version N or --timestamp TIME")),
            };
            history::restore(&project, &asset, target).await
        }
        Command::Lineage { asset, json } => inspect::lineage(&project, &asset, json).await,
        Command::Serve {
            http,
            pg,
            no_pg,
            flight,
            no_flight,
            no_scheduler,
            role,
            sensor_interval,
            tls_cert,
            tls_key,
        } => {
            let role = if no_scheduler {
                crate::cli::ServeRole::Api
            } else {
                role
            };
            let flags = scheduler::SchedulerFlags {
                enabled: role != crate::cli::ServeRole::Api,
                sensor_interval,
                queue_runs: role == crate::cli::ServeRole::Api && !no_scheduler,
            };
            let listen = serve::Listen {
                http,
                pg,
                no_pg,
                flight,
                no_flight,
            };
            let tls = tls_cert.zip(tls_key);
            serve::serve(&project, listen, role, flags, tls).await
        }
        Command::Bench {
            scale,
            seed,
            dir,
            serve,
            clients,
            serve_duration,
            serve_rows,
            dbt_models,
            scheduler,
            models,
            parse_models,
            threads,
            pg_rows,
            cdc,
            cdc_rate,
            cdc_duration,
            pg_url,
            soak,
            http_clients,
            pg_clients,
            heavy_clients,
            soak_duration,
            maintenance,
            maintenance_batches,
            distributed,
            ingest_vs_duckdb,
            ingest_rows,
        } => {
            if ingest_vs_duckdb {
                let settings = bench_ingest::IngestBench { rows: ingest_rows };
                return bench_ingest::bench_ingest(&settings, dir.as_deref()).await;
            }
            if let Some(url) = distributed {
                let settings = bench_distributed::DistributedBench { scale, seed, url };
                return bench_distributed::bench_distributed(&settings, dir.as_deref()).await;
            }
            if maintenance {
                let settings = bench_maintain::MaintainBench {
                    scale,
                    batches: maintenance_batches,
                };
                return bench_maintain::bench_maintain(&settings, dir.as_deref()).await;
            }
            if soak {
                return bench_soak::bench_soak(&bench_soak::SoakBench {
                    scale,
                    http_clients,
                    pg_clients,
                    heavy_clients,
                    duration: soak_duration,
                })
                .await;
            }
            if cdc {
                return bench_cdc::bench_cdc(&bench_cdc::CdcBench {
                    url: pg_url,
                    rate: cdc_rate,
                    duration: cdc_duration,
                })
                .await;
            }
            if let Some(rows) = pg_rows {
                return bench_pg::bench_pg(&bench_pg::PgBench {
                    url: pg_url,
                    rows,
                    threads,
                })
                .await;
            }
            if scheduler {
                let b = bench_scheduler::SchedulerBench {
                    models,
                    parse_models,
                    threads,
                };
                return bench_scheduler::bench_scheduler(&b, dir.as_deref()).await;
            }
            if let Some(n) = dbt_models {
                return bench_dbt::bench_dbt(n, dir.as_deref());
            }
            let serving = serve.then_some(bench_serve::ServeBench {
                clients,
                duration: serve_duration,
                rows: serve_rows,
            });
            bench::bench(scale, seed, dir.as_deref(), serving).await
        }
        Command::Maintain { sel, dry_run } => maintain::maintain(&project, &sel, dry_run).await,
        Command::Export {
            asset,
            format,
            to,
            filter,
            partition,
        } => {
            let args = export::ExportArgs {
                asset,
                format,
                to,
                filter,
                partitions: partition,
            };
            export::export(&project, args).await
        }
    }
}

/// A loaded, compiled project with its lake, engine and state.
pub struct Workspace {
    pub compiled: Arc<CompiledProject>,
    pub engine: Engine,
    pub state: Arc<StateStore>,
}

/// Loads and compiles a dbt project folder (without sluice.yml, it runs as it is: state and lake
/// inside the project folder), with what `validate` warns about (an adapter without a dialect).
pub fn load_dbt(dir: &Path) -> Result<(Arc<CompiledProject>, Vec<String>)> {
    let settings = settings();
    let fail = |e: sluice_dbt::DbtErrors| {
        let mut problems: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        run::in_file_order(&mut problems);
        anyhow!(
            "{} problem(s) in the dbt project:\n{}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    let options = sluice_dbt::LoadOptions {
        target: settings.target.clone(),
    };
    let mut dbt = sluice_dbt::load_with(dir, &options).map_err(fail)?;
    let warnings: Vec<String> = dbt.dialect.warning.iter().cloned().collect();
    // `--target` picked the profile's output (adapter, `target.*`); the same name picks sluice.yml's
    // `targets:` entry. An output that sluice.yml does not list keeps sluice.yml's own settings.
    let config = &mut dbt.project.config;
    let chosen = settings.target.clone().or_else(|| config.target.clone());
    let profile_checked = dbt.dialect.target.is_some();
    let for_yml = match chosen {
        Some(t) if config.targets.contains_key(&t) => Some(t),
        Some(t) if profile_checked || config.targets.is_empty() => {
            config.vars.insert("sluice_target".into(), t.into());
            config.target = None;
            None
        }
        other => other,
    };
    apply_target(&mut dbt.project, for_yml.as_deref(), settings)?;
    Ok((Arc::new(sluice_dbt::compile(dbt).map_err(fail)?), warnings))
}

/// Loads and compiles a project, reporting every problem at once. `--target` and `--vars` apply.
pub fn load(dir: &Path) -> Result<Arc<CompiledProject>> {
    let settings = settings();
    if sluice_dbt::is_dbt_project(dir) {
        return load_dbt(dir).map(|(compiled, _)| compiled);
    }
    let mut project = Project::load(dir).map_err(|e| anyhow!("{e}"))?;
    apply_target(&mut project, settings.target.as_deref(), settings)?;
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

/// Applies the target `name` (or sluice.yml's `target:`), `${ENV}` in `lake:`/`state:`, the target's
/// connections, `--state-db`, and `--vars`.
fn apply_target(project: &mut Project, name: Option<&str>, settings: &LoadSettings) -> Result<()> {
    let sluice_yml = project.root.join("sluice.yml");
    let (connections, target) = project
        .config
        .resolve_target(name, &sluice_yml)
        .map_err(|e| anyhow!("{e}"))?;
    for (source, connection) in connections {
        let names = project.sources.iter().map(|s| s.name.as_str());
        let hint = sluice_core::graph::suggest(&source, names)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let target = target.as_deref().unwrap_or_default();
        let decl = project
            .sources
            .iter_mut()
            .find(|s| s.name == source)
            .ok_or_else(|| {
                anyhow!(
                    "{}: targets.{target}.connections: no source `{source}`{hint}",
                    sluice_yml.display()
                )
            })?;
        if !decl.override_connection(&connection) {
            return Err(anyhow!(
                "{}: targets.{target}.connections.{source}: {} has no top-level `connection:` to replace",
                sluice_yml.display(),
                decl.path.display()
            ));
        }
    }
    if let Some(state) = &settings.state_db {
        sluice_core::StateLocation::parse(state, &project.root)
            .map_err(|e| anyhow!("--state-db (or SLUICE_STATE_DB): {e}"))?;
        project.config.state = state.clone();
    }
    project.config.vars.extend(settings.vars.clone());
    Ok(())
}

/// Opens everything a command needs; the engine's memory pool is `defaults.memory_limit`.
pub async fn open(dir: &Path) -> Result<Workspace> {
    open_with(dir, engine_options).await
}

/// The engine's memory for commands other than `serve`: a pool of `defaults.memory_limit` for every
/// query and model build together, past which sorts, joins and aggregations spill to disk
/// (unbounded when unset).
pub fn engine_options(compiled: &CompiledProject) -> Result<sluice_transform::EngineOptions> {
    let limit = compiled
        .project
        .config
        .defaults
        .memory_limit
        .as_deref()
        .map(sluice_core::config::parse_memory_limit)
        .transpose()
        .map_err(|e| anyhow!("sluice.yml: defaults.memory_limit: {e}"))?;
    Ok(sluice_transform::EngineOptions {
        memory_limit: limit.map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX)),
        query_memory_limit: None,
    })
}

/// [`open`] for `sluice serve` and the demo: the engine gets the memory limits of `serve.limits`.
pub async fn open_for_serving(dir: &Path) -> Result<Workspace> {
    open_with(dir, |compiled| Ok(serve_limits(compiled)?.engine_options())).await
}

/// The resolved `serve.limits` of a project; `defaults.memory_limit` stands in for an unset
/// `serve.limits.memory_limit`.
pub fn serve_limits(compiled: &CompiledProject) -> Result<sluice_serve::Limits> {
    let config = &compiled.project.config;
    let mut limits = config.serve.limits.clone();
    if limits.memory_limit.is_none() {
        limits.memory_limit = config.defaults.memory_limit.clone();
    }
    sluice_serve::Limits::from_config(&limits).map_err(|e| anyhow!("{e}"))
}

/// The project's lake: `lake:` (a folder or an object-store URL) with `lake_options:`.
pub fn open_lake(compiled: &CompiledProject) -> Result<Lake> {
    let location = compiled.project.lake_location();
    Lake::open_with(&location, &compiled.project.config.lake_options)
        .with_context(|| format!("opening the lake at {location}"))
}

async fn open_with(
    dir: &Path,
    options: impl FnOnce(&CompiledProject) -> Result<sluice_transform::EngineOptions>,
) -> Result<Workspace> {
    let compiled = load(dir)?;
    let options = options(&compiled)?;
    let lake = open_lake(&compiled)?
        .with_bloom_filters(sluice_orchestrate::maintain::bloom_filters(&compiled));
    let engine = Engine::open_with(&lake, Some(&compiled), options)
        .await
        .context("opening the SQL engine over the lake")?;
    let location = compiled.project.state_location()?;
    let state = StateStore::open(&location)
        .with_context(|| format!("opening the state database {location}"))?;
    Ok(Workspace {
        compiled,
        engine,
        state: Arc::new(state),
    })
}
