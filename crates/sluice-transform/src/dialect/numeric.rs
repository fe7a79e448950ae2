//! BigQuery's `NUMERIC`: a decimal with 38 digits, 9 of them after the point.
//!
//! BigQuery's `NUMERIC` (and its alias `DECIMAL`) is `DECIMAL(38, 9)` and `BIGNUMERIC` is
//! `DECIMAL(76, 38)`; DataFusion reads a bare `NUMERIC` as `DECIMAL(38, 10)`, and gives a product or
//! a quotient of decimals a scale of its own (Spark's rule: `1 / 3` over `NUMERIC` has 20 places or
//! more). In BigQuery the result of `*` and `/` on `NUMERIC` values is a `NUMERIC` again: scale 9,
//! rounded half away from zero (BigQuery's default `ROUND_HALF_AWAY_FROM_ZERO`), an error beyond
//! its 29 integer digits ("numeric overflow"). [`BigQueryTypes`] plans the type names and
//! [`NumericArithmetic`] computes `*` and `/` exactly in 256-bit integers. `+` and `-` are exact in
//! both engines (the same figure); `BIGNUMERIC` arithmetic keeps DataFusion's rules.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Decimal128Array, Decimal128Builder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, FieldRef, i256};
use sluice_engine::extension::logical_expr::planner::TypePlanner;
use sluice_engine::extension::logical_expr::{
    ColumnarValue, Expr, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use sluice_engine::sql::sqlparser::ast::{DataType as SqlType, ExactNumberInfo};
use sluice_engine::{DataFusionError, DfResult};

/// BigQuery's `NUMERIC` scale.
pub const NUMERIC_SCALE: i8 = 9;

/// BigQuery's `NUMERIC`.
pub const NUMERIC: DataType = DataType::Decimal128(38, NUMERIC_SCALE);

/// BigQuery's type names where DataFusion reads them otherwise (or not at all).
#[derive(Debug, Default)]
pub struct BigQueryTypes;

impl TypePlanner for BigQueryTypes {
    fn plan_type_field(&self, sql_type: &SqlType) -> DfResult<Option<FieldRef>> {
        let t = match sql_type {
            SqlType::Numeric(ExactNumberInfo::None) | SqlType::Decimal(ExactNumberInfo::None) => {
                NUMERIC
            }
            SqlType::BigNumeric(info) | SqlType::BigDecimal(info) => match *info {
                ExactNumberInfo::None => DataType::Decimal256(76, 38),
                ExactNumberInfo::Precision(p) => decimal(p, 0)?,
                ExactNumberInfo::PrecisionAndScale(p, s) => decimal(p, s)?,
            },
            SqlType::Int64 => DataType::Int64,
            SqlType::Float64 => DataType::Float64,
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(arrow::datatypes::Field::new("", t, true))))
    }
}

/// `BIGNUMERIC(p, s)`: a 128-bit decimal up to 38 digits, a 256-bit one up to 76.
fn decimal(p: u64, s: i64) -> DfResult<DataType> {
    let bad = || DataFusionError::Plan(format!("BIGNUMERIC({p}, {s}) is out of range"));
    let p8 = u8::try_from(p).map_err(|_| bad())?;
    let s8 = i8::try_from(s).map_err(|_| bad())?;
    if !(1..=76).contains(&p8)
        || !(0..=38).contains(&s8)
        || u8::try_from(s8).map_err(|_| bad())? > p8
    {
        return Err(bad());
    }
    Ok(if p8 <= 38 {
        DataType::Decimal128(p8, s8)
    } else {
        DataType::Decimal256(p8, s8)
    })
}

/// Whether BigQuery computes `left op right` as `NUMERIC` where DataFusion does not: `*` or `/` of
/// two 128-bit decimals of at most 9 places (an integer operand is one after type coercion).
pub fn is_numeric_product_or_quotient(
    op: Operator,
    left: Option<&DataType>,
    right: Option<&DataType>,
) -> bool {
    let numeric = |t: Option<&DataType>| matches!(t, Some(DataType::Decimal128(_, s)) if *s >= 0 && *s <= NUMERIC_SCALE);
    matches!(op, Operator::Multiply | Operator::Divide) && numeric(left) && numeric(right)
}

/// `*` or `/` of `NUMERIC` values, as BigQuery computes it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericArithmetic {
    divide: bool,
    signature: Signature,
}

impl NumericArithmetic {
    /// `left op right` (`op` is `*` or `/`) as an expression.
    pub fn call(op: Operator, left: Expr, right: Expr) -> Expr {
        let f = NumericArithmetic {
            divide: op == Operator::Divide,
            signature: Signature::any(2, Volatility::Immutable),
        };
        ScalarUDF::new_from_impl(f).call(vec![left, right])
    }
}

impl ScalarUDFImpl for NumericArithmetic {
    fn name(&self) -> &str {
        if self.divide {
            "sluice_numeric_divide"
        } else {
            "sluice_numeric_multiply"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(NUMERIC)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [left, right] = &super::two_arrays(self.name(), &args)?;
        let (a, s1) = decimals(left)?;
        let (b, s2) = decimals(right)?;
        Ok(ColumnarValue::Array(numeric_op(
            self.divide,
            &a,
            s1,
            &b,
            s2,
        )?))
    }
}

fn decimals(array: &ArrayRef) -> DfResult<(Decimal128Array, i8)> {
    let DataType::Decimal128(_, scale) = array.data_type() else {
        return Err(DataFusionError::Internal(format!(
            "NUMERIC arithmetic on {}",
            array.data_type()
        )));
    };
    let scale = *scale;
    let array = cast(array, &DataType::Decimal128(38, scale))?;
    let array = array
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("cast to Decimal128 gave another type".into()))?;
    Ok((array, scale))
}

fn pow10(n: u32) -> i256 {
    // n ≤ 27 here (scales are 0..=9), far below i256's 76 digits.
    i256::from_i128(10).wrapping_pow(n)
}

/// `n / d` rounded half away from zero; `d` is not zero.
fn round_div(n: i256, d: i256) -> i256 {
    let q = n.wrapping_div(d);
    let r = n.wrapping_rem(d);
    let twice = r.wrapping_abs().wrapping_mul(i256::from_i128(2));
    if twice >= d.wrapping_abs() {
        if n.is_negative() == d.is_negative() {
            q.wrapping_add(i256::ONE)
        } else {
            q.wrapping_sub(i256::ONE)
        }
    } else {
        q
    }
}

/// BigQuery's `a * b` or `a / b` for unscaled values of scales `s1`, `s2` (each 0..=9), at scale 9.
pub fn numeric_op(
    divide: bool,
    left: &Decimal128Array,
    s1: i8,
    right: &Decimal128Array,
    s2: i8,
) -> DfResult<ArrayRef> {
    let s1 = u32::try_from(s1).unwrap_or(0);
    let s2 = u32::try_from(s2).unwrap_or(0);
    let target = u32::try_from(NUMERIC_SCALE).unwrap_or(9);
    let limit = pow10(38);
    let mut out =
        Decimal128Builder::with_capacity(left.len()).with_precision_and_scale(38, NUMERIC_SCALE)?;
    for i in 0..left.len() {
        if left.is_null(i) || right.is_null(i) {
            out.append_null();
            continue;
        }
        let a = i256::from_i128(left.value(i));
        let b = i256::from_i128(right.value(i));
        let q = if divide {
            if b == i256::ZERO {
                return Err(DataFusionError::Execution("division by zero".into()));
            }
            // a/10^s1 ÷ b/10^s2 = (a · 10^(9 - s1 + s2) / b) / 10^9 (s1 ≤ 9); |a · 10^18| < 10^56.
            let n = a.wrapping_mul(pow10((target + s2).saturating_sub(s1)));
            round_div(n, b)
        } else {
            // |a · b| < 10^76 fits in 256 bits; its scale is s1 + s2.
            let p = a.wrapping_mul(b);
            if s1 + s2 > target {
                round_div(p, pow10(s1 + s2 - target))
            } else {
                p.wrapping_mul(pow10(target - s1 - s2))
            }
        };
        if q.wrapping_abs() >= limit {
            return Err(DataFusionError::Execution(format!(
                "numeric overflow: the result of `{}` has more than 29 digits before the point \
                 (BigQuery NUMERIC)",
                if divide { "/" } else { "*" }
            )));
        }
        let v = q
            .to_i128()
            .ok_or_else(|| DataFusionError::Internal("NUMERIC beyond 128 bits".into()))?;
        out.append_value(v);
    }
    Ok(Arc::new(out.finish()))
}
