//! Every check kind against real data through the engine: it passes on good rows and fails, with a
//! sample of the offending rows, on bad ones.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use sluice_core::{CheckSpec, ModelLayer};
use sluice_quality::{CheckStatus, build_check, evaluate};
use sluice_transform::Engine;
use sluice_transform::render::RenderScope;

fn orders(
    ids: Vec<i64>,
    status: Vec<&str>,
    amount: Vec<Option<f64>>,
    customer: Vec<i64>,
    age_hours: i64,
) -> RecordBatch {
    let now = chrono::Utc::now().timestamp_micros();
    let n = ids.len();
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("customer_id", DataType::Int64, true),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(status)),
            Arc::new(Float64Array::from(amount)),
            Arc::new(Int64Array::from(customer)),
            Arc::new(
                TimestampMicrosecondArray::from(vec![now - age_hours * 3_600_000_000; n])
                    .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap()
}

fn spec(yaml: &str, column: Option<&str>) -> CheckSpec {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    CheckSpec::parse(&v, "orders", column, Path::new("schema.yml")).unwrap()
}

async fn engine() -> (tempfile::TempDir, Engine) {
    let tmp = tempfile::tempdir().unwrap();
    let lake = sluice_lake::Lake::open(tmp.path().to_str().unwrap()).unwrap();
    let engine = Engine::open(&lake, None).await.unwrap();
    let customers = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "customer_id",
            DataType::Int64,
            false,
        )])),
        vec![Arc::new(Int64Array::from(vec![10, 11]))],
    )
    .unwrap();
    engine
        .register_batches("silver.customers", customers.schema(), vec![customers])
        .unwrap();
    (tmp, engine)
}

fn scope() -> RenderScope {
    let mut s = RenderScope::default();
    s.models.insert("customers".into(), ModelLayer::Silver);
    s
}

#[tokio::test]
async fn each_check_kind_passes_on_good_data_and_fails_on_bad() {
    let (_tmp, engine) = engine().await;
    let good = orders(
        vec![1, 2, 3],
        vec!["placed", "shipped", "placed"],
        vec![Some(5.0), Some(7.5), Some(1.0)],
        vec![10, 11, 10],
        1,
    );
    let bad = orders(
        vec![1, 1, 3],
        vec!["placed", "lost", "placed"],
        vec![None, Some(-2.0), Some(1.0)],
        vec![10, 99, 10],
        72,
    );
    let cases: Vec<(CheckSpec, u64)> = vec![
        (spec("not_null", Some("amount")), 1),
        (spec("unique", Some("order_id")), 1),
        (
            spec(
                "accepted_values: {values: [placed, shipped]}",
                Some("status"),
            ),
            1,
        ),
        (
            spec(
                "relationships: {to: \"ref('customers')\", field: customer_id}",
                Some("customer_id"),
            ),
            1,
        ),
        (spec("range: {min: 0}", Some("amount")), 1),
        (spec("row_count: {min: 1, max: 3}", None), 0),
        (spec("row_count: {max: 2}", None), 1),
        (spec("expression: \"amount > 0\"", None), 2),
        (
            spec("freshness: {column: updated_at, error_after: 24h}", None),
            1,
        ),
    ];
    for (i, (s, bad_count)) in cases.iter().enumerate() {
        let check = build_check(s, &scope()).unwrap();
        engine
            .register_batches("staging.orders", good.schema(), vec![good.clone()])
            .unwrap();
        let r = evaluate(check.as_ref(), &engine, "staging.orders").await;
        let expect_good =
            if s.kind == "row_count" && s.args.contains_key("max") && !s.args.contains_key("min") {
                CheckStatus::Fail
            } else {
                CheckStatus::Pass
            };
        assert_eq!(
            r.status, expect_good,
            "case {i} {} on good data: {}",
            s.kind, r.message
        );
        engine
            .register_batches("staging.orders", bad.schema(), vec![bad.clone()])
            .unwrap();
        let r = evaluate(check.as_ref(), &engine, "staging.orders").await;
        if *bad_count == 0 {
            assert_eq!(
                r.status,
                CheckStatus::Pass,
                "case {i} {}: {}",
                s.kind,
                r.message
            );
        } else {
            assert_eq!(
                r.status,
                CheckStatus::Fail,
                "case {i} {} on bad data: {}",
                s.kind,
                r.message
            );
            assert_eq!(
                r.failing_rows, *bad_count,
                "case {i} {}: {}",
                s.kind, r.message
            );
            assert!(!r.sample.is_empty(), "case {i} {} keeps a sample", s.kind);
        }
    }
}

#[tokio::test]
async fn severity_warn_and_where_filter() {
    let (_tmp, engine) = engine().await;
    let bad = orders(
        vec![1, 2],
        vec!["placed", "cancelled"],
        vec![Some(3.0), Some(-1.0)],
        vec![10, 10],
        1,
    );
    engine
        .register_batches("staging.orders", bad.schema(), vec![bad])
        .unwrap();
    let warn = build_check(
        &spec("range: {min: 0, config: {severity: warn}}", Some("amount")),
        &scope(),
    )
    .unwrap();
    assert_eq!(
        evaluate(warn.as_ref(), &engine, "staging.orders")
            .await
            .status,
        CheckStatus::Warn
    );
    let filtered = build_check(
        &spec(
            "range: {min: 0, where: \"status <> 'cancelled'\"}",
            Some("amount"),
        ),
        &scope(),
    )
    .unwrap();
    assert_eq!(
        evaluate(filtered.as_ref(), &engine, "staging.orders")
            .await
            .status,
        CheckStatus::Pass
    );
    // A check over a column that does not exist fails with the engine's message instead of aborting.
    let broken = build_check(&spec("not_null", Some("no_such")), &scope()).unwrap();
    let r = evaluate(broken.as_ref(), &engine, "staging.orders").await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(r.message.contains("no_such"), "{}", r.message);
}
