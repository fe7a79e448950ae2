//! Human durations used in project files: `90s`, `15m`, `24h`, `7d`.

use std::time::Duration;

/// The longest duration accepted: 100 years of 365 days. Bounding here keeps every later use
/// (`Instant + d`, `chrono::Duration::from_std`, `DateTime + d`, backoff doubling) far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The units accepted; humantime knows more (`y`, `M`, `ns`, ...) but the documented syntax is these.
const UNITS: [&str; 6] = ["ms", "s", "m", "h", "d", "w"];

const EXAMPLES: &str = "expected e.g. `30m`, `24h`, `7d`";

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h`, `d` or `w`; several parts may be combined
/// (`1h30m`) and a number may have a fraction (`1.5h`). At most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty duration; {EXAMPLES}"));
    }
    // humantime takes a bare `0` and more units than documented: check the shape first so that
    // every number has one of our units (the chained `0` closes the last unit).
    let mut unit = String::new();
    let mut digits = false;
    for c in s.chars().chain(std::iter::once('0')) {
        if c.is_ascii_digit() || c == '.' || c.is_whitespace() {
            if !unit.is_empty() {
                if !UNITS.contains(&unit.as_str()) {
                    return Err(format!(
                        "invalid duration unit `{unit}` in `{text}`; expected ms, s, m, h, d or w"
                    ));
                }
                unit.clear();
                digits = false;
            }
            digits |= c.is_ascii_digit();
        } else if c.is_ascii_alphabetic() {
            if !digits && unit.is_empty() {
                return Err(format!("invalid duration `{text}`; {EXAMPLES}"));
            }
            unit.push(c);
        } else {
            return Err(format!(
                "invalid character {c:?} in duration `{text}`; {EXAMPLES}"
            ));
        }
    }
    if s.ends_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(format!("duration `{text}` has no unit; {EXAMPLES}"));
    }
    let d = humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => too_long(text),
        other => format!("invalid duration `{text}`: {other}; {EXAMPLES}"),
    })?;
    if d > MAX_DURATION {
        return Err(too_long(text));
    }
    Ok(d)
}

fn too_long(text: &str) -> String {
    format!("duration `{text}` is out of range: at most 36500d (100 years), in whole nanoseconds")
}

/// `count` periods of `unit_secs` seconds (dbt's `{count: 12, period: hour}`), within
/// [`MAX_DURATION`]; a negative, non-finite or too large count is an error.
pub fn duration_from_count(count: f64, unit_secs: f64) -> Result<Duration, String> {
    let secs = count * unit_secs;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "`count` must be a non-negative number, found {count}"
        ));
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!(
            "{count} periods is out of range: at most 36500 days (100 years)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(1_209_600)
        );
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration(" 1h 30m ").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("0").unwrap_err().contains("no unit"));
        assert!(parse_duration("1h30").unwrap_err().contains("no unit"));
        assert!(parse_duration("5y").unwrap_err().contains("unit `y`"));
        assert!(parse_duration("5M").unwrap_err().contains("unit `M`"));
        assert!(parse_duration("5ns").unwrap_err().contains("unit `ns`"));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("1..5s").is_err());
    }

    #[test]
    fn huge_values_are_errors_naming_the_maximum() {
        for text in [
            "99999999999999999999d",
            "18446744073709551615s",
            "18446744073709551616s",
            "36501d",
            "9999999999999999999999999999999999999999w",
            "5000000000000000000ms",
            "1e30s",
        ] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.contains(&format!("`{text}`")), "{e}");
        }
        let e = parse_duration("99999999999999999999d").unwrap_err();
        assert!(e.contains("at most 36500d (100 years)"), "{e}");
        assert_eq!(parse_duration("36500d").unwrap(), MAX_DURATION);
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(
            duration_from_count(12.0, 3600.0),
            Ok(Duration::from_secs(43_200))
        );
        assert!(duration_from_count(-1.0, 60.0).is_err());
        assert!(duration_from_count(f64::NAN, 60.0).is_err());
        assert!(
            duration_from_count(1e30, 86400.0)
                .unwrap_err()
                .contains("100 years")
        );
    }

    fn unit() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "", "ms", "s", "m", "h", "d", "w", "y", "M", "ns", "us", "min", "x", ".",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn digits_with_units_never_panic(
            parts in prop::collection::vec(("[0-9]{1,40}", "(\\.[0-9]{1,12})?", unit()), 1..4),
            space in any::<bool>(),
        ) {
            let sep = if space { " " } else { "" };
            let text = parts
                .iter()
                .map(|(n, f, u)| format!("{n}{f}{u}"))
                .collect::<Vec<_>>()
                .join(sep);
            match parse_duration(&text) {
                Ok(d) => prop_assert!(d <= MAX_DURATION, "{text}: {d:?}"),
                Err(e) => prop_assert!(e.contains(&format!("`{text}`")) || e.contains("empty"), "{text}: {e}"),
            }
        }

        #[test]
        fn garbage_never_panics(text in "\\PC{0,60}") {
            if let Ok(d) = parse_duration(&text) {
                prop_assert!(d <= MAX_DURATION);
            }
        }

        #[test]
        fn counts_never_panic(count in any::<f64>(), unit in prop::sample::select(vec![60.0, 3600.0, 86400.0])) {
            if let Ok(d) = duration_from_count(count, unit) {
                prop_assert!(d <= MAX_DURATION);
            }
        }
    }
}
