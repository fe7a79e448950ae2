//! PostgreSQL scalar functions that BI tools' queries use and DataFusion lacks, and the helpers the
//! rewrites of [`super::rewrites`] plan into:
//!
//! - `format(fmt, args...)`: Metabase builds type and relation names with it (`%s`, `%I`, `%L`,
//!   `%%`, positions `%2$s`, the `-` flag and widths, as PostgreSQL's);
//! - `_pg_regclass_part(name, n)`: the schema (`n = 1`) or relation (`n = 2`) a relation name such
//!   as `"Gold".by_region` or `by_region` means, quoted parts kept and unquoted ones lower-cased, an
//!   unqualified name in the default schema (where the engine resolves it). A cast of a computed
//!   name to `regclass` is looked up in `pg_class` with it;
//! - `_pg_interval_mul(interval, factor)`: an interval times a number (Tableau's `n * INTERVAL '1
//!   DAY'`), PostgreSQL's way: fractions of months spill into days (30 a month), fractions of days
//!   into time.

use std::sync::Arc;

use arrow::array::{Array, Float64Array, IntervalMonthDayNanoArray, StringArray};
use arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit};
use sluice_engine::extension::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sluice_engine::{DataFusionError, DfResult};

use super::functions::text_of;

/// `format`, `_pg_regclass_part` (resolving unqualified names in `default_schema`) and
/// `_pg_interval_mul`.
pub fn functions(default_schema: &str) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(Scalar {
            name: "format",
            signature: Signature::variadic_any(Volatility::Stable),
            kind: Kind::Format,
        }),
        ScalarUDF::new_from_impl(Scalar {
            name: REGCLASS_PART,
            signature: Signature::any(2, Volatility::Stable),
            kind: Kind::RegclassPart(default_schema.to_string()),
        }),
        ScalarUDF::new_from_impl(Scalar {
            name: INTERVAL_MUL,
            signature: Signature::any(2, Volatility::Immutable),
            kind: Kind::IntervalMul,
        }),
    ]
}

/// The name of the relation-name helper.
pub const REGCLASS_PART: &str = "_pg_regclass_part";
/// The name of the interval product.
pub const INTERVAL_MUL: &str = "_pg_interval_mul";

#[derive(Debug, PartialEq, Eq, Hash)]
enum Kind {
    Format,
    RegclassPart(String),
    IntervalMul,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Scalar {
    name: &'static str,
    signature: Signature,
    kind: Kind,
}

impl ScalarUDFImpl for Scalar {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            Kind::Format | Kind::RegclassPart(_) => DataType::Utf8,
            Kind::IntervalMul => DataType::Interval(IntervalUnit::MonthDayNano),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<Vec<_>>>()?;
        match &self.kind {
            Kind::Format => {
                let Some((first, rest)) = arrays.split_first() else {
                    return Err(DataFusionError::Plan(
                        "format() takes a format string".into(),
                    ));
                };
                let fmt = text_of(first)?;
                let values = rest.iter().map(text_of).collect::<DfResult<Vec<_>>>()?;
                let mut out = Vec::with_capacity(rows);
                for row in 0..rows {
                    if fmt.is_null(row) {
                        out.push(None);
                        continue;
                    }
                    let row_args: Vec<Option<&str>> = values
                        .iter()
                        .map(|v| (!v.is_null(row)).then(|| v.value(row)))
                        .collect();
                    out.push(Some(format(fmt.value(row), &row_args)?));
                }
                Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
            }
            Kind::RegclassPart(default_schema) => {
                let [names, parts] = arrays.as_slice() else {
                    return Err(DataFusionError::Plan(format!(
                        "{REGCLASS_PART} takes a name and a part"
                    )));
                };
                let names = text_of(names)?;
                let parts = arrow::compute::cast(parts, &DataType::Float64)?;
                let parts = parts
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .ok_or_else(|| DataFusionError::Internal("part is not a number".into()))?;
                let out: StringArray = (0..rows)
                    .map(|row| {
                        if names.is_null(row) || parts.is_null(row) {
                            return None;
                        }
                        let (schema, relation) = relation_name(names.value(row), default_schema)?;
                        Some(if parts.value(row) < 1.5 {
                            schema
                        } else {
                            relation
                        })
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            Kind::IntervalMul => {
                let [interval, factor] = arrays.as_slice() else {
                    return Err(DataFusionError::Plan(format!(
                        "{INTERVAL_MUL} takes an interval and a number"
                    )));
                };
                let interval = arrow::compute::cast(
                    interval,
                    &DataType::Interval(IntervalUnit::MonthDayNano),
                )?;
                let interval = interval
                    .as_any()
                    .downcast_ref::<IntervalMonthDayNanoArray>()
                    .ok_or_else(|| DataFusionError::Internal("not an interval".into()))?;
                let factor = arrow::compute::cast(factor, &DataType::Float64).map_err(|_| {
                    DataFusionError::Plan(format!(
                        "operator does not exist: {} * interval",
                        factor.data_type()
                    ))
                })?;
                let factor = factor
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .ok_or_else(|| DataFusionError::Internal("factor is not a number".into()))?;
                let out: IntervalMonthDayNanoArray = (0..rows)
                    .map(|row| {
                        if interval.is_null(row) || factor.is_null(row) {
                            None
                        } else {
                            interval_mul(interval.value(row), factor.value(row))
                        }
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
        }
    }
}

/// `interval * factor` as PostgreSQL computes it; `None` when it overflows.
pub fn interval_mul(interval: IntervalMonthDayNano, factor: f64) -> Option<IntervalMonthDayNano> {
    const NANOS_PER_DAY: f64 = 86_400_000_000_000.0;
    let months = f64::from(interval.months) * factor;
    let whole_months = months.trunc();
    let days = f64::from(interval.days) * factor + (months - whole_months) * 30.0;
    let whole_days = days.trunc();
    // Precision as PostgreSQL's: whole microseconds.
    let nanos = (interval.nanoseconds as f64) * factor + (days - whole_days) * NANOS_PER_DAY;
    let nanos = (nanos / 1000.0).round() * 1000.0;
    let fits = |v: f64, max: f64| v.is_finite() && v.abs() <= max;
    if !fits(whole_months, f64::from(i32::MAX))
        || !fits(whole_days, f64::from(i32::MAX))
        || !fits(nanos, 9.2e18)
    {
        return None;
    }
    Some(IntervalMonthDayNano::new(
        whole_months as i32,
        whole_days as i32,
        nanos as i64,
    ))
}

/// `(schema, relation)` of a relation name as `regclass` reads it; `None` when it is not one.
pub fn relation_name(name: &str, default_schema: &str) -> Option<(String, String)> {
    let mut parts = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => continue,
            Some(_) => return None,
        }
    }
    match parts.as_slice() {
        [relation] => Some((default_schema.to_string(), relation.clone())),
        // `database.schema.relation` names the one database there is.
        [.., schema, relation] if parts.len() <= 3 => Some((schema.clone(), relation.clone())),
        _ => None,
    }
}

/// PostgreSQL's `quote_ident`: the name as is when it is a plain lower-case identifier, else in
/// double quotes.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// PostgreSQL's `quote_literal`.
fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// PostgreSQL's `format(fmt, args...)` for one row (arguments as text, `None` for NULL).
pub fn format(fmt: &str, args: &[Option<&str>]) -> DfResult<String> {
    let error = |m: String| DataFusionError::Execution(format!("format(): {m}"));
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next_arg = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        // %[position$][-][width]type
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        let mut position = None;
        if !digits.is_empty() && chars.peek() == Some(&'$') {
            chars.next();
            let n: usize = digits
                .parse()
                .map_err(|_| error("argument number is out of range".into()))?;
            if n == 0 {
                return Err(error(
                    "format specifies argument 0, but arguments are numbered from 1".into(),
                ));
            }
            position = Some(n - 1);
            digits.clear();
        }
        let mut left = false;
        if digits.is_empty() && chars.peek() == Some(&'-') {
            chars.next();
            left = true;
        }
        if digits.is_empty() {
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
        }
        let width: usize = if digits.is_empty() {
            0
        } else {
            digits
                .parse()
                .map_err(|_| error("width is out of range".into()))?
        };
        let Some(kind) = chars.next() else {
            return Err(error("unterminated format() type specifier".into()));
        };
        let index = position.unwrap_or(next_arg);
        next_arg = index + 1;
        let Some(value) = args.get(index) else {
            return Err(error("too few arguments for format()".into()));
        };
        let text = match (kind, value) {
            ('s', v) => v.unwrap_or("").to_string(),
            ('I', Some(v)) => quote_ident(v),
            ('I', None) => {
                return Err(error(
                    "null values cannot be formatted as an SQL identifier".into(),
                ));
            }
            ('L', Some(v)) => quote_literal(v),
            ('L', None) => "NULL".to_string(),
            (other, _) => {
                return Err(error(format!(
                    "unrecognized format() type specifier \"{other}\""
                )));
            }
        };
        let pad = width.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_postgresql() {
        let f = |fmt: &str, args: &[Option<&str>]| format(fmt, args).unwrap();
        assert_eq!(f("%s", &[Some("int8")]), "int8");
        assert_eq!(
            f("\"%s\".\"%s\"", &[Some("gold"), Some("t")]),
            "\"gold\".\"t\""
        );
        assert_eq!(
            f("%I.%I", &[Some("gold"), Some("By Region")]),
            "gold.\"By Region\""
        );
        assert_eq!(f("%L and %L", &[Some("it's"), None]), "'it''s' and NULL");
        assert_eq!(f("%2$s %1$s %%", &[Some("a"), Some("b")]), "b a %");
        assert_eq!(f("[%5s|%-3s]", &[Some("ab"), Some("c")]), "[   ab|c  ]");
        assert_eq!(f("%s", &[None]), "");
        assert!(format("%s %s", &[Some("a")]).is_err());
        assert!(format("%x", &[Some("a")]).is_err());
        assert!(format("%I", &[None]).is_err());
    }

    #[test]
    fn relation_names_resolve_like_regclass() {
        let r = |n: &str| relation_name(n, "gold");
        assert_eq!(r("by_region"), Some(("gold".into(), "by_region".into())));
        assert_eq!(
            r("Gold.By_Region"),
            Some(("gold".into(), "by_region".into()))
        );
        assert_eq!(r("\"Gold\".\"a.b\""), Some(("Gold".into(), "a.b".into())));
        assert_eq!(r("sluice.silver.t"), Some(("silver".into(), "t".into())));
        assert_eq!(r("a..b"), None);
        assert_eq!(r("\"open"), None);
        assert_eq!(r("a.b.c.d"), None);
    }

    #[test]
    fn intervals_multiply_like_postgresql() {
        let day = IntervalMonthDayNano::new(0, 1, 0);
        assert_eq!(
            interval_mul(day, 3.0),
            Some(IntervalMonthDayNano::new(0, 3, 0))
        );
        // 1.5 months = 1 month 15 days; half a day = 12 hours.
        assert_eq!(
            interval_mul(IntervalMonthDayNano::new(1, 1, 0), 1.5),
            Some(IntervalMonthDayNano::new(1, 16, 43_200_000_000_000))
        );
        assert_eq!(
            interval_mul(day, -2.0),
            Some(IntervalMonthDayNano::new(0, -2, 0))
        );
        assert_eq!(
            interval_mul(IntervalMonthDayNano::new(1, 0, 0), 1e300),
            None
        );
    }
}
