//! Human byte sizes used in project files: `512MiB`, `4GB`, `65536`.

/// Parses a byte size: a whole number with an optional unit `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`,
/// `TB`/`TiB` (decimal and binary units as written; case-insensitive). Never panics; sizes past
/// `u64` are errors.
///
/// ```
/// use sluice_core::size::parse_size;
/// assert_eq!(parse_size("512MiB"), Ok(512 << 20));
/// assert_eq!(parse_size("4GB"), Ok(4_000_000_000));
/// assert_eq!(parse_size("65536"), Ok(65536));
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let expected =
        || format!("invalid size `{text}`; expected e.g. `512MiB`, `4GB` or a number of bytes");
    if digits.is_empty() {
        return Err(expected());
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("size `{text}` is too large"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        "tb" => 1_000_000_000_000,
        "tib" | "t" => 1 << 40,
        _ => return Err(expected()),
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_overflow_is_an_error() {
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size(" 2 mb "), Ok(2_000_000));
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("18446744073709551615TiB").is_err());
        assert!(parse_size("1.5GB").is_err());
        assert!(parse_size("").is_err());
    }
}
