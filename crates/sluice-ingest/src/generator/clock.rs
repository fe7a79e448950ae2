//! The generator's fixed time range and its timestamp text.
//!
//! Times are kept as whole seconds since the Unix epoch (`i64`) while generating, and written as
//! ISO-8601 UTC text like `2026-01-05T13:04:11Z`, the form SQLite, JSON and CSV consumers all parse.
//! The range is fixed (never "now") so that output does not depend on when it is generated.

use chrono::{DateTime, SecondsFormat};
use rand::Rng;

use super::GeneratorError;

/// Seconds in a minute.
pub(crate) const MINUTE: i64 = 60;
/// Seconds in an hour.
pub(crate) const HOUR: i64 = 3_600;
/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;
/// 2026-01-01T00:00:00Z, the start of the generated range.
pub(crate) const START: i64 = 1_767_225_600;
/// Length of the generated range in days.
pub(crate) const SPAN_DAYS: i64 = 90;
/// End of the generated range (exclusive): 2026-04-01T00:00:00Z.
pub(crate) const END: i64 = START + SPAN_DAYS * DAY;

/// `seconds` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn iso(seconds: i64) -> Result<String, GeneratorError> {
    DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .ok_or(GeneratorError::TimestampOutOfRange { seconds })
}

/// Parses RFC 3339 / ISO-8601 text with an offset (e.g. `2026-01-05T13:04:11Z`) into seconds since
/// the epoch, or `None` when it is not such a timestamp.
pub(crate) fn parse_iso(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

/// A time `delta` after `from`, kept inside the range: when `from + delta` would reach [`END`], a
/// uniformly random time in `[from, END)` instead (so late times do not pile up on one instant).
/// `from` itself is returned when it is already at or past the end.
pub(crate) fn after_within_range(rng: &mut impl Rng, from: i64, delta: i64) -> i64 {
    let to = from.saturating_add(delta.max(0));
    if to < END {
        to
    } else if from < END - 1 {
        rng.random_range(from..END)
    } else {
        from
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn start_and_end_are_the_documented_instants() {
        assert_eq!(iso(START).unwrap(), "2026-01-01T00:00:00Z");
        assert_eq!(iso(END).unwrap(), "2026-04-01T00:00:00Z");
        assert_eq!(
            iso(START + 4 * DAY + 13 * HOUR + 4 * MINUTE + 11).unwrap(),
            "2026-01-05T13:04:11Z"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        assert_eq!(
            parse_iso("2026-01-05T13:04:11Z"),
            Some(START + 4 * DAY + 47_051)
        );
        assert_eq!(parse_iso("2026-01-05 13:04:11"), None);
        assert_eq!(parse_iso(""), None);
    }

    #[test]
    fn out_of_range_timestamp_is_an_error_not_a_panic() {
        assert!(matches!(
            iso(i64::MAX),
            Err(GeneratorError::TimestampOutOfRange { .. })
        ));
    }

    #[test]
    fn after_within_range_never_passes_end_and_never_goes_back() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for from in [START, END - 10 * DAY, END - 2, END - 1, END + 5] {
            for delta in [0, 1, DAY, 30 * DAY] {
                let t = after_within_range(&mut rng, from, delta);
                assert!(t >= from, "{t} < {from}");
                assert!(t < END || t == from, "{t} past end for from={from}");
            }
        }
        assert_eq!(after_within_range(&mut rng, START, HOUR), START + HOUR);
    }
}
