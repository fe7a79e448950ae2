//! Integer overflow as an error, as PostgreSQL, DuckDB, Snowflake, BigQuery and Spark (ANSI mode)
//! report it.
//!
//! DataFusion's physical `+`, `-` and `*` wrap around (`9223372036854775807 + 1` is
//! `-9223372036854775808`): its `BinaryExpr` has a checked mode (`with_fail_on_overflow`), but no
//! session option or planner hook turns it on, and physical plans have no generic way to rewrite
//! their expressions. So the dialect pass replaces integer `a + b`, `a - b` and `a * b` (after type
//! coercion, both operands of one integer type) by [`CheckedArithmetic`], which calls the same Arrow
//! kernels as the checked `BinaryExpr` (`add`, `sub`, `mul` instead of `add_wrapping`, …), with a
//! vectorized pass for `BIGINT` in front of them. `sum` of a `BIGINT` becomes [`super::checked_sum`].

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::buffer::NullBuffer;
use arrow::compute::kernels::numeric;
use arrow::datatypes::{DataType, Int64Type};
use arrow::error::ArrowError;
use sluice_engine::extension::logical_expr::{
    ColumnarValue, Expr, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use sluice_engine::{DataFusionError, DfResult, ScalarValue};

/// `+`, `-` or `*` of two integers that fails on overflow instead of wrapping around.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CheckedArithmetic {
    op: CheckedOp,
    signature: Signature,
}

/// The operators that can overflow an integer (division only for `MIN / -1`, which Arrow's
/// `div` already refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckedOp {
    /// `+`
    Add,
    /// `-`
    Subtract,
    /// `*`
    Multiply,
}

impl CheckedOp {
    /// The checked form of a DataFusion operator, if it has one.
    pub fn of(op: Operator) -> Option<Self> {
        match op {
            Operator::Plus => Some(CheckedOp::Add),
            Operator::Minus => Some(CheckedOp::Subtract),
            Operator::Multiply => Some(CheckedOp::Multiply),
            _ => None,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CheckedOp::Add => "+",
            CheckedOp::Subtract => "-",
            CheckedOp::Multiply => "*",
        }
    }
}

impl CheckedArithmetic {
    /// The function for one operator.
    pub fn new(op: CheckedOp) -> Self {
        Self {
            op,
            // The rewrite calls it only with two operands of one integer type.
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    /// `left op right` through this function, as an expression.
    pub fn call(op: CheckedOp, left: Expr, right: Expr) -> Expr {
        ScalarUDF::new_from_impl(CheckedArithmetic::new(op)).call(vec![left, right])
    }
}

impl ScalarUDFImpl for CheckedArithmetic {
    fn name(&self) -> &str {
        match self.op {
            CheckedOp::Add => "sluice_checked_add",
            CheckedOp::Subtract => "sluice_checked_subtract",
            CheckedOp::Multiply => "sluice_checked_multiply",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        arg_types.first().cloned().ok_or_else(|| {
            DataFusionError::Internal(format!("{} takes two arguments", self.name()))
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [left, right] = args.args.as_slice() else {
            return Err(DataFusionError::Internal(format!(
                "{} takes two arguments, got {}",
                self.name(),
                args.args.len()
            )));
        };
        let kernel = match self.op {
            CheckedOp::Add => numeric::add,
            CheckedOp::Subtract => numeric::sub,
            CheckedOp::Multiply => numeric::mul,
        };
        if let Some(out) = fast_i64(self.op, left, right) {
            return Ok(ColumnarValue::Array(out));
        }
        let out = match (left, right) {
            (ColumnarValue::Array(l), ColumnarValue::Array(r)) => kernel(l, r),
            (ColumnarValue::Array(l), ColumnarValue::Scalar(r)) => kernel(l, &r.to_scalar()?),
            (ColumnarValue::Scalar(l), ColumnarValue::Array(r)) => kernel(&l.to_scalar()?, r),
            (ColumnarValue::Scalar(l), ColumnarValue::Scalar(r)) => {
                let out = kernel(&l.to_scalar()?, &r.to_scalar()?)
                    .map_err(|e| overflow(self.op, l.data_type(), e))?;
                return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
            }
        };
        let out: ArrayRef = out.map_err(|e| overflow(self.op, datum_type(left), e))?;
        Ok(ColumnarValue::Array(out))
    }
}

/// One operand of a `BIGINT` operation: its values and validity, or a constant.
enum Operand<'a> {
    Values(&'a [i64], Option<&'a NullBuffer>),
    Constant(i64),
}

impl<'a> Operand<'a> {
    fn of(v: &'a ColumnarValue) -> Option<Self> {
        match v {
            ColumnarValue::Array(a) => {
                let a = a.as_primitive_opt::<Int64Type>()?;
                Some(Operand::Values(a.values(), a.nulls()))
            }
            ColumnarValue::Scalar(ScalarValue::Int64(Some(c))) => Some(Operand::Constant(*c)),
            ColumnarValue::Scalar(_) => None,
        }
    }
}

/// `BIGINT` arithmetic in one pass that the compiler vectorizes: the wrapped result and an
/// overflow flag per value, OR-ed together (Arrow's checked kernels stop at each value). `None`
/// when it does not apply (other types, a NULL constant, two constants) or when a flag is raised
/// and an operand has NULLs, whose hidden values may be what overflowed: Arrow's kernels decide.
fn fast_i64(op: CheckedOp, left: &ColumnarValue, right: &ColumnarValue) -> Option<ArrayRef> {
    let f: fn(i64, i64) -> (i64, bool) = match op {
        CheckedOp::Add => i64::overflowing_add,
        CheckedOp::Subtract => i64::overflowing_sub,
        CheckedOp::Multiply => i64::overflowing_mul,
    };
    let (l, r) = (Operand::of(left)?, Operand::of(right)?);
    let mut overflow = false;
    let (values, nulls): (Vec<i64>, Option<NullBuffer>) = match (l, r) {
        (Operand::Values(a, na), Operand::Values(b, nb)) => (
            a.iter()
                .zip(b)
                .map(|(x, y)| {
                    let (v, o) = f(*x, *y);
                    overflow |= o;
                    v
                })
                .collect(),
            NullBuffer::union(na, nb),
        ),
        (Operand::Values(a, n), Operand::Constant(c)) => (
            a.iter()
                .map(|x| {
                    let (v, o) = f(*x, c);
                    overflow |= o;
                    v
                })
                .collect(),
            n.cloned(),
        ),
        (Operand::Constant(c), Operand::Values(b, n)) => (
            b.iter()
                .map(|y| {
                    let (v, o) = f(c, *y);
                    overflow |= o;
                    v
                })
                .collect(),
            n.cloned(),
        ),
        (Operand::Constant(_), Operand::Constant(_)) => return None,
    };
    if overflow {
        // Without NULLs the overflow is real, and the checked kernel reports it with the values.
        return None;
    }
    Some(Arc::new(Int64Array::new(values.into(), nulls)))
}

fn datum_type(v: &ColumnarValue) -> DataType {
    match v {
        ColumnarValue::Array(a) => a.data_type().clone(),
        ColumnarValue::Scalar(s) => s.data_type(),
    }
}

/// Arrow's "Overflow happened on: a + b", said as the warehouses say it.
fn overflow(op: CheckedOp, t: DataType, e: ArrowError) -> DataFusionError {
    match e {
        ArrowError::ArithmeticOverflow(detail) => DataFusionError::Execution(format!(
            "integer overflow: `{}` on {t} values is out of range ({detail}); the project's \
             dialect fails the query where DataFusion would wrap around",
            op.symbol()
        )),
        other => DataFusionError::ArrowError(Box::new(other), None),
    }
}
