//! Integer division as a dialect computes it.
//!
//! DataFusion divides two integers with a truncating integer division, as PostgreSQL does. DuckDB,
//! BigQuery and Spark return a `DOUBLE` (DuckDB also for decimals), and Snowflake a `NUMBER` whose
//! scale is the dividend's plus six, at most twelve (`max(s1, min(s1 + 6, 12))`), rounded half away
//! from zero. They also differ on division by zero: DuckDB follows IEEE 754 (±infinity, NaN), the
//! others fail the query. [`DialectDivide`] computes each of them: floats in `f64`, Snowflake's
//! numbers exactly in 128-bit integers (a quotient beyond 38 digits is an error, as in Snowflake).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Decimal128Array, Decimal128Builder, Float64Array, Float64Builder, Int64Array,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use sluice_engine::extension::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sluice_engine::{DataFusionError, DfResult};

use super::IntegerDivision;

/// Scale of Snowflake's quotient for a dividend of scale `s1`.
pub fn snowflake_scale(s1: i8) -> i8 {
    s1.max((s1 + 6).min(12))
}

/// The scale of an exact numeric type (0 for integers).
fn scale_of(t: &DataType) -> i8 {
    match t {
        DataType::Decimal32(_, s)
        | DataType::Decimal64(_, s)
        | DataType::Decimal128(_, s)
        | DataType::Decimal256(_, s) => *s,
        _ => 0,
    }
}

/// The division function that replaces `integer / integer` under a dialect (see the module doc).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DialectDivide {
    mode: IntegerDivision,
    signature: Signature,
}

impl DialectDivide {
    /// The function for one way of dividing; `Integer` is DataFusion's own operator and is never
    /// wrapped.
    pub fn new(mode: IntegerDivision) -> Self {
        Self {
            mode,
            // The rewrite calls it only with integer or decimal operands (after type coercion).
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    /// `left / right` through this function, as an expression.
    pub fn call(mode: IntegerDivision, left: Expr, right: Expr) -> Expr {
        ScalarUDF::new_from_impl(DialectDivide::new(mode)).call(vec![left, right])
    }
}

impl ScalarUDFImpl for DialectDivide {
    fn name(&self) -> &str {
        match self.mode {
            IntegerDivision::Integer => "sluice_integer_divide",
            IntegerDivision::FloatIeee => "sluice_float_divide",
            IntegerDivision::FloatStrict => "sluice_float_divide_strict",
            IntegerDivision::SnowflakeNumber => "sluice_decimal_divide",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.mode {
            IntegerDivision::Integer => DataType::Int64,
            IntegerDivision::FloatIeee | IntegerDivision::FloatStrict => DataType::Float64,
            IntegerDivision::SnowflakeNumber => DataType::Decimal128(
                38,
                snowflake_scale(arg_types.first().map(scale_of).unwrap_or(0)),
            ),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [left, right] = &super::two_arrays(self.name(), &args)?;
        let out = match self.mode {
            IntegerDivision::SnowflakeNumber => {
                let (a, s1) = exact(left)?;
                let (b, s2) = exact(right)?;
                snowflake_divide(&a, s1, &b, s2)?
            }
            IntegerDivision::FloatIeee | IntegerDivision::FloatStrict => {
                float_divide(self.mode, &as_f64(left)?, &as_f64(right)?)?
            }
            IntegerDivision::Integer => divide(&as_i64(left)?, &as_i64(right)?)?,
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn as_f64(array: &ArrayRef) -> DfResult<Float64Array> {
    let array = cast(array, &DataType::Float64)?;
    array
        .as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("cast to Float64 gave another type".into()))
}

/// An exact numeric array as unscaled 128-bit values and their scale.
fn exact(array: &ArrayRef) -> DfResult<(Decimal128Array, i8)> {
    let scale = scale_of(array.data_type());
    let array = cast(array, &DataType::Decimal128(38, scale))?;
    let array = array
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("cast to Decimal128 gave another type".into()))?;
    Ok((array, scale))
}

fn float_divide(
    mode: IntegerDivision,
    left: &Float64Array,
    right: &Float64Array,
) -> DfResult<ArrayRef> {
    let mut out = Float64Builder::with_capacity(left.len());
    for i in 0..left.len() {
        if left.is_null(i) || right.is_null(i) {
            out.append_null();
        } else if right.value(i) == 0.0 && mode == IntegerDivision::FloatStrict {
            return Err(division_by_zero());
        } else {
            out.append_value(left.value(i) / right.value(i));
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Snowflake's `a / b` for unscaled values of scales `s1` and `s2`.
fn snowflake_divide(
    left: &Decimal128Array,
    s1: i8,
    right: &Decimal128Array,
    s2: i8,
) -> DfResult<ArrayRef> {
    let scale = snowflake_scale(s1);
    // a / 10^s1 ÷ b / 10^s2 = (a · 10^(scale - s1 + s2) / b) / 10^scale.
    let shift = u32::try_from(i32::from(scale) - i32::from(s1) + i32::from(s2)).unwrap_or(0);
    let factor = 10i128.pow(shift);
    let mut out =
        Decimal128Builder::with_capacity(left.len()).with_precision_and_scale(38, scale)?;
    for i in 0..left.len() {
        if left.is_null(i) || right.is_null(i) {
            out.append_null();
            continue;
        }
        let b = right.value(i);
        if b == 0 {
            return Err(division_by_zero());
        }
        let n = left.value(i).checked_mul(factor).ok_or_else(out_of_range)?;
        let q = rounded_quotient(n, b);
        if q.unsigned_abs() >= 10u128.pow(38) {
            return Err(out_of_range());
        }
        out.append_value(q);
    }
    Ok(Arc::new(out.finish()))
}

fn out_of_range() -> DataFusionError {
    DataFusionError::Execution(
        "Numeric value out of range: the quotient has more than 38 digits".into(),
    )
}

/// `n / d` rounded half away from zero; `d` is not zero.
fn rounded_quotient(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if r.unsigned_abs() >= d.unsigned_abs() - r.unsigned_abs() {
        q + if (n < 0) == (d < 0) { 1 } else { -1 }
    } else {
        q
    }
}

fn as_i64(array: &ArrayRef) -> DfResult<Int64Array> {
    let array = cast(array, &DataType::Int64)?;
    array
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("cast to Int64 gave another type".into()))
}

fn division_by_zero() -> DataFusionError {
    DataFusionError::Execution("Division by zero".into())
}

/// Truncating integer division row by row (DataFusion's own, for completeness); a NULL operand
/// gives NULL.
fn divide(left: &Int64Array, right: &Int64Array) -> DfResult<ArrayRef> {
    let mut out = arrow::array::Int64Builder::with_capacity(left.len());
    for i in 0..left.len() {
        if left.is_null(i) || right.is_null(i) {
            out.append_null();
        } else if right.value(i) == 0 {
            return Err(division_by_zero());
        } else {
            out.append_value(left.value(i).wrapping_div(right.value(i)));
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotient(a: i128, s1: i8, b: i128, s2: i8) -> DfResult<(i128, i8)> {
        let l = Decimal128Array::from(vec![a]);
        let r = Decimal128Array::from(vec![b]);
        let out = snowflake_divide(&l, s1, &r, s2)?;
        let out = out.as_any().downcast_ref::<Decimal128Array>().unwrap();
        Ok((out.value(0), out.scale()))
    }

    #[test]
    fn snowflake_quotients_round_half_away_from_zero() {
        assert_eq!(quotient(1, 0, 3, 0).unwrap(), (333_333, 6));
        assert_eq!(quotient(2, 0, 3, 0).unwrap(), (666_667, 6));
        assert_eq!(quotient(-2, 0, 3, 0).unwrap(), (-666_667, 6));
        assert_eq!(quotient(2, 0, -3, 0).unwrap(), (-666_667, 6));
        assert_eq!(quotient(1999, 0, 100, 0).unwrap(), (19_990_000, 6));
        // 1 / 8_000_000 = 0.000000125 → 0.000000; 1 / 2_000_000 = 0.0000005 → 0.000001.
        assert_eq!(quotient(1, 0, 8_000_000, 0).unwrap().0, 0);
        assert_eq!(quotient(1, 0, 2_000_000, 0).unwrap().0, 1);
        assert_eq!(quotient(-1, 0, 2_000_000, 0).unwrap().0, -1);
        // Decimals: 10.01 / 1.1 = 9.1 with scale 2 + 6 = 8; 1.000000000 / 3 keeps scale 12.
        assert_eq!(quotient(1001, 2, 11, 1).unwrap(), (910_000_000, 8));
        assert_eq!(
            quotient(1_000_000_000, 9, 3, 0).unwrap(),
            (333_333_333_333, 12)
        );
        // Scale above 12 stays: 1 (scale 14) / 2 → scale 14.
        assert_eq!(quotient(1, 14, 2, 0).unwrap(), (1, 14));
        let e = quotient(i128::MAX / 10, 0, 1, 0).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn division_by_zero_follows_the_mode() {
        let a = Float64Array::from(vec![Some(1.0), Some(-1.0), Some(0.0), None]);
        let zero = Float64Array::from(vec![Some(0.0); 4]);
        let out = float_divide(IntegerDivision::FloatIeee, &a, &zero).unwrap();
        let out = out.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(out.value(0), f64::INFINITY);
        assert_eq!(out.value(1), f64::NEG_INFINITY);
        assert!(out.value(2).is_nan());
        assert!(out.is_null(3));
        let e = float_divide(IntegerDivision::FloatStrict, &a, &zero)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Division by zero"), "{e}");
        let e = quotient(1, 0, 0, 0).unwrap_err().to_string();
        assert!(e.contains("Division by zero"), "{e}");
    }
}
