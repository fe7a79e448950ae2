//! Recognising dates and date-times in text, for type inference (CSV fields, JSON strings).
//!
//! The shapes are DuckDB's: a date is `YYYY-MM-DD`; a date-time is a date, `T` or a space, a time
//! (`HH:MM:SS[.fff…]`) and optionally `Z` or an offset. Arrow's parser, which the conversion uses,
//! must accept the value too, so whatever is inferred also converts (it wants the seconds: DuckDB's
//! `2025-07-19 20:25` stays text here).

use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::NaiveDate;

/// Whether `v` (trimmed) is a calendar date `YYYY-MM-DD`.
pub(crate) fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
}

/// `Some(has_offset)` when `v` (trimmed) is an ISO 8601 date-time, `None` otherwise.
pub(crate) fn timestamp_shape(v: &str) -> Option<bool> {
    let b = v.as_bytes();
    // A date, a separator and at least `HH:MM`.
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || !b[11..13].iter().all(u8::is_ascii_digit) {
        return None;
    }
    string_to_datetime(&chrono::Utc, v).ok()?;
    // Whatever follows the time's digits, colons and fraction is a zone: `Z`, `+02:00`, a name.
    let zone = v[11..].trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == '.');
    Some(!zone.trim().is_empty())
}

/// Whether the values of a column are all dates, or all date-times; see [`super::schema::TextInference`]
/// for the types that follows.
#[derive(Debug, Clone)]
pub(crate) struct TemporalInference {
    date: bool,
    timestamp: bool,
    /// Some date-time seen so far carries a zone.
    offset: bool,
    seen: bool,
}

impl Default for TemporalInference {
    fn default() -> Self {
        TemporalInference {
            date: true,
            timestamp: true,
            offset: false,
            seen: false,
        }
    }
}

impl TemporalInference {
    /// Takes one text value into account, as it is (the caller trims, or treats empty as null).
    pub(crate) fn observe(&mut self, v: &str) {
        self.seen = true;
        if self.date && !is_date(v) {
            self.date = false;
        }
        if self.timestamp {
            match timestamp_shape(v) {
                Some(has_offset) => self.offset |= has_offset,
                None => self.timestamp = false,
            }
        }
    }

    /// A value that is not text (a JSON number, object…): the column is neither.
    pub(crate) fn observe_non_text(&mut self) {
        self.date = false;
        self.timestamp = false;
    }

    /// Whether further values can still change the answer.
    pub(crate) fn is_settled(&self) -> bool {
        self.seen && !(self.date || self.timestamp)
    }

    /// Date32 when every value is a date; a timestamp when every value is a date-time:
    /// Timestamp(µs, UTC) if one carries a zone (DuckDB's TIMESTAMP WITH TIME ZONE; the others
    /// are read as UTC), else Timestamp(µs) (DuckDB's TIMESTAMP). `None` otherwise, also for a mix
    /// of dates and date-times (DuckDB reads those as text).
    pub(crate) fn data_type(&self) -> Option<DataType> {
        if !self.seen {
            None
        } else if self.date {
            Some(DataType::Date32)
        } else if self.timestamp && self.offset {
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into()),
            ))
        } else if self.timestamp {
            Some(DataType::Timestamp(TimeUnit::Microsecond, None))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_date_times_in_duckdb_shapes() {
        assert!(is_date("2025-07-19"));
        assert!(!is_date("2025-02-30"));
        assert!(!is_date("2025-7-19"));
        assert!(!is_date("20250719"));
        assert_eq!(timestamp_shape("2025-07-19 20:25:47"), Some(false));
        assert_eq!(timestamp_shape("2025-07-19T20:25:47"), Some(false));
        assert_eq!(timestamp_shape("2025-07-19 20:25:47.123456"), Some(false));
        assert_eq!(timestamp_shape("2025-07-19T20:25:47Z"), Some(true));
        assert_eq!(timestamp_shape("2025-07-19 20:25:47.123+02:00"), Some(true));
        assert_eq!(timestamp_shape("2025-07-19T20:25:47-05:00"), Some(true));
        assert_eq!(
            timestamp_shape("2025-07-19"),
            None,
            "a date is not a date-time"
        );
        assert_eq!(timestamp_shape("2025-07-19 25:00:00"), None);
        assert_eq!(timestamp_shape("2025-07-19 is a day"), None);
        assert_eq!(timestamp_shape("1,2,3"), None);
    }

    fn infer(values: &[&str]) -> Option<DataType> {
        let mut inference = TemporalInference::default();
        values.iter().for_each(|v| inference.observe(v));
        inference.data_type()
    }

    #[test]
    fn a_column_is_temporal_only_when_every_value_is() {
        let naive = DataType::Timestamp(TimeUnit::Microsecond, None);
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(infer(&["2025-07-19", "2025-07-20"]), Some(DataType::Date32));
        assert_eq!(
            infer(&["2025-07-19 20:25:47", "2025-07-19T20:25:00"]),
            Some(naive)
        );
        assert_eq!(
            infer(&["2025-07-19 20:25:47", "2025-07-19T20:25:47Z"]),
            Some(utc),
            "as DuckDB: one zone makes the column zoned"
        );
        assert_eq!(infer(&["2025-07-19", "2025-07-19 20:25:47"]), None);
        assert_eq!(
            infer(&["2025-07-19", ""]),
            None,
            "an empty string is not a date"
        );
        assert_eq!(infer(&[]), None);
        let mut mixed = TemporalInference::default();
        mixed.observe("2025-07-19");
        mixed.observe_non_text();
        assert_eq!(mixed.data_type(), None);
        assert!(mixed.is_settled());
    }
}
