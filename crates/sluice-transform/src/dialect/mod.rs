//! SQL dialects: running a model with the semantics of the warehouse it was written for.
//!
//! A dbt project is written for an adapter (DuckDB, Snowflake, BigQuery, Databricks, PostgreSQL), and
//! the same SQL text means different figures on different engines: `amount / 100` over integers is
//! integer division in DataFusion and PostgreSQL but float division in DuckDB, BigQuery and Spark (and a
//! decimal with six places in Snowflake). Tried as a new user would, jaffle_shop at 1M orders summed to
//! 17,383,164 here and to 17,977,010.79 in dbt-duckdb. The project's [`Dialect`] (from a dbt profile,
//! the `sluice_dialect` var, or `dialect:` in `sluice.yml`) makes the engine give the SQL that
//! dialect's semantics where DataFusion differs:
//!
//! | difference | how | module |
//! |---|---|---|
//! | integer `/` integer (and decimals in DuckDB, Snowflake) | float division, or Snowflake's `NUMBER` scale rule; the dialect's division by zero | [`divide`] |
//! | `concat()` with a NULL argument | NULL in Snowflake, BigQuery, Databricks | [`rewrite`] |
//! | float/decimal → integer casts | rounded (DataFusion truncates) | [`rewrite`] |
//! | `date ± integer` (days), `date - date` (days) | DataFusion already computes days, as DuckDB, PostgreSQL and Snowflake do | — |
//! | one-argument `log(x)` | natural log in BigQuery and Databricks; BigQuery's `log(x, base)` order | [`rewrite`] |
//! | NULL ordering of `ORDER BY` | the dialect's default (`nulls_last` in DuckDB, smallest in BigQuery/Spark) | [`Dialect::null_ordering`] |
//! | integer `+ - *` and `sum(bigint)` past ±9.2·10¹⁸ | an error in every warehouse dialect (DataFusion wraps around); `sum(DISTINCT …)` is reported | [`overflow`], [`checked_sum`] |
//! | BigQuery `NUMERIC` | `DECIMAL(38, 9)`; `*` and `/` give scale 9, rounded half away from zero; `BIGNUMERIC`, `INT64`, `FLOAT64` type names | [`numeric`] |
//!
//! The `datafusion` dialect (the default when nothing names one) changes nothing, overflow
//! included: it is DataFusion's semantics as documented there. A project that wants overflow to
//! fail names its warehouse (`postgres` reads as DataFusion everywhere else).
//! What cannot be matched is never changed silently: [`review`] finds it in the model files and
//! `sluice validate` prints it with file and line. docs/coming-from-dbt.md has the full table.
//!
//! The rewrites run as a DataFusion analyzer pass ([`rewrite::DialectRule`], after type coercion,
//! then a second coercion pass), so they apply to every plan of a session opened for the project:
//! model builds, views, checks and ad-hoc queries alike.

pub mod checked_sum;
pub mod divide;
pub mod numeric;
pub mod overflow;
pub mod rewrite;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_numeric;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::ArrayRef;
use sluice_engine::extension::logical_expr::{ColumnarValue, ScalarFunctionArgs};
use sluice_engine::extension::optimizer::analyzer::type_coercion::TypeCoercion;
use sluice_engine::{DataFusionError, DfResult, SessionState, SessionStateBuilder};

/// The SQL dialect a project's models are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum Dialect {
    /// DataFusion's own semantics (close to PostgreSQL): nothing is rewritten.
    #[default]
    DataFusion,
    /// PostgreSQL (and Redshift): integer division stays integer division; casts round.
    Postgres,
    /// DuckDB (dbt-duckdb).
    DuckDb,
    /// Snowflake (dbt-snowflake).
    Snowflake,
    /// Google BigQuery (dbt-bigquery).
    BigQuery,
    /// Databricks / Apache Spark SQL with ANSI mode (dbt-databricks, dbt-spark).
    Databricks,
}

/// Every dialect, for messages and tests.
pub const DIALECTS: &[Dialect] = &[
    Dialect::DataFusion,
    Dialect::Postgres,
    Dialect::DuckDb,
    Dialect::Snowflake,
    Dialect::BigQuery,
    Dialect::Databricks,
];

/// A dialect name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a known dialect; expected datafusion, postgres, duckdb, snowflake, bigquery or databricks"
)]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    /// Reads a dialect name or a dbt adapter type (`postgres`, `redshift`, `spark`, …).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "datafusion" | "default" => Dialect::DataFusion,
            "postgres" | "postgresql" | "redshift" => Dialect::Postgres,
            "duckdb" | "motherduck" => Dialect::DuckDb,
            "snowflake" => Dialect::Snowflake,
            "bigquery" => Dialect::BigQuery,
            "databricks" | "spark" => Dialect::Databricks,
            _ => return Err(UnknownDialect(s.to_string())),
        })
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an integer divided by an integer is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegerDivision {
    /// Truncating integer division (DataFusion, PostgreSQL).
    Integer,
    /// `DOUBLE` division, for integers and decimals; dividing by zero gives ±infinity or NaN (DuckDB,
    /// IEEE 754).
    FloatIeee,
    /// `DOUBLE` division of integers (decimals divide as in DataFusion); dividing by zero is an error
    /// (BigQuery, Databricks with ANSI mode).
    FloatStrict,
    /// `NUMBER` division with the dividend's scale plus six (at most twelve), rounded half away from
    /// zero, for integers and decimals; dividing by zero is an error (Snowflake).
    SnowflakeNumber,
}

/// How a float or decimal value cast to an integer type is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastRounding {
    /// Towards zero (DataFusion, Spark).
    Truncate,
    /// To the nearest integer, halves away from zero for decimals and to even for floats
    /// (PostgreSQL: `rint` for `float8`, DuckDB: `nearbyint`).
    NearestFloatsToEven,
    /// To the nearest integer, halves away from zero (Snowflake, BigQuery).
    NearestAwayFromZero,
}

impl Dialect {
    /// The name used in `sluice.yml` and `vars.sluice_dialect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::DataFusion => "datafusion",
            Dialect::Postgres => "postgres",
            Dialect::DuckDb => "duckdb",
            Dialect::Snowflake => "snowflake",
            Dialect::BigQuery => "bigquery",
            Dialect::Databricks => "databricks",
        }
    }

    /// How `integer / integer` is computed.
    pub fn integer_division(self) -> IntegerDivision {
        match self {
            Dialect::DataFusion | Dialect::Postgres => IntegerDivision::Integer,
            Dialect::DuckDb => IntegerDivision::FloatIeee,
            Dialect::BigQuery | Dialect::Databricks => IntegerDivision::FloatStrict,
            Dialect::Snowflake => IntegerDivision::SnowflakeNumber,
        }
    }

    /// Whether `concat(a, b, …)` is NULL when any argument is (DataFusion, PostgreSQL and DuckDB skip
    /// NULL arguments).
    pub fn concat_propagates_null(self) -> bool {
        matches!(
            self,
            Dialect::Snowflake | Dialect::BigQuery | Dialect::Databricks
        )
    }

    /// How float/decimal → integer casts round.
    pub fn cast_rounding(self) -> CastRounding {
        match self {
            Dialect::DataFusion | Dialect::Databricks => CastRounding::Truncate,
            Dialect::Postgres | Dialect::DuckDb => CastRounding::NearestFloatsToEven,
            Dialect::Snowflake | Dialect::BigQuery => CastRounding::NearestAwayFromZero,
        }
    }

    /// Whether `NUMERIC` is BigQuery's `DECIMAL(38, 9)`, with products and quotients at scale 9
    /// ([`numeric`]).
    pub fn numeric_is_bigquery(self) -> bool {
        self == Dialect::BigQuery
    }

    /// Whether integer `+ - *` and `sum(bigint)` fail on overflow: in every warehouse dialect
    /// ([`overflow`]). `datafusion` keeps DataFusion's wrapping arithmetic, as it keeps everything.
    pub fn integer_overflow_fails(self) -> bool {
        self != Dialect::DataFusion
    }

    /// Whether one-argument `log(x)` is the natural logarithm (DataFusion: base 10).
    pub fn log_is_natural(self) -> bool {
        matches!(self, Dialect::BigQuery | Dialect::Databricks)
    }

    /// Whether two-argument `log` takes the value first (`LOG(x, base)` in BigQuery; DataFusion:
    /// `log(base, x)`).
    pub fn log_value_first(self) -> bool {
        self == Dialect::BigQuery
    }

    /// DataFusion's `sql_parser.default_null_ordering` for this dialect's `ORDER BY` without
    /// `NULLS FIRST/LAST`.
    pub fn null_ordering(self) -> &'static str {
        match self {
            // NULL is the largest value: last ascending, first descending.
            Dialect::DataFusion | Dialect::Postgres | Dialect::Snowflake => "nulls_max",
            // DuckDB puts NULLs last in both directions (`default_null_order = 'nulls_last'`).
            Dialect::DuckDb => "nulls_last",
            // NULL is the smallest value: first ascending, last descending.
            Dialect::BigQuery | Dialect::Databricks => "nulls_min",
        }
    }

    /// Whether anything is rewritten at all.
    pub fn rewrites(self) -> bool {
        self != Dialect::DataFusion
    }

    /// Builds a session with this dialect's semantics: its analyzer pass (after type coercion, and
    /// followed by a second type coercion pass, so that expressions above a rewritten one, whose
    /// type changed from integer to float, are coerced again) and its NULL ordering.
    pub fn build_state(self, builder: SessionStateBuilder) -> SessionState {
        if !self.rewrites() {
            return builder.build();
        }
        let builder = if self.numeric_is_bigquery() {
            builder.with_type_planner(Arc::new(numeric::BigQueryTypes))
        } else {
            builder
        };
        let mut state = builder
            .with_analyzer_rule(Arc::new(rewrite::DialectRule::new(self)))
            .with_analyzer_rule(Arc::new(TypeCoercion::new()))
            .build();
        state
            .config_mut()
            .options_mut()
            .sql_parser
            .default_null_ordering = self.null_ordering().to_string();
        state
    }
}

/// The two arguments of a binary function as arrays (a scalar is repeated to the batch's length),
/// or an internal error naming the function.
fn two_arrays(name: &str, args: &ScalarFunctionArgs) -> DfResult<[ArrayRef; 2]> {
    let arrays = ColumnarValue::values_to_arrays(&args.args)?;
    let n = arrays.len();
    <[ArrayRef; 2]>::try_from(arrays)
        .map_err(|_| DataFusionError::Internal(format!("{name} takes two arguments, got {n}")))
}
