//! YAML parsing with file, line and column in every error.
//!
//! Project files are parsed once into a [`Node`] tree ([`parse_doc`]) that keeps where every value
//! starts; typed structs are deserialized from it ([`from_node`]), and a field that needs its place
//! for a later message (a schedule a later stage parses, a duration) is a [`Spanned`]. Every
//! problem of a file is collected, each as `file:line:column: field `x`: message`.

mod de;
mod node;

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};

pub use de::{DeError, NodeDe, Seg, from_node, from_node_lenient, path_text};
pub use node::{Entry, Node, Value};

use crate::error::{ConfigError, Position};

/// Parses the text of `path` into a [`Node`] tree (one parse per file).
pub fn parse_doc(path: &Path, text: &str) -> Result<Node, ConfigError> {
    node::parse_node(text).map_err(|(position, message)| ConfigError::Yaml {
        path: path.to_path_buf(),
        position,
        message,
    })
}

/// Reads and parses `path` into `T`, collecting every problem with its line and column.
pub fn load_typed<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Vec<ConfigError>> {
    let doc = parse_doc(path, text).map_err(|e| vec![e])?;
    from_node(path, &doc, Vec::new(), &[])
}

/// A value with the line and column where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it starts (line 0 when it did not come from a file).
    pub pos: Position,
}

impl<T> Spanned<T> {
    /// A value that did not come from a file.
    pub fn unplaced(value: T) -> Self {
        Spanned {
            value,
            pos: Position { line: 0, column: 0 },
        }
    }

    /// The position, if the value came from a file.
    pub fn position(&self) -> Option<Position> {
        (self.pos.line > 0).then_some(self.pos)
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(
            de::SPANNED,
            de::SPANNED_FIELDS,
            SpannedVisitor(std::marker::PhantomData),
        )
    }
}

struct SpannedVisitor<T>(std::marker::PhantomData<T>);

macro_rules! forward_scalar {
    ($($f:ident: $t:ty),*) => {$(
        fn $f<E: serde::de::Error>(self, v: $t) -> Result<Self::Value, E> {
            use serde::de::IntoDeserializer;
            T::deserialize(v.into_deserializer()).map(Spanned::unplaced)
        }
    )*};
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Spanned<T>, A::Error> {
        // Only this crate's deserializer asks for the spanned shape; others get the fallbacks below.
        let mut line = 0u64;
        let mut column = 0u64;
        while let Some(k) = a.next_key::<String>()? {
            match k.as_str() {
                "$line" => line = a.next_value()?,
                "$column" => column = a.next_value()?,
                _ => {
                    let value = a.next_value::<T>()?;
                    return Ok(Spanned {
                        value,
                        pos: Position {
                            line: usize::try_from(line).unwrap_or(usize::MAX),
                            column: usize::try_from(column).unwrap_or(usize::MAX),
                        },
                    });
                }
            }
        }
        Err(serde::de::Error::custom("spanned value without a value"))
    }

    forward_scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_string: String);

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Spanned<T>, E> {
        self.visit_string(v.to_string())
    }
}

/// A duration written as text (`90s`, `1h30m`, `7d`), parsed with [`crate::duration::parse_duration`]:
/// a malformed or out-of-range value is an error at its place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::duration::parse_duration(&text)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `text` (the contents of `path`) into `T`, turning parser errors into [`ConfigError::Yaml`]
/// with the line and column where the parser stopped.
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    serde_yaml_ng::from_str(text).map_err(|e| yaml_error(path, &e))
}

/// Converts a serde_yaml_ng error into a [`ConfigError::Yaml`] for `path`.
pub fn yaml_error(path: &Path, e: &serde_yaml_ng::Error) -> ConfigError {
    let position = e.location().map(|l| Position {
        line: l.line(),
        column: l.column(),
    });
    // serde_yaml_ng appends " at line X column Y" to some messages; the position is reported separately.
    let mut message = e.to_string();
    if let Some(idx) = message.find(" at line ") {
        message.truncate(idx);
    }
    ConfigError::Yaml {
        path: path.to_path_buf(),
        position,
        message,
    }
}

/// Reads a file to a string with the path in the error.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        name: String,
        count: u32,
    }

    #[test]
    fn error_has_line_and_field() {
        let err = parse_yaml::<Demo>(Path::new("x.yml"), "name: a\ncount: nope\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("x.yml:2:"), "{text}");
        assert!(text.contains("count"), "{text}");
    }

    #[test]
    fn unknown_field_is_named() {
        let err =
            parse_yaml::<Demo>(Path::new("y.yml"), "name: a\ncount: 1\ncolor: red\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `color`"), "{err}");
    }
}
