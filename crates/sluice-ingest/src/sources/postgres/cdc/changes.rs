//! Change rows: what one CDC commit lands, and how it becomes Arrow batches.
//!
//! Rows are kept as raw binary values until the commit, and only then decoded against the table's
//! column list as it stands at that moment. A column added upstream in the middle of a batch thus
//! simply becomes one more (nullable) column of the whole batch: rows captured before it read NULL,
//! and the bronze table's schema evolves in the same commit.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_lake::QuarantinedRow;

use super::super::decode::{Cell, decode, raw_json};
use super::super::read::ColBuilder;
use super::super::types::PgKind;
use crate::error::IngestError;

/// The kind of change a bronze row records (`_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `r`: read by the initial snapshot.
    Snapshot,
    /// `c`: inserted.
    Insert,
    /// `u`: updated (the row holds the new values).
    Update,
    /// `d`: deleted (the row holds the key, or the whole old row with `REPLICA IDENTITY FULL`).
    Delete,
    /// `t`: the table was truncated (every other column is NULL).
    Truncate,
}

impl Op {
    /// The `_op` letter.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Op::Snapshot => "r",
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
        }
    }
}

/// One change, values still in PostgreSQL's binary format, aligned with the column list (a row
/// shorter than the list reads NULL for the missing columns).
#[derive(Debug, Clone)]
pub(crate) struct ChangeRow {
    pub op: Op,
    /// `_lsn`: the end LSN of the transaction's commit (the snapshot's LSN for snapshot rows).
    pub lsn: u64,
    /// `_seq`: position of the change in its transaction (or in the snapshot chunk).
    pub seq: i64,
    /// `_commit_ts`: commit time, microseconds since the Unix epoch (none for snapshot rows).
    pub commit_ts: Option<i64>,
    pub values: Vec<Option<Vec<u8>>>,
}

/// The CDC metadata columns, after the table's own columns.
pub(crate) fn cdc_fields() -> Vec<Field> {
    vec![
        Field::new("_op", DataType::Utf8, false),
        Field::new("_lsn", DataType::Int64, false),
        Field::new("_seq", DataType::Int64, false),
        Field::new(
            "_commit_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]
}

/// The Arrow schema of change rows over `columns`.
pub(crate) fn change_schema(columns: &[(String, PgKind)]) -> SchemaRef {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|(n, k)| Field::new(n, k.arrow_type(), true))
        .collect();
    fields.extend(cdc_fields());
    Arc::new(Schema::new(fields))
}

/// Builds Arrow batches of at most `batch_size` rows from `rows`; a row with a value that has no
/// Arrow form goes to quarantine whole, with the column and the reason.
pub(crate) fn to_batches(
    columns: &[(String, PgKind)],
    rows: &[ChangeRow],
    batch_size: usize,
    context: &str,
) -> Result<(Vec<RecordBatch>, Vec<QuarantinedRow>), IngestError> {
    let schema = change_schema(columns);
    let arrow_error = |source| IngestError::Arrow {
        context: context.to_string(),
        source,
    };
    let mut batches = Vec::new();
    let mut rejected = Vec::new();
    for part in rows.chunks(batch_size.max(1)) {
        let mut builders: Vec<ColBuilder> =
            columns.iter().map(|(_, k)| ColBuilder::new(k)).collect();
        let mut op = StringBuilder::new();
        let mut lsn = Int64Builder::new();
        let mut seq = Int64Builder::new();
        let mut ts = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut n = 0usize;
        for row in part {
            let mut cells = Vec::with_capacity(columns.len());
            let mut bad = None;
            for (i, (name, kind)) in columns.iter().enumerate() {
                match row.values.get(i).and_then(Option::as_deref) {
                    None => cells.push(Cell::Null),
                    Some(raw) => match decode(kind, raw) {
                        Ok(c) => cells.push(c),
                        Err(why) => {
                            bad = Some(format!(
                                "change at LSN {} (#{}): column `{name}`: {why}",
                                pgwire_replication::Lsn(row.lsn),
                                row.seq
                            ));
                            break;
                        }
                    },
                }
            }
            if let Some(reason) = bad {
                let mut raw: serde_json::Map<String, serde_json::Value> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, (name, kind))| {
                        (
                            name.clone(),
                            raw_json(kind, row.values.get(i).and_then(Option::as_deref)),
                        )
                    })
                    .collect();
                raw.insert("_op".into(), row.op.code().into());
                raw.insert("_lsn".into(), row.lsn.into());
                rejected.push(QuarantinedRow {
                    source_file: None,
                    line: None,
                    reason,
                    raw: serde_json::Value::Object(raw).to_string(),
                });
                continue;
            }
            for (b, c) in builders.iter_mut().zip(cells) {
                b.append(c).map_err(|message| IngestError::Read {
                    source_name: context.to_string(),
                    table: String::new(),
                    message,
                    transient: false,
                })?;
            }
            op.append_value(row.op.code());
            lsn.append_value(i64::try_from(row.lsn).unwrap_or(i64::MAX));
            seq.append_value(row.seq);
            ts.append_option(row.commit_ts);
            n += 1;
        }
        if n == 0 {
            continue;
        }
        let mut arrays = builders
            .iter_mut()
            .map(ColBuilder::finish)
            .collect::<Result<Vec<ArrayRef>, _>>()
            .map_err(arrow_error)?;
        arrays.push(Arc::new(op.finish()));
        arrays.push(Arc::new(lsn.finish()));
        arrays.push(Arc::new(seq.finish()));
        arrays.push(Arc::new(ts.finish()));
        batches.push(RecordBatch::try_new(schema.clone(), arrays).map_err(arrow_error)?);
    }
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(schema));
    }
    Ok((batches, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;

    #[test]
    fn rows_become_batches_and_bad_values_are_quarantined() {
        let columns = vec![
            ("id".to_string(), PgKind::Int8),
            ("name".to_string(), PgKind::Text),
            ("born".to_string(), PgKind::Date),
        ];
        let row = |op, id: i64, name: Option<&str>, values_len: usize| ChangeRow {
            op,
            lsn: 100,
            seq: id,
            commit_ts: Some(5),
            values: vec![
                Some(id.to_be_bytes().to_vec()),
                name.map(|n| n.as_bytes().to_vec()),
                Some(0i32.to_be_bytes().to_vec()),
            ]
            .into_iter()
            .take(values_len)
            .collect(),
        };
        let mut infinite = row(Op::Insert, 3, Some("inf"), 3);
        infinite.values[2] = Some(i32::MAX.to_be_bytes().to_vec());
        let rows = vec![
            row(Op::Insert, 1, Some("ann"), 3),
            // Captured before `born` existed: the missing value reads NULL.
            row(Op::Update, 2, None, 2),
            infinite,
            row(Op::Delete, 4, None, 1),
        ];
        let (batches, rejected) = to_batches(&columns, &rows, 2, "t").unwrap();
        assert_eq!(rejected.len(), 1);
        assert!(
            rejected[0].reason.contains("`born`"),
            "{}",
            rejected[0].reason
        );
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        let b = &batches[0];
        assert_eq!(b.schema().field(3).name(), "_op");
        assert_eq!(b.column(3).as_string::<i32>().value(1), "u");
        assert!(b.column(2).is_null(1));
        assert_eq!(b.column(4).as_primitive::<Int64Type>().value(0), 100);
        let last = &batches[1];
        assert_eq!(last.column(3).as_string::<i32>().value(0), "d");
        assert!(last.column(1).is_null(0));
    }
}
