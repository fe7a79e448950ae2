//! Integer division as a dialect computes it.
//!
//! DataFusion divides two integers with a truncating integer division, as PostgreSQL does. DuckDB,
//! BigQuery and Spark return a `DOUBLE`, and Snowflake a `NUMBER` with six more decimal places than
//! the dividend (rounded half away from zero). They also differ on division by zero: DuckDB follows
//! IEEE 754 (±infinity, NaN), the others fail the query. [`DialectDivide`] computes each of them
//! exactly, on 64-bit integers (Snowflake's scale in 128-bit arithmetic, so no intermediate
//! overflows).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Decimal128Builder, Float64Builder, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::IntegerDivision;

/// Scale of Snowflake's result for an integer dividend: `max(s1, min(s1 + 6, 12))` with `s1 = 0`.
pub const SNOWFLAKE_DIVISION_SCALE: i8 = 6;

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
            // The rewrite calls it only with integer operands (after type coercion); any integer
            // width is read as `Int64`.
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
            IntegerDivision::Decimal6 => "sluice_decimal_divide",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.mode {
            IntegerDivision::Integer => DataType::Int64,
            IntegerDivision::FloatIeee | IntegerDivision::FloatStrict => DataType::Float64,
            IntegerDivision::Decimal6 => DataType::Decimal128(38, SNOWFLAKE_DIVISION_SCALE),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [left, right] = arrays.as_slice() else {
            return Err(DataFusionError::Internal(format!(
                "{} takes two arguments, got {}",
                self.name(),
                arrays.len()
            )));
        };
        let left = as_i64(left)?;
        let right = as_i64(right)?;
        let out = divide(self.mode, &left, &right)?;
        Ok(ColumnarValue::Array(out))
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

/// Divides row by row; a NULL operand gives NULL.
fn divide(mode: IntegerDivision, left: &Int64Array, right: &Int64Array) -> DfResult<ArrayRef> {
    let rows = left.len();
    let pairs = (0..rows).map(|i| {
        if left.is_null(i) || right.is_null(i) {
            None
        } else {
            Some((left.value(i), right.value(i)))
        }
    });
    match mode {
        IntegerDivision::FloatIeee | IntegerDivision::FloatStrict => {
            let mut out = Float64Builder::with_capacity(rows);
            for pair in pairs {
                match pair {
                    None => out.append_null(),
                    Some((_, 0)) if mode == IntegerDivision::FloatStrict => {
                        return Err(division_by_zero());
                    }
                    Some((a, b)) => out.append_value(a as f64 / b as f64),
                }
            }
            Ok(Arc::new(out.finish()))
        }
        IntegerDivision::Decimal6 => {
            let mut out = Decimal128Builder::with_capacity(rows)
                .with_precision_and_scale(38, SNOWFLAKE_DIVISION_SCALE)?;
            for pair in pairs {
                match pair {
                    None => out.append_null(),
                    Some((_, 0)) => return Err(division_by_zero()),
                    Some((a, b)) => out.append_value(decimal_quotient(a, b)),
                }
            }
            Ok(Arc::new(out.finish()))
        }
        IntegerDivision::Integer => {
            let mut out = arrow::array::Int64Builder::with_capacity(rows);
            for pair in pairs {
                match pair {
                    None => out.append_null(),
                    Some((_, 0)) => return Err(division_by_zero()),
                    Some((a, b)) => out.append_value(a.wrapping_div(b)),
                }
            }
            Ok(Arc::new(out.finish()))
        }
    }
}

/// `a / b` with six decimal places (as an unscaled 128-bit value), rounded half away from zero;
/// `b` is not zero. `|a| * 10^6 < 2^63 * 10^6 < 2^127`, so nothing overflows.
fn decimal_quotient(a: i64, b: i64) -> i128 {
    let n = i128::from(a) * 10i128.pow(SNOWFLAKE_DIVISION_SCALE as u32);
    let d = i128::from(b);
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d.abs() {
        q + if (n < 0) == (d < 0) { 1 } else { -1 }
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_quotients_round_half_away_from_zero() {
        assert_eq!(decimal_quotient(1, 3), 333_333);
        assert_eq!(decimal_quotient(2, 3), 666_667);
        assert_eq!(decimal_quotient(-2, 3), -666_667);
        assert_eq!(decimal_quotient(2, -3), -666_667);
        assert_eq!(decimal_quotient(1999, 100), 19_990_000);
        // 1 / 8_000_000 = 0.000000125 → 0.000000 (below half), 1 / 2_000_000 = 0.0000005 → 0.000001.
        assert_eq!(decimal_quotient(1, 8_000_000), 0);
        assert_eq!(decimal_quotient(1, 2_000_000), 1);
        assert_eq!(decimal_quotient(-1, 2_000_000), -1);
        assert_eq!(
            decimal_quotient(i64::MIN, 1),
            i128::from(i64::MIN) * 1_000_000
        );
    }

    #[test]
    fn division_by_zero_follows_the_mode() {
        let a = Int64Array::from(vec![Some(1), Some(-1), Some(0), None]);
        let zero = Int64Array::from(vec![Some(0), Some(0), Some(0), Some(0)]);
        let out = divide(IntegerDivision::FloatIeee, &a, &zero).unwrap();
        let out = out
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        assert_eq!(out.value(0), f64::INFINITY);
        assert_eq!(out.value(1), f64::NEG_INFINITY);
        assert!(out.value(2).is_nan());
        assert!(out.is_null(3));
        for mode in [IntegerDivision::FloatStrict, IntegerDivision::Decimal6] {
            let e = divide(mode, &a, &zero).unwrap_err().to_string();
            assert!(e.contains("Division by zero"), "{e}");
        }
    }
}
