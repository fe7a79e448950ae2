//! Human durations used in project files: `90s`, `15m`, `24h`, `7d`.

use std::time::Duration;

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h`, `d` or `w`; several parts may be combined (`1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; expected e.g. `30m`, `24h`, `7d`".into());
    }
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut parts = 0;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            unit = "ms".into();
        }
        let value: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration `{text}`; expected e.g. `30m`, `24h`, `7d`"))?;
        let secs = match unit.as_str() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86400.0,
            "w" => value * 7.0 * 86400.0,
            other => {
                return Err(format!(
                    "invalid duration unit `{other}` in `{text}`; expected ms, s, m, h, d or w"
                ));
            }
        };
        total += Duration::from_secs_f64(secs);
        num.clear();
        parts += 1;
    }
    if !num.is_empty() || parts == 0 {
        return Err(format!(
            "duration `{text}` has no unit; expected e.g. `30m`, `24h`, `7d`"
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5y").unwrap_err().contains("unit `y`"));
    }
}
