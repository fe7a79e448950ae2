//! Query parameters of `GET /api/assets/{name}/rows`: projection, PostgREST-style filters, order and
//! paging, turned into a DataFusion plan.
//!
//! Values are never pasted into SQL: every filter becomes an expression built with [`ident`] and
//! [`lit`], and each value is first cast to the column's type (so `amount=gt.abc` is a 400 naming the
//! column and its type, and `region=eq.x' or 1=1` is just a string that matches nothing).
//!
//! ```text
//! columns=a,b                 only these columns, in this order
//! <column>=<op>.<value>       op: eq neq lt lte gt gte like ilike in is; `not.<op>.<value>` negates;
//!                             like/ilike take `*` or `%` as wildcard; in takes `a,b` or `(a,"b,c")`;
//!                             is takes null, notnull, true, false. Repeated filters are ANDed.
//! order=a.desc,b              asc (default) or desc, optionally .nullsfirst / .nullslast
//! limit=100  offset=0         paging (limit at most MAX_LIMIT, offset at most MAX_OFFSET)
//! cursor=<X-Next-Cursor>      keyset paging: the rows after the previous page (needs `order`)
//! ```
//!
//! Keyset cursors are in [`super::cursor`]; a hand-written key filter (`order=id&id=gt.<last id>`)
//! does the same.

use arrow::datatypes::DataType;
use sluice_engine::expr::{Expr, cast, ident, lit};
use sluice_engine::{DataFrame, ScalarValue};

use super::cursor::Cursor;
pub use super::order::OrderBy;
use super::order::parse_order;
use crate::error::ApiError;

/// Rows returned when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 100_000;
/// Largest `offset` accepted: deeper pages are a cursor's job, and DataFusion adds offset and limit.
pub const MAX_OFFSET: usize = 1_000_000_000;
/// Most filters in one request: each is one more predicate in the plan.
pub const MAX_FILTERS: usize = 64;
/// Most values in one `in.(...)` list.
pub const MAX_IN_VALUES: usize = 1_000;
/// Parameters that are not filters (a column with one of these names cannot be filtered on).
pub const RESERVED: [&str; 6] = ["format", "columns", "order", "limit", "offset", "cursor"];
/// The filter operators.
pub const OPERATORS: [&str; 10] = [
    "eq", "neq", "lt", "lte", "gt", "gte", "like", "ilike", "in", "is",
];

/// A parsed rows request.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsRequest {
    /// `?format=`.
    pub format: Option<String>,
    /// `?columns=`: the projection, `None` for every column.
    pub columns: Option<Vec<String>>,
    /// Filters, ANDed.
    pub filters: Vec<Filter>,
    /// `?order=`.
    pub order: Vec<OrderBy>,
    /// Rows to return.
    pub limit: usize,
    /// Rows to skip.
    pub offset: usize,
    /// `?cursor=`: continue after the page that returned it (keyset paging).
    pub cursor: Option<String>,
}

/// One `<column>=<op>.<value>` filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The column.
    pub column: String,
    /// The parameter's value as given (for messages).
    pub raw: String,
    /// `not.` prefix.
    pub negated: bool,
    /// What to compare.
    pub op: Op,
}

/// A filter operator with its value(s), still as text (typed against the column later).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `eq`, `neq`, `lt`, `lte`, `gt`, `gte`.
    Compare(Comparison, String),
    /// `like` (case-sensitive) or `ilike`, with `*` or `%` wildcards.
    Like {
        /// `ilike`.
        case_insensitive: bool,
        /// The pattern, `*` already turned into `%`.
        pattern: String,
    },
    /// `in`.
    In(Vec<String>),
    /// `is`.
    Is(IsValue),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `=`.
    Eq,
    /// `<>`.
    Neq,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
}

/// The value of an `is` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    /// `is.null`.
    Null,
    /// `is.notnull`.
    NotNull,
    /// `is.true`.
    True,
    /// `is.false`.
    False,
}

impl RowsRequest {
    /// Parses the query string's pairs.
    pub fn parse(params: &[(String, String)]) -> Result<RowsRequest, ApiError> {
        let mut req = RowsRequest {
            format: None,
            columns: None,
            filters: Vec::new(),
            order: Vec::new(),
            limit: DEFAULT_LIMIT,
            offset: 0,
            cursor: None,
        };
        // Counted before parsing so that a huge query string is refused without building anything.
        let filters = params
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .count();
        if filters > MAX_FILTERS {
            let (key, value) = params
                .iter()
                .find(|(k, _)| !RESERVED.contains(&k.as_str()))
                .map_or(("", ""), |(k, v)| (k.as_str(), v.as_str()));
            return Err(ApiError::bad_param(
                key,
                &shorten(value),
                format!("too many filters: {filters}, at most {MAX_FILTERS}"),
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in params {
            if let Some(reserved) = RESERVED.iter().find(|r| **r == key) {
                if seen.contains(reserved) {
                    return Err(ApiError::bad_param(
                        key,
                        value,
                        "the parameter is given twice",
                    ));
                }
                seen.push(reserved);
            }
            match key.as_str() {
                "format" => req.format = Some(value.clone()),
                "columns" => req.columns = Some(parse_columns(value)?),
                "order" => req.order = parse_order(value)?,
                "limit" => {
                    req.limit = parse_count(key, value)?;
                    if req.limit > MAX_LIMIT {
                        return Err(ApiError::bad_param(
                            key,
                            value,
                            format!("at most {MAX_LIMIT}; page with offset or a key filter"),
                        ));
                    }
                }
                "offset" => {
                    req.offset = parse_count(key, value)?;
                    if req.offset > MAX_OFFSET {
                        return Err(ApiError::bad_param(
                            key,
                            value,
                            format!(
                                "at most {MAX_OFFSET}; page deeper with `cursor` or a key filter"
                            ),
                        ));
                    }
                }
                "cursor" => req.cursor = Some(value.clone()),
                _ => req.filters.push(Filter::parse(key, value)?),
            }
        }
        if let Some(cursor) = &req.cursor {
            if req.order.is_empty() {
                return Err(ApiError::bad_param(
                    "cursor",
                    cursor,
                    "cursor paging needs `order=<key columns>`, the same as on the first page",
                ));
            }
            if seen.contains(&"offset") {
                return Err(ApiError::bad_param(
                    "cursor",
                    cursor,
                    "give either `cursor` or `offset`, not both",
                ));
            }
        }
        Ok(req)
    }

    /// Whether the response should carry the next page's cursor: an ordered request paged by
    /// cursor (or on its first page), not by offset.
    pub fn wants_cursor(&self) -> bool {
        !self.order.is_empty() && self.offset == 0
    }

    /// Applies filters, order, paging and projection (in that order, so filters and order may use
    /// columns that are not returned). Every column named must exist.
    pub fn apply(&self, df: DataFrame) -> Result<DataFrame, ApiError> {
        let sorted = self.filter_and_sort(df)?;
        self.page(sorted)
    }

    /// Paging and projection of a [`filter_and_sort`](Self::filter_and_sort)ed frame.
    pub fn page(&self, sorted: DataFrame) -> Result<DataFrame, ApiError> {
        let plan_err = |e: sluice_engine::DataFusionError| ApiError::Query(e.to_string());
        let mut df = sorted
            .limit(self.offset, Some(self.limit))
            .map_err(plan_err)?;
        if let Some(columns) = &self.columns {
            let available: Vec<String> = df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            if let Some(c) = columns.iter().find(|c| !available.contains(c)) {
                return Err(ApiError::UnknownColumn {
                    column: c.clone(),
                    param: "columns".to_string(),
                    available,
                });
            }
            df = df
                .select(columns.iter().map(ident).collect::<Vec<_>>())
                .map_err(plan_err)?;
        }
        Ok(df)
    }

    /// Filters (the cursor's included) and order, before paging.
    pub fn filter_and_sort(&self, df: DataFrame) -> Result<DataFrame, ApiError> {
        let fields: Vec<(String, DataType)> = df
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let lookup = |column: &str, param: &str| -> Result<DataType, ApiError> {
            fields
                .iter()
                .find(|(n, _)| n == column)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| ApiError::UnknownColumn {
                    column: column.to_string(),
                    param: param.to_string(),
                    available: fields.iter().map(|(n, _)| n.clone()).collect(),
                })
        };
        let plan_err = |e: sluice_engine::DataFusionError| ApiError::Query(e.to_string());
        let mut df = df;
        let mut predicates = Vec::with_capacity(self.filters.len());
        for f in &self.filters {
            let dtype = lookup(&f.column, &format!("{}={}", f.column, f.raw))?;
            predicates.push(f.expr(&dtype)?);
        }
        if let Some(all) = balanced_and(predicates) {
            df = df.filter(all).map_err(plan_err)?;
        }
        if !self.order.is_empty() {
            let mut sort = Vec::new();
            let mut types = Vec::new();
            for o in &self.order {
                types.push(lookup(&o.column, "order")?);
                sort.push(ident(&o.column).sort(!o.descending, o.nulls_first));
            }
            if let Some(text) = &self.cursor {
                let cursor = Cursor::decode(text, &self.order)?;
                df = df
                    .filter(cursor.predicate(&self.order, &types)?)
                    .map_err(plan_err)?;
            }
            df = df.sort(sort).map_err(plan_err)?;
        }
        if let Some(columns) = &self.columns {
            for c in columns {
                lookup(c, "columns")?;
            }
        }
        Ok(df)
    }
}

impl Filter {
    /// Parses `column=op.value`.
    pub fn parse(column: &str, raw: &str) -> Result<Filter, ApiError> {
        let expected = || {
            format!(
                "expected `<op>.<value>` with op one of {} (optionally after `not.`)",
                OPERATORS.join(", ")
            )
        };
        let (mut op, mut rest) = raw
            .split_once('.')
            .ok_or_else(|| ApiError::bad_param(column, raw, expected()))?;
        let negated = op == "not";
        if negated {
            (op, rest) = rest
                .split_once('.')
                .ok_or_else(|| ApiError::bad_param(column, raw, expected()))?;
        }
        let cmp = |c| Op::Compare(c, rest.to_string());
        let op = match op {
            "eq" => cmp(Comparison::Eq),
            "neq" => cmp(Comparison::Neq),
            "lt" => cmp(Comparison::Lt),
            "lte" => cmp(Comparison::Lte),
            "gt" => cmp(Comparison::Gt),
            "gte" => cmp(Comparison::Gte),
            "like" | "ilike" => Op::Like {
                case_insensitive: op == "ilike",
                pattern: rest.replace('*', "%"),
            },
            "in" => {
                let items = split_list(rest).map_err(|e| ApiError::bad_param(column, raw, e))?;
                if items.len() > MAX_IN_VALUES {
                    return Err(ApiError::bad_param(
                        column,
                        &shorten(raw),
                        format!(
                            "too many `in` values: {}, at most {MAX_IN_VALUES}",
                            items.len()
                        ),
                    ));
                }
                if items.is_empty() {
                    return Err(ApiError::bad_param(
                        column,
                        raw,
                        "`in` needs at least one value",
                    ));
                }
                Op::In(items)
            }
            "is" => Op::Is(match rest.to_ascii_lowercase().as_str() {
                "null" => IsValue::Null,
                "notnull" | "not_null" => IsValue::NotNull,
                "true" => IsValue::True,
                "false" => IsValue::False,
                _ => {
                    return Err(ApiError::bad_param(
                        column,
                        raw,
                        "`is` takes null, notnull, true or false",
                    ));
                }
            }),
            _ => return Err(ApiError::bad_param(column, raw, expected())),
        };
        Ok(Filter {
            column: column.to_string(),
            raw: raw.to_string(),
            negated,
            op,
        })
    }

    /// The DataFusion expression, with values cast to `dtype` (the column's type).
    pub fn expr(&self, dtype: &DataType) -> Result<Expr, ApiError> {
        let c = ident(&self.column);
        let value = |v: &str| -> Result<Expr, ApiError> {
            ScalarValue::try_from_string(v.to_string(), dtype)
                .map(lit)
                .map_err(|_| {
                    ApiError::bad_param(
                        &self.column,
                        &self.raw,
                        format!(
                            "`{v}` is not a valid {dtype} value for column `{}`",
                            self.column
                        ),
                    )
                })
        };
        let e = match &self.op {
            Op::Compare(op, v) => {
                let v = value(v)?;
                match op {
                    Comparison::Eq => c.eq(v),
                    Comparison::Neq => c.not_eq(v),
                    Comparison::Lt => c.lt(v),
                    Comparison::Lte => c.lt_eq(v),
                    Comparison::Gt => c.gt(v),
                    Comparison::Gte => c.gt_eq(v),
                }
            }
            Op::Like {
                case_insensitive,
                pattern,
            } => {
                let text = match dtype {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => c,
                    _ => cast(c, DataType::Utf8),
                };
                if *case_insensitive {
                    text.ilike(lit(pattern.clone()))
                } else {
                    text.like(lit(pattern.clone()))
                }
            }
            Op::In(items) => {
                let list = items
                    .iter()
                    .map(|v| value(v))
                    .collect::<Result<Vec<_>, _>>()?;
                c.in_list(list, false)
            }
            Op::Is(IsValue::Null) => c.is_null(),
            Op::Is(IsValue::NotNull) => c.is_not_null(),
            Op::Is(IsValue::True) => c.is_true(),
            Op::Is(IsValue::False) => c.is_false(),
        };
        Ok(if self.negated { !e } else { e })
    }
}

/// The conjunction of `exprs` as a balanced tree: one filter node of depth log2(n), where a filter
/// per predicate (or a left-deep AND chain) nests n deep and overflowed the planner's stack.
fn balanced_and(mut exprs: Vec<Expr>) -> Option<Expr> {
    while exprs.len() > 1 {
        let mut next = Vec::with_capacity(exprs.len().div_ceil(2));
        let mut it = exprs.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => a.and(b),
                None => a,
            });
        }
        exprs = next;
    }
    exprs.pop()
}

/// A long parameter value cut for an error message.
fn shorten(value: &str) -> String {
    const KEEP: usize = 80;
    match value.char_indices().nth(KEEP) {
        Some((i, _)) => format!("{}...", &value[..i]),
        None => value.to_string(),
    }
}

fn parse_count(key: &str, value: &str) -> Result<usize, ApiError> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| ApiError::bad_param(key, value, "expected a non-negative whole number"))
}

fn parse_columns(value: &str) -> Result<Vec<String>, ApiError> {
    let columns: Vec<String> = value.split(',').map(|c| c.trim().to_string()).collect();
    if columns.iter().any(String::is_empty) {
        return Err(ApiError::bad_param(
            "columns",
            value,
            "expected a comma-separated list of column names",
        ));
    }
    if let Some(dup) = columns
        .iter()
        .enumerate()
        .find(|(i, c)| columns[..*i].contains(c))
    {
        return Err(ApiError::bad_param(
            "columns",
            value,
            format!("column `{}` is listed twice", dup.1),
        ));
    }
    Ok(columns)
}

/// Splits `a,b`, `(a,b)` or `("a,b",c)` into items; `\"` escapes a quote inside quotes.
fn split_list(text: &str) -> Result<Vec<String>, String> {
    let inner = match text.strip_prefix('(') {
        Some(t) => t
            .strip_suffix(')')
            .ok_or_else(|| "the list opens with `(` but does not end with `)`".to_string())?,
        None => text,
    };
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '"' => quoted = !quoted,
            '\\' if quoted => current.extend(chars.next()),
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    if quoted {
        return Err("a double quote is not closed".to_string());
    }
    items.push(current);
    Ok(items)
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
