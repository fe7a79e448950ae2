//! A YAML document as a tree of nodes, each with the line and column where it starts.
//!
//! The text is parsed once (by `serde-saphyr`, which resolves YAML 1.2 scalars, anchors, aliases and
//! merge keys and bounds the work a hostile file can cause); every later reader deserializes a
//! subtree (see [`super::de`]) and every error points at the node it is about.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::Position;

/// One node of a YAML document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts (for a mapping or sequence: its first entry).
    pub pos: Position,
    /// What it holds.
    pub value: Value,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// Text.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<Entry>),
    /// Taken out after an error (so that the rest can still be checked); readers skip it.
    Removed,
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as text.
    pub key: String,
    /// Where the key is.
    pub key_pos: Position,
    /// The value.
    pub node: Node,
}

impl Node {
    /// An empty mapping at `pos`.
    pub fn empty_map(pos: Position) -> Node {
        Node {
            pos,
            value: Value::Map(Vec::new()),
        }
    }

    /// The entry `key` of a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.node)
    }

    /// The node at `path` below this one (`[Key("charts"), Index(2), Key("asset")]`).
    pub fn find(&self, path: &[super::Seg]) -> Option<&Node> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        let child = match (&self.value, first) {
            (Value::Map(_), super::Seg::Key(k)) => self.get(k),
            (Value::Seq(items), super::Seg::Index(i)) => items.get(*i),
            _ => None,
        }?;
        child.find(rest)
    }

    /// The text of a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short description of the value for "found …" in messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Int(i) => format!("integer `{i}`"),
            Value::UInt(i) => format!("integer `{i}`"),
            Value::Float(f) => format!("number `{f}`"),
            Value::Str(s) => format!("string {s:?}"),
            Value::Seq(_) => "a sequence".into(),
            Value::Map(_) => "a mapping".into(),
            Value::Removed => "nothing".into(),
        }
    }
}

fn position(l: &serde_saphyr::Location) -> Position {
    Position {
        line: usize::try_from(l.line()).unwrap_or(usize::MAX),
        column: usize::try_from(l.column()).unwrap_or(usize::MAX),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            pos: position(&s.referenced),
            value: s.value,
        })
    }
}

/// A mapping key: any scalar, kept as text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Str(s) => Ok(Key(s)),
            Value::Bool(b) => Ok(Key(b.to_string())),
            Value::Int(i) => Ok(Key(i.to_string())),
            Value::UInt(i) => Ok(Key(i.to_string())),
            Value::Float(f) => Ok(Key(f.to_string())),
            Value::Null => Ok(Key("~".into())),
            _ => Err(de::Error::custom("a mapping key must be a scalar")),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(if v >= 0 {
            Value::UInt(v.unsigned_abs())
        } else {
            Value::Int(v)
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::UInt(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(Value::UInt)
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = a.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut out: Vec<Entry> = Vec::new();
        while let Some(k) = a.next_key::<serde_saphyr::Spanned<Key>>()? {
            let node = a.next_value::<Node>()?;
            let key = k.value.0;
            // A repeated key: the last one wins, as in most YAML readers.
            out.retain(|e| e.key != key);
            out.push(Entry {
                key,
                key_pos: position(&k.referenced),
                node,
            });
        }
        Ok(Value::Map(out))
    }
}

/// Parses `text` into a [`Node`]; an empty document is `Null` at 1:1.
pub fn parse_node(text: &str) -> Result<Node, (Option<Position>, String)> {
    if text.trim().is_empty() {
        return Ok(Node {
            pos: Position { line: 1, column: 1 },
            value: Value::Null,
        });
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // YAML 1.2 booleans only, as serde_yaml_ng: `y`, `yes`, `on` stay text.
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        let e = e.without_snippet();
        let pos = e.location().map(|l| position(&l)).filter(|p| p.line > 0);
        let mut message = e.to_string();
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        (pos, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, Value)> {
        match parse_node(text).unwrap().value {
            Value::Map(e) => e.into_iter().map(|e| (e.key, e.node.value)).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scalars_follow_yaml_1_2() {
        // `y`, `yes` and `on` are text in YAML 1.2 (a chart's `y:` must stay `y`).
        let v = values(
            "y: yes
on: off
n: 1
f: 1.5
t: true
z: ~
q: \"2\"\n",
        );
        assert_eq!(
            v,
            [
                ("y".into(), Value::Str("yes".into())),
                ("on".into(), Value::Str("off".into())),
                ("n".into(), Value::UInt(1)),
                ("f".into(), Value::Float(1.5)),
                ("t".into(), Value::Bool(true)),
                ("z".into(), Value::Null),
                ("q".into(), Value::Str("2".into())),
            ]
        );
    }

    #[test]
    fn positions_are_those_of_keys_and_values() {
        let n = parse_node("a:\n  b: [1, 2]\n").unwrap();
        let a = n.entry("a").unwrap();
        assert_eq!((a.key_pos.line, a.key_pos.column), (1, 1));
        let b = a.node.entry("b").unwrap();
        assert_eq!((b.key_pos.line, b.key_pos.column), (2, 3));
        let Value::Seq(items) = &b.node.value else {
            panic!()
        };
        assert_eq!((items[1].pos.line, items[1].pos.column), (2, 10));
    }

    #[test]
    fn syntax_errors_have_a_place_and_empty_documents_are_null() {
        let (pos, msg) = parse_node("a: [unclosed\n").unwrap_err();
        assert!(pos.is_some(), "{msg}");
        assert_eq!(parse_node("").unwrap().value, Value::Null);
        assert_eq!(parse_node("# only a comment\n").unwrap().value, Value::Null);
        assert!(parse_node("a: 1\na: 2\n").is_err());
    }
}
