//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Sluice: one tool for the data-engineering lifecycle — generate, ingest, store, transform, check,
/// serve, monitor.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    /// The project folder.
    #[arg(long, global = true, default_value = ".")]
    pub project: PathBuf,
    /// Log more (also: SLUICE_LOG=debug).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a small working project in DIR.
    Init {
        /// Where to create it.
        dir: PathBuf,
    },
    /// Generate ShopFlow data, run its whole lifecycle, and serve the API.
    Demo {
        /// Where the demo project and its lake go.
        #[arg(long, default_value = "sluice-demo")]
        dir: PathBuf,
        /// Data size (1.0 = 10,000 orders, 50,000 events).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Random seed (the same seed generates the same data).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Stop after the run instead of serving.
        #[arg(long)]
        no_serve: bool,
        /// HTTP address to serve on (default: sluice.yml's serve.http).
        #[arg(long)]
        http: Option<String>,
    },
    /// Parse everything and check the graph; exit non-zero on any error.
    Validate,
    /// Ingest, build and check what is selected (default: everything).
    Run {
        /// Selection: name, name+, +name, tag:x (comma-separated).
        #[arg(long, short, default_value = "")]
        select: String,
        /// Rebuild incremental models from scratch.
        #[arg(long)]
        full_refresh: bool,
        /// Nodes running at once (default: sluice.yml defaults.threads).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Run checks only, against published data.
    Test {
        /// Selection.
        #[arg(long, short, default_value = "")]
        select: String,
    },
    /// Ad-hoc read-only SQL over the lake.
    Query {
        /// The SQL.
        sql: String,
        /// Output format: table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Every asset: layer, rows, last success, fresh or stale, failing checks.
    Status,
    /// Run history.
    Runs {
        /// A run id to show node by node.
        #[arg(value_name = "RUN_ID")]
        show: Option<String>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Upstream and downstream of an asset.
    Lineage {
        /// The asset.
        asset: String,
    },
    /// Serve the HTTP API and the PostgreSQL wire protocol until stopped.
    Serve {
        /// HTTP address (default: sluice.yml's serve.http).
        #[arg(long)]
        http: Option<String>,
        /// PostgreSQL wire protocol address (default: sluice.yml's serve.pg, 127.0.0.1:5433).
        #[arg(long, value_name = "ADDR", conflicts_with = "no_pg")]
        pg: Option<String>,
        /// Do not serve the PostgreSQL wire protocol.
        #[arg(long)]
        no_pg: bool,
        /// Do not run the scheduler (schedules, upstream-change triggers, file sensors).
        #[arg(long)]
        no_scheduler: bool,
        /// How often file sensors look for new files (and the state is checked for upstream
        /// changes made by other processes).
        #[arg(long, value_name = "DURATION", default_value = "30s")]
        sensor_interval: String,
    },
    /// Generate data at a scale and report each stage's throughput as JSON.
    Bench {
        /// Data size.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Work folder (default: a temporary folder, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}
