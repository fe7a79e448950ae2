//! The conformance suite every source kind runs, driven only through the `sluice` binary and project
//! files: resume after SIGKILL without loss or duplicates, the high-water mark only after its commit,
//! schema drift, quarantine with reasons, PII rules, bounded memory on a large input, and landing on a
//! lake in object storage (`lake: s3://…` on a real S3-protocol server).
//!
//! A kind joins by implementing [`ConformanceSource`] (provision a fresh upstream, append rows, add a
//! column, insert a row that must be quarantined, write the source file) in `kinds/<kind>.rs` and
//! adding one line to the `suite!` list below. `every_registered_kind_runs_the_suite`
//! fails for a kind of `sluice_ingest::SOURCE_KINDS` that has no implementation, so a new kind cannot
//! ship without passing the suite. docs/plugins.md describes what each scenario asserts.

#[path = "../common.rs"]
mod common;

mod harness;
mod scenarios;

/// One module per kind, each implementing [`ConformanceSource`].
mod kinds {
    pub mod files;
    pub mod http;
    pub mod mysql;
    pub mod postgres;
    pub mod sqlite;
}

use std::path::Path;

/// The rows every upstream holds: ids `1..=n` with no gaps (the suite checks bronze against that).
/// `email` and `secret` are PII (`hash` and `drop`); `amount` is a non-integer number; `note` is a
/// payload of `payload` bytes; `extra` exists once [`Upstream::add_column`] ran.
pub fn email(id: u64) -> String {
    format!("user{id}@example.com")
}

/// The clear value of the `secret` column (dropped by the PII rule).
pub fn secret(id: u64) -> String {
    format!("s3cret-{id}")
}

/// The `amount` of a good row.
pub fn amount(id: u64) -> f64 {
    id as f64 + 0.25
}

/// The value of the drift column `extra` in rows written after it was added.
pub fn extra(id: u64) -> String {
    format!("x{id}")
}

/// A compressible payload of `len` bytes (like a real wide row; bronze's Parquet stays small).
pub fn note(id: u64, len: usize) -> String {
    let unit = format!("{id:016x}{:016x}", id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    unit.repeat(len / unit.len() + 1)[..len].to_string()
}

/// How the source file is written for one scenario.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// `pii: {email: hash, secret: drop}` on the table.
    pub pii: bool,
    /// Rows per commit (relational `commit_rows`, HTTP page size), so a load makes many commits.
    pub commit_rows: Option<u64>,
}

/// Where a kind keeps its high-water mark, stated explicitly.
#[derive(Debug, Clone, Copy)]
pub enum Watermark {
    /// The mark is the largest value of this column landed (the `id` cursor).
    Cursor(&'static str),
    /// The kind has none; the reason is part of the contract.
    None(&'static str),
}

/// What a column added upstream does, as the kind's documentation says.
#[derive(Debug, Clone, Copy)]
pub enum Drift {
    /// The next run adds it to bronze; older rows read NULL.
    AddsColumn,
}

/// One source kind's side of the suite.
pub trait ConformanceSource: Sync {
    /// The `kind:` name, as in `SOURCE_KINDS`.
    fn kind(&self) -> &'static str;
    /// A fresh, uniquely named upstream `name` with rows `1..=rows`, each with a `note` of `payload`
    /// bytes; kinds that deliver in units (files) put at most `unit` rows in one, now and on every
    /// append. `None` when its server is down outside CI (it panics under `CI=true`).
    fn provision(
        &self,
        project: &Path,
        name: &str,
        rows: u64,
        payload: usize,
        unit: u64,
    ) -> Option<Box<dyn Upstream>>;
    /// The high-water mark, if the kind has one.
    fn watermark(&self) -> Watermark;
    /// The documented schema-drift policy.
    fn drift(&self) -> Drift;
    /// The column whose bad value [`Upstream::insert_bad_row`] writes (the reason must name it).
    fn quarantine_column(&self) -> &'static str;
    /// Why a large input loads in bounded memory, or the known reason it does not (reported with a
    /// failing memory scenario).
    fn memory_note(&self) -> &'static str;
}

/// A provisioned upstream; dropping it removes what it created on servers.
pub trait Upstream {
    /// Appends `rows` good rows with the next ids.
    fn append(&mut self, rows: u64);
    /// Adds the text column `extra`; rows appended later carry [`extra`].
    fn add_column(&mut self);
    /// Appends one row whose [`ConformanceSource::quarantine_column`] holds a value that cannot
    /// land; returns its id (the next one, so later rows continue after it).
    fn insert_bad_row(&mut self) -> u64;
    /// The largest id written so far.
    fn max_id(&self) -> u64;
    /// The text of `sources/conf.yml`, for the table `items`.
    fn source_yaml(&self, opts: &SourceOptions) -> String;
}

/// Lists every kind with a conformance implementation in [`KINDS`] and generates, for each, a module
/// of one `#[test]` per scenario (`sqlite::resume_after_sigkill`, …): a kind cannot be listed without
/// running the whole suite.
macro_rules! suite {
    ($($module:ident => $kind:expr),* $(,)?) => {
        /// Every kind with a conformance implementation, compared with the registry by
        /// [`every_registered_kind_runs_the_suite`].
        pub static KINDS: &[&dyn ConformanceSource] = &[$(&$kind),*];
        $(
            mod $module {
                #[test]
                fn resume_after_sigkill() {
                    crate::scenarios::resume_after_sigkill(&$kind);
                }
                #[test]
                fn high_water_mark_only_after_commit() {
                    crate::scenarios::high_water_mark_only_after_commit(&$kind);
                }
                #[test]
                fn schema_drift() {
                    crate::scenarios::schema_drift(&$kind);
                }
                #[test]
                fn quarantine_with_reasons() {
                    crate::scenarios::quarantine_with_reasons(&$kind);
                }
                #[test]
                fn pii_rules() {
                    crate::scenarios::pii_rules(&$kind);
                }
                #[test]
                fn bounded_memory() {
                    crate::scenarios::bounded_memory(&$kind);
                }
                #[test]
                fn lands_on_s3() {
                    crate::scenarios::lands_on_s3(&$kind);
                }
            }
        )*
    };
}

suite! {
    sqlite => crate::kinds::sqlite::Sqlite,
    files => crate::kinds::files::Files,
    postgres => crate::kinds::postgres::Postgres,
    mysql => crate::kinds::mysql::Mysql,
    http => crate::kinds::http::Http,
}

#[test]
fn every_registered_kind_runs_the_suite() {
    let registered: Vec<&str> = sluice_ingest::SOURCE_KINDS.iter().map(|k| k.name).collect();
    let implemented: Vec<&str> = KINDS.iter().map(|k| k.kind()).collect();
    for name in &registered {
        assert!(
            implemented.contains(name),
            "source kind `{name}` has no conformance implementation: add \
             crates/sluice/tests/conformance/{name}.rs (see docs/plugins.md, \"Conformance suite\")"
        );
    }
    for name in &implemented {
        assert!(
            registered.contains(name),
            "the conformance suite implements `{name}`, which is not in SOURCE_KINDS"
        );
    }
    assert_eq!(
        implemented.len(),
        registered.len(),
        "a kind is listed twice"
    );
}
