//! Dashboards: `dashboards/*.yml`, charts over the project's tables for the web UI.
//!
//! ```yaml
//! title: Finance
//! refresh: 30s                      # the UI reloads the charts this often (optional)
//! time_range: {column: order_date, default: 30d}
//! charts:
//!   - title: Net revenue by category
//!     type: stacked_bar             # line | bar | stacked_bar | number | table
//!     asset: daily_sales_by_category
//!     x: order_date
//!     y: net_revenue                # one column or a list
//!     series: category              # optional group-by column: one line / bar segment per value
//!     agg: sum                      # sum (default) | avg | min | max | count | none
//! ```
//!
//! A dashboard is checked when the project loads: every field is known, every chart names exactly one
//! of `asset` (a model or `source.table` of the project) or `sql`, and has the columns its type needs.
//! An error names the file and, where it can be found, the line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::parse_duration;
use crate::error::ConfigError;
use crate::source::is_valid_identifier;
use crate::yaml::{Seg, from_node, parse_doc, path_text, read_text};

/// One dashboard file.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// The file name without extension (`finance`); the dashboard's address in the API and UI.
    pub name: String,
    /// Title shown above the charts (default: the name).
    pub title: String,
    /// What the dashboard is for.
    pub description: Option<String>,
    /// Auto-refresh interval as written (`30s`).
    pub refresh: Option<String>,
    /// Auto-refresh interval in seconds.
    pub refresh_seconds: Option<u64>,
    /// The time filter every chart shares.
    pub time_range: Option<TimeRange>,
    /// The charts, in order.
    pub charts: Vec<Chart>,
    /// The file it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `dashboards/<name>.yml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardFile {
    title: Option<String>,
    description: Option<String>,
    refresh: Option<String>,
    time_range: Option<TimeRange>,
    charts: Vec<Chart>,
}

/// The time filter of a dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// The date or timestamp column the range applies to (every chart's table must have it).
    pub column: String,
    /// The range shown when the page opens: a duration (`30d`, `12w`) or `all`.
    #[serde(default = "default_range")]
    pub default: String,
    /// What the range counts back from: `latest` (the newest value of the column in the chart's table,
    /// so a table loaded daily always shows its last N days) or `now`.
    #[serde(default)]
    pub anchor: RangeAnchor,
}

fn default_range() -> String {
    "30d".into()
}

/// Where a relative time range ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeAnchor {
    /// The newest value of the time column.
    #[default]
    Latest,
    /// The current time.
    Now,
}

/// One chart.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    /// Title shown on the chart.
    pub title: String,
    /// How it is drawn.
    #[serde(rename = "type")]
    pub kind: ChartKind,
    /// The asset it reads (a model, or a source table as `source.table`).
    #[serde(default)]
    pub asset: Option<String>,
    /// A read-only query it reads instead of an asset.
    #[serde(default)]
    pub sql: Option<String>,
    /// The x axis column (line, bar, stacked bar; the first column of a table).
    #[serde(default)]
    pub x: Option<String>,
    /// The value column(s).
    #[serde(default)]
    pub y: Columns,
    /// A column whose values split the data into series (one line or bar segment per value).
    #[serde(default)]
    pub series: Option<String>,
    /// How values are aggregated per x (and series).
    #[serde(default)]
    pub agg: Aggregation,
    /// Most rows a table chart shows (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// A short explanation under the title.
    #[serde(default)]
    pub description: Option<String>,
}

/// One column or a list of columns.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Columns {
    /// None given.
    #[default]
    None,
    /// `y: net_revenue`.
    One(String),
    /// `y: [orders, units]`.
    Many(Vec<String>),
}

impl Columns {
    /// The columns as a list.
    pub fn list(&self) -> Vec<String> {
        match self {
            Columns::None => Vec::new(),
            Columns::One(c) => vec![c.clone()],
            Columns::Many(cs) => cs.clone(),
        }
    }
}

/// Chart types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Lines over x.
    Line,
    /// Bars over x (series side by side).
    Bar,
    /// Bars over x with series stacked.
    StackedBar,
    /// One big number.
    Number,
    /// A table of rows.
    Table,
}

/// Aggregations of a chart's values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// `sum(y)`.
    #[default]
    Sum,
    /// `avg(y)`.
    Avg,
    /// `min(y)`.
    Min,
    /// `max(y)`.
    Max,
    /// `count(y)`.
    Count,
    /// The rows as they are, not grouped.
    None,
}

impl Aggregation {
    /// The SQL function, or `None` for no aggregation.
    pub fn sql_function(self) -> Option<&'static str> {
        match self {
            Aggregation::Sum => Some("sum"),
            Aggregation::Avg => Some("avg"),
            Aggregation::Min => Some("min"),
            Aggregation::Max => Some("max"),
            Aggregation::Count => Some("count"),
            Aggregation::None => None,
        }
    }
}

/// Reads every `*.yml` / `*.yaml` in `dir` (absent folder: none), checking each against the project's
/// `assets`. Problems go to `errors`; dashboards with problems are left out.
pub fn load_dashboards(
    dir: &Path,
    assets: &BTreeSet<String>,
    errors: &mut Vec<ConfigError>,
) -> Vec<Dashboard> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e == "yml" || e == "yaml")
        })
        .collect();
    paths.sort();
    for path in paths {
        let text = match read_text(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match parse_dashboard(&path, &text, assets) {
            Ok(d) => out.push(d),
            Err(mut es) => errors.append(&mut es),
        }
    }
    out
}

/// Parses and checks one dashboard file.
pub fn parse_dashboard(
    path: &Path,
    text: &str,
    assets: &BTreeSet<String>,
) -> Result<Dashboard, Vec<ConfigError>> {
    let doc = parse_doc(path, text).map_err(|e| vec![e])?;
    let file: DashboardFile = from_node(path, &doc, Vec::new(), &[])?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut errors = Vec::new();
    let key = |k: &str| Seg::Key(k.to_string());
    let at = |segs: &[Seg], message: String| {
        ConfigError::at(
            path,
            doc.find(segs).map(|n| n.pos),
            &path_text(segs),
            message,
        )
    };
    if !is_valid_identifier(&name) {
        errors.push(ConfigError::Invalid {
            path: path.to_path_buf(),
            field: "file name".into(),
            message: format!("`{name}` is not a valid dashboard name (letters, digits, _)"),
        });
    }
    let refresh_seconds = match &file.refresh {
        None => None,
        Some(r) => match parse_duration(r) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d.as_secs()),
            Ok(_) => {
                errors.push(at(&[key("refresh")], "must be at least 1s".into()));
                None
            }
            Err(e) => {
                errors.push(at(&[key("refresh")], e));
                None
            }
        },
    };
    if let Some(tr) = &file.time_range {
        if !is_valid_identifier(&tr.column) {
            errors.push(at(
                &[key("time_range"), key("column")],
                format!("`{}` is not a column name", tr.column),
            ));
        }
        if tr.default != "all"
            && let Err(e) = parse_duration(&tr.default)
        {
            errors.push(at(
                &[key("time_range"), key("default")],
                format!("{e}, or `all`"),
            ));
        }
    }
    if file.charts.is_empty() {
        errors.push(at(
            &[key("charts")],
            "a dashboard needs at least one chart".into(),
        ));
    }
    for (i, chart) in file.charts.iter().enumerate() {
        for problem in chart_problems(chart, assets) {
            // Point at the chart's `asset:` when it has one, else at the chart.
            let with_asset = [key("charts"), Seg::Index(i), key("asset")];
            let segs: &[Seg] = if doc.find(&with_asset).is_some() {
                &with_asset
            } else {
                &with_asset[..2]
            };
            let pos = doc.find(segs).map(|n| n.pos);
            errors.push(ConfigError::at(path, pos, &format!("charts[{i}]"), problem));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Dashboard {
        title: file.title.unwrap_or_else(|| name.clone()),
        name,
        description: file.description,
        refresh: file.refresh,
        refresh_seconds,
        time_range: file.time_range,
        charts: file.charts,
        path: path.to_path_buf(),
    })
}

/// What is wrong with one chart (empty when nothing is).
fn chart_problems(chart: &Chart, assets: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    match (&chart.asset, &chart.sql) {
        (Some(_), Some(_)) => out.push("give `asset` or `sql`, not both".into()),
        (None, None) => out.push("needs `asset` (a model or source table) or `sql`".into()),
        (Some(a), None) if !assets.contains(a) => {
            let hint = crate::graph::suggest(a, assets.iter().map(String::as_str))
                .map(|h| format!(" (did you mean `{h}`?)"))
                .unwrap_or_default();
            out.push(format!("unknown asset `{a}`{hint}"));
        }
        _ => {}
    }
    let y = chart.y.list();
    let mut columns: Vec<&str> = y.iter().map(String::as_str).collect();
    columns.extend(chart.x.as_deref());
    columns.extend(chart.series.as_deref());
    for c in columns {
        if !is_valid_identifier(c) {
            out.push(format!(
                "`{c}` is not a column name (letters, digits, _); compute it in `sql` instead"
            ));
        }
    }
    let needs_xy = matches!(
        chart.kind,
        ChartKind::Line | ChartKind::Bar | ChartKind::StackedBar
    );
    if needs_xy && chart.x.is_none() {
        out.push(format!("a {:?} chart needs `x`", chart.kind).to_lowercase());
    }
    if (needs_xy || chart.kind == ChartKind::Number) && y.is_empty() {
        out.push(format!("a {:?} chart needs `y`", chart.kind).to_lowercase());
    }
    if chart.kind == ChartKind::Number && y.len() > 1 {
        out.push("a number chart shows one `y` column".into());
    }
    if chart.kind == ChartKind::Number && chart.agg == Aggregation::None {
        out.push("a number chart needs an aggregation (`agg: sum`, avg, min, max, count)".into());
    }
    if chart.series.is_some() && y.len() > 1 {
        out.push("`series` splits one `y` column; with several `y` columns leave it out".into());
    }
    if chart.kind == ChartKind::StackedBar && chart.series.is_none() && y.len() < 2 {
        out.push("a stacked_bar chart needs `series` or several `y` columns".into());
    }
    out
}

#[cfg(test)]
#[path = "dashboard_tests.rs"]
mod tests;
