//! Landing rows in bronze: PII handling, metadata columns, one idempotent Delta commit per batch.
//!
//! Every bronze row carries `_ingested_at`, `_ingest_date` (the partition column), `_batch_id` and
//! `_source`. The connector's position (high-water mark, files landed) travels in the same commit's
//! metadata, so that data and position can never disagree after a crash.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use sluice_core::pii::PiiKey;
use sluice_lake::{QuarantinedRow, TableId, WriteMode, WriteOutcome, WriteSpec};

use crate::error::IngestError;
use crate::source::IngestContext;

/// The application id under which a table's ingestion commits (Delta `txn`).
pub fn app_id(source: &str, table: &str) -> String {
    format!("sluice:ingest:{source}.{table}")
}

/// How a PII column is protected before it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pii {
    /// Replace with the HMAC-SHA-256 hex digest under the project's PII key (joins still work;
    /// without the key a list of candidate values cannot re-identify them).
    Hash,
    /// Keep only the last 4 characters (`****1234`); emails keep their domain.
    Mask,
    /// Remove the column.
    Drop,
}

/// One batch to land.
pub struct Landing<'a> {
    /// Source name.
    pub source: &'a str,
    /// Table name.
    pub table: &'a str,
    /// Rows as read (no metadata columns yet).
    pub batches: Vec<RecordBatch>,
    /// Rows that failed to parse.
    pub rejected: Vec<QuarantinedRow>,
    /// Append or overwrite.
    pub mode: WriteMode,
    /// Idempotency version for this table's app id.
    pub txn_version: i64,
    /// Connector position and anything else to record in the commit.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// PII rules.
    pub pii: &'a std::collections::BTreeMap<String, Pii>,
    /// `_source` value for these rows (e.g. the file path).
    pub origin: &'a str,
}

/// What a landing committed.
pub struct Landed {
    /// Rows committed to bronze.
    pub rows: u64,
    /// Rows committed to quarantine.
    pub quarantined: u64,
    /// Whether a commit was made (false: already committed before, or nothing to do).
    pub committed: bool,
}

/// Lands one batch set in one commit (plus one quarantine commit, guarded by the same token).
pub async fn land(cx: &IngestContext, landing: Landing<'_>) -> Result<Landed, IngestError> {
    let id = TableId::bronze(landing.source, landing.table);
    let batch_id = batch_id(cx, landing.source, landing.table, landing.txn_version);
    let quarantined = quarantine_first(
        cx,
        landing.source,
        landing.table,
        landing.rejected,
        landing.pii,
        &batch_id,
        landing.txn_version,
    )
    .await?;
    let mut out = Vec::with_capacity(landing.batches.len());
    for b in landing.batches {
        out.push(prepare(b, cx, landing.pii, &batch_id, landing.origin)?);
    }
    let spec = bronze_spec(
        cx,
        landing.source,
        landing.table,
        landing.mode,
        landing.txn_version,
        landing.metadata,
        &batch_id,
    );
    let outcome = cx.lake.write(&id, out, &spec).await?;
    Ok(Landed::from_outcome(outcome, quarantined))
}

impl Landed {
    /// What a bronze write's outcome means for the report.
    pub(crate) fn from_outcome(outcome: WriteOutcome, quarantined: u64) -> Landed {
        match outcome {
            WriteOutcome::Committed { rows, .. } => Landed {
                rows,
                quarantined,
                committed: true,
            },
            WriteOutcome::AlreadyCommitted { .. } | WriteOutcome::Empty => Landed {
                rows: 0,
                quarantined,
                committed: false,
            },
        }
    }
}

/// The `_batch_id` of the rows one commit lands: run, table and idempotency version.
pub(crate) fn batch_id(cx: &IngestContext, source: &str, table: &str, txn_version: i64) -> String {
    format!("{}:{source}.{table}:{txn_version}", cx.run_id)
}

/// Commits `rejected` to the table's quarantine under the data commit's token, *before* the data
/// commit: if that commit then fails, the retry re-reads the same rows and this write is skipped by
/// its own token. The table's PII rules apply to the rows' raw text ([`protect_raw`]). Returns the
/// rows quarantined now.
pub(crate) async fn quarantine_first(
    cx: &IngestContext,
    source: &str,
    table: &str,
    rejected: Vec<QuarantinedRow>,
    pii: &std::collections::BTreeMap<String, Pii>,
    batch_id: &str,
    txn_version: i64,
) -> Result<u64, IngestError> {
    if rejected.is_empty() {
        return Ok(0);
    }
    let rejected = rejected
        .into_iter()
        .map(|mut r| {
            r.raw = protect_raw(&r.raw, pii, cx.pii_key.as_ref())?;
            r.reason = protect_reason(&r.reason, pii);
            Ok(r)
        })
        .collect::<Result<_, IngestError>>()?;
    let asset = format!("{source}.{table}");
    let app = app_id(source, table);
    let done = cx
        .lake
        .txn_version(&TableId::quarantine(&asset), &app)
        .await?;
    if done.is_some_and(|v| v >= txn_version) {
        return Ok(0);
    }
    Ok(cx
        .lake
        .quarantine_with_txn(&asset, rejected, batch_id, Some((app, txn_version)))
        .await?)
}

/// A batch as it lands: PII rules applied, bronze metadata columns added.
pub(crate) fn prepare(
    batch: RecordBatch,
    cx: &IngestContext,
    pii: &std::collections::BTreeMap<String, Pii>,
    batch_id: &str,
    origin: &str,
) -> Result<RecordBatch, IngestError> {
    add_metadata(
        apply_pii(batch, pii, cx.pii_key.as_ref())?,
        cx,
        batch_id,
        origin,
    )
}

/// How a bronze commit is written: partitioned by ingestion date, new columns added, with the
/// table's idempotency token and the run's ids in the commit metadata.
pub(crate) fn bronze_spec(
    cx: &IngestContext,
    source: &str,
    table: &str,
    mode: WriteMode,
    txn_version: i64,
    mut metadata: serde_json::Map<String, serde_json::Value>,
    batch_id: &str,
) -> WriteSpec {
    metadata.insert("sluice.batch_id".into(), batch_id.into());
    metadata.insert("sluice.run_id".into(), cx.run_id.clone().into());
    WriteSpec {
        mode,
        partition_by: vec!["_ingest_date".into()],
        txn: Some((app_id(source, table), txn_version)),
        metadata,
        merge_schema: true,
    }
}

/// The schema of bronze metadata columns.
pub fn metadata_fields() -> Vec<Field> {
    vec![
        Field::new(
            "_ingested_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("_ingest_date", DataType::Date32, false),
        Field::new("_batch_id", DataType::Utf8, false),
        Field::new("_source", DataType::Utf8, false),
    ]
}

/// Whether a column is one of the bronze metadata columns.
pub fn is_metadata_column(name: &str) -> bool {
    matches!(
        name,
        "_ingested_at" | "_ingest_date" | "_batch_id" | "_source"
    )
}

/// A table schema without the bronze metadata columns.
pub fn without_metadata_columns(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| !is_metadata_column(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    ))
}

fn add_metadata(
    batch: RecordBatch,
    cx: &IngestContext,
    batch_id: &str,
    origin: &str,
) -> Result<RecordBatch, IngestError> {
    let n = batch.num_rows();
    let ts = cx.ingested_at.timestamp_micros();
    let days = cx
        .ingested_at
        .date_naive()
        .signed_duration_since(chrono::NaiveDate::default())
        .num_days();
    let epoch_offset = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .map(|e| {
            e.signed_duration_since(chrono::NaiveDate::default())
                .num_days()
        })
        .unwrap_or(0);
    let date = i32::try_from(days - epoch_offset).unwrap_or(0);
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .filter(|f| !is_metadata_column(f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| !is_metadata_column(f.name()))
        .map(|(_, c)| c.clone())
        .collect();
    fields.extend(metadata_fields());
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(vec![ts; n]).with_timezone("UTC"),
    ));
    columns.push(Arc::new(Date32Array::from(vec![date; n])));
    columns.push(Arc::new(StringArray::from(vec![batch_id; n])));
    columns.push(Arc::new(StringArray::from(vec![origin; n])));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, columns).map_err(|source| IngestError::Arrow {
        context: "adding bronze metadata columns".into(),
        source,
    })
}

/// Applies PII rules to a batch. Only string columns can be hashed or masked; other types are cast to
/// strings first.
pub fn apply_pii(
    batch: RecordBatch,
    rules: &std::collections::BTreeMap<String, Pii>,
    key: Option<&PiiKey>,
) -> Result<RecordBatch, IngestError> {
    if rules.is_empty() {
        return Ok(batch);
    }
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        match rules.get(f.name()) {
            None => {
                fields.push(f.as_ref().clone());
                columns.push(c.clone());
            }
            Some(Pii::Drop) => {}
            Some(rule) => {
                let as_str = arrow::compute::cast(c, &DataType::Utf8).map_err(|source| {
                    IngestError::Arrow {
                        context: format!("PII column `{}`", f.name()),
                        source,
                    }
                })?;
                let Some(strings) = as_str.as_any().downcast_ref::<StringArray>() else {
                    continue;
                };
                let protected: StringArray = if *rule == Pii::Hash {
                    let key = need_key(key, f.name())?;
                    strings.iter().map(|v| v.map(|s| hash(key, s))).collect()
                } else {
                    strings.iter().map(|v| v.map(mask)).collect()
                };
                fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
                columns.push(Arc::new(protected));
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|source| {
        IngestError::Arrow {
            context: "applying PII rules".into(),
            source,
        }
    })
}

/// What a rejected row's raw text becomes under `rules`, so that the quarantine (readable like any
/// table) holds no clear value the table itself would not. A JSON object (a database row, an API
/// record, a JSON line) keeps its other fields, with `hash`, `mask` and `drop` applied to the named
/// top-level fields as in bronze (a non-string value is protected as its JSON text); a CSV record
/// arrives here as such an object of its named fields (`files::land`). Any other text (a CSV line of
/// the wrong width, a line that is not JSON) cannot be split into columns reliably and is withheld;
/// its file and line still point at it.
pub fn protect_raw(
    raw: &str,
    rules: &std::collections::BTreeMap<String, Pii>,
    key: Option<&PiiKey>,
) -> Result<String, IngestError> {
    if rules.is_empty() {
        return Ok(raw.to_string());
    }
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str::<serde_json::Value>(raw)
    else {
        return Ok(WITHHELD_RAW.to_string());
    };
    for (column, rule) in rules {
        let Some(value) = fields.get(column) else {
            continue;
        };
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match rule {
            Pii::Drop => {
                fields.remove(column);
            }
            Pii::Hash => {
                fields.insert(column.clone(), hash(need_key(key, column)?, &text).into());
            }
            Pii::Mask => {
                fields.insert(column.clone(), mask(&text).into());
            }
        }
    }
    Ok(serde_json::Value::Object(fields).to_string())
}

/// A rejection reason with what it says about a PII column's value withheld: readers quote the value
/// that did not fit (``column `email`: expected Int64, found "a@x.com"``), so everything after the
/// column's name goes.
pub fn protect_reason(reason: &str, rules: &std::collections::BTreeMap<String, Pii>) -> String {
    for column in rules.keys() {
        let named = format!("column `{column}`");
        if let Some(at) = reason.find(&named) {
            return format!(
                "{}: its value does not fit (details withheld: the column has a pii rule)",
                &reason[..at + named.len()]
            );
        }
    }
    reason.to_string()
}

/// The raw text of a rejected row that PII rules cover but that is not a JSON object.
pub const WITHHELD_RAW: &str =
    "(withheld: the table has pii rules and this row is not a JSON object)";

/// The key a `hash` rule on `column` needs, or the error saying it is not configured.
fn need_key<'k>(key: Option<&'k PiiKey>, column: &str) -> Result<&'k PiiKey, IngestError> {
    key.ok_or_else(|| IngestError::PiiKeyMissing {
        column: column.to_string(),
    })
}

/// The `hash` rule: HMAC-SHA-256 of `s` under the project's PII key, as 64 hex digits.
pub fn hash(key: &PiiKey, s: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.bytes()) else {
        return String::new();
    };
    mac.update(s.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mask(s: &str) -> String {
    if let Some((_, domain)) = s.split_once('@') {
        return format!("****@{domain}");
    }
    let chars: Vec<char> = s.chars().collect();
    let keep = chars.len().saturating_sub(4).max(chars.len() / 2);
    let tail: String = chars[keep..].iter().collect();
    format!("{}{tail}", "*".repeat(keep.min(8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_rules() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("email", DataType::Utf8, true),
            Field::new("phone", DataType::Utf8, true),
            Field::new("ssn", DataType::Utf8, true),
            Field::new("id", DataType::Int64, false),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("a@x.com"), None])),
                Arc::new(StringArray::from(vec![Some("5551234567"), Some("12")])),
                Arc::new(StringArray::from(vec![Some("123-45-6789"), Some("x")])),
                Arc::new(arrow::array::Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let rules = [
            ("email".to_string(), Pii::Hash),
            ("phone".to_string(), Pii::Mask),
            ("ssn".to_string(), Pii::Drop),
        ]
        .into_iter()
        .collect();
        let key = PiiKey::new(b"k1");
        assert!(matches!(
            apply_pii(b.clone(), &rules, None),
            Err(IngestError::PiiKeyMissing { column }) if column == "email"
        ));
        let out = apply_pii(b, &rules, Some(&key)).unwrap();
        assert_eq!(out.num_columns(), 3);
        let email = out
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(email.value(0), hash(&key, "a@x.com"));
        assert_eq!(email.value(0).len(), 64);
        assert!(email.is_null(1));
        let phone = out
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(phone.value(0), "******4567");
        assert!(!phone.value(1).contains("12") || phone.value(1).starts_with('*'));
    }

    #[test]
    fn quarantined_raw_text_gets_the_pii_rules() {
        let rules = [
            ("email".to_string(), Pii::Hash),
            ("phone".to_string(), Pii::Mask),
            ("ssn".to_string(), Pii::Drop),
            ("card".to_string(), Pii::Hash),
        ]
        .into_iter()
        .collect();
        let pii_key = PiiKey::new(b"k1");
        let key = Some(&pii_key);
        let raw = r#"{"id":7,"email":"a@x.com","phone":"5551234567","ssn":"123-45-6789","card":4111,"note":null}"#;
        let out: serde_json::Value =
            serde_json::from_str(&protect_raw(raw, &rules, key).unwrap()).unwrap();
        assert_eq!(out["id"], 7);
        assert_eq!(out["email"], hash(&pii_key, "a@x.com"));
        assert_eq!(out["phone"], "******4567");
        assert!(out.get("ssn").is_none());
        assert_eq!(out["card"], hash(&pii_key, "4111"));
        assert!(out["note"].is_null());
        // A CSV line cannot be split into columns reliably: withheld.
        assert_eq!(
            protect_raw("7,a@x.com,lots", &rules, key).unwrap(),
            WITHHELD_RAW
        );
        // No key: an error, never an unkeyed digest.
        assert!(protect_raw(raw, &rules, None).is_err());
        let reason = protect_reason(
            r#"row 2: column `email`: expected Int64, found "a@x.com""#,
            &rules,
        );
        assert_eq!(
            reason,
            "row 2: column `email`: its value does not fit (details withheld: the column has a pii rule)"
        );
        let other = r#"row 2: column `amount`: expected Int64, found "lots""#;
        assert_eq!(protect_reason(other, &rules), other);
        // No rules: untouched.
        assert_eq!(
            protect_raw("7,a@x.com,lots", &Default::default(), None).unwrap(),
            "7,a@x.com,lots"
        );
    }

    #[test]
    fn hash_is_keyed_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            hash(&PiiKey::new(b"Jefe"), "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let k1 = PiiKey::new(b"k1");
        assert_eq!(hash(&k1, "a@x.com"), hash(&k1, "a@x.com"));
        assert_ne!(hash(&k1, "a@x.com"), hash(&PiiKey::new(b"k2"), "a@x.com"));
    }
}
