//! Data quality checks: declared in dbt-style properties files, run before a model publishes.
//!
//! Each check kind is one type behind the [`Check`] trait, listed once in [`CHECK_KINDS`] (name,
//! description, an example, a constructor from its declaration, [`CheckSpec`]); [`build_check`], the
//! kinds `validate` suggests and the generic tests a dbt project may use derive from that list. Most checks are expressed as
//! a query returning the offending rows (a check passes when it returns none, as in dbt); the runner counts
//! them and keeps a few as a sample for the report. A failure is `error` (the model does not publish) or
//! `warn` (reported only), as declared.
//!
//! ```text
//! columns:
//!   - name: order_id
//!     tests: [not_null, unique]
//!   - name: status
//!     tests:
//!       - accepted_values: {values: [placed, shipped, delivered]}
//!   - name: amount
//!     tests:
//!       - range: {min: 0, max: 100000, config: {severity: warn}}
//! ```
//!
//! Adding a check kind: write a type implementing [`Check`] (usually only [`Check::failing_rows_sql`]),
//! parse its arguments in a `from_spec` constructor, add one [`CheckKind`] line to [`CHECK_KINDS`],
//! and the same name and description to the checks table of `docs/plugins.md` (the registry test
//! fails until the docs match).

mod checks;
mod error;
mod registry;
mod run;
mod singular;

pub use error::QualityError;
pub use registry::{CHECK_KINDS, CheckKind, build_check, check_kind, check_kind_names};
pub use run::{Check, CheckResult, CheckStatus, evaluate};
pub use sluice_core::{CheckSpec, Severity};
