//! Each rewrite, under the dialects where DataFusion differs and under one where it does not. The
//! first test of each group pins DataFusion's own behaviour, so a DataFusion upgrade that changes it
//! fails here rather than silently doubling a rewrite.

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::array_value_to_string;
use sluice_engine::SessionContext;
use sluice_engine::SessionStateBuilder;

use super::Dialect;

pub(super) fn context(dialect: Dialect) -> SessionContext {
    SessionContext::new_with_state(
        dialect.build_state(SessionStateBuilder::new().with_default_features()),
    )
}

pub(super) async fn run(dialect: Dialect, sql: &str) -> Result<Vec<RecordBatch>, String> {
    let ctx = context(dialect);
    ctx.sql(
        "create table t (a bigint, b int, s varchar, d date, f double) as values \
         (7, 2, 'x', date '2024-01-30', 2.5), (199, 100, null, date '2024-02-29', -2.5)",
    )
    .await
    .map_err(|e| e.to_string())?
    .collect()
    .await
    .map_err(|e| e.to_string())?;
    ctx.sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())
}

/// Every value of the first column, as text (`NULL` for null).
pub(super) async fn column(dialect: Dialect, sql: &str) -> Result<Vec<String>, String> {
    let batches = run(dialect, sql).await?;
    let mut out = Vec::new();
    for b in &batches {
        let c = b.column(0);
        for i in 0..c.len() {
            out.push(if c.is_null(i) {
                "NULL".to_string()
            } else {
                array_value_to_string(c, i).map_err(|e| e.to_string())?
            });
        }
    }
    Ok(out)
}

pub(super) async fn one(dialect: Dialect, sql: &str) -> String {
    match column(dialect, sql).await {
        Ok(v) => v.join(","),
        Err(e) => format!("error: {e}"),
    }
}

pub(super) async fn first_type(dialect: Dialect, sql: &str) -> DataType {
    let batches = run(dialect, sql).await.unwrap();
    batches[0].schema().field(0).data_type().clone()
}

#[test]
fn names_parse_and_print() {
    for d in super::DIALECTS {
        assert_eq!(d.as_str().parse::<Dialect>(), Ok(*d));
    }
    assert_eq!("Redshift".parse::<Dialect>(), Ok(Dialect::Postgres));
    assert_eq!("spark".parse::<Dialect>(), Ok(Dialect::Databricks));
    assert!("oracle".parse::<Dialect>().is_err());
}

#[tokio::test]
async fn integer_division_per_dialect() {
    let sql = "select a / b from t order by a";
    assert_eq!(one(Dialect::DataFusion, sql).await, "3,1");
    assert_eq!(one(Dialect::Postgres, sql).await, "3,1");
    assert_eq!(one(Dialect::DuckDb, sql).await, "3.5,1.99");
    assert_eq!(one(Dialect::BigQuery, sql).await, "3.5,1.99");
    assert_eq!(one(Dialect::Databricks, sql).await, "3.5,1.99");
    assert_eq!(one(Dialect::Snowflake, sql).await, "3.500000,1.990000");
    assert_eq!(first_type(Dialect::DuckDb, sql).await, DataType::Float64);
    assert_eq!(
        first_type(Dialect::Snowflake, sql).await,
        DataType::Decimal128(38, 6)
    );
    // Literals too, and Snowflake rounds its sixth place half away from zero.
    assert_eq!(one(Dialect::Snowflake, "select -2 / 3").await, "-0.666667");
    assert_eq!(one(Dialect::DuckDb, "select 1 / 4").await, "0.25");
    // Float division is left to DataFusion.
    assert_eq!(
        one(Dialect::DuckDb, "select f / 2 from t order by a").await,
        "1.25,-1.25"
    );
}

#[tokio::test]
async fn decimal_division_per_dialect() {
    let sql = "select cast('10.01' as decimal(10,2)) / cast('1.1' as decimal(5,1))";
    // Snowflake: the dividend's scale plus six.
    assert_eq!(one(Dialect::Snowflake, sql).await, "9.10000000");
    // DuckDB divides decimals as DOUBLEs.
    assert_eq!(one(Dialect::DuckDb, sql).await, "9.1");
    let sql = "select cast('1.00' as decimal(10,2)) / 3";
    assert_eq!(one(Dialect::Snowflake, sql).await, "0.33333333");
    // BigQuery and Databricks keep DataFusion's decimal division (Spark's scale rule).
    assert_eq!(
        first_type(Dialect::Databricks, sql).await,
        first_type(Dialect::DataFusion, sql).await
    );
}

#[tokio::test]
async fn division_by_zero_per_dialect() {
    let sql = "select a / (b - b) from t order by a";
    assert!(
        one(Dialect::DataFusion, sql)
            .await
            .contains("Divide by zero")
    );
    assert_eq!(one(Dialect::DuckDb, sql).await, "inf,inf");
    for d in [Dialect::Snowflake, Dialect::BigQuery, Dialect::Databricks] {
        let out = one(d, sql).await;
        assert!(out.contains("Division by zero"), "{d}: {out}");
    }
}

#[tokio::test]
async fn a_rewritten_division_keeps_its_name_and_types_propagate() {
    let names = |d| async move {
        run(d, "select a / b, a / b as q from t").await.unwrap()[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(Dialect::DuckDb).await,
        names(Dialect::DataFusion).await
    );
    // The outer query sees a DOUBLE: its filter, arithmetic and aggregate are coerced to it.
    let sql = "select sum(q * 2) from (select a / b as q from t) where q > 1.5";
    assert_eq!(one(Dialect::DuckDb, sql).await, "10.98");
    assert_eq!(one(Dialect::DataFusion, sql).await, "6");
    let sql = "select a / b as q from t union all select 1 as q order by q";
    assert_eq!(one(Dialect::DuckDb, sql).await, "1.0,1.99,3.5");
}

#[tokio::test]
async fn views_over_divisions_follow_the_dialect() {
    let ctx = context(Dialect::DuckDb);
    ctx.sql("create view v as select 7 / 2 as q")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let b = ctx
        .sql("select q * 2 from v")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(array_value_to_string(b[0].column(0), 0).unwrap(), "7.0");
}

#[tokio::test]
async fn concat_with_null_per_dialect() {
    let sql = "select concat('a', s, 'b') from t order by a";
    // DataFusion (like PostgreSQL and DuckDB) skips NULL arguments.
    assert_eq!(one(Dialect::DataFusion, sql).await, "axb,ab");
    assert_eq!(one(Dialect::DuckDb, sql).await, "axb,ab");
    for d in [Dialect::Snowflake, Dialect::BigQuery, Dialect::Databricks] {
        assert_eq!(one(d, sql).await, "axb,NULL", "{d}");
    }
    // `||` is NULL-propagating in DataFusion and in every dialect: left alone.
    let sql = "select 'a' || s from t order by a";
    assert_eq!(one(Dialect::DataFusion, sql).await, "ax,NULL");
    assert_eq!(one(Dialect::Snowflake, sql).await, "ax,NULL");
}

#[tokio::test]
async fn float_to_integer_casts_per_dialect() {
    let sql = "select cast(x as int) from (values (2.5), (3.5), (-2.5), (2.7), (-2.7)) v(x)";
    assert_eq!(one(Dialect::DataFusion, sql).await, "2,3,-2,2,-2");
    assert_eq!(one(Dialect::Databricks, sql).await, "2,3,-2,2,-2");
    // PostgreSQL and DuckDB round a float to the nearest, halves to even.
    assert_eq!(one(Dialect::Postgres, sql).await, "2,4,-2,3,-3");
    assert_eq!(one(Dialect::DuckDb, sql).await, "2,4,-2,3,-3");
    // Snowflake and BigQuery round halves away from zero.
    assert_eq!(one(Dialect::Snowflake, sql).await, "3,4,-3,3,-3");
    assert_eq!(one(Dialect::BigQuery, sql).await, "3,4,-3,3,-3");
    // Decimals round halves away from zero wherever they round.
    let sql = "select cast(cast('2.5' as decimal(10,1)) as bigint)";
    assert_eq!(one(Dialect::DataFusion, sql).await, "2");
    assert_eq!(one(Dialect::Postgres, sql).await, "3");
    assert_eq!(one(Dialect::Snowflake, sql).await, "3");
    // `::` is the same cast.
    assert_eq!(
        one(Dialect::Snowflake, "select f::int from t order by a").await,
        "3,-3"
    );
}

#[tokio::test]
async fn date_arithmetic_is_already_in_days() {
    // DataFusion adds days to a date and subtracts dates into days, as DuckDB, PostgreSQL and
    // Snowflake do: nothing to rewrite, in any dialect.
    for d in super::DIALECTS {
        assert_eq!(
            one(*d, "select d + 3 from t order by a").await,
            "2024-02-02,2024-03-03"
        );
        assert_eq!(
            one(*d, "select 1 + d from t order by a").await,
            "2024-01-31,2024-03-01"
        );
        assert_eq!(
            one(*d, "select d - b from t order by a").await,
            "2024-01-28,2023-11-21"
        );
        let sql = "select date '2024-03-01' - d from t order by a";
        assert_eq!(one(*d, sql).await, "31,1");
        assert_eq!(first_type(*d, sql).await, DataType::Int64);
    }
}

#[tokio::test]
async fn log_per_dialect() {
    assert_eq!(one(Dialect::DataFusion, "select log(100)").await, "2.0");
    assert_eq!(one(Dialect::Snowflake, "select log(10, 100)").await, "2.0");
    assert_eq!(
        one(Dialect::BigQuery, "select round(log(100), 6)").await,
        "4.60517"
    );
    assert_eq!(
        one(Dialect::Databricks, "select round(log(100), 6)").await,
        "4.60517"
    );
    // BigQuery's LOG(x, base).
    assert_eq!(one(Dialect::BigQuery, "select log(8, 2)").await, "3.0");
    assert_eq!(one(Dialect::Databricks, "select log(2, 8)").await, "3.0");
}

#[tokio::test]
async fn null_ordering_per_dialect() {
    let sql = |dir| format!("select x from (values (1), (null), (2)) v(x) order by x {dir}");
    assert_eq!(one(Dialect::DataFusion, &sql("asc")).await, "1,2,NULL");
    assert_eq!(one(Dialect::DataFusion, &sql("desc")).await, "NULL,2,1");
    assert_eq!(one(Dialect::DuckDb, &sql("desc")).await, "2,1,NULL");
    assert_eq!(one(Dialect::BigQuery, &sql("asc")).await, "NULL,1,2");
    assert_eq!(one(Dialect::Databricks, &sql("desc")).await, "2,1,NULL");
    assert_eq!(one(Dialect::Snowflake, &sql("desc")).await, "NULL,2,1");
}

#[tokio::test]
async fn substr_from_zero_is_datafusion_postgres_style() {
    // What the review reports for Snowflake, BigQuery and Databricks (which read 0 as 1: 'al').
    assert_eq!(
        one(Dialect::DataFusion, "select substr('alphabet', 0, 3)").await,
        "al"
    );
    // And the to_char template it reports.
    assert_eq!(
        one(
            Dialect::DataFusion,
            "select to_char(date '2024-01-02', 'YYYY-MM-DD')"
        )
        .await,
        "YYYY-MM-DD"
    );
}

#[test]
fn review_reports_what_is_not_matched_with_file_and_line() {
    use std::path::Path;
    let text = "{{ config(materialized='table') }}\nselect\n  to_char(order_date, 'YYYY-MM') as month,\n  to_char(order_date, '%Y') as year,\n  substr(name, 0, 3) as short,\n  {{ var('x') }} as x\nfrom {{ ref('orders') }}\n";
    let p = Path::new("models/orders.sql");
    let notes = crate::dialect_review::review_text(Dialect::Snowflake, p, text);
    let lines: Vec<String> = notes.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "models/orders.sql:3: snowflake semantics not matched: `to_char(…)`: a format template"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("models/orders.sql:5: snowflake semantics not matched: `substr(…)`"),
        "{}",
        lines[1]
    );
    // DuckDB reads substr like DataFusion: only the template is reported.
    assert_eq!(
        crate::dialect_review::review_text(Dialect::DuckDb, p, text).len(),
        1
    );
    // No dialect, no notes.
    assert!(crate::dialect_review::review_text(Dialect::DataFusion, p, text).is_empty());
    // sum(DISTINCT …) keeps DataFusion's wrapping accumulator: reported; a plain sum is checked.
    let text = "select\n  sum(amount),\n  sum( DISTINCT amount)\nfrom t\n";
    let notes = crate::dialect_review::review_text(Dialect::Postgres, p, text);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].line, 3);
    assert!(notes[0].message.contains("sum(DISTINCT"), "{}", notes[0]);
}
