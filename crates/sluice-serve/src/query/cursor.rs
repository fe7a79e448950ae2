//! Keyset cursors for `GET /api/assets/{name}/rows`: page through a table of any size without
//! `OFFSET`, which re-reads and discards every skipped row and can skip or repeat rows when data
//! changes between pages.
//!
//! A request with `order=` gets, when more rows follow its page, an `X-Next-Cursor` header and a
//! `Link: <...&cursor=...>; rel="next"` header. The cursor is opaque to clients: base64url of
//! `{"order": "<the order it was made for>", "after": [<the page's last row's order values>]}`.
//! The next page is the rows strictly *after* those values in that order (a lexicographic
//! comparison over the order columns, nulls placed as the order places them), so the order should
//! name a key: rows that tie on every order column at a page boundary would be skipped.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sluice_engine::expr::{Expr, ident, lit};
use sluice_engine::{DataFrame, ScalarValue};

use super::order::OrderBy;
use crate::error::ApiError;

/// A decoded cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The order it was made for, canonical (see [`order_key`]).
    pub order: String,
    /// The last row's value of each order column, as text (`None` for null).
    pub after: Vec<Option<String>>,
}

/// `a.asc.nullslast,b.desc.nullsfirst`: the order spelled out in full, so that `order=a` and
/// `order=a.asc` share cursors and a cursor cannot be reused under another order.
pub fn order_key(order: &[OrderBy]) -> String {
    order
        .iter()
        .map(|o| {
            format!(
                "{}.{}.{}",
                o.column,
                if o.descending { "desc" } else { "asc" },
                if o.nulls_first {
                    "nullsfirst"
                } else {
                    "nullslast"
                }
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Cursor {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        // Serializing a struct of strings cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses the text form and checks it belongs to `order`.
    pub fn decode(text: &str, order: &[OrderBy]) -> Result<Cursor, ApiError> {
        let bad = |why: &str| {
            ApiError::bad_param(
                "cursor",
                text,
                format!("{why}; use the X-Next-Cursor header of the previous page as it is"),
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| bad("not a cursor"))?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad("not a cursor"))?;
        let expected = order_key(order);
        if cursor.order != expected {
            return Err(ApiError::bad_param(
                "cursor",
                text,
                format!(
                    "the cursor was made for order={}, this request has order={expected}; keep the \
                     order of the first page",
                    cursor.order
                ),
            ));
        }
        if cursor.after.len() != order.len() {
            return Err(bad("the cursor does not match the order"));
        }
        Ok(cursor)
    }

    /// The filter keeping the rows after the cursor's row, with values typed by `types` (the order
    /// columns' types).
    pub fn predicate(&self, order: &[OrderBy], types: &[DataType]) -> Result<Expr, ApiError> {
        let mut values = Vec::with_capacity(order.len());
        for ((o, v), t) in order.iter().zip(&self.after).zip(types) {
            let value = match v {
                None => None,
                Some(text) => Some(
                    ScalarValue::try_from_string(text.clone(), t)
                        .map(lit)
                        .map_err(|_| {
                            ApiError::bad_param(
                                "cursor",
                                text,
                                format!(
                                    "`{text}` is not a {t} value for `{}`; the column's type \
                                     changed since the cursor was made, start again without a cursor",
                                    o.column
                                ),
                            )
                        })?,
                ),
            };
            values.push(value);
        }
        Ok(after_expr(order, &values))
    }
}

/// `(c1, c2, ...) > (v1, v2, ...)` in the order's sense: the OR over i of "equal on the first i-1
/// columns and after on column i".
fn after_expr(order: &[OrderBy], values: &[Option<Expr>]) -> Expr {
    let mut any: Option<Expr> = None;
    for i in 0..order.len() {
        let mut term = strictly_after(&order[i], values[i].clone());
        for j in (0..i).rev() {
            term = equal(&order[j], values[j].clone()).and(term);
        }
        any = Some(match any {
            None => term,
            Some(a) => a.or(term),
        });
    }
    any.unwrap_or_else(|| lit(true))
}

fn equal(o: &OrderBy, v: Option<Expr>) -> Expr {
    let c = ident(&o.column);
    match v {
        None => c.is_null(),
        Some(v) => c.eq(v),
    }
}

fn strictly_after(o: &OrderBy, v: Option<Expr>) -> Expr {
    let c = ident(&o.column);
    match v {
        // After a null come the non-null values if nulls sort first; nothing if they sort last.
        None if o.nulls_first => c.is_not_null(),
        None => lit(false),
        Some(v) => {
            let beyond = if o.descending {
                c.clone().lt(v)
            } else {
                c.clone().gt(v)
            };
            if o.nulls_first {
                beyond
            } else {
                beyond.or(c.is_null())
            }
        }
    }
}

/// The cursor after this page, if more rows follow: `sorted` is the filtered, ordered (and
/// cursor-filtered) result before paging; the page is its first `limit` rows.
pub async fn next_cursor(
    sorted: DataFrame,
    order: &[OrderBy],
    limit: usize,
) -> Result<Option<String>, ApiError> {
    if limit == 0 || order.is_empty() {
        return Ok(None);
    }
    let plan_err = |e: sluice_engine::DataFusionError| ApiError::Engine(e.to_string());
    let columns: Vec<Expr> = order.iter().map(|o| ident(&o.column)).collect();
    // The page's last row and the one after it: two rows mean another page follows.
    let boundary = sorted
        .limit(limit - 1, Some(2))
        .map_err(plan_err)?
        .select(columns)
        .map_err(plan_err)?
        .collect()
        .await
        .map_err(plan_err)?;
    let rows: usize = boundary.iter().map(RecordBatch::num_rows).sum();
    if rows < 2 {
        return Ok(None);
    }
    let Some((batch, row)) = first_row(&boundary) else {
        return Ok(None);
    };
    let mut after = Vec::with_capacity(order.len());
    for col in batch.columns() {
        let text = cast(col, &DataType::Utf8).map_err(|e| ApiError::Engine(e.to_string()))?;
        let text = text.as_string::<i32>();
        after.push((!text.is_null(row)).then(|| text.value(row).to_string()));
    }
    Ok(Some(
        Cursor {
            order: order_key(order),
            after,
        }
        .encode(),
    ))
}

fn first_row(batches: &[RecordBatch]) -> Option<(&RecordBatch, usize)> {
    batches.iter().find(|b| b.num_rows() > 0).map(|b| (b, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ob(column: &str, descending: bool) -> OrderBy {
        OrderBy {
            column: column.into(),
            descending,
            nulls_first: descending,
        }
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_order() {
        let order = [ob("day", false), ob("id", true)];
        let c = Cursor {
            order: order_key(&order),
            after: vec![Some("2024-01-01".into()), None],
        };
        let text = c.encode();
        assert!(
            text.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
            "{text} needs no URL escaping"
        );
        assert_eq!(Cursor::decode(&text, &order).unwrap(), c);
        let e = Cursor::decode(&text, &[ob("day", false)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("made for order=day.asc.nullslast,id.desc.nullsfirst"),
            "{e}"
        );
        let e = Cursor::decode("bm9wZQ", &order).unwrap_err().to_string();
        assert!(e.contains("not a cursor"), "{e}");
    }

    #[test]
    fn the_predicate_is_lexicographic_with_nulls_placed() {
        let order = [ob("a", false), ob("b", true)];
        let c = Cursor {
            order: order_key(&order),
            after: vec![Some("5".into()), Some("x".into())],
        };
        let e = c
            .predicate(&order, &[DataType::Int64, DataType::Utf8])
            .unwrap();
        assert_eq!(
            e.to_string(),
            "a > Int64(5) OR a IS NULL OR a = Int64(5) AND b < Utf8(\"x\")"
        );
        let e = c
            .predicate(&order, &[DataType::Date32, DataType::Utf8])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a Date32 value for `a`"), "{e}");
    }
}
