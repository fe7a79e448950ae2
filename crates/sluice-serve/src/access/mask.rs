//! Column masks as expressions: `hash` (HMAC-SHA-256 under the project's PII key, hex, the same
//! value bronze's `pii: hash` rule writes, so masked columns still join), `null`, `redact`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field};
use sluice_core::access::MaskKind;
use sluice_core::pii::PiiKey;
use sluice_engine::expr::{Expr, ScalarValue, cast, lit};
use sluice_engine::extension::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, when,
};
use sluice_engine::{DataFusionError, DfResult};

/// What a redacted text reads as.
pub const REDACTED: &str = "[redacted]";

/// `column` (of `field`) under `kind`, keeping the column's name. Without a PII key a `hash` mask
/// reads as NULL: never the clear value.
pub fn masked(column: Expr, field: &Field, kind: MaskKind, key: Option<&PiiKey>) -> DfResult<Expr> {
    let typed_null = || ScalarValue::try_from(field.data_type()).map(lit);
    let expr = match kind {
        MaskKind::Hash => match key {
            Some(k) => hash_udf(k).call(vec![cast(column, DataType::Utf8)]),
            None => lit(ScalarValue::Utf8(None)),
        },
        MaskKind::Null => typed_null()?,
        MaskKind::Redact if is_text(field.data_type()) => when(column.is_null(), typed_null()?)
            .otherwise(cast(lit(REDACTED), field.data_type().clone()))?,
        MaskKind::Redact => typed_null()?,
    };
    Ok(expr.alias(field.name()))
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The `hash` mask as a function over text.
pub fn hash_udf(key: &PiiKey) -> ScalarUDF {
    ScalarUDF::new_from_impl(PiiHash {
        key: key.bytes().to_vec(),
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
    })
}

/// HMAC-SHA-256 of `value` under `key`, as 64 hex digits (what bronze's `pii: hash` writes).
pub fn hmac_hex(key: &[u8], value: &str) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&k, value.as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(PartialEq, Eq, Hash)]
struct PiiHash {
    key: Vec<u8>,
    signature: Signature,
}

impl std::fmt::Debug for PiiHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiiHash([redacted key])")
    }
}

impl ScalarUDFImpl for PiiHash {
    fn name(&self) -> &str {
        "sluice_pii_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return Err(DataFusionError::Internal(
                "sluice_pii_hash takes one argument".into(),
            ));
        };
        let array = arg.clone().into_array(args.number_rows)?;
        let text = array
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| DataFusionError::Internal("sluice_pii_hash expects text".into()))?;
        let out: StringArray = (0..text.len())
            .map(|i| (!text.is_null(i)).then(|| hmac_hex(&self.key, text.value(i))))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_hex(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
