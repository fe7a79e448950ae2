//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Log lines as text, or as one JSON object per line (for log shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The target of sluice.yml's `targets:` to use (lake, state, connections, vars); default: its
    /// `target:`. In a dbt project, also the output of that name in profiles.yml (adapter, `target.*`).
    #[arg(long, global = true, env = "SLUICE_TARGET", value_name = "NAME")]
    pub target: Option<String>,
    /// The state database, over sluice.yml's `state:` and the target's: a SQLite file or a
    /// `postgres://…` URL (for containers, whose configuration comes from the environment).
    #[arg(long, global = true, env = "SLUICE_STATE_DB", value_name = "LOCATION")]
    pub state_db: Option<String>,
    /// Vars for `var()`, as YAML or JSON (`'{days: 7}'`); they win over sluice.yml and the target.
    #[arg(long, global = true, value_name = "YAML")]
    pub vars: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What one `sluice serve` process does (docs/operations.md#several-processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ServeRole {
    /// The HTTP API, the web UI, the PostgreSQL wire and the scheduler.
    #[default]
    All,
    /// The HTTP API, the web UI and the PostgreSQL wire; no scheduler (as `--no-scheduler`).
    Api,
    /// The scheduler only; HTTP answers `/api/health` and `/api/ready` for probes, and nothing else.
    Scheduler,
}

/// Node selection, as in dbt (docs/coming-from-dbt.md#selecting-nodes).
#[derive(Debug, Clone, Default, Args)]
pub struct SelectArgs {
    /// What to select, in dbt's grammar: space = union, comma = intersection, `+name`, `name+`,
    /// `2+name`, `@name`, `tag:x`, `path:models/staging`, `config.materialized:table`,
    /// `source:shop`, `state:modified+` (default: everything).
    #[arg(long, short, num_args = 1.., value_name = "SELECTOR")]
    pub select: Vec<String>,
    /// Leave out what these select (same grammar).
    #[arg(long, num_args = 1.., value_name = "SELECTOR")]
    pub exclude: Vec<String>,
    /// A previous run's artifacts folder (its manifest.json) for `state:` selectors.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

impl SelectArgs {
    /// The selection text: every `--select` value, joined by spaces (a union).
    pub fn select_text(&self) -> String {
        self.select.join(" ")
    }

    /// The exclusion text.
    pub fn exclude_text(&self) -> String {
        self.exclude.join(" ")
    }
}

/// `sluice ls --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsOutput {
    /// dbt's selector form: `project.folder.model`, `source:project.source.table`.
    Selector,
    /// Node names as Sluice names them (`stg_orders`, `shop.orders`, `export:crm`).
    Name,
    /// The file of each node, relative to the project.
    Path,
    /// One JSON object per line.
    Json,
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
        /// Where the shop's application database lives: `sqlite` (a file) or `postgres` (the
        /// PostgreSQL at --pg-url, captured with CDC and kept changing while serving).
        #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
        source: String,
        /// With `--source postgres`: the database (needs `wal_level = logical`).
        #[arg(
            long,
            default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
        )]
        pg_url: String,
        /// With `--source postgres`: shop transactions per second while serving.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
    },
    /// Parse everything and check the graph; exit non-zero on any error.
    Validate,
    /// Ingest, build and check what is selected (default: everything); writes target/manifest.json
    /// and target/run_results.json.
    Run {
        /// Selection.
        #[command(flatten)]
        sel: SelectArgs,
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
        #[command(flatten)]
        sel: SelectArgs,
    },
    /// List the selected nodes (nothing runs); writes target/manifest.json.
    #[command(alias = "list")]
    Ls {
        /// Selection.
        #[command(flatten)]
        sel: SelectArgs,
        /// How each node is printed.
        #[arg(long, short, value_enum, default_value_t = LsOutput::Selector)]
        output: LsOutput,
        /// Only nodes of these kinds: model, seed, snapshot, source, export (repeatable).
        #[arg(long, value_name = "TYPE")]
        resource_type: Vec<String>,
    },
    /// Render the selected models' SQL into target/compiled/ (nothing runs); prints it when one
    /// model is selected.
    Compile {
        /// Selection.
        #[command(flatten)]
        sel: SelectArgs,
    },
    /// Ad-hoc read-only SQL over the lake.
    Query {
        /// The SQL.
        sql: String,
        /// Output format: table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// Read as USER with ROLE sees the lake under access.yml (its grants, masks and row
        /// filters), e.g. `--as ana:analyst`; without it the command line reads everything.
        #[arg(long = "as", value_name = "USER:ROLE")]
        as_principal: Option<String>,
    },
    /// Every asset: layer, rows, last success, fresh or stale, failing checks.
    Status,
    /// Run history: `runs` lists, `runs ID` or `runs show ID` shows one run's node timeline and
    /// logs, `runs cancel ID` stops a running run.
    #[command(args_conflicts_with_subcommands = true)]
    Runs {
        /// What to do with one run.
        #[command(subcommand)]
        action: Option<RunsAction>,
        /// A run id to show (same as `runs show ID`).
        #[arg(value_name = "RUN_ID")]
        show: Option<String>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Re-run what did not succeed in a finished run: its failed nodes and their downstream.
    Retry {
        /// The run to retry.
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        /// Nodes running at once (default: sluice.yml defaults.threads).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Build the time partitions of the selected partitioned models from --from's partition to
    /// --to's, both included (docs/partitions.md); resumable.
    Backfill {
        /// Selection in dbt's grammar (only time-partitioned models are built), `--exclude`,
        /// `--state`.
        #[command(flatten)]
        sel: SelectArgs,
        /// First partition: a date or time inside it (default: each model's partition_by.start).
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Last partition, included (default: the current one).
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Build only partitions never built.
        #[arg(long)]
        missing: bool,
        /// Partitions built at once (default: sluice.yml defaults.threads).
        #[arg(long)]
        threads: Option<usize>,
        /// Resume an interrupted or failed backfill (builds only what is not done).
        #[arg(long, value_name = "ID", conflicts_with_all = ["from", "to", "missing"])]
        resume: Option<String>,
    },
    /// Users and API tokens of `sluice serve` (docs/security.md): `auth token create --user U
    /// --role R [--expires 30d]`, `auth token list`, `auth token revoke ID`.
    Auth {
        /// What to do.
        #[command(subcommand)]
        action: AuthAction,
    },
    /// The state database: `state version` shows its backend and schema version, `state migrate
    /// --to postgres://…` copies a SQLite state into PostgreSQL.
    State {
        /// What to do.
        #[command(subcommand)]
        action: StateAction,
    },
    /// A time-partitioned model's built partition ranges and gaps.
    Partitions {
        /// The model.
        asset: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The versions of an asset's table, newest first: when each was committed, by which operation
    /// and run, and the rows it added and removed (read them with `VERSION AS OF n` in SQL).
    History {
        /// A model (`by_region`, `gold.by_region`) or a source table (`shop.orders`).
        asset: String,
        /// Versions to list.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore an asset's table to an earlier version, by committing a new version with its rows
    /// (the history keeps every version; restoring is recorded as a run).
    #[command(group(clap::ArgGroup::new("restore_to").required(true).args(["version", "timestamp"])))]
    Restore {
        /// A model (`by_region`, `gold.by_region`) or a source table (`shop.orders`).
        asset: String,
        /// The version to restore (`sluice history` lists them).
        #[arg(long)]
        version: Option<u64>,
        /// Restore the version that was current at this time ('2026-01-01 10:00', UTC, or RFC 3339).
        #[arg(long, value_name = "TIME")]
        timestamp: Option<String>,
    },
    /// Upstream and downstream of an asset, or of one column (`ASSET.COLUMN`: which columns it is
    /// computed from and which are computed from it, read from the models' query plans).
    Lineage {
        /// The asset, or `ASSET.COLUMN`.
        asset: String,
        /// A column's lineage as JSON (`asset`, `column`, `upstream`, `downstream`).
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTP API, the PostgreSQL wire protocol and Arrow Flight SQL until stopped.
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
        /// Arrow Flight SQL address, for ADBC and the Flight SQL JDBC driver (default: sluice.yml's
        /// serve.flight, 127.0.0.1:50051).
        #[arg(long, value_name = "ADDR", conflicts_with = "no_flight")]
        flight: Option<String>,
        /// Do not serve Arrow Flight SQL.
        #[arg(long)]
        no_flight: bool,
        /// Do not run the scheduler (schedules, upstream-change triggers, file sensors); the same as
        /// `--role api`.
        #[arg(long, conflicts_with = "role")]
        no_scheduler: bool,
        /// What this process does: `all`, `api` (HTTP, UI and wire; no scheduler) or `scheduler`
        /// (schedules only; HTTP answers health and readiness probes). Several processes of each
        /// role can share one state database.
        #[arg(long, value_enum, default_value_t = ServeRole::All)]
        role: ServeRole,
        /// How often file sensors look for new files (and the state is checked for upstream
        /// changes made by other processes).
        #[arg(long, value_name = "DURATION", default_value = "30s")]
        sensor_interval: String,
        /// TLS certificate chain (PEM) for both listeners: HTTPS, and TLS on the PostgreSQL wire
        /// (default: sluice.yml's serve.tls.cert).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
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
        /// Also measure query latency over HTTP, the PostgreSQL wire and Arrow Flight SQL on the gold
        /// tables, and the rows/s of one large result through each.
        #[arg(long)]
        serve: bool,
        /// Concurrent clients of the serving benchmark.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// How long each protocol of the serving benchmark runs.
        #[arg(long, value_name = "DURATION", default_value = "5s")]
        serve_duration: String,
        /// Rows of the serving benchmark's large result (0 skips it).
        #[arg(long, value_name = "N", default_value_t = 10_000_000)]
        serve_rows: u64,
        /// Instead: generate a dbt project of this many models and time its parse + compile.
        #[arg(long, value_name = "N")]
        dbt_models: Option<usize>,
        /// Instead: measure the orchestration overhead (no-op models in a wide DAG) and the parse +
        /// validate time of a large project.
        #[arg(long)]
        scheduler: bool,
        /// Scheduler benchmark: no-op models in the DAG.
        #[arg(long, default_value_t = 1000)]
        models: usize,
        /// Scheduler benchmark: models in the parse + validate project.
        #[arg(long, default_value_t = 10_000)]
        parse_models: usize,
        /// Scheduler benchmark: nodes running at once.
        #[arg(long, default_value_t = 16)]
        threads: usize,
        /// Instead: land a generated PostgreSQL table of this many rows (20 columns) into bronze and
        /// report rows/s and MB/s (uses --pg-url and --threads).
        #[arg(long, value_name = "N")]
        pg_rows: Option<u64>,
        /// Instead: measure PostgreSQL CDC end-to-end lag (source commit → visible in bronze).
        #[arg(long)]
        cdc: bool,
        /// CDC benchmark: changes per second applied to the source table.
        #[arg(long, default_value_t = 10_000)]
        cdc_rate: u64,
        /// CDC benchmark: how long changes are applied.
        #[arg(long, value_name = "DURATION", default_value = "10s")]
        cdc_duration: String,
        /// CDC and batch benchmarks: the PostgreSQL database (CDC needs `wal_level = logical`).
        #[arg(
            long,
            default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
        )]
        pg_url: String,
        /// Instead: serve the demo (at --scale) in a child process and load it with many clients
        /// (dashboard queries, rows pages, a few heavy queries; HTTP and the PostgreSQL wire):
        /// outcomes, latency and the server's peak memory (docs/operations.md).
        #[arg(long)]
        soak: bool,
        /// Soak benchmark: concurrent HTTP clients.
        #[arg(long, default_value_t = 500)]
        http_clients: usize,
        /// Soak benchmark: concurrent PostgreSQL wire clients.
        #[arg(long, default_value_t = 200)]
        pg_clients: usize,
        /// Soak benchmark: HTTP clients that send heavy queries.
        #[arg(long, default_value_t = 4)]
        heavy_clients: usize,
        /// Soak benchmark: how long the load runs.
        #[arg(long, value_name = "DURATION", default_value = "5m")]
        soak_duration: String,
        /// Instead: query latency on a bronze table of --scale million rows landed in many small
        /// appends, before and after `sluice maintain` compacts it (docs/maintenance.md).
        #[arg(long)]
        maintenance: bool,
        /// Maintenance benchmark: appends (small files) the table is landed in.
        #[arg(long, default_value_t = 500)]
        maintenance_batches: usize,
        /// Instead: land 5 CSV and 5 JSON-lines files of --ingest-rows rows with the `files`
        /// source, and convert the same files to Parquet with DuckDB (`COPY … TO`, python3's
        /// `duckdb` module), in the same run: seconds, MB/s and the ratio of each, as JSON.
        #[arg(long)]
        ingest_vs_duckdb: bool,
        /// Ingestion benchmark: rows per file.
        #[arg(long, value_name = "N", default_value_t = 1_000_000)]
        ingest_rows: u64,
        /// Instead: a TPC-H-like aggregation over ShopFlow at --scale, in this process and on the
        /// Ballista cluster at this URL (`df://host:50050`), with the median time of each and
        /// whether both returned the same rows (docs/distributed.md).
        #[arg(long, value_name = "URL")]
        distributed: Option<String>,
    },
    /// Compact, Z-order, checkpoint and VACUUM the selected tables (and expire old bronze
    /// partitions) by their `maintenance:` policy in sluice.yml; prints what it did per table and
    /// records it as a `maintain` run (docs/maintenance.md).
    Maintain {
        /// Selection (default: every source table and model).
        #[command(flatten)]
        sel: SelectArgs,
        /// Report what would be done; change and record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write an asset's rows to a Parquet, CSV or JSON-lines file (or stdout), streamed.
    Export {
        /// A model (`mart_revenue`, `gold.mart_revenue`) or a source table (`shop.orders`).
        asset: String,
        /// parquet, csv or jsonl; also json (one array) and arrow (Arrow IPC stream). Default: from
        /// the extension of --to.
        #[arg(long)]
        format: Option<String>,
        /// The output file (written whole or not at all), or `-` for stdout.
        #[arg(long, value_name = "PATH")]
        to: String,
        /// Only the rows matching this SQL condition.
        #[arg(long = "where", value_name = "SQL")]
        filter: Option<String>,
        /// Only this partition: COLUMN=VALUE, or COLUMN=FROM..TO with both ends included
        /// (repeatable).
        #[arg(long, value_name = "COLUMN=VALUE")]
        partition: Vec<String>,
    },
}

/// `sluice state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// The backend, location (without password) and schema version of the project's state
    /// database, read without changing it.
    Version,
    /// Copy the project's SQLite state (every table) into a PostgreSQL database, in one
    /// transaction, then print the rows per table.
    Migrate {
        /// The target: `postgres://user[:password]@host[:port]/db[?schema=name]` (`${ENV}`
        /// allowed). Created tables are migrated to this sluice's schema version.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Empty the target's state tables first (without it, a target holding rows is refused).
        #[arg(long)]
        replace: bool,
    },
}

/// `sluice auth` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuthAction {
    /// API tokens: for the HTTP API (`Authorization: Bearer`) and, as the password, the
    /// PostgreSQL wire.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
}

/// `sluice auth token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token for a user and print it (once: only its hash is stored).
    Create {
        /// The user (letters, digits, `_ - . @`); also the PostgreSQL wire user name.
        #[arg(long)]
        user: String,
        /// reader (read only), operator (also runs, backfills, cancels) or admin.
        #[arg(long, default_value = "reader")]
        role: String,
        /// Lifetime, like 12h, 30d or 52w (default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// Every token: id, user, role, created, expires, revoked (never the token itself).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id (it stops working at once; the record is kept).
    Revoke {
        /// The token's id (from `auth token list`).
        id: String,
    },
}

/// `sluice runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// One run: each node's status, attempts, rows and a timeline bar, then logs.
    Show {
        /// The run.
        #[arg(value_name = "RUN_ID")]
        run_id: String,
        /// Print the logs of every node (default: of the nodes that did not succeed).
        #[arg(long)]
        logs: bool,
    },
    /// Stop a running run, in this or another process: running nodes stop, no new ones start.
    Cancel {
        /// The run.
        #[arg(value_name = "RUN_ID")]
        run_id: String,
    },
}
