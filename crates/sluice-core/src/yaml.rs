//! YAML parsing with file and line in every error.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{ConfigError, Position};

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
