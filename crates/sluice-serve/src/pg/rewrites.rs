//! More rewrites for [`super::compat`]: constructs of BI tools' queries DataFusion does not plan,
//! and DataFusion's own `SHOW TABLES`/`SHOW COLUMNS`, which the wire session answers from its
//! PostgreSQL-shaped `information_schema`.
//!
//! - a cast of a computed name to `regclass` (Metabase's `CAST(FORMAT('%I.%I', s, t) AS
//!   REGCLASS)`) becomes a lookup in `pg_class` by schema and name (the library resolves literal
//!   names itself); a name that is no relation gives NULL where PostgreSQL raises an error;
//! - a correlated scalar subquery in `WHERE` that is not aggregated (pgJDBC's `getTypeInfo`: `(SELECT
//!   c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)`) is aggregated with `max`, which
//!   DataFusion decorrelates and which gives the same value for the zero or one row it may return;
//! - `regproc` columns compared with a function name (pgJDBC's type cache: `typinput =
//!   'pg_catalog.array_in'::regproc`): the catalog emulation holds them as the function's name, so
//!   they are compared with the name;
//! - `n * INTERVAL '1 DAY'` (Tableau's `DATE(number)`): DataFusion cannot multiply an interval, so
//!   it becomes `_pg_interval_mul` ([`super::scalar`]).

use std::collections::HashSet;
use std::ops::ControlFlow;

use sluice_engine::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, ObjectName, Query, Select, SelectItem, SetExpr,
    ShowStatementIn, Statement, TableFactor, Value, VisitMut, VisitorMut, visit_expressions_mut,
};
use sluice_engine::sql::sqlparser::dialect::PostgreSqlDialect;
use sluice_engine::sql::sqlparser::parser::Parser;

use super::functions::DEFAULT_SCHEMA;
use super::scalar::{INTERVAL_MUL, REGCLASS_PART};

/// Columns PostgreSQL types `regproc` that the catalog emulation holds as the function's name.
const REGPROC_COLUMNS: [&str; 7] = [
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
];

/// `SHOW TABLES [IN schema]` and `SHOW COLUMNS FROM [schema.]table` as queries over
/// `information_schema`, with the columns DataFusion's answers have; `None` for other statements.
pub fn show(statement: &Statement) -> Option<Statement> {
    let sql = match statement {
        Statement::ShowTables { show_options, .. } => {
            let filter = match parent(show_options.show_in.as_ref()) {
                Some(name) => format!(" WHERE table_schema = {}", literal(&last_part(&name))),
                None => String::new(),
            };
            format!(
                "SELECT table_catalog, table_schema, table_name, table_type \
                 FROM information_schema.tables{filter} ORDER BY table_schema, table_name"
            )
        }
        Statement::ShowVariable { variable } if is_word(variable, "tables") => {
            "SELECT table_catalog, table_schema, table_name, table_type \
             FROM information_schema.tables ORDER BY table_schema, table_name"
                .to_string()
        }
        Statement::ShowColumns { show_options, .. } => {
            let name = parent(show_options.show_in.as_ref())?;
            let (schema, table) = table_of(&name);
            format!(
                "SELECT table_catalog, table_schema, table_name, column_name, data_type, \
                 is_nullable FROM information_schema.columns \
                 WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
                literal(&schema),
                literal(&table)
            )
        }
        _ => return None,
    };
    Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .ok()?
        .into_iter()
        .next()
}

/// The table `SHOW COLUMNS` names, `(schema, table)`.
pub fn show_columns_table(statement: &Statement) -> Option<(String, String)> {
    let Statement::ShowColumns { show_options, .. } = statement else {
        return None;
    };
    parent(show_options.show_in.as_ref()).map(|n| table_of(&n))
}

fn is_word(variable: &[sluice_engine::sql::sqlparser::ast::Ident], word: &str) -> bool {
    matches!(variable, [w] if w.value.eq_ignore_ascii_case(word))
}

fn parent(show_in: Option<&ShowStatementIn>) -> Option<ObjectName> {
    show_in?.parent_name.clone()
}

/// An identifier's value as the engine resolves it: unquoted ones lower-cased.
fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| {
            if i.quote_style.is_some() {
                i.value.clone()
            } else {
                i.value.to_lowercase()
            }
        })
        .collect()
}

fn last_part(name: &ObjectName) -> String {
    parts(name).pop().unwrap_or_default()
}

fn table_of(name: &ObjectName) -> (String, String) {
    let mut p = parts(name);
    let table = p.pop().unwrap_or_default();
    let schema = p.pop().unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
    (schema, table)
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether `text` (the statement in lower case) may need [`exprs`].
pub fn may_apply(text: &str) -> bool {
    text.contains("regclass")
        || text.contains("pg_proc")
        || text.contains("interval")
        || (text.contains("where") && text.matches("select").count() > 1)
}

/// The statement with the expression rewrites of the module doc, or `None` when none applies.
pub fn exprs(statement: &Statement) -> Option<Statement> {
    let mut out = statement.clone();
    let mut visitor = Rewriter { changed: false };
    let _ = out.visit(&mut visitor);
    visitor.changed.then_some(out)
}

struct Rewriter {
    changed: bool,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut()
            && let Some(selection) = select.selection.as_mut()
        {
            let _ = visit_expressions_mut(selection, |e: &mut Expr| {
                if let Expr::Subquery(q) = e
                    && aggregate_single_row(q)
                {
                    self.changed = true;
                }
                ControlFlow::<()>::Continue(())
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Some(new) = regclass_lookup(e)
            .or_else(|| regproc_by_name(e))
            .or_else(|| interval_product(e))
        {
            *e = new;
            self.changed = true;
        }
        ControlFlow::Continue(())
    }
}

/// `SELECT p FROM … WHERE …` (one item, not grouped, no aggregate) as `SELECT max(p) FROM …`.
fn aggregate_single_row(q: &mut Query) -> bool {
    if q.limit_clause.is_some() || q.fetch.is_some() || q.order_by.is_some() {
        return false;
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return false;
    };
    if !is_correlated(select) {
        // DataFusion plans it as it is (and a second row is an error, as in PostgreSQL).
        return false;
    }
    let no_grouping = matches!(
        &select.group_by,
        sluice_engine::sql::sqlparser::ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty()
    );
    if !no_grouping || select.having.is_some() || select.distinct.is_some() {
        return false;
    }
    let [item] = select.projection.as_mut_slice() else {
        return false;
    };
    let expr = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return false,
    };
    // Only plain expressions: any function call may be an aggregate already.
    let mut has_call = false;
    let _ = visit_expressions_mut(expr, |e: &mut Expr| {
        if matches!(e, Expr::Function(_) | Expr::Subquery(_)) {
            has_call = true;
        }
        ControlFlow::<()>::Continue(())
    });
    if has_call {
        return false;
    }
    match parse_expr(&format!("max({expr})")) {
        Some(new) => {
            *expr = new;
            true
        }
        None => false,
    }
}

/// Whether `select`'s `WHERE` names a table its `FROM` does not (`t.typrelid` of the outer query).
fn is_correlated(select: &mut Select) -> bool {
    let mut names = HashSet::new();
    for from in &select.from {
        for relation in
            std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation))
        {
            match relation {
                TableFactor::Table { name, alias, .. } => {
                    let own = alias.as_ref().map(|a| a.name.value.clone()).or_else(|| {
                        name.0
                            .last()
                            .and_then(|p| p.as_ident())
                            .map(|i| i.value.clone())
                    });
                    names.extend(own.map(|n| n.to_lowercase()));
                }
                TableFactor::Derived { alias, .. } | TableFactor::Function { alias, .. } => {
                    names.extend(alias.as_ref().map(|a| a.name.value.to_lowercase()));
                }
                _ => {}
            }
        }
    }
    let mut outer = false;
    if let Some(selection) = select.selection.as_mut() {
        let _ = visit_expressions_mut(selection, |e: &mut Expr| {
            if let Expr::CompoundIdentifier(parts) = e
                && parts.len() >= 2
                && !names.contains(&parts[0].value.to_lowercase())
            {
                outer = true;
            }
            ControlFlow::<()>::Continue(())
        });
    }
    outer
}

fn type_name(t: &DataType) -> String {
    let name = t.to_string().to_ascii_lowercase();
    name.strip_prefix("pg_catalog.")
        .unwrap_or(&name)
        .to_string()
}

/// `CAST(<computed name> AS regclass)` as a lookup in `pg_class`.
fn regclass_lookup(e: &Expr) -> Option<Expr> {
    let Expr::Cast {
        expr, data_type, ..
    } = e
    else {
        return None;
    };
    if type_name(data_type) != "regclass" {
        return None;
    }
    // A computed name: a function (`format`, `concat`, `quote_ident`), a concatenation or a cast to
    // text. Columns (`c.oid::regclass`, an OID shown as a name) and literals (resolved by the
    // library) are left alone.
    let computed = match expr.as_ref() {
        Expr::Function(_) => true,
        Expr::BinaryOp {
            op: BinaryOperator::StringConcat,
            ..
        } => true,
        Expr::Cast { data_type, .. } => {
            matches!(type_name(data_type).as_str(), "text" | "varchar")
        }
        _ => false,
    };
    if !computed {
        return None;
    }
    parse_expr(&format!(
        "(SELECT max(c.oid) FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid \
         WHERE n.nspname = {REGCLASS_PART}({expr}, 1) AND c.relname = {REGCLASS_PART}({expr}, 2))"
    ))
}

/// The function name a `regproc` value stands for: `'pg_catalog.array_in'::regproc`, or the lookup
/// the library makes of it (`(SELECT oid FROM pg_catalog.pg_proc WHERE proname = '…')`).
fn regproc_name(e: &Expr) -> Option<String> {
    let name = match e {
        Expr::Cast {
            expr, data_type, ..
        } if type_name(data_type) == "regproc" => string_literal(expr)?,
        Expr::Subquery(q) => {
            let SetExpr::Select(select) = q.body.as_ref() else {
                return None;
            };
            let from = select
                .from
                .first()?
                .relation
                .to_string()
                .to_ascii_lowercase();
            if select.from.len() != 1 || !from.ends_with("pg_proc") {
                return None;
            }
            let Some(Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            }) = &select.selection
            else {
                return None;
            };
            if !left.to_string().eq_ignore_ascii_case("proname") {
                return None;
            }
            string_literal(right)?
        }
        _ => return None,
    };
    Some(
        name.strip_prefix("pg_catalog.")
            .unwrap_or(&name)
            .to_string(),
    )
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn is_regproc_column(e: &Expr) -> bool {
    let last = match e {
        Expr::Identifier(i) => i,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => i,
            None => return false,
        },
        _ => return false,
    };
    REGPROC_COLUMNS.contains(&last.value.to_ascii_lowercase().as_str())
}

/// `typinput = 'array_in'::regproc` (either way round) as a comparison of names.
fn regproc_by_name(e: &Expr) -> Option<Expr> {
    let Expr::BinaryOp { left, op, right } = e else {
        return None;
    };
    if !matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
        return None;
    }
    let (column, name) = if is_regproc_column(left) {
        (left, regproc_name(right)?)
    } else if is_regproc_column(right) {
        (right, regproc_name(left)?)
    } else {
        return None;
    };
    parse_expr(&format!("{column} {op} {}", literal(&name)))
}

/// `n * INTERVAL '…'` (either way round) as `_pg_interval_mul(INTERVAL '…', n)`.
fn interval_product(e: &Expr) -> Option<Expr> {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Multiply,
        right,
    } = e
    else {
        return None;
    };
    let is_interval = |e: &Expr| match e {
        Expr::Interval(_) => true,
        Expr::Cast { data_type, .. } => type_name(data_type) == "interval",
        Expr::Nested(inner) => matches!(inner.as_ref(), Expr::Interval(_)),
        _ => false,
    };
    let (interval, factor) = if is_interval(right) {
        (right, left)
    } else if is_interval(left) {
        (left, right)
    } else {
        return None;
    };
    parse_expr(&format!("{INTERVAL_MUL}({interval}, {factor})"))
}

fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| tracing::debug!(error = %e, sql, "compat rewrite did not parse"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        exprs(&s).map(|s| s.to_string()).unwrap_or_default()
    }

    #[test]
    fn tool_constructs_are_rewritten() {
        let out = rewritten(
            "SELECT col_description(CAST(CAST(format('%I.%I', s, t) AS regclass) AS oid), 1) FROM x",
        );
        assert!(
            out.contains("_pg_regclass_part(format('%I.%I', s, t), 2)"),
            "{out}"
        );
        assert_eq!(rewritten("SELECT c.oid::regclass FROM pg_class c"), "");

        let out = rewritten(
            "SELECT t.oid FROM pg_type t WHERE t.typrelid = 0 OR \
             (SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)",
        );
        assert!(
            out.contains("(SELECT max(c.relkind = 'c') FROM pg_class"),
            "{out}"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM t WHERE a = (SELECT max(b) FROM u WHERE u.x = t.x)"),
            ""
        );
        // Not correlated: planned as it is.
        assert_eq!(
            rewritten("SELECT 1 FROM t WHERE a = (SELECT b FROM u WHERE u.x = 1)"),
            ""
        );

        let out = rewritten(
            "SELECT typinput = (SELECT oid FROM pg_catalog.pg_proc WHERE proname = 'pg_catalog.array_in') FROM pg_type",
        );
        assert!(out.contains("typinput = 'array_in'"), "{out}");
        let out = rewritten("SELECT typinput='pg_catalog.array_in'::regproc FROM pg_type");
        assert!(out.contains("typinput = 'array_in'"), "{out}");

        let out = rewritten("SELECT d + t.n * INTERVAL '1 DAY' FROM t");
        assert!(
            out.contains("_pg_interval_mul(INTERVAL '1 DAY', t.n)"),
            "{out}"
        );
        assert_eq!(rewritten("SELECT d + INTERVAL '1 DAY' FROM t"), "");
    }

    #[test]
    fn show_becomes_information_schema_queries() {
        let parse = |sql: &str| {
            Parser::parse_sql(&PostgreSqlDialect {}, sql)
                .unwrap()
                .remove(0)
        };
        let out = show(&parse("SHOW TABLES")).unwrap().to_string();
        assert!(out.contains("FROM information_schema.tables"), "{out}");
        let out = show(&parse("SHOW COLUMNS FROM By_Region"))
            .unwrap()
            .to_string();
        assert!(
            out.contains("table_schema = 'gold' AND table_name = 'by_region'"),
            "{out}"
        );
        let out = show(&parse("SHOW COLUMNS FROM silver.\"T\""))
            .unwrap()
            .to_string();
        assert!(
            out.contains("table_schema = 'silver' AND table_name = 'T'"),
            "{out}"
        );
        assert!(show(&parse("SHOW timezone")).is_none());
    }
}
