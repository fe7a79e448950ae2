use super::*;

fn assets() -> BTreeSet<String> {
    ["daily_sales_by_category", "shop_app.orders"]
        .into_iter()
        .map(String::from)
        .collect()
}

const FINANCE: &str = "\
title: Finance
refresh: 30s
time_range: {column: order_date, default: 90d}
charts:
  - title: Net revenue by category
    type: stacked_bar
    asset: daily_sales_by_category
    x: order_date
    y: net_revenue
    series: category
  - title: Orders
    type: number
    asset: daily_sales_by_category
    y: orders
  - title: Top days
    type: table
    sql: select order_date, sum(net_revenue) as revenue from gold.daily_sales_by_category group by 1
    limit: 10
";

#[test]
fn parses_a_dashboard() {
    let d = parse_dashboard(Path::new("dashboards/finance.yml"), FINANCE, &assets()).unwrap();
    assert_eq!(d.name, "finance");
    assert_eq!(d.title, "Finance");
    assert_eq!(d.refresh_seconds, Some(30));
    let tr = d.time_range.as_ref().unwrap();
    assert_eq!(
        (tr.column.as_str(), tr.default.as_str()),
        ("order_date", "90d")
    );
    assert_eq!(tr.anchor, RangeAnchor::Latest);
    assert_eq!(d.charts.len(), 3);
    assert_eq!(d.charts[0].kind, ChartKind::StackedBar);
    assert_eq!(d.charts[0].y.list(), ["net_revenue"]);
    assert_eq!(d.charts[0].agg, Aggregation::Sum);
    assert_eq!(d.charts[2].limit, Some(10));
}

#[test]
fn several_y_columns_are_a_list() {
    let text =
        "charts:\n  - {title: t, type: line, asset: shop_app.orders, x: d, y: [a, b], agg: avg}\n";
    let d = parse_dashboard(Path::new("ops.yml"), text, &assets()).unwrap();
    assert_eq!(d.title, "ops");
    assert_eq!(d.charts[0].y.list(), ["a", "b"]);
    assert_eq!(d.charts[0].agg.sql_function(), Some("avg"));
}

#[test]
fn unknown_asset_is_an_error_with_line_and_suggestion() {
    let text = FINANCE.replacen(
        "asset: daily_sales_by_category\n    x:",
        "asset: daily_sales_by_categry\n    x:",
        1,
    );
    let errs = parse_dashboard(Path::new("finance.yml"), &text, &assets()).unwrap_err();
    assert_eq!(errs.len(), 1);
    let msg = errs[0].to_string();
    assert!(msg.starts_with("finance.yml:7:"), "{msg}");
    assert!(
        msg.contains("field `charts[0]`: unknown asset `daily_sales_by_categry`"),
        "{msg}"
    );
    assert!(
        msg.contains("did you mean `daily_sales_by_category`"),
        "{msg}"
    );
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let text = FINANCE.replace("    series: category\n", "    serie: category\n");
    let errs = parse_dashboard(Path::new("finance.yml"), &text, &assets()).unwrap_err();
    let msg = errs[0].to_string();
    assert!(msg.starts_with("finance.yml:"), "{msg}");
    assert!(msg.contains("unknown field `serie`"), "{msg}");
}

#[test]
fn chart_shape_problems_are_reported_together() {
    let text = "\
refresh: soon
charts:
  - {title: a, type: line, asset: shop_app.orders}
  - {title: b, type: number, asset: shop_app.orders, y: [x, y]}
  - {title: c, type: stacked_bar, asset: shop_app.orders, x: d, y: v}
  - {title: d, type: table, asset: shop_app.orders, sql: select 1}
  - {title: e, type: bar, sql: select 1, x: \"a; drop\", y: v}
";
    let errs = parse_dashboard(Path::new("bad.yml"), text, &assets()).unwrap_err();
    let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let joined = all.join("\n");
    for expected in [
        "bad.yml:1:10: field `refresh`: invalid duration `soon`",
        "field `charts[0]`: a line chart needs `x`",
        "field `charts[0]`: a line chart needs `y`",
        "field `charts[1]`: a number chart shows one `y` column",
        "field `charts[2]`: a stacked_bar chart needs `series`",
        "field `charts[3]`: give `asset` or `sql`, not both",
        "field `charts[4]`: `a; drop` is not a column name",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in\n{joined}"
        );
    }
    assert!(all[1].starts_with("bad.yml:3:"), "{}", all[1]);
}

#[test]
fn bad_default_range_is_an_error() {
    let text = "time_range: {column: d, default: forever}\ncharts:\n  - {title: t, type: table, asset: shop_app.orders}\n";
    let errs = parse_dashboard(Path::new("x.yml"), text, &assets()).unwrap_err();
    assert!(
        errs[0].to_string().contains("time_range.default"),
        "{}",
        errs[0]
    );
    let ok = text.replace("forever", "all");
    assert!(parse_dashboard(Path::new("x.yml"), &ok, &assets()).is_ok());
}

#[test]
fn loads_a_folder_and_skips_a_missing_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut errors = Vec::new();
    assert!(load_dashboards(&tmp.path().join("dashboards"), &assets(), &mut errors).is_empty());
    std::fs::write(tmp.path().join("finance.yml"), FINANCE).unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "not a dashboard").unwrap();
    let found = load_dashboards(tmp.path(), &assets(), &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "finance");
}
