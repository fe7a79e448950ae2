//! Export sinks (reverse ETL): an `exports/*.yml` declaration pushes an asset's rows into another
//! system after the asset is rebuilt.
//!
//! Each sink kind implements [`Sink`] (write a stream of Arrow record batches, report what was
//! written) and is listed once, in [`SINK_KINDS`]: the kinds the orchestrator can run, the docs table
//! in `docs/plugins.md` and the registry test derive from that list. The orchestrator runs an
//! `export:<name>` node with [`run_export`]: it reads the asset through the engine as a stream
//! ([`read_asset`]), so an export of any size holds about one `batch_size` in memory, and hands it to
//! the sink the declaration's `kind:` names.
//!
//! ```no_run
//! # async fn demo(project: &sluice_transform::CompiledProject, engine: &sluice_transform::Engine)
//! # -> Result<(), sluice_sink::SinkError> {
//! for export in project.project.exports.iter().filter(|e| e.enabled) {
//!     let report = sluice_sink::run_export(project, engine, export, "run-1").await?;
//!     println!("{}: {} rows", export.name, report.rows_written);
//! }
//! # Ok(()) }
//! ```
//!
//! Modules: [`postgres`] (`CREATE TABLE IF NOT EXISTS`, then one `INSERT ... ON CONFLICT (key) DO
//! UPDATE` transaction per batch), [`webhook`] (one `POST` of a JSON array per batch, retried on 5xx
//! with exponential backoff), [`rebatch`] (batches of exactly `batch_size` rows), [`json`], [`read`].
//! The file and stdout output of `sluice export` stays in `sluice-serve`, next to its formats.
//!
//! `sluice-core` reads the fields every export file shares (`asset`, `kind`, `batch_size`, …); the
//! rest of the file belongs to the sink kind, which reads it into its own config struct with
//! [`ExportDecl::config`] (unknown keys are errors with file, line and a "did you mean").
//! `sluice validate` builds every export's sink ([`build_sink`], which never connects), so its
//! mistakes are reported with the rest of the project's.
//!
//! Adding a sink kind:
//! 1. write `src/<kind>.rs` with its config struct (`#[serde(deny_unknown_fields)]`), a type
//!    implementing [`Sink`] and a `pub const KIND: SinkKind` (name, one-line description, a minimal
//!    example file, the constructor that reads and checks the config), and add one line to
//!    [`SINK_KINDS`];
//! 2. add the same name and description to the sinks table of `docs/plugins.md` (the registry test
//!    fails until the docs match).

pub mod error;
pub mod json;
pub mod postgres;
pub mod read;
pub mod rebatch;
mod rows;
pub mod webhook;

use async_trait::async_trait;
use sluice_core::ExportDecl;
use sluice_transform::{CompiledProject, Engine};

pub use error::SinkError;
pub use read::{read_asset, relation_of};
pub use rebatch::Rebatcher;
pub use rows::Rows;

/// What one export pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Rows read from the asset.
    pub rows_read: u64,
    /// Rows the target accepted.
    pub rows_written: u64,
    /// Batches sent (transactions or requests).
    pub batches: u64,
}

/// What a sink knows about the export it runs.
#[derive(Debug, Clone, Copy)]
pub struct SinkContext<'a> {
    /// The declaration (name, file, `batch_size`, …).
    pub export: &'a ExportDecl,
    /// The run this export belongs to (webhooks send it in their idempotency keys).
    pub run_id: &'a str,
}

/// A target system an export pushes rows into.
///
/// Implementations write batches of the export's `batch_size` in table order, and say in
/// [`SinkError::is_transient`] whether running the whole export again is safe.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The `kind:` value.
    fn kind(&self) -> &'static str;
    /// Writes every row of `rows`; reports rows read, rows written and batches sent.
    async fn write(&self, rows: Rows, cx: &SinkContext<'_>) -> Result<ExportReport, SinkError>;
}

/// One sink kind, listed once in [`SINK_KINDS`].
#[derive(Debug, Clone, Copy)]
pub struct SinkKind {
    /// The `kind:` value of an export file.
    pub name: &'static str,
    /// Where the rows go, in one line (the sinks table of `docs/plugins.md` repeats it).
    pub description: &'static str,
    /// A minimal export file of this kind, pushing a model `orders`; the registry test builds a sink
    /// from it (building must not connect).
    pub example: &'static str,
    /// Builds the sink for a parsed declaration of this kind.
    pub build: BuildSink,
}

/// A sink kind's constructor from a parsed export declaration.
pub type BuildSink = fn(&ExportDecl) -> Result<Box<dyn Sink>, SinkError>;

/// Every sink kind, in the order the docs list them.
pub const SINK_KINDS: &[SinkKind] = &[postgres::KIND, webhook::KIND];

/// The registry entry of `kind`.
pub fn sink_kind(kind: &str) -> Option<&'static SinkKind> {
    SINK_KINDS.iter().find(|k| k.name == kind)
}

/// Builds the sink of an export declaration: reads and checks its kind's fields (without
/// connecting anywhere). An unknown `kind:` is an error at its line, with the closest kind.
pub fn build_sink(export: &ExportDecl) -> Result<Box<dyn Sink>, SinkError> {
    let Some(kind) = sink_kind(export.kind()) else {
        let names = || SINK_KINDS.iter().map(|k| k.name);
        let hint = sluice_core::graph::suggest(export.kind(), names())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(SinkError::Config(sluice_core::ConfigError::at(
            &export.path,
            export.kind_pos,
            "kind",
            format!(
                "`{}` is not an export kind{hint}; expected {}",
                export.kind(),
                names().collect::<Vec<_>>().join(" or ")
            ),
        )));
    };
    (kind.build)(export)
}

/// Pushes one export's asset to its target: reads the asset as a stream and writes it to the sink.
pub async fn run_export(
    project: &CompiledProject,
    engine: &Engine,
    export: &ExportDecl,
    run_id: &str,
) -> Result<ExportReport, SinkError> {
    let sink = build_sink(export)?;
    let relation = relation_of(project, &export.asset)?;
    let rows = read_asset(engine, &relation, export.columns.as_deref()).await?;
    sink.write(rows, &SinkContext { export, run_id }).await
}

#[cfg(test)]
mod registry_tests;
