//! The analyzer passes that give a plan its dialect's semantics.
//!
//! [`DialectRule`] runs after DataFusion's type coercion, when every operand has its final type, so
//! it can tell an integer division from a float one. It rewrites bottom-up and recomputes every
//! node's schema, so a parent sees the new types of its inputs (`amount / 100` is a `DOUBLE` one level up);
//! the session then runs type coercion once more for the expressions above. Output column names are
//! kept ([`NamePreserver`]), so a rewrite never renames a model's columns.

use sluice_engine::extension::ConfigOptions;
use sluice_engine::extension::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use sluice_engine::extension::logical_expr::expr_rewriter::NamePreserver;
use sluice_engine::extension::logical_expr::utils::merge_schema;
use sluice_engine::extension::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, WindowFunctionDefinition, binary_expr,
    lit, when,
};
use sluice_engine::extension::optimizer::analyzer::AnalyzerRule;
use sluice_engine::extension::tree_node::{Transformed, TreeNode};
use sluice_engine::{DFSchema, DfResult, ScalarValue};

use arrow::datatypes::DataType;
use sluice_engine::extension::functions::math::expr_fn;

use super::checked_sum::CheckedSum;
use super::divide::DialectDivide;
use super::numeric::{NumericArithmetic, is_numeric_product_or_quotient};
use super::overflow::{CheckedArithmetic, CheckedOp};
use super::{CastRounding, Dialect, IntegerDivision};

/// The post-coercion pass: division, `concat` with NULL, float → integer casts, `log`.
#[derive(Debug)]
pub struct DialectRule {
    dialect: Dialect,
}

impl DialectRule {
    /// The pass for `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect }
    }
}

impl AnalyzerRule for DialectRule {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let schema = input_schema(&node)?;
            let preserver = NamePreserver::new(&node);
            let rewritten = node.map_expressions(|expr| {
                let name = preserver.save(&expr);
                let t = expr.transform_up(|e| rewrite_expr(self.dialect, e, &schema))?;
                Ok(t.update_data(|e| name.restore(e)))
            })?;
            // Every node, rewritten or not, takes its inputs' new types (an alias above a
            // rewritten projection too), so that its parent's rewrites see them.
            rewritten.map_data(|p| p.recompute_schema())
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_dialect"
    }
}

/// The schema a node's expressions are typed against: its inputs' (and a scan's table's).
fn input_schema(node: &LogicalPlan) -> DfResult<DFSchema> {
    let mut schema = merge_schema(&node.inputs());
    if let LogicalPlan::TableScan(ts) = node {
        let source =
            DFSchema::try_from_qualified_schema(ts.table_name.clone(), &ts.source.schema())?;
        schema.merge(&source);
    }
    Ok(schema)
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn is_decimal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

/// The type of `e`, or `None` when it cannot be resolved here (the expression is then left alone).
fn type_of(e: &Expr, schema: &DFSchema) -> Option<DataType> {
    e.get_type(schema).ok()
}

fn round(x: Expr) -> Expr {
    expr_fn::round(vec![x])
}

/// One expression, after its children.
fn rewrite_expr(dialect: Dialect, e: Expr, schema: &DFSchema) -> DfResult<Transformed<Expr>> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if dialect.numeric_is_bigquery()
                && is_numeric_product_or_quotient(
                    op,
                    type_of(&left, schema).as_ref(),
                    type_of(&right, schema).as_ref(),
                ) =>
        {
            Ok(Transformed::yes(NumericArithmetic::call(op, *left, *right)))
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Divide,
            right,
        }) if divides_differently(
            dialect,
            type_of(&left, schema).as_ref(),
            type_of(&right, schema).as_ref(),
        ) =>
        {
            Ok(Transformed::yes(DialectDivide::call(
                dialect.integer_division(),
                *left,
                *right,
            )))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if dialect.integer_overflow_fails()
                && CheckedOp::of(op).is_some()
                && same_integers(
                    type_of(&left, schema).as_ref(),
                    type_of(&right, schema).as_ref(),
                ) =>
        {
            match CheckedOp::of(op) {
                Some(checked) => Ok(Transformed::yes(CheckedArithmetic::call(
                    checked, *left, *right,
                ))),
                None => Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                }))),
            }
        }
        Expr::AggregateFunction(mut f)
            if dialect.integer_overflow_fails()
                && is_bigint_sum(f.func.name(), &f.params.args, f.params.distinct, schema) =>
        {
            f.func = CheckedSum::udaf();
            Ok(Transformed::yes(Expr::AggregateFunction(f)))
        }
        Expr::WindowFunction(mut w)
            if dialect.integer_overflow_fails()
                && matches!(&w.fun, WindowFunctionDefinition::AggregateUDF(u)
                    if is_bigint_sum(u.name(), &w.params.args, w.params.distinct, schema)) =>
        {
            w.fun = WindowFunctionDefinition::AggregateUDF(CheckedSum::udaf());
            Ok(Transformed::yes(Expr::WindowFunction(w)))
        }
        Expr::ScalarFunction(f) => rewrite_function(dialect, f, schema),
        Expr::Cast(Cast { expr, field }) if field.data_type().is_integer() => {
            match rounded(dialect, &expr, schema) {
                Some(r) => Ok(Transformed::yes(Expr::Cast(Cast::new_from_field(
                    Box::new(r),
                    field,
                )))),
                None => Ok(Transformed::no(Expr::Cast(Cast { expr, field }))),
            }
        }
        Expr::TryCast(TryCast { expr, field }) if field.data_type().is_integer() => {
            match rounded(dialect, &expr, schema) {
                Some(r) => Ok(Transformed::yes(Expr::TryCast(TryCast {
                    expr: Box::new(r),
                    field,
                }))),
                None => Ok(Transformed::no(Expr::TryCast(TryCast { expr, field }))),
            }
        }
        other => Ok(Transformed::no(other)),
    }
}

/// Whether both operands are integers of one type (after type coercion they are, for `+ - *` of
/// two integers; a date plus an integer is not rewritten).
fn same_integers(left: Option<&DataType>, right: Option<&DataType>) -> bool {
    matches!((left, right), (Some(l), Some(r)) if is_integer(l) && l == r)
}

/// `sum(x)` of a `BIGINT` (DataFusion's `sum` of any signed integer, after coercion), not DISTINCT
/// (its own accumulator; reported by `validate` instead).
fn is_bigint_sum(name: &str, args: &[Expr], distinct: bool, schema: &DFSchema) -> bool {
    name == "sum" && !distinct && matches!(args, [x] if type_of(x, schema) == Some(DataType::Int64))
}

/// Whether the dialect divides these operand types differently from DataFusion: integers (all but
/// PostgreSQL), and decimals in DuckDB (a `DOUBLE`) and Snowflake (its own scale). BigQuery's
/// `NUMERIC` and Spark's decimals divide as DataFusion's do (Spark's scale rule is DataFusion's).
fn divides_differently(
    dialect: Dialect,
    left: Option<&DataType>,
    right: Option<&DataType>,
) -> bool {
    let (Some(l), Some(r)) = (left, right) else {
        return false;
    };
    let exact = |t: &DataType| is_integer(t) || is_decimal(t);
    match dialect.integer_division() {
        IntegerDivision::Integer => false,
        IntegerDivision::FloatStrict => is_integer(l) && is_integer(r),
        IntegerDivision::FloatIeee | IntegerDivision::SnowflakeNumber => exact(l) && exact(r),
    }
}

/// `expr` rounded to a whole number the way the dialect's integer casts round, when it is a float or
/// a decimal and the dialect does not truncate.
fn rounded(dialect: Dialect, expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let t = type_of(expr, schema)?;
    let x = expr.clone();
    match dialect.cast_rounding() {
        CastRounding::Truncate => None,
        _ if is_decimal(&t) => Some(round(x)),
        CastRounding::NearestAwayFromZero if is_float(&t) => Some(round(x)),
        CastRounding::NearestFloatsToEven if is_float(&t) => {
            // Exactly halfway: the even neighbour is 2 * round(x / 2); otherwise the nearest.
            let frac = expr_fn::abs(x.clone() - expr_fn::trunc(vec![x.clone()]));
            let even = lit(2.0f64) * round(x.clone() / lit(2.0f64));
            when(frac.eq(lit(0.5f64)), even).otherwise(round(x)).ok()
        }
        _ => None,
    }
}

fn rewrite_function(
    dialect: Dialect,
    f: ScalarFunction,
    schema: &DFSchema,
) -> DfResult<Transformed<Expr>> {
    let name = f.func.name().to_string();
    match (name.as_str(), f.args.len()) {
        ("concat", n) if n > 0 && dialect.concat_propagates_null() => {
            let checks: Vec<Expr> = f
                .args
                .iter()
                .filter(|a| !matches!(a, Expr::Literal(v, _) if !v.is_null()))
                .map(|a| a.clone().is_null())
                .collect();
            let Some(any_null) = checks.into_iter().reduce(|a, b| a.or(b)) else {
                return Ok(Transformed::no(Expr::ScalarFunction(f)));
            };
            let concat = Expr::ScalarFunction(f);
            let t = concat.get_type(schema)?;
            let null = lit(ScalarValue::try_from(&t)?);
            Ok(Transformed::yes(when(any_null, null).otherwise(concat)?))
        }
        ("log", 1) if dialect.log_is_natural() => {
            let mut args = f.args.into_iter();
            match args.next() {
                Some(x) => Ok(Transformed::yes(expr_fn::ln(x))),
                None => Ok(Transformed::no(lit(ScalarValue::Null))),
            }
        }
        ("log", 2) if dialect.log_value_first() => {
            // BigQuery's LOG(x, base); written as ln(x) / ln(base) so a second pass changes nothing.
            let mut args = f.args.into_iter();
            let (Some(x), Some(base)) = (args.next(), args.next()) else {
                return Ok(Transformed::no(lit(ScalarValue::Null)));
            };
            Ok(Transformed::yes(binary_expr(
                expr_fn::ln(x),
                Operator::Divide,
                expr_fn::ln(base),
            )))
        }
        _ => Ok(Transformed::no(Expr::ScalarFunction(f))),
    }
}
