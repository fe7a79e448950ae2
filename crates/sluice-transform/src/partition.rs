//! Time partitions: `partition_by: {field: order_ts, granularity: day, start: "2024-01-01", lookback: 2}`.
//!
//! A time-partitioned model's table carries a string column [`PARTITION_COLUMN`] (`2024-05-01` for a
//! day, `2024-05-01T13` for an hour) and is Delta-partitioned by it. Partitions are numbered by
//! their index: whole granularity units since 1970-01-01T00:00:00 UTC, so a range of partitions is a
//! pair of integers (what the state database stores). Building one partition renders the model with
//! the Jinja variables `partition_start`, `partition_end` (half-open, `YYYY-MM-DD HH:MM:SS`) and
//! `partition_key`, keeps only the output rows whose `field` falls in that window, and replaces
//! exactly that partition of the table.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// The partition column added to a time-partitioned model's table.
pub const PARTITION_COLUMN: &str = "_partition";

/// Environment variable that fixes "now" (RFC 3339, `YYYY-MM-DD HH:MM:SS` or a date) for the
/// partitions a plain run builds; tests use it as a controllable clock.
pub const NOW_ENV: &str = "SLUICE_NOW";

/// The size of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One partition per UTC day, keys `YYYY-MM-DD`.
    Day,
    /// One partition per UTC hour, keys `YYYY-MM-DDTHH`.
    Hour,
}

impl Granularity {
    /// The config value.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Hour => "hour",
        }
    }

    /// Seconds in one partition.
    pub fn seconds(self) -> i64 {
        match self {
            Granularity::Day => 86_400,
            Granularity::Hour => 3_600,
        }
    }

    /// The `strftime` pattern of a key (also what DataFusion's `to_char` takes).
    pub fn key_format(self) -> &'static str {
        match self {
            Granularity::Day => "%Y-%m-%d",
            Granularity::Hour => "%Y-%m-%dT%H",
        }
    }

    /// The index of the partition holding `t`.
    pub fn index_of(self, t: NaiveDateTime) -> i64 {
        t.and_utc().timestamp().div_euclid(self.seconds())
    }

    /// The first instant of partition `index`.
    pub fn start_of(self, index: i64) -> NaiveDateTime {
        DateTime::from_timestamp(index.saturating_mul(self.seconds()), 0)
            .unwrap_or_default()
            .naive_utc()
    }

    /// The key of partition `index` (`2024-05-01` or `2024-05-01T13`).
    pub fn key(self, index: i64) -> String {
        self.start_of(index).format(self.key_format()).to_string()
    }

    /// The partition holding a point in time written as a key, a date, `YYYY-MM-DD HH:MM[:SS]`,
    /// `YYYY-MM-DDTHH[:MM[:SS]]` or RFC 3339.
    pub fn parse(self, text: &str) -> Result<i64, String> {
        parse_instant(text)
            .map(|t| self.index_of(t))
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a date or time (expected e.g. 2024-05-01 or 2024-05-01T13)"
                )
            })
    }
}

/// A point in time from text (see [`Granularity::parse`]).
pub fn parse_instant(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.naive_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    let t = t.trim_end_matches('Z');
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d);
        }
    }
    // `2024-05-01T13`: an hour key.
    let (date, hour) = t.split_once(['T', ' '])?;
    let hour: u32 = hour.parse().ok()?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(hour, 0, 0)
}

/// "Now" for partition selection: `SLUICE_NOW` when set, else the system clock.
pub fn now() -> NaiveDateTime {
    std::env::var(NOW_ENV)
        .ok()
        .and_then(|v| parse_instant(&v))
        .unwrap_or_else(|| Utc::now().naive_utc())
}

/// A model's `partition_by` in its dict form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimePartition {
    /// The event-time column of the model's output (a date, timestamp, or ISO text).
    pub field: String,
    /// Day or hour.
    pub granularity: Granularity,
    /// The first partition (index), for `--missing` and the first build; `None` = unbounded.
    pub start: Option<i64>,
    /// How many of the most recent partitions a plain run rebuilds (at least 1).
    pub lookback: u32,
}

impl TimePartition {
    /// Parses the dict form. The error is `(field, message)`, `field` like `partition_by.start`.
    pub fn from_map(map: &Map<String, Value>) -> Result<TimePartition, (String, String)> {
        let bad = |k: &str, m: String| (format!("partition_by.{k}"), m);
        for key in map.keys() {
            if !["field", "granularity", "start", "lookback", "data_type"].contains(&key.as_str()) {
                return Err(bad(
                    key,
                    "unknown key; expected field, granularity, start, lookback (or data_type)"
                        .into(),
                ));
            }
        }
        let field = match map.get("field") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(other) => {
                return Err(bad(
                    "field",
                    format!("expected a column name, found {other}"),
                ));
            }
            None => {
                return Err(bad(
                    "field",
                    "missing: the event-time column to partition on".into(),
                ));
            }
        };
        if field == PARTITION_COLUMN {
            return Err(bad(
                "field",
                format!(
                    "`{PARTITION_COLUMN}` is the partition column Sluice adds; name the event-time column"
                ),
            ));
        }
        if let Some(t) = map.get("data_type") {
            match t.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("date" | "timestamp" | "datetime") => {}
                _ => {
                    return Err(bad(
                        "data_type",
                        format!(
                            "{t} is not supported; expected date, timestamp or datetime (integer ranges are not supported)"
                        ),
                    ));
                }
            }
        }
        let granularity = match map.get("granularity") {
            None => Granularity::Day,
            Some(v) => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("day") => Granularity::Day,
                Some("hour") => Granularity::Hour,
                _ => {
                    return Err(bad(
                        "granularity",
                        format!("{v} is not supported; expected day or hour"),
                    ));
                }
            },
        };
        let start = match map.get("start") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(granularity.parse(s).map_err(|m| bad("start", m))?),
            Some(other) => {
                return Err(bad(
                    "start",
                    format!("expected a date like \"2024-01-01\", found {other}"),
                ));
            }
        };
        let lookback = match map.get("lookback") {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    bad(
                        "lookback",
                        format!("expected a whole number of partitions, at least 1, found {v}"),
                    )
                })?,
        };
        Ok(TimePartition {
            field,
            granularity,
            start,
            lookback,
        })
    }

    /// The partition holding `now`.
    pub fn current(&self, now: NaiveDateTime) -> i64 {
        self.granularity.index_of(now)
    }

    /// The partitions a plain run rebuilds: the `lookback` most recent up to the one holding `now`,
    /// as an inclusive range of indices (never before `start`).
    pub fn recent(&self, now: NaiveDateTime) -> (i64, i64) {
        let hi = self.current(now);
        let mut lo = hi - i64::from(self.lookback) + 1;
        if let Some(s) = self.start {
            lo = lo.max(s.min(hi));
        }
        (lo, hi)
    }

    /// The window of partitions `lo..=hi`.
    pub fn window(&self, lo: i64, hi: i64) -> PartitionWindow {
        PartitionWindow::new(self.granularity, lo, hi)
    }

    /// The key of partition `index`.
    pub fn key(&self, index: i64) -> String {
        self.granularity.key(index)
    }
}

/// The time window of one partition (or, for a first build, of a run of partitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWindow {
    /// Granularity of the partitions.
    pub granularity: Granularity,
    /// First partition (index).
    pub first: i64,
    /// Last partition (index), inclusive.
    pub last: i64,
}

impl PartitionWindow {
    /// Partitions `first..=last`.
    pub fn new(granularity: Granularity, first: i64, last: i64) -> PartitionWindow {
        PartitionWindow {
            granularity,
            first,
            last: last.max(first),
        }
    }

    /// One partition.
    pub fn single(&self) -> bool {
        self.first == self.last
    }

    /// `partition_start`: the first instant, `YYYY-MM-DD HH:MM:SS`.
    pub fn start(&self) -> String {
        fmt_ts(self.granularity.start_of(self.first))
    }

    /// `partition_end`: the instant after the window (exclusive), `YYYY-MM-DD HH:MM:SS`.
    pub fn end(&self) -> String {
        fmt_ts(self.granularity.start_of(self.last + 1))
    }

    /// `partition_key`: the key of the first partition.
    pub fn key(&self) -> String {
        self.granularity.key(self.first)
    }

    /// The Jinja variables `partition_start`, `partition_end`, `partition_key`.
    pub fn vars(&self) -> [(&'static str, String); 3] {
        [
            ("partition_start", self.start()),
            ("partition_end", self.end()),
            ("partition_key", self.key()),
        ]
    }
}

fn fmt_ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Jinja values outside a partition build (compiling, or a model that is not time-partitioned):
/// a window over all time, so that the SQL still renders and reads everything.
pub fn unbounded_vars() -> [(&'static str, String); 3] {
    [
        ("partition_start", "1970-01-01 00:00:00".to_string()),
        ("partition_end", "9999-12-31 00:00:00".to_string()),
        ("partition_key", String::new()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tp(v: Value) -> Result<TimePartition, (String, String)> {
        TimePartition::from_map(v.as_object().unwrap())
    }

    #[test]
    fn keys_and_windows() {
        let day = Granularity::Day;
        let i = day.parse("2024-05-01").unwrap();
        assert_eq!(day.key(i), "2024-05-01");
        assert_eq!(day.parse("2024-05-01T23:59:59Z").unwrap(), i);
        let w = PartitionWindow::new(day, i, i);
        assert_eq!(w.start(), "2024-05-01 00:00:00");
        assert_eq!(w.end(), "2024-05-02 00:00:00");
        let hour = Granularity::Hour;
        let h = hour.parse("2024-05-01T13").unwrap();
        assert_eq!(hour.key(h), "2024-05-01T13");
        assert_eq!(hour.parse("2024-05-01 13:30").unwrap(), h);
        let w = PartitionWindow::new(hour, h, h);
        assert_eq!(w.end(), "2024-05-01 14:00:00");
        assert_eq!(day.key(day.parse("1969-12-31").unwrap()), "1969-12-31");
    }

    #[test]
    fn parses_the_dict_form() {
        let t = tp(json!({"field": "order_ts", "granularity": "hour", "start": "2024-01-01", "lookback": 3})).unwrap();
        assert_eq!(t.granularity, Granularity::Hour);
        assert_eq!(t.key(t.start.unwrap()), "2024-01-01T00");
        let now = parse_instant("2024-01-01T01:10:00Z").unwrap();
        assert_eq!(t.recent(now), (t.start.unwrap(), t.start.unwrap() + 1));
        let d = tp(json!({"field": "d", "data_type": "date"})).unwrap();
        assert_eq!(
            (d.granularity, d.lookback, d.start),
            (Granularity::Day, 1, None)
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        for (v, field) in [
            (json!({"granularity": "day"}), "partition_by.field"),
            (
                json!({"field": "x", "granularity": "week"}),
                "partition_by.granularity",
            ),
            (
                json!({"field": "x", "start": "yesterday"}),
                "partition_by.start",
            ),
            (
                json!({"field": "x", "lookback": 0}),
                "partition_by.lookback",
            ),
            (
                json!({"field": "x", "data_type": "int64"}),
                "partition_by.data_type",
            ),
            (
                json!({"field": "x", "colour": "red"}),
                "partition_by.colour",
            ),
        ] {
            assert_eq!(tp(v).unwrap_err().0, field);
        }
    }
    #[test]
    fn renders_the_window_and_all_time_outside_one() {
        let scope = crate::render::RenderScope::default();
        let sql =
            "t >= '{{ partition_start }}' and t < '{{ partition_end }}' /* {{ partition_key }} */";
        let path = std::path::Path::new("m.sql");
        let i = Granularity::Hour.parse("2024-05-01T13").unwrap();
        let w = PartitionWindow::new(Granularity::Hour, i, i);
        let r = crate::render::render_in_window(sql, path, &scope, None, true, Some(&w)).unwrap();
        assert_eq!(
            r.sql,
            "t >= '2024-05-01 13:00:00' and t < '2024-05-01 14:00:00' /* 2024-05-01T13 */"
        );
        let r = crate::render::render(sql, path, &scope, None, false).unwrap();
        assert_eq!(
            r.sql,
            "t >= '1970-01-01 00:00:00' and t < '9999-12-31 00:00:00' /*  */"
        );
    }

    #[test]
    fn model_config_errors_name_the_file_and_field() {
        use crate::compiled::ModelConfig;
        let path = std::path::Path::new("models/gold/m.sql");
        let cfg = |v: Value| ModelConfig::from_map(v.as_object().unwrap(), path);
        let e = cfg(json!({"partition_by": {"field": "x", "granularity": "week"}}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("models/gold/m.sql") && e.contains("partition_by.granularity"),
            "{e}"
        );
        let e = cfg(json!({"materialized": "view", "partition_by": {"field": "x"}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("partition_by") && e.contains("view"), "{e}");
        let c = cfg(json!({"partition_by": {"field": "x", "granularity": "hour", "lookback": 3}}))
            .unwrap();
        assert_eq!(c.partition_by, [PARTITION_COLUMN]);
        assert_eq!(c.time_partition.unwrap().lookback, 3);
        let c = cfg(json!({"partition_by": ["a", "b"]})).unwrap();
        assert_eq!(c.partition_by, ["a", "b"]);
        assert!(c.time_partition.is_none());
    }
}
