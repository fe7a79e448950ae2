use super::*;
use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::Field;

fn nullable(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

fn infer(values: &[&str]) -> DataType {
    let mut inference = TextInference::default();
    values.iter().for_each(|v| inference.observe(v));
    inference.data_type()
}

#[test]
fn text_inference_follows_the_type_ladder() {
    assert_eq!(infer(&["1", "", "-7"]), DataType::Int64);
    assert_eq!(infer(&["1", "2.5"]), DataType::Float64);
    assert_eq!(infer(&["true", "FALSE"]), DataType::Boolean);
    assert_eq!(
        infer(&["2024-01-02T03:04:05Z", "2024-01-02 03:04:05+02:00"]),
        utc_micros()
    );
    assert_eq!(
        infer(&["2024-01-02T03:04:05", "2024-01-02 03:04:05.5"]),
        DataType::Timestamp(TimeUnit::Microsecond, None),
        "no offset: a timestamp without zone, as DuckDB's TIMESTAMP"
    );
    assert_eq!(infer(&["2024-01-02", ""]), DataType::Date32);
    assert_eq!(
        infer(&["2024-01-02", "2024-01-02 03:04:05"]),
        DataType::Utf8,
        "dates and date-times mixed: text, as DuckDB"
    );
    assert_eq!(infer(&["NaN", "inf"]), DataType::Utf8);
    assert_eq!(infer(&["1", "abc"]), DataType::Utf8);
    assert_eq!(infer(&["", ""]), DataType::Utf8);
    assert_eq!(
        infer(&["99999999999999999999"]),
        DataType::Float64,
        "too big for i64"
    );
}

fn strukt(fields: Vec<Field>) -> DataType {
    DataType::Struct(Fields::from(fields))
}

#[test]
fn merge_keeps_existing_order_and_types_and_unions_structs_recursively() {
    let existing = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        nullable(
            "properties",
            strukt(vec![
                nullable("a", DataType::Utf8),
                nullable("deep", strukt(vec![nullable("x", DataType::Int64)])),
            ]),
        ),
        nullable(
            "items",
            DataType::List(Arc::new(nullable(
                "item",
                strukt(vec![nullable("sku", DataType::Utf8)]),
            ))),
        ),
    ]);
    let incoming = Schema::new(vec![
        Field::new("new_col", DataType::Boolean, false),
        nullable("id", DataType::Utf8),
        nullable(
            "properties",
            strukt(vec![
                nullable(
                    "deep",
                    strukt(vec![
                        nullable("y", DataType::Float64),
                        nullable("x", DataType::Utf8),
                    ]),
                ),
                nullable("b", DataType::Int64),
            ]),
        ),
        nullable(
            "items",
            DataType::List(Arc::new(nullable(
                "item",
                strukt(vec![nullable("qty", DataType::Int64)]),
            ))),
        ),
    ]);
    let merged = merge_schemas(&existing, &incoming);
    let names: Vec<_> = merged.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "properties", "items", "new_col"]);
    assert_eq!(
        merged.field(0),
        existing.field(0),
        "existing type and nullability kept"
    );
    assert!(merged.field(3).is_nullable(), "new fields become nullable");
    let expected_props = strukt(vec![
        nullable("a", DataType::Utf8),
        nullable(
            "deep",
            strukt(vec![
                nullable("x", DataType::Int64),
                nullable("y", DataType::Float64),
            ]),
        ),
        nullable("b", DataType::Int64),
    ]);
    assert_eq!(merged.field(1).data_type(), &expected_props);
    let expected_items = DataType::List(Arc::new(nullable(
        "item",
        strukt(vec![
            nullable("sku", DataType::Utf8),
            nullable("qty", DataType::Int64),
        ]),
    )));
    assert_eq!(merged.field(2).data_type(), &expected_items);
}

#[test]
fn parse_type_name_accepts_aliases_and_rejects_the_rest() {
    assert_eq!(parse_type_name("BIGINT").unwrap(), DataType::Int64);
    assert_eq!(parse_type_name(" real ").unwrap(), DataType::Float64);
    assert_eq!(parse_type_name("varchar").unwrap(), DataType::Utf8);
    assert_eq!(parse_type_name("bool").unwrap(), DataType::Boolean);
    assert_eq!(parse_type_name("date").unwrap(), DataType::Date32);
    assert_eq!(parse_type_name("timestamp").unwrap(), utc_micros());
    assert_eq!(
        parse_type_name("decimal(10,2)").unwrap(),
        DataType::Decimal128(10, 2)
    );
    assert_eq!(
        parse_type_name("decimal (5)").unwrap(),
        DataType::Decimal128(5, 0)
    );

    let err = parse_type_name("money").unwrap_err().to_string();
    assert!(
        err.contains("`money`") && err.contains("bigint") && err.contains("decimal(p,s)"),
        "{err}"
    );
    for bad in [
        "decimal(0,0)",
        "decimal(39,2)",
        "decimal(5,6)",
        "decimal(5,-1)",
        "decimal(a,b)",
        "decimal(1,2,3)",
        "decimal",
    ] {
        let err = parse_type_name(bad).unwrap_err();
        assert!(matches!(err, FormatError::UnknownType { .. }), "{bad}");
        assert!(err.to_string().contains(bad), "{bad}: {err}");
    }
    let err = parse_type_name("decimal(39,2)").unwrap_err().to_string();
    assert!(err.contains("precision must be from 1 to 38"), "{err}");
}

#[test]
fn conform_reorders_fills_nulls_and_extends_structs() {
    let inner = Fields::from(vec![nullable("a", DataType::Int64)]);
    let props = StructArray::new(
        inner.clone(),
        vec![Arc::new(Int64Array::from(vec![1, 2]))],
        None,
    );
    let source = Arc::new(Schema::new(vec![
        nullable("name", DataType::Utf8),
        nullable("props", DataType::Struct(inner)),
    ]));
    let batch = RecordBatch::try_new(
        source,
        vec![Arc::new(StringArray::from(vec!["x", "y"])), Arc::new(props)],
    )
    .unwrap();
    let target = Arc::new(Schema::new(vec![
        nullable("id", DataType::Int64),
        nullable(
            "props",
            strukt(vec![
                nullable("a", DataType::Int64),
                nullable("b", DataType::Utf8),
            ]),
        ),
        nullable("name", DataType::Utf8),
    ]));
    let out = conform_batch(&batch, &target).unwrap();
    assert_eq!(out.schema(), target);
    assert_eq!(out.column(0).null_count(), 2);
    let props = out.column(1).as_struct();
    assert_eq!(
        props
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(1),
        2
    );
    assert_eq!(props.column(1).null_count(), 2);
    assert_eq!(out.column(2).as_string::<i32>().value(0), "x");
}

#[test]
fn missing_required_column_is_reported() {
    let existing = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        nullable("x", DataType::Utf8),
    ]);
    let err =
        check_required_columns(std::path::Path::new("f.csv"), Some(&existing), &["x"]).unwrap_err();
    assert!(err.to_string().contains("`id`"), "{err}");
    assert!(
        check_required_columns(std::path::Path::new("f.csv"), Some(&existing), &["id"]).is_ok()
    );
}

#[test]
fn merging_and_conforming_twenty_thousand_columns_is_linear() {
    // Each was a linear search per column: minutes at this width in a debug build.
    let n = 20_000;
    let fields = |names: Box<dyn Iterator<Item = usize>>| {
        names
            .map(|i| Field::new(format!("c{i}"), DataType::Int64, true))
            .collect::<Vec<_>>()
    };
    let existing = Schema::new(fields(Box::new((0..n).rev())));
    let incoming = Schema::new(fields(Box::new(n / 2..n + n / 2)));
    let merged = Arc::new(merge_schemas(&existing, &incoming));
    assert_eq!(merged.fields().len(), n + n / 2);
    assert_eq!(merged.field(0).name(), &format!("c{}", n - 1));
    let names: Vec<&str> = incoming
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    check_required_columns(std::path::Path::new("f.csv"), Some(&existing), &names).unwrap();
    let batch = RecordBatch::try_new(
        Arc::new(incoming.clone()),
        (0..n)
            .map(|i| Arc::new(Int64Array::from(vec![i as i64])) as ArrayRef)
            .collect(),
    )
    .unwrap();
    let out = conform_batch(&batch, &merged).unwrap();
    assert_eq!(out.num_columns(), n + n / 2);
    let col = |name: &str| {
        out.column_by_name(name)
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .iter()
            .next()
            .flatten()
    };
    assert_eq!(col("c0"), None);
    assert_eq!(col(&format!("c{}", n / 2)), Some(0));
    assert_eq!(col(&format!("c{}", n + n / 2 - 1)), Some(n as i64 - 1));
}
