//! Deserializing a [`Node`] subtree into typed structs, with every error at the node it is about.
//!
//! serde stops at the first error of a value; to report every problem of a file at once,
//! [`from_node`] takes the offending entry out of the tree and tries again, until the value
//! deserializes or nothing more can be taken out. A field that goes missing because its value was
//! taken out is not reported twice.

use std::fmt;
use std::path::Path;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};

use super::node::{Node, Value};
use crate::error::{ConfigError, Position};

/// One step of a field path: `tables[2].mode` is `[Key(tables), Index(2), Key(mode)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Renders a path as `tables[2].mode`.
pub fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A deserialization error, with where it happened once a node claims it.
#[derive(Debug, Clone)]
pub struct DeError {
    message: String,
    pos: Option<Position>,
    path: Option<Vec<Seg>>,
    /// For "missing field": the field's name.
    missing: Option<&'static str>,
}

impl DeError {
    fn new(message: String) -> Self {
        DeError {
            message,
            pos: None,
            path: None,
            missing: None,
        }
    }

    fn at(mut self, pos: Position, path: &[Seg]) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
            self.path = Some(path.to_vec());
        }
        self
    }

    /// The field path the error is about (for "missing field", the missing field).
    fn field_path(&self) -> Vec<Seg> {
        let mut p = self.path.clone().unwrap_or_default();
        if let Some(m) = self.missing {
            p.push(Seg::Key(m.to_string()));
        }
        p
    }

    /// The error as a located [`ConfigError`] for `file`.
    pub fn into_config(self, file: &Path) -> ConfigError {
        ConfigError::At {
            path: file.to_path_buf(),
            position: self.pos.unwrap_or(Position { line: 1, column: 1 }),
            field: path_text(&self.field_path()),
            message: self.message,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

// Extra keys the suggestion for an unknown key may come from (e.g. the fields a source file shares,
// when a connector's own struct reports the unknown key); set for the length of one `from_node`.
thread_local! {
    static EXTRA_NAMES: std::cell::RefCell<&'static [&'static str]> = const { std::cell::RefCell::new(&[]) };
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {exp}, found {unexp}"))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {exp}, found {unexp}"))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let extra = EXTRA_NAMES.with(|e| *e.borrow());
        let hint = crate::graph::suggest(field, expected.iter().chain(extra).copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        DeError::new(format!(
            "unknown field `{field}`{hint}; expected {}",
            one_of(expected)
        ))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let hint = crate::graph::suggest(variant, expected.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        DeError::new(format!(
            "expected {}, found `{variant}`{hint}",
            one_of(expected)
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = DeError::new("required field is missing".into());
        e.missing = Some(field);
        e
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing here".into(),
        [one] => format!("`{one}`"),
        _ => format!(
            "one of {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A serde deserializer over one node.
pub struct NodeDe<'a> {
    node: &'a Node,
    path: Vec<Seg>,
}

impl<'a> NodeDe<'a> {
    /// A deserializer for `node`, at `path` in its file.
    pub fn new(node: &'a Node, path: Vec<Seg>) -> Self {
        NodeDe { node, path }
    }

    fn child(&self, node: &'a Node, seg: Seg) -> NodeDe<'a> {
        let mut path = self.path.clone();
        path.push(seg);
        NodeDe { node, path }
    }

    fn locate<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|e| e.at(self.node.pos, &self.path))
    }
}

struct Seq<'a> {
    parent: &'a NodeDe<'a>,
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
}

impl<'de, 'a> SeqAccess<'de> for Seq<'a> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        for (i, n) in self.items.by_ref() {
            if n.value == Value::Removed {
                continue;
            }
            let child = self.parent.child(n, Seg::Index(i));
            let path = child.path.clone();
            return seed
                .deserialize(child)
                .map(Some)
                .map_err(|e| e.at(n.pos, &path));
        }
        Ok(None)
    }
}

struct Map<'a> {
    parent: &'a NodeDe<'a>,
    entries: std::slice::Iter<'a, super::node::Entry>,
    value: Option<&'a super::node::Entry>,
}

impl<'de, 'a> MapAccess<'de> for Map<'a> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for e in self.entries.by_ref() {
            if e.node.value == Value::Removed {
                continue;
            }
            self.value = Some(e);
            let mut path = self.parent.path.clone();
            path.push(Seg::Key(e.key.clone()));
            return seed
                .deserialize(KeyDe(&e.key))
                .map(Some)
                .map_err(|err| err.at(e.key_pos, &path));
        }
        Ok(None)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(e) => {
                // Errors a value's own `Deserialize` raises after reading it (a duration that does
                // not parse) belong to the value too.
                let child = self.parent.child(&e.node, Seg::Key(e.key.clone()));
                let path = child.path.clone();
                seed.deserialize(child)
                    .map_err(|err| err.at(e.node.pos, &path))
            }
            None => Err(DeError::new("value without a key".into())),
        }
    }
}

/// A mapping key: always text.
struct KeyDe<'a>(&'a str);

impl<'de> Deserializer<'de> for KeyDe<'_> {
    type Error = DeError;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_str(self.0)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// The name [`super::Spanned`] asks for, so that this deserializer hands it the position.
pub(crate) const SPANNED: &str = "$sluice::Spanned";
pub(crate) const SPANNED_FIELDS: &[&str] = &["$line", "$column", "$value"];

struct SpannedAccess<'a> {
    de: Option<NodeDe<'a>>,
    step: usize,
}

impl<'de> MapAccess<'de> for SpannedAccess<'_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(name) = SPANNED_FIELDS.get(self.step) else {
            return Ok(None);
        };
        seed.deserialize(KeyDe(name)).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.step += 1;
        let pos = self
            .de
            .as_ref()
            .map(|d| d.node.pos)
            .unwrap_or(Position { line: 0, column: 0 });
        match self.step {
            1 => seed.deserialize((pos.line as u64).into_deserializer()),
            2 => seed.deserialize((pos.column as u64).into_deserializer()),
            _ => match self.de.take() {
                Some(de) => seed.deserialize(de),
                None => Err(DeError::new("value read twice".into())),
            },
        }
    }
}

struct Enum<'a>(NodeDe<'a>, Option<(&'a str, NodeDe<'a>)>);

impl<'de, 'a> EnumAccess<'de> for Enum<'a> {
    type Error = DeError;
    type Variant = Variant<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Variant<'a>), DeError> {
        match self.1 {
            // `{variant: content}`
            Some((name, content)) => {
                let v = content.locate(seed.deserialize(KeyDe(name)))?;
                Ok((v, Variant(Some(content))))
            }
            // `variant`
            None => {
                let v = self
                    .0
                    .locate(seed.deserialize(NodeDe::new(self.0.node, self.0.path.clone())))?;
                Ok((v, Variant(None)))
            }
        }
    }
}

struct Variant<'a>(Option<NodeDe<'a>>);

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.0 {
            Some(de) => seed.deserialize(de),
            None => Err(DeError::new("expected a value for this variant".into())),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Some(de) => de.deserialize_seq(v),
            None => Err(DeError::new("expected a sequence for this variant".into())),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Some(de) => de.deserialize_map(v),
            None => Err(DeError::new("expected a mapping for this variant".into())),
        }
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Null | Value::Removed => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Int(i) => v.visit_i64(*i),
            Value::UInt(u) => v.visit_u64(*u),
            Value::Float(f) => v.visit_f64(*f),
            Value::Str(s) => v.visit_str(s),
            Value::Seq(items) => v.visit_seq(Seq {
                parent: &self,
                items: items.iter().enumerate(),
            }),
            Value::Map(entries) => v.visit_map(Map {
                parent: &self,
                entries: entries.iter(),
                value: None,
            }),
        };
        self.locate(r)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Null | Value::Removed => self.locate(v.visit_none()),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED && fields == SPANNED_FIELDS {
            let (pos, path) = (self.node.pos, self.path.clone());
            return v
                .visit_map(SpannedAccess {
                    de: Some(self),
                    step: 0,
                })
                .map_err(|e| e.at(pos, &path));
        }
        self.deserialize_any(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(_) => {
                let de = NodeDe::new(self.node, self.path.clone());
                let r = v.visit_enum(Enum(de, None));
                self.locate(r)
            }
            Value::Map(entries) if entries.len() == 1 => {
                let e = &entries[0];
                let content = self.child(&e.node, Seg::Key(e.key.clone()));
                let de = NodeDe::new(self.node, self.path.clone());
                let r = v.visit_enum(Enum(de, Some((e.key.as_str(), content))));
                self.locate(r)
            }
            _ => {
                let found = self.node.describe();
                self.locate(Err(DeError::new(format!(
                    "expected a name or a mapping with one key, found {found}"
                ))))
            }
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        // A scalar that YAML reads as a number or boolean is still text where text is expected
        // (`name: 2024`, `password: yes`).
        let r = match &self.node.value {
            Value::Bool(b) => v.visit_string(b.to_string()),
            Value::Int(i) => v.visit_string(i.to_string()),
            Value::UInt(u) => v.visit_string(u.to_string()),
            Value::Float(f) => v.visit_string(f.to_string()),
            _ => return self.deserialize_any(v),
        };
        self.locate(r)
    }

    fn is_human_readable(&self) -> bool {
        true
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// Deserializes `node` (a subtree of `file`, at `path`) into `T`, collecting every error (see the
/// module doc). `extra_names` widen the "did you mean" of unknown keys.
pub fn from_node<T: DeserializeOwned>(
    file: &Path,
    node: &Node,
    path: Vec<Seg>,
    extra_names: &'static [&'static str],
) -> Result<T, Vec<ConfigError>> {
    match from_node_lenient(file, node, path, extra_names) {
        (Some(v), errors) if errors.is_empty() => Ok(v),
        (_, errors) => Err(errors),
    }
}

/// Like [`from_node`], but also returns the value read once the bad entries were taken out (when
/// there is one), so that a caller can go on checking what is left.
pub fn from_node_lenient<T: DeserializeOwned>(
    file: &Path,
    node: &Node,
    path: Vec<Seg>,
    extra_names: &'static [&'static str],
) -> (Option<T>, Vec<ConfigError>) {
    let previous = EXTRA_NAMES.with(|e| e.replace(extra_names));
    let result = collect(file, node, path);
    EXTRA_NAMES.with(|e| e.replace(previous));
    result
}

fn collect<T: DeserializeOwned>(
    file: &Path,
    node: &Node,
    base: Vec<Seg>,
) -> (Option<T>, Vec<ConfigError>) {
    let mut tree: Option<Node> = None;
    let mut errors = Vec::new();
    let mut removed: Vec<Vec<Seg>> = Vec::new();
    // Each round takes one entry out; a file has far fewer problems than this.
    for _ in 0..200 {
        let current = tree.as_ref().unwrap_or(node);
        let e = match T::deserialize(NodeDe::new(current, base.clone())) {
            Ok(v) => return (Some(v), errors),
            Err(e) => e,
        };
        let field = e.field_path();
        let consequence = e.missing.is_some() && removed.contains(&field);
        let at = e.path.clone().unwrap_or_default();
        if !consequence {
            errors.push(e.into_config(file));
        }
        let rel = at.get(base.len()..).unwrap_or_default().to_vec();
        let t = tree.get_or_insert_with(|| node.clone());
        // A missing field is repaired by taking out the mapping that lacks it.
        if rel.is_empty() || !remove(t, &rel) {
            break;
        }
        removed.push(at);
    }
    (None, errors)
}

/// Marks the node at `path` (relative to `root`) as removed; false if there is none.
fn remove(root: &mut Node, path: &[Seg]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let child = match (&mut root.value, first) {
        (Value::Map(entries), Seg::Key(k)) => entries
            .iter_mut()
            .find(|e| &e.key == k)
            .map(|e| &mut e.node),
        (Value::Seq(items), Seg::Index(i)) => items.get_mut(*i),
        _ => None,
    };
    let Some(child) = child else {
        return false;
    };
    if rest.is_empty() {
        if child.value == Value::Removed {
            return false;
        }
        child.value = Value::Removed;
        true
    } else {
        remove(child, rest)
    }
}
