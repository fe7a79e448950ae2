//! The `order` parameter of the rows endpoint: which columns sort the rows, and where nulls go.
//!
//! Apart from [`super::filter`] because keyset cursors ([`super::cursor`]) are made for an order too.

use crate::error::ApiError;

/// One `order` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    /// The column.
    pub column: String,
    /// `desc`.
    pub descending: bool,
    /// Where nulls go; by default last when ascending, first when descending (as in PostgreSQL).
    pub nulls_first: bool,
}

/// Parses `order=a,b.desc,c.asc.nullsfirst`.
pub fn parse_order(value: &str) -> Result<Vec<OrderBy>, ApiError> {
    value
        .split(',')
        .map(|item| {
            let mut column = item.trim();
            let mut descending = None;
            let mut nulls_first = None;
            while let Some((head, last)) = column.rsplit_once('.') {
                match last {
                    "asc" | "desc" if descending.is_none() => descending = Some(last == "desc"),
                    "nullsfirst" | "nullslast" if nulls_first.is_none() => {
                        nulls_first = Some(last == "nullsfirst");
                    }
                    _ => break,
                }
                column = head;
            }
            if column.is_empty() {
                return Err(ApiError::bad_param(
                    "order",
                    value,
                    "expected `<column>[.asc|.desc][.nullsfirst|.nullslast]`, comma-separated",
                ));
            }
            let descending = descending.unwrap_or(false);
            Ok(OrderBy {
                column: column.to_string(),
                descending,
                nulls_first: nulls_first.unwrap_or(descending),
            })
        })
        .collect()
}
