//! Data quality checks: declared in dbt-style properties files, run before a model publishes.
//!
//! Each check kind is one type behind the [`Check`] trait, built from its declaration ([`CheckSpec`]) by
//! [`build_check`], which holds the explicit list of kinds ([`CHECK_KINDS`]). Most checks are expressed as
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
//! parse its arguments in a `from_spec` constructor, and add it to [`build_check`] and [`CHECK_KINDS`].

mod checks;
mod error;
mod run;
mod singular;

pub use checks::{CHECK_KINDS, build_check};
pub use error::QualityError;
pub use run::{Check, CheckResult, CheckStatus, evaluate};
pub use sluice_core::{CheckSpec, Severity};
