//! PostgreSQL `numeric` values from the binary wire format, exactly.
//!
//! A `numeric` is sent as base-10000 digits with a weight, a sign and a display scale. It is turned
//! into an unscaled `i128` for an Arrow decimal only when that needs no rounding and fits the
//! column's precision; otherwise the caller quarantines the row with the reason. Its text form is
//! the exact decimal, as PostgreSQL prints it.

/// A `numeric` in PostgreSQL's binary form: base-10000 digits with a weight (the power of 10000 of
/// the first digit), a sign and a display scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Numeric {
    digits: Vec<i16>,
    weight: i16,
    sign: u16,
    dscale: u16,
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

impl Numeric {
    /// Parses the binary form.
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, String> {
        let word = |i: usize| -> Result<[u8; 2], String> {
            raw.get(i * 2..i * 2 + 2)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| "malformed numeric: truncated".to_string())
        };
        let ndigits = i16::from_be_bytes(word(0)?);
        let weight = i16::from_be_bytes(word(1)?);
        let sign = u16::from_be_bytes(word(2)?);
        let dscale = u16::from_be_bytes(word(3)?);
        let ndigits =
            usize::try_from(ndigits).map_err(|_| "malformed numeric: digit count".to_string())?;
        let digits = (0..ndigits)
            .map(|i| {
                let d = i16::from_be_bytes(word(4 + i)?);
                if (0..10_000).contains(&d) {
                    Ok(d)
                } else {
                    Err(format!("malformed numeric: digit {d}"))
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Numeric {
            digits,
            weight,
            sign,
            dscale,
        })
    }

    /// The value as an unscaled integer at `scale`, if it is finite, needs no rounding and has at
    /// most `precision` digits.
    pub(crate) fn to_decimal(&self, precision: u8, scale: i8) -> Result<i128, String> {
        match self.sign {
            NUMERIC_NAN | NUMERIC_PINF | NUMERIC_NINF => {
                return Err(format!(
                    "numeric `{self}` has no decimal({precision},{scale}) value"
                ));
            }
            _ => {}
        }
        let overflow = || format!("numeric {self} does not fit decimal({precision},{scale})");
        let mut unscaled: i128 = 0;
        for (i, &d) in self.digits.iter().enumerate() {
            let d = i128::from(d);
            // This digit is worth d × 10000^(weight - i); at the column scale, d × 10^exp.
            let exp = 4 * (i64::from(self.weight) - i as i64) + i64::from(scale);
            let term = if exp >= 0 {
                let e = u32::try_from(exp).map_err(|_| overflow())?;
                if d == 0 {
                    0
                } else {
                    10i128
                        .checked_pow(e)
                        .and_then(|p| p.checked_mul(d))
                        .ok_or_else(overflow)?
                }
            } else {
                let div = u32::try_from(-exp)
                    .ok()
                    .and_then(|e| 10i128.checked_pow(e))
                    .unwrap_or(i128::MAX);
                if d % div != 0 {
                    return Err(format!(
                        "numeric {self} has more than {scale} digits after the point; \
                         decimal({precision},{scale}) would round it"
                    ));
                }
                d / div
            };
            unscaled = unscaled.checked_add(term).ok_or_else(overflow)?;
        }
        let limit = 10i128
            .checked_pow(u32::from(precision))
            .unwrap_or(i128::MAX);
        if unscaled >= limit {
            return Err(overflow());
        }
        Ok(if self.sign == NUMERIC_NEG {
            -unscaled
        } else {
            unscaled
        })
    }
}

impl std::fmt::Display for Numeric {
    /// Exact decimal text, with `dscale` digits after the point, as PostgreSQL prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sign {
            NUMERIC_NAN => return f.write_str("NaN"),
            NUMERIC_PINF => return f.write_str("Infinity"),
            NUMERIC_NINF => return f.write_str("-Infinity"),
            _ => {}
        }
        let digit = |i: i64| -> i16 {
            usize::try_from(i)
                .ok()
                .and_then(|i| self.digits.get(i).copied())
                .unwrap_or(0)
        };
        let weight = i64::from(self.weight);
        let mut out = String::new();
        if self.sign == NUMERIC_NEG {
            out.push('-');
        }
        if weight < 0 {
            out.push('0');
        } else {
            for i in 0..=weight {
                if i == 0 {
                    out.push_str(&digit(i).to_string());
                } else {
                    out.push_str(&format!("{:04}", digit(i)));
                }
            }
        }
        if self.dscale > 0 {
            out.push('.');
            let mut frac = String::new();
            let mut i = weight + 1;
            while frac.len() < usize::from(self.dscale) {
                frac.push_str(&format!("{:04}", digit(i)));
                i += 1;
            }
            frac.truncate(usize::from(self.dscale));
            out.push_str(&frac);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [digits.len() as i16, weight] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numeric_text_and_decimal() {
        // 12345.678 = 1|2345|6780 with weight 1, dscale 3.
        let raw = numeric(1, 0, 3, &[1, 2345, 6780]);
        let n = Numeric::parse(&raw).unwrap();
        assert_eq!(n.to_string(), "12345.678");
        assert_eq!(n.to_decimal(10, 3).unwrap(), 12_345_678);
        assert_eq!(n.to_decimal(10, 5).unwrap(), 1_234_567_800);
        assert!(n.to_decimal(10, 2).unwrap_err().contains("would round"));
        assert!(n.to_decimal(7, 3).unwrap_err().contains("does not fit"));
        // -0.0012 = weight -1, digit 12, dscale 4.
        let n = Numeric::parse(&numeric(-1, NUMERIC_NEG, 4, &[12])).unwrap();
        assert_eq!(n.to_string(), "-0.0012");
        assert_eq!(n.to_decimal(38, 10).unwrap(), -12_000_000);
        // 10000000 = digit 1000 at weight 1 (trailing zero digits are stripped).
        let n = Numeric::parse(&numeric(1, 0, 0, &[1000])).unwrap();
        assert_eq!(n.to_string(), "10000000");
        assert_eq!(n.to_decimal(8, 0).unwrap(), 10_000_000);
        let zero = Numeric::parse(&numeric(0, 0, 2, &[])).unwrap();
        assert_eq!(zero.to_string(), "0.00");
        assert_eq!(zero.to_decimal(5, 2).unwrap(), 0);
        let nan = Numeric::parse(&numeric(0, NUMERIC_NAN, 0, &[])).unwrap();
        assert_eq!(nan.to_string(), "NaN");
        assert!(nan.to_decimal(38, 10).unwrap_err().contains("NaN"));
        // 1e40 overflows i128 arithmetic at scale 10 without panicking.
        let big = Numeric::parse(&numeric(10, 0, 0, &[1])).unwrap();
        assert!(big.to_decimal(38, 10).unwrap_err().contains("does not fit"));
        assert!(Numeric::parse(&[0, 1]).is_err());
        assert!(Numeric::parse(&numeric(0, 0, 0, &[10_000])).is_err());
    }
}
