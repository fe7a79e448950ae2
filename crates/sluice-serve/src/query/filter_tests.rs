//! Tests of the rows parameters: parsing, and their effect on a small in-memory table.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use sluice_engine::SessionContext;

use super::*;

fn params(q: &[(&str, &str)]) -> Vec<(String, String)> {
    q.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(q: &[(&str, &str)]) -> Result<RowsRequest, ApiError> {
    RowsRequest::parse(&params(q))
}

/// id, region (one null), amount.
fn table() -> DataFrame {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])),
            Arc::new(StringArray::from(vec![
                Some("north"),
                Some("south"),
                Some("North-East"),
                None,
                Some("o'neil"),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(10.0),
                Some(20.0),
                Some(5.5),
                Some(7.0),
                None,
            ])),
        ],
    )
    .unwrap();
    SessionContext::new().read_batch(batch).unwrap()
}

/// Runs the request and returns the ids (first column) in result order.
async fn ids(q: &[(&str, &str)]) -> Vec<i64> {
    let df = parse(q).unwrap().apply(table()).unwrap();
    let batches = df.collect().await.unwrap();
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn defaults_and_paging() {
    let r = parse(&[]).unwrap();
    assert_eq!((r.limit, r.offset), (DEFAULT_LIMIT, 0));
    let r = parse(&[("limit", "5"), ("offset", "10"), ("format", "csv")]).unwrap();
    assert_eq!((r.limit, r.offset), (5, 10));
    assert_eq!(r.format.as_deref(), Some("csv"));
    let e = parse(&[("limit", "100001")]).unwrap_err().to_string();
    assert!(e.contains("at most 100000"), "{e}");
    let e = parse(&[("offset", "-1")]).unwrap_err().to_string();
    assert!(e.contains("non-negative whole number"), "{e}");
    let e = parse(&[("limit", "1"), ("limit", "2")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("given twice"), "{e}");
    let e = parse(&[("cursor", "abc")]).unwrap_err().to_string();
    assert!(e.contains("cursor paging needs `order="), "{e}");
    let e = parse(&[("order", "id"), ("offset", "5"), ("cursor", "abc")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("either `cursor` or `offset`"), "{e}");
}

#[test]
fn filters_parse_postgrest_style() {
    let r = parse(&[
        ("amount", "gte.5"),
        ("region", "not.in.(north,\"a,b\",c)"),
        ("region", "like.no*"),
        ("id", "is.notnull"),
    ])
    .unwrap();
    assert_eq!(
        r.filters[0].op,
        Op::Compare(Comparison::Gte, "5".to_string())
    );
    assert!(r.filters[1].negated);
    assert_eq!(
        r.filters[1].op,
        Op::In(vec!["north".into(), "a,b".into(), "c".into()])
    );
    assert_eq!(
        r.filters[2].op,
        Op::Like {
            case_insensitive: false,
            pattern: "no%".into()
        }
    );
    assert_eq!(r.filters[3].op, Op::Is(IsValue::NotNull));
}

#[test]
fn malformed_filters_say_what_was_expected() {
    for (v, needle) in [
        ("5", "expected `<op>.<value>`"),
        (
            "between.1",
            "eq, neq, lt, lte, gt, gte, like, ilike, in, is",
        ),
        ("is.maybe", "null, notnull, true or false"),
        ("in.()", "at least one value"),
        ("in.(a", "does not end with `)`"),
        ("in.(\"a)", "double quote is not closed"),
    ] {
        let e = parse(&[("amount", v)]).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains(needle), "{v}: {e}");
        assert!(e.to_string().contains(&format!("amount={v}")), "{e}");
    }
}

#[test]
fn order_items_take_direction_and_nulls() {
    let r = parse(&[("order", "region.desc,amount,id.asc.nullsfirst")]).unwrap();
    assert_eq!(
        r.order,
        vec![
            OrderBy {
                column: "region".into(),
                descending: true,
                nulls_first: true
            },
            OrderBy {
                column: "amount".into(),
                descending: false,
                nulls_first: false
            },
            OrderBy {
                column: "id".into(),
                descending: false,
                nulls_first: true
            },
        ]
    );
    assert!(parse(&[("order", ".desc")]).is_err());
}

#[tokio::test]
async fn comparisons_are_typed_against_the_column() {
    assert_eq!(ids(&[("amount", "gt.6"), ("order", "id")]).await, [1, 2, 4]);
    assert_eq!(ids(&[("amount", "lte.7"), ("order", "id")]).await, [3, 4]);
    assert_eq!(ids(&[("id", "neq.1"), ("id", "lt.4")]).await.len(), 2);
    assert_eq!(ids(&[("region", "eq.south")]).await, [2]);
    let e = parse(&[("amount", "gt.abc")])
        .unwrap()
        .apply(table())
        .unwrap_err();
    assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
    assert!(
        e.to_string().contains("`abc` is not a valid Float64 value"),
        "{e}"
    );
}

#[tokio::test]
async fn values_are_bound_not_pasted_into_sql() {
    assert_eq!(ids(&[("region", "eq.o'neil")]).await, [5]);
    assert!(ids(&[("region", "eq.x' or '1'='1")]).await.is_empty());
}

#[tokio::test]
async fn like_in_is_and_not() {
    assert_eq!(ids(&[("region", "like.no*"), ("order", "id")]).await, [1]);
    assert_eq!(
        ids(&[("region", "ilike.north*"), ("order", "id")]).await,
        [1, 3]
    );
    assert_eq!(ids(&[("id", "in.(2,5)"), ("order", "id")]).await, [2, 5]);
    assert_eq!(ids(&[("region", "is.null")]).await, [4]);
    assert_eq!(ids(&[("amount", "is.null")]).await, [5]);
    assert_eq!(
        ids(&[("id", "not.in.1,2,3"), ("order", "id")]).await,
        [4, 5]
    );
    // like on a number compares its text.
    assert_eq!(ids(&[("amount", "like.5*")]).await, [3]);
}

#[tokio::test]
async fn order_paging_and_projection() {
    assert_eq!(
        ids(&[("order", "amount.desc.nullslast"), ("limit", "3")]).await,
        [2, 1, 4]
    );
    assert_eq!(
        ids(&[("order", "amount.desc"), ("limit", "2")]).await,
        [5, 2],
        "descending puts nulls first by default"
    );
    assert_eq!(
        ids(&[("order", "id"), ("offset", "3"), ("limit", "10")]).await,
        [4, 5]
    );
    let df = parse(&[("columns", "region,id"), ("order", "amount")])
        .unwrap()
        .apply(table())
        .unwrap();
    let names: Vec<_> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["region", "id"],
        "sorting by a column not returned works"
    );
}

#[test]
fn unknown_columns_are_named_with_the_available_ones() {
    for q in [
        vec![("columns", "id,nope")],
        vec![("nope", "eq.1")],
        vec![("order", "nope.desc")],
    ] {
        let e = parse(&q).unwrap().apply(table()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown column `nope`"), "{msg}");
        assert!(
            msg.contains("available columns: id, region, amount"),
            "{msg}"
        );
    }
    let e = parse(&[("columns", "id,id")]).unwrap_err().to_string();
    assert!(e.contains("listed twice"), "{e}");
}

#[test]
fn out_of_range_paging_is_a_400_naming_the_limit() {
    for offset in ["18446744073709551615", "1000000001"] {
        let e = parse(&[("offset", offset)]).unwrap_err();
        assert!(matches!(e, ApiError::BadParameter { .. }), "{e:?}");
        assert!(e.to_string().contains("at most 1000000000"), "{e}");
    }
    let e = parse(&[("offset", "99999999999999999999999")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-negative whole number"), "{e}");
    let e = parse(&[("limit", "18446744073709551616")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("non-negative whole number"), "{e}");
    let r = parse(&[("offset", "1000000000")]).unwrap();
    assert_eq!(r.offset, MAX_OFFSET);
}

#[tokio::test]
async fn the_largest_offset_plans_and_runs() {
    assert!(
        ids(&[("offset", "1000000000"), ("limit", "100000")])
            .await
            .is_empty()
    );
}

#[test]
fn too_many_filters_or_in_values_are_a_400() {
    let many: Vec<(String, String)> = (0..600)
        .map(|i| (format!("c{i}"), "eq.1".to_string()))
        .collect();
    let e = RowsRequest::parse(&many).unwrap_err().to_string();
    assert!(e.contains("too many filters: 600, at most 64"), "{e}");
    let at_limit: Vec<(String, String)> = (0..MAX_FILTERS)
        .map(|_| ("id".to_string(), "gte.1".to_string()))
        .chain([("limit".to_string(), "5".to_string())])
        .collect();
    assert_eq!(RowsRequest::parse(&at_limit).unwrap().filters.len(), 64);

    let list = (0..1001)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let e = parse(&[("id", format!("in.({list})").as_str())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("too many `in` values: 1001, at most 1000"),
        "{e}"
    );
    assert!(e.len() < 300, "the value is shortened: {e}");
    let list = (0..1000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    assert!(parse(&[("id", format!("in.({list})").as_str())]).is_ok());
}

#[tokio::test]
async fn sixty_four_filters_plan_and_run() {
    let q: Vec<(&str, &str)> = std::iter::repeat_n(("id", "gte.2"), MAX_FILTERS).collect();
    assert_eq!(ids(&q).await, vec![2, 3, 4, 5]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn paging_values_never_panic(limit in "[0-9]{1,25}", offset in "-?[0-9]{1,25}") {
            match parse(&[("limit", limit.as_str()), ("offset", offset.as_str())]) {
                Ok(r) => prop_assert!(r.limit <= MAX_LIMIT && r.offset <= MAX_OFFSET),
                Err(e) => prop_assert!(matches!(e, ApiError::BadParameter { .. }), "{e:?}"),
            }
        }

        #[test]
        fn filters_never_panic(key in "[a-z]{1,3}", value in "\\PC{0,30}") {
            let _ = parse(&[(key.as_str(), value.as_str())]);
        }
    }
}
