//! Rewrites of PostgreSQL constructs that catalog queries use and DataFusion does not plan, applied
//! to a query before it is planned: the set-returning helpers drivers use to walk `int2vector`
//! columns, and the `ARRAY(subquery)` constructor.
//!
//! - `generate_subscripts(a, d)` (SQLAlchemy's primary and unique key reflection) becomes
//!   `unnest(generate_series(1, array_length(a, d)))`: the same subscripts, row for row beside
//!   an `unnest(a)` in the same select list, as PostgreSQL pairs them;
//! - `information_schema._pg_expandarray(a)` (pgJDBC's `getPrimaryKeys` and `getIndexInfo`,
//!   Metabase's index sync) becomes `unnest(_pg_expandarray(a))`, whose UDF gives the
//!   `(x, n)` records PostgreSQL's function returns, so `(…).x` and `(…).n` read as there;
//! - `ARRAY(SELECT e FROM …)` becomes `(SELECT array_agg(e) FROM …)`;
//! - `pg_class.reloptions`, which the catalog emulation lacks, reads as a NULL `text[]` (no table
//!   has storage options), and psql's `array(select 'toast.' || x from unnest(tc.reloptions) x)`
//!   over it as the same;
//! - the `int2vector` catalog columns (`conkey`, `indkey`, ...), which the catalog emulation holds as
//!   text, are read as integer arrays where a query unnests, subscripts or searches them.
//!
//! The rewrites for BI tools' queries (computed `regclass` casts, scalar subqueries in `WHERE`,
//! `regproc` comparisons, interval products) and `SHOW TABLES`/`SHOW COLUMNS` are in
//! [`super::rewrites`]; [`rewrite`] applies them too.
//!
//! [`CompatHook`] sits before the read-only hook, so a statement that DataFusion would plan into
//! something else is rewritten first; it takes only what the read-only rules classify as a query,
//! and checks the rewritten plan as they do. Statements that need none of this go on to the
//! library untouched (the text is looked at first, so ordinary queries pay nothing).

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int32Array, ListArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields};
use async_trait::async_trait;
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::types::format::FormatOptions;
use sluice_engine::extension::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sluice_engine::plan::LogicalPlan;
use sluice_engine::sql::Statement as DfStatement;
use sluice_engine::sql::sqlparser::ast::{
    AccessExpr, Expr, FunctionArguments, GroupByExpr, Query, SelectItem, SetExpr, Statement,
    visit_expressions_mut,
};
use sluice_engine::sql::sqlparser::dialect::PostgreSqlDialect;
use sluice_engine::sql::sqlparser::parser::Parser;
use sluice_engine::{DataFusionError, DfResult, ParamValues, SessionContext};

use super::{read_only, rewrites};

/// Words in a query's text that mean a rewrite may apply: the constructs, and the catalog columns
/// PostgreSQL types `int2vector`/`oidvector` that the catalog emulation holds as text.
const TRIGGERS: [&str; 8] = [
    "reloptions",
    "generate_subscripts",
    "_pg_expandarray",
    "array(",
    "conkey",
    "confkey",
    "indkey",
    "indoption",
];

/// Functions whose first argument is an array, so a text-held vector column must become one.
const ARRAY_ARGUMENT: [&str; 4] = ["unnest", "array_has", "array_contains", "array_element"];

/// The statement rewritten, or `None` when nothing applies.
pub fn rewrite(statement: &Statement) -> Option<Statement> {
    if let Some(show) = rewrites::show(statement) {
        return Some(show);
    }
    // Only queries the read-only rules let through (the rewritten plan is checked again).
    if !matches!(statement, Statement::Query(_))
        || !matches!(read_only::classify(statement), read_only::Verdict::Plan(_))
    {
        return None;
    }
    let text = statement
        .to_string()
        .to_ascii_lowercase()
        .replace("array (", "array(");
    let mut out = None;
    if TRIGGERS.iter().any(|t| text.contains(t)) {
        let mut rewritten = statement.clone();
        let mut changed = false;
        let _ = visit_expressions_mut(&mut rewritten, |e: &mut Expr| {
            if let Some(new) = rewrite_expr(e) {
                *e = new;
                changed = true;
            }
            ControlFlow::<()>::Continue(())
        });
        out = changed.then_some(rewritten);
    }
    if rewrites::may_apply(&text)
        && let Some(more) = rewrites::exprs(out.as_ref().unwrap_or(statement))
    {
        out = Some(more);
    }
    out
}

/// `SHOW COLUMNS` of a table that does not exist fails as a query of it would.
fn check_shown_table(statement: &Statement, ctx: &SessionContext) -> PgWireResult<()> {
    let Some((schema, table)) = rewrites::show_columns_table(statement) else {
        return Ok(());
    };
    let reference = sluice_engine::TableReference::partial(schema.as_str(), table.as_str());
    if ctx.table_exist(reference).unwrap_or(false) {
        return Ok(());
    }
    Err(PgWireError::ApiError(Box::new(DataFusionError::Plan(
        format!("table '{schema}.{table}' not found"),
    ))))
}

fn rewrite_expr(e: &Expr) -> Option<Expr> {
    // `pg_class.reloptions` (storage options, NULL for a table without any, as every lake table
    // is): the catalog emulation has no such column.
    if let Expr::CompoundIdentifier(parts) = e
        && parts
            .last()
            .is_some_and(|p| p.value.eq_ignore_ascii_case("reloptions"))
    {
        return parse_expr(NO_OPTIONS);
    }
    if let Expr::CompoundFieldAccess { root, access_chain } = e {
        // `(f(x)).n`, `(t.keys).x`: a record's field, which DataFusion reads with get_field.
        if let [AccessExpr::Dot(Expr::Identifier(field))] = access_chain.as_slice() {
            return parse_expr(&format!("get_field({root}, '{}')", field.value));
        }
        // `con.conkey[pos.n]`: the vector column as an array.
        let first = access_chain
            .iter()
            .position(|a| matches!(a, AccessExpr::Subscript(_)))?;
        let base: String = std::iter::once(root.to_string())
            .chain(access_chain[..first].iter().map(|a| a.to_string()))
            .collect();
        if base.starts_with(AS_ARRAY) {
            return None;
        }
        let rest: String = access_chain[first..]
            .iter()
            .map(|a| a.to_string())
            .collect();
        return parse_expr(&format!("{AS_ARRAY}({base}){rest}"));
    }
    let Expr::Function(f) = e else { return None };
    let name = f.name.0.last()?.to_string().to_ascii_lowercase();
    let name = name.trim_matches('"');
    match (name, &f.args) {
        ("generate_subscripts", FunctionArguments::List(list)) if list.args.len() == 2 => {
            let (a, d) = (&list.args[0], &list.args[1]);
            parse_expr(&format!(
                "unnest(generate_series(1, array_length({AS_ARRAY}({a}), {d})))"
            ))
        }
        ("_pg_expandarray", FunctionArguments::List(list)) if list.args.len() == 1 => {
            let a = &list.args[0];
            parse_expr(&format!("unnest(_pg_expandarray({AS_ARRAY}({a})))"))
        }
        (name, FunctionArguments::List(list))
            if ARRAY_ARGUMENT.contains(&name)
                && list
                    .args
                    .first()
                    .is_some_and(|a| !a.to_string().starts_with(AS_ARRAY)) =>
        {
            let args: Vec<String> = list.args.iter().map(|a| a.to_string()).collect();
            parse_expr(&format!(
                "{name}({AS_ARRAY}({}){}{})",
                args[0],
                if args.len() > 1 { ", " } else { "" },
                args[1..].join(", ")
            ))
        }
        ("array", FunctionArguments::Subquery(q)) => array_of(q),
        _ => None,
    }
}

/// The name of [`as_array_udf`].
const AS_ARRAY: &str = "_pg_as_array";

/// What `pg_class.reloptions` reads as: no options, typed as the `text[]` PostgreSQL's column is.
const NO_OPTIONS: &str = "CAST(NULL AS TEXT[])";

/// `ARRAY(SELECT e FROM … [ORDER BY o])` as `(SELECT array_agg(e [ORDER BY o]) FROM …)`: the same
/// level, so a reference to the outer query stays a correlation DataFusion plans.
fn array_of(q: &Query) -> Option<Expr> {
    // psql's `\d+`: `array(select 'toast.' || x from unnest(tc.reloptions) x)`, over no options.
    let text = q.to_string();
    if text.contains("unnest(") && text.contains(NO_OPTIONS) {
        return parse_expr(NO_OPTIONS);
    }
    let mut inner = q.clone();
    let order = inner.order_by.take();
    let SetExpr::Select(select) = inner.body.as_mut() else {
        return None;
    };
    if select.group_by != GroupByExpr::Expressions(vec![], vec![]) {
        return None;
    }
    let [item] = select.projection.as_mut_slice() else {
        return None;
    };
    let expr = match item {
        SelectItem::UnnamedExpr(e) => e.clone(),
        SelectItem::ExprWithAlias { expr, .. } => expr.clone(),
        _ => return None,
    };
    // ORDER BY 1 means the element itself.
    let order = order
        .map(|o| {
            o.to_string()
                .replace("ORDER BY 1", &format!("ORDER BY {expr}"))
        })
        .unwrap_or_default();
    let order = if order.is_empty() {
        String::new()
    } else {
        format!(" {order}")
    };
    *item = SelectItem::UnnamedExpr(parse_expr(&format!("array_agg({expr}{order})"))?);
    parse_expr(&format!("({inner})"))
}

fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| tracing::debug!(error = %e, sql, "compat rewrite did not parse"))
        .ok()
}

/// The highest `$n` in `sql`.
pub(crate) fn highest_placeholder(sql: &str) -> u32 {
    let mut highest = 0;
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<u32>() {
            highest = highest.max(n);
        }
    }
    highest
}

/// Keeps parameters `$1..$highest` in the plan's parameter list when planning dropped some.
///
/// The library's SQL rewrites replace a correlated subquery in a select list (SQLAlchemy's
/// `identity_options`) by NULL, and the parameters in it go with it; the client still binds them, by
/// position, so the parameter list must still have them or every later value lands on the wrong
/// type. The missing ones are kept in an always-true filter on top, typed as text (the values are
/// not used).
pub(crate) fn keep_placeholders(plan: LogicalPlan, highest: u32) -> DfResult<LogicalPlan> {
    use sluice_engine::extension::logical_expr::expr::Placeholder;
    use sluice_engine::extension::logical_expr::{Expr as DfExpr, lit};
    use sluice_engine::plan::LogicalPlanBuilder;
    let present = plan.get_parameter_types()?;
    let missing: Vec<String> = (1..=highest)
        .map(|n| format!("${n}"))
        .filter(|id| !present.contains_key(id))
        .collect();
    if missing.is_empty() {
        return Ok(plan);
    }
    let predicate = missing.into_iter().fold(lit(true), |acc, id| {
        let text = Arc::new(Field::new("", DataType::Utf8, true));
        acc.or(DfExpr::Placeholder(Placeholder::new_with_field(id, Some(text))).is_null())
    });
    LogicalPlanBuilder::from(plan).filter(predicate)?.build()
}

async fn plan(ctx: &SessionContext, statement: Statement) -> PgWireResult<LogicalPlan> {
    let plan = ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
        .await
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    read_only::verify(&plan).map_err(PgWireError::from)?;
    Ok(plan)
}

/// Plans and runs rewritten catalog queries (see the module doc); install first.
#[derive(Debug, Default, Clone, Copy)]
pub struct CompatHook;

#[async_trait]
impl QueryHook for CompatHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let rewritten = rewrite(statement)?;
        tracing::debug!(%rewritten, "catalog query rewritten");
        let run = async {
            check_shown_table(statement, ctx)?;
            let plan = plan(ctx, rewritten).await?;
            let df = ctx
                .execute_logical_plan(plan)
                .await
                .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
            let response = encode_dataframe(df, &Format::UnifiedText, Some(options)).await?;
            Ok(Response::Query(response))
        };
        Some(run.await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        let rewritten = rewrite(statement)?;
        if let Err(e) = check_shown_table(statement, ctx) {
            return Some(Err(e));
        }
        Some(plan(ctx, rewritten).await)
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        // The plan made at parse time runs on the library's path.
        None
    }
}

/// `_pg_as_array(v)`: an array as it is; text in PostgreSQL's array or vector form (`{1,2}`, `1 2`)
/// as an integer array. The catalog emulation keeps `int2vector` columns as text.
pub fn as_array_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(AsArray {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AsArray {
    signature: Signature,
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl ScalarUDFImpl for AsArray {
    fn name(&self) -> &str {
        AS_ARRAY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types.first() {
            Some(t) if is_text(t) || *t == DataType::Null => Ok(DataType::List(Arc::new(
                Field::new("item", DataType::Int32, true),
            ))),
            Some(t) => Ok(t.clone()),
            None => Err(DataFusionError::Plan(format!(
                "{AS_ARRAY} takes one argument"
            ))),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(first) = args.args.into_iter().next() else {
            return Err(DataFusionError::Plan(format!(
                "{AS_ARRAY} takes one argument"
            )));
        };
        let array = first.to_array(args.number_rows)?;
        if !is_text(array.data_type()) && *array.data_type() != DataType::Null {
            return Ok(ColumnarValue::Array(array));
        }
        let text = arrow::compute::cast(&array, &DataType::Utf8)?;
        let text = text
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or_else(|| DataFusionError::Internal("cast to Utf8 did not give strings".into()))?;
        let lists = text.iter().map(|v| {
            v.map(|v| {
                v.trim_matches(|c| c == '{' || c == '}')
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
        });
        let out = ListArray::from_iter_primitive::<arrow::datatypes::Int32Type, _, _>(lists);
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `_pg_expandarray(a)`: PostgreSQL's `information_schema._pg_expandarray`, one `(x, n)` record per
/// element (the element and its 1-based subscript), as a list for `unnest` to spread.
pub fn expandarray_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

fn record_fields(element: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", element.clone(), true),
        Field::new("n", DataType::Int32, false),
    ])
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        "_pg_expandarray"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        let element = match arg_types.first() {
            Some(DataType::List(f)) => f.data_type().clone(),
            Some(DataType::Null) => DataType::Int32,
            other => {
                return Err(DataFusionError::Plan(format!(
                    "_pg_expandarray expects an array, got {other:?}"
                )));
            }
        };
        Ok(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(record_fields(&element)),
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let input = args
            .args
            .first()
            .ok_or_else(|| DataFusionError::Plan("_pg_expandarray takes one argument".into()))?
            .to_array(args.number_rows)?;
        let Some(list) = input.as_any().downcast_ref::<ListArray>() else {
            // A NULL literal: no elements.
            let element = DataType::Int32;
            let fields = record_fields(&element);
            let values = StructArray::new_null(fields.clone(), 0);
            let offsets = OffsetBuffer::from_lengths(vec![0; args.number_rows]);
            let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
            let out = ListArray::new(item, offsets, Arc::new(values), None);
            return Ok(ColumnarValue::Array(Arc::new(out)));
        };
        let element = list.value_type();
        let fields = record_fields(&element);
        // Subscripts restart at 1 in each row's list.
        let mut n = Vec::with_capacity(list.values().len());
        for window in list.offsets().windows(2) {
            let len = usize::try_from(window[1] - window[0]).unwrap_or(0);
            n.extend((1..=len).map(|i| i32::try_from(i).unwrap_or(i32::MAX)));
        }
        let start = usize::try_from(list.offsets()[0]).unwrap_or(0);
        let values: ArrayRef = list.values().slice(start, n.len());
        let records = StructArray::try_new(
            fields.clone(),
            vec![values, Arc::new(Int32Array::from(n))],
            None,
        )?;
        let offsets = OffsetBuffer::new(
            list.offsets()
                .iter()
                .map(|o| o - list.offsets()[0])
                .collect::<Vec<_>>()
                .into(),
        );
        let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
        let out = ListArray::try_new(item, offsets, Arc::new(records), list.nulls().cloned())?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn catalog_constructs_are_rewritten_and_others_left_alone() {
        let s = parse(
            "SELECT unnest(conkey) AS a, generate_subscripts(conkey, 1) AS o FROM pg_constraint",
        );
        let out = rewrite(&s).unwrap().to_string();
        assert!(
            out.contains("unnest(generate_series(1, array_length(_pg_as_array(conkey), 1)))"),
            "{out}"
        );
        assert!(out.contains("unnest(_pg_as_array(conkey))"), "{out}");
        let s = parse("SELECT (information_schema._pg_expandarray(i.indkey)).n FROM pg_index i");
        let out = rewrite(&s).unwrap().to_string();
        assert!(
            out.contains("unnest(_pg_expandarray(_pg_as_array(i.indkey)))"),
            "{out}"
        );
        let s = parse("SELECT array(select rolname from pg_roles order by 1)");
        let out = rewrite(&s).unwrap().to_string();
        assert!(out.contains("array_agg(rolname ORDER BY rolname)"), "{out}");
        assert!(rewrite(&parse("SELECT array_length(x, 1) FROM t")).is_none());
        assert!(rewrite(&parse("SELECT 1")).is_none());
        assert_eq!(
            highest_placeholder("SELECT $1, $12 FROM t WHERE a = '$user'"),
            12
        );
    }
}
