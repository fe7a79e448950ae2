//! The shape of a JSON line, read without building it: which keys, nested how, holding which kinds
//! of values — all that Arrow's schema inference looks at.
//!
//! Inference over a file of a million lines that mostly look alike spends its time building a
//! `serde_json::Value` per line and walking it. Two lines of the same shape add nothing to what
//! inference knows, so the first pass reads each line into a compact signature (kinds and keys in
//! order, no values, keys borrowed from the line) and only a line of a shape not seen before is built
//! as a `Value` and given to inference. The top-level string values are looked at on the way, for
//! date and date-time inference. A line this reader refuses (not JSON, not an object, too many keys)
//! goes the slow way, which rejects it with serde's message.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

use super::super::MAX_COLUMNS;
use super::super::temporal::TemporalInference;

/// Writes the signature of `text` (one JSON object) into `sig`, and observes its top-level string
/// values in `temporal`. An error: read the line the slow way.
pub(super) fn signature(
    text: &str,
    sig: &mut Vec<u8>,
    temporal: &mut HashMap<String, TemporalInference>,
) -> Result<(), serde_json::Error> {
    sig.clear();
    let mut de = serde_json::Deserializer::from_str(text);
    Shape {
        sig,
        top: Some(temporal),
        key: None,
    }
    .deserialize(&mut de)?;
    de.end()
}

/// Reads one value into the signature. `top` is set for the line itself (then it must be an
/// object), `key` for a value of the line's object (its key, for the date inference).
struct Shape<'s, 'k> {
    sig: &'s mut Vec<u8>,
    top: Option<&'s mut HashMap<String, TemporalInference>>,
    key: Option<(&'s mut HashMap<String, TemporalInference>, &'k str)>,
}

impl Shape<'_, '_> {
    fn scalar<E: serde::de::Error>(self, kind: u8) -> Result<(), E> {
        if self.top.is_some() {
            return Err(E::custom("not an object"));
        }
        self.sig.push(kind);
        if let Some((temporal, key)) = self.key
            && kind != b'n'
        {
            with_state(temporal, key, TemporalInference::observe_non_text);
        }
        Ok(())
    }
}

/// Calls `f` with the state of `key`, created on first use.
pub(super) fn with_state(
    temporal: &mut HashMap<String, TemporalInference>,
    key: &str,
    f: impl FnOnce(&mut TemporalInference),
) {
    match temporal.get_mut(key) {
        Some(state) => f(state),
        None => {
            let mut state = TemporalInference::default();
            f(&mut state);
            temporal.insert(key.to_string(), state);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Shape<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shape<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar(b'b')
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar(b'i')
    }

    // As `serde_json::Number::is_i64`: a non-negative integer beyond i64 infers as a float.
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(if i64::try_from(v).is_ok() { b'i' } else { b'f' })
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar(b'f')
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        if self.top.is_some() {
            return Err(E::custom("not an object"));
        }
        self.sig.push(b's');
        if let Some((temporal, key)) = self.key {
            with_state(temporal, key, |state| {
                if !state.is_settled() {
                    state.observe(v);
                }
            });
        }
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.scalar(b'n')
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.top.is_some() {
            return Err(A::Error::custom("not an object"));
        }
        if let Some((temporal, key)) = self.key {
            with_state(temporal, key, TemporalInference::observe_non_text);
        }
        let sig = self.sig;
        sig.push(b'[');
        // Inference looks at the first element's kind and at the set of element shapes: a run of
        // equal elements is written once.
        let mut previous: Option<std::ops::Range<usize>> = None;
        loop {
            let start = sig.len();
            let element = Shape {
                sig: &mut *sig,
                top: None,
                key: None,
            };
            if seq.next_element_seed(element)?.is_none() {
                break;
            }
            let here = start..sig.len();
            match &previous {
                Some(p) if sig[p.clone()] == sig[here.clone()] => sig.truncate(start),
                _ => previous = Some(here),
            }
        }
        sig.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Shape { sig, top, key } = self;
        if let Some((temporal, key)) = key {
            with_state(temporal, key, TemporalInference::observe_non_text);
        }
        sig.push(b'{');
        let mut temporal = top;
        let mut keys = 0usize;
        while let Some(name) = map.next_key_seed(Key)? {
            keys += 1;
            if temporal.is_some() && keys > MAX_COLUMNS {
                return Err(A::Error::custom("too many keys"));
            }
            sig.extend_from_slice(name.as_bytes());
            sig.push(0);
            let value = Shape {
                sig: &mut *sig,
                top: None,
                key: temporal.as_deref_mut().map(|t| (t, name.as_ref())),
            };
            map.next_value_seed(value)?;
        }
        sig.push(b'}');
        Ok(())
    }
}

/// An object key, borrowed from the line unless it has escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(text: &str) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::new();
        signature(text, &mut out, &mut HashMap::new()).map(|()| out)
    }

    #[test]
    fn lines_of_one_shape_have_one_signature() {
        assert_eq!(
            sig(r#"{"a":1,"b":"x","c":{"d":[1,2,3]}}"#).unwrap(),
            sig(r#"{"a":7,"b":"yy","c":{"d":[4]}}"#).unwrap()
        );
        assert_ne!(sig(r#"{"a":1}"#).unwrap(), sig(r#"{"a":1.5}"#).unwrap());
        assert_ne!(sig(r#"{"a":1}"#).unwrap(), sig(r#"{"a":null}"#).unwrap());
        assert_ne!(
            sig(r#"{"a":[1,"x"]}"#).unwrap(),
            sig(r#"{"a":[1]}"#).unwrap()
        );
        assert_ne!(
            sig(r#"{"a":9223372036854775807}"#).unwrap(),
            sig(r#"{"a":9223372036854775808}"#).unwrap(),
            "beyond i64 is a float to inference"
        );
        assert_eq!(
            sig(r#"{"a\u0062":1}"#).unwrap(),
            sig(r#"{"ab":1}"#).unwrap()
        );
    }

    #[test]
    fn what_is_not_an_object_goes_the_slow_way() {
        for text in ["[1]", "1", "\"x\"", "null", "{\"a\":", "{} x", "{\"a\":1,}"] {
            assert!(sig(text).is_err(), "{text}");
        }
    }

    #[test]
    fn top_level_strings_are_observed_for_dates() {
        let mut temporal = HashMap::new();
        let mut out = Vec::new();
        signature(
            r#"{"d":"2025-07-19","n":{"d":"x"},"t":"2025-07-19 10:00:00","m":"2025-07-19"}"#,
            &mut out,
            &mut temporal,
        )
        .unwrap();
        signature(
            r#"{"d":"2025-07-20","t":"2025-07-19T10:00:00Z","m":3}"#,
            &mut out,
            &mut temporal,
        )
        .unwrap();
        let of = |k: &str| temporal.get(k).and_then(TemporalInference::data_type);
        assert_eq!(of("d"), Some(arrow::datatypes::DataType::Date32));
        assert_eq!(
            of("t"),
            Some(arrow::datatypes::DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into())
            ))
        );
        assert_eq!(of("m"), None, "a number too");
        assert_eq!(of("n"), None, "an object");
    }
}
