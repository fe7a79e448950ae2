//! Rows kept outside the lake (the failing-row samples of checks, in the state database) as a
//! principal may see them: the same columns, masks and row filter as a read of the table.
//!
//! A sample is JSON (an array of row objects), not a table the planner can filter, so a row filter
//! cannot be evaluated on it: a table read under a row filter shows no sample at all rather than
//! rows the filter might exclude.

use serde_json::{Map, Value};
use sluice_core::access::MaskKind;
use sluice_core::pii::PiiKey;

use super::mask::{REDACTED, hmac_hex};
use super::view::TableAccess;

/// `sample` (rows of a table read with `access`) with the ungranted columns left out and the
/// masked ones masked; empty under a row filter or when the table is hidden.
pub fn restrict_sample(access: &TableAccess, key: Option<&PiiKey>, sample: Value) -> Value {
    let r = match access {
        TableAccess::Full => return sample,
        TableAccess::Hidden => return Value::Array(Vec::new()),
        TableAccess::Restricted(r) => r,
    };
    if r.filter.is_some() {
        return Value::Array(Vec::new());
    }
    let Value::Array(rows) = sample else {
        // Not rows: nothing of it can be shown safely.
        return Value::Array(Vec::new());
    };
    let rows = rows
        .into_iter()
        .filter_map(|row| match row {
            Value::Object(fields) => Some(Value::Object(
                fields
                    .into_iter()
                    .filter(|(name, _)| r.columns.as_ref().is_none_or(|c| c.contains(name)))
                    .map(|(name, value)| {
                        let value = match r.masks.get(&name) {
                            Some(kind) => mask_value(*kind, key, value),
                            None => value,
                        };
                        (name, value)
                    })
                    .collect::<Map<String, Value>>(),
            )),
            _ => None,
        })
        .collect();
    Value::Array(rows)
}

/// One JSON value under `kind`, as the SQL mask reads it ([`super::mask::masked`]): the hash of
/// its text, NULL, or `[redacted]` for text.
fn mask_value(kind: MaskKind, key: Option<&PiiKey>, value: Value) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    match kind {
        MaskKind::Hash => match key {
            Some(k) => {
                let text = match &value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Value::String(hmac_hex(k.bytes(), &text))
            }
            None => Value::Null,
        },
        MaskKind::Null => Value::Null,
        MaskKind::Redact if value.is_string() => Value::String(REDACTED.to_string()),
        MaskKind::Redact => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::json;

    use super::*;
    use crate::access::view::Restriction;

    fn sample() -> Value {
        json!([
            {"id": 1, "email": "a@x.io", "phone": "555", "region": "north"},
            {"id": 2, "email": null, "phone": "556", "region": "south"},
        ])
    }

    #[test]
    fn columns_are_dropped_and_masks_applied_as_in_sql() {
        let key = PiiKey::new(b"k");
        let access = TableAccess::Restricted(Restriction {
            columns: Some(BTreeSet::from([
                "id".into(),
                "email".into(),
                "phone".into(),
            ])),
            masks: BTreeMap::from([
                ("email".to_string(), MaskKind::Hash),
                ("phone".to_string(), MaskKind::Redact),
                ("id".to_string(), MaskKind::Null),
            ]),
            filter: None,
        });
        let out = restrict_sample(&access, Some(&key), sample());
        assert_eq!(
            out,
            json!([
                {"id": null, "email": hmac_hex(b"k", "a@x.io"), "phone": REDACTED},
                {"id": null, "email": null, "phone": REDACTED},
            ])
        );
        // Without a key a hashed column reads as NULL, never in clear.
        let out = restrict_sample(&access, None, sample());
        assert_eq!(out[0]["email"], Value::Null);
    }

    #[test]
    fn a_row_filter_or_a_hidden_table_shows_no_sample() {
        let filtered = TableAccess::Restricted(Restriction {
            filter: Some("region = 'north'".into()),
            ..Restriction::default()
        });
        assert_eq!(restrict_sample(&filtered, None, sample()), json!([]));
        assert_eq!(
            restrict_sample(&TableAccess::Hidden, None, sample()),
            json!([])
        );
        assert_eq!(
            restrict_sample(&TableAccess::Full, None, sample()),
            sample()
        );
    }
}
