//! Integer overflow and BigQuery's `NUMERIC`, under the dialects where DataFusion differs. As in
//! `tests.rs`, the first assertion of each test pins DataFusion's own behaviour.

use arrow::datatypes::DataType;

use super::Dialect;
use super::tests::{first_type, one, run};

/// Every warehouse dialect: each fails on integer overflow.
const WAREHOUSES: [Dialect; 5] = [
    Dialect::Postgres,
    Dialect::DuckDb,
    Dialect::Snowflake,
    Dialect::BigQuery,
    Dialect::Databricks,
];

fn is_overflow(out: &str) -> bool {
    out.starts_with("error:") && out.contains("integer overflow")
}

#[tokio::test]
async fn integer_overflow_is_an_error_in_every_warehouse_dialect() {
    // t.a is 7 and 199: 9223372036854775800 + 7 is the largest BIGINT, + 199 is beyond it.
    let sql = "select a + 9223372036854775800 from t order by a";
    assert_eq!(
        one(Dialect::DataFusion, sql).await,
        "9223372036854775807,-9223372036854775617",
        "DataFusion wraps around"
    );
    let cases = [
        sql,
        "select -9223372036854775807 - a from t",
        "select a * 4611686018427387904 from t",
        // Literals only: folded at planning, still checked.
        "select 9223372036854775807 + 1",
        // INT (32 bits) times INT stays an INT, and overflows at 2^31 as in PostgreSQL.
        "select b * cast(2147483647 as int) from t",
    ];
    for sql in cases {
        for d in WAREHOUSES {
            let out = one(d, sql).await;
            assert!(is_overflow(&out), "{d}: {sql}: {out}");
        }
    }
    let out = one(Dialect::DuckDb, "select 9223372036854775807 + 1").await;
    assert!(out.contains("`+`"), "{out}");
}

#[tokio::test]
async fn arithmetic_that_fits_gives_the_same_figures_types_and_names() {
    let sql = "select a + b, a - b, a * b, -a * 3, b * b, b - 100, a + 1 - b * 2 from t order by a";
    let expected = run(Dialect::DataFusion, sql).await.unwrap();
    for d in WAREHOUSES {
        let got = run(d, sql).await.unwrap();
        assert_eq!(got[0].schema(), expected[0].schema(), "{d}");
        assert_eq!(got, expected, "{d}");
    }
    // Floats and decimals are not integer arithmetic: left to DataFusion.
    assert_eq!(
        one(Dialect::DuckDb, "select f * 2 + 1 from t order by a").await,
        "6.0,-4.0"
    );
}

#[tokio::test]
async fn sum_of_bigint_fails_on_overflow() {
    let sql = "select sum(x) from (values (9223372036854775807), (1)) v(x)";
    assert_eq!(one(Dialect::DataFusion, sql).await, "-9223372036854775808");
    let grouped = "select g, sum(x) from (values (1, 9223372036854775807), (1, 1), (2, 5)) v(g, x) group by g";
    let window = "select sum(x) over () from (values (9223372036854775807), (1)) v(x)";
    for d in WAREHOUSES {
        for sql in [sql, grouped, window] {
            let out = one(d, sql).await;
            assert!(
                is_overflow(&out) && out.contains("sum"),
                "{d}: {sql}: {out}"
            );
        }
    }
}

#[tokio::test]
async fn sums_that_fit_are_unchanged() {
    let cases = [
        "select sum(a) from t",
        "select sum(b) from t",
        "select sum(a) from t where a < 0",
        "select sum(a) filter (where a > 10) from t",
        "select b, sum(a), sum(a + 1) from t group by b order by b",
        "select x % 3, sum(x) from generate_series(1, 10000) s(x) group by x % 3 order by 1",
        "select sum(a) over (order by a rows between 1 preceding and current row) from t order by a",
        "select sum(a) over (order by a rows between 1 following and 2 following) from t order by a",
    ];
    for sql in cases {
        let expected = run(Dialect::DataFusion, sql).await.unwrap();
        for d in [Dialect::Postgres, Dialect::DuckDb] {
            let got = run(d, sql).await.unwrap();
            assert_eq!(got, expected, "{d}: {sql}");
        }
    }
    assert_eq!(
        one(Dialect::DuckDb, "select sum(a) from t where a < 0").await,
        "NULL"
    );
}

#[tokio::test]
async fn bigquery_numeric_is_decimal_38_9() {
    let sql = "select cast(1 as numeric)";
    assert_eq!(
        first_type(Dialect::DataFusion, sql).await,
        DataType::Decimal128(38, 10)
    );
    assert_eq!(
        first_type(Dialect::BigQuery, sql).await,
        DataType::Decimal128(38, 9)
    );
    assert_eq!(
        first_type(Dialect::BigQuery, "select cast(1 as decimal)").await,
        DataType::Decimal128(38, 9)
    );
    assert_eq!(
        first_type(Dialect::BigQuery, "select cast(1 as bignumeric)").await,
        DataType::Decimal256(76, 38)
    );
    // BigQuery's other type names.
    assert_eq!(
        one(
            Dialect::BigQuery,
            "select cast('42' as int64), cast('2.5' as float64)"
        )
        .await,
        "42"
    );
    // Other dialects read NUMERIC as DataFusion does.
    assert_eq!(
        first_type(Dialect::Snowflake, sql).await,
        DataType::Decimal128(38, 10)
    );
}

#[tokio::test]
async fn bigquery_numeric_products_and_quotients_keep_scale_9() {
    let sql = "select cast(1 as numeric) / 3";
    // DataFusion: a scale of its own.
    assert_ne!(
        first_type(Dialect::DataFusion, sql).await,
        DataType::Decimal128(38, 9)
    );
    assert_eq!(
        first_type(Dialect::BigQuery, sql).await,
        DataType::Decimal128(38, 9)
    );
    // NUMERIC results are rounded to 9 places half away from zero (BigQuery's rounding mode).
    let cases = [
        ("cast(1 as numeric) / 3", "0.333333333"),
        ("cast(2 as numeric) / 3", "0.666666667"),
        ("cast(-2 as numeric) / 3", "-0.666666667"),
        ("cast(2 as numeric) / -3", "-0.666666667"),
        (
            "cast('10.01' as numeric) / cast('1.1' as numeric)",
            "9.100000000",
        ),
        (
            "cast(1 as numeric) / cast('0.000000003' as numeric)",
            "333333333.333333333",
        ),
        (
            "cast('10.01' as numeric) * cast('1.1' as numeric)",
            "11.011000000",
        ),
        (
            "cast('0.000000001' as numeric) * cast('0.5' as numeric)",
            "0.000000001",
        ),
        (
            "cast('-0.000000001' as numeric) * cast('0.5' as numeric)",
            "-0.000000001",
        ),
        (
            "cast('0.000000001' as numeric) * cast('0.4' as numeric)",
            "0.000000000",
        ),
        (
            "cast('1.123456789' as numeric) * cast('1.123456789' as numeric)",
            "1.262155157",
        ),
        // An integer operand is a NUMERIC with scale 0.
        ("cast('19.99' as numeric) * 3", "59.970000000"),
        // NUMERIC's largest value, 29 digits before the point and 9 after.
        (
            "cast('99999999999999999999999999999.999999999' as numeric) * 1",
            "99999999999999999999999999999.999999999",
        ),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            one(Dialect::BigQuery, &format!("select {expr}")).await,
            expected,
            "{expr}"
        );
    }
    let out = one(
        Dialect::BigQuery,
        "select cast('99999999999999999999999999999' as numeric) * 10",
    )
    .await;
    assert!(out.contains("numeric overflow"), "{out}");
    let out = one(
        Dialect::BigQuery,
        "select cast(1 as numeric) / cast(0 as numeric)",
    )
    .await;
    assert!(out.contains("division by zero"), "{out}");
    // Over columns, NULLs stay NULL; `+` and `-` are exact in both engines.
    assert_eq!(
        one(
            Dialect::BigQuery,
            "select cast(a as numeric) / b from t order by a"
        )
        .await,
        "3.500000000,1.990000000"
    );
    assert_eq!(
        one(
            Dialect::BigQuery,
            "select cast(x as numeric) * 2 from (values (null), ('1.5')) v(x) order by x"
        )
        .await,
        "NULL,3.000000000"
    );
}
