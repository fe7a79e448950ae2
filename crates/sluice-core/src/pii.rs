//! The project's PII key: the secret that `pii: {column: hash}` rules hash with (HMAC-SHA-256), so
//! that a hashed email joins across tables and runs but cannot be re-identified from a list of emails
//! without the key.
//!
//! Where it comes from, in `sluice.yml`:
//!
//! ```yaml
//! pii:
//!   key_file: /run/secrets/sluice_pii   # a file holding the key (`${ENV}` allowed in the path)
//!   # or: key: "${MY_PII_KEY}"          # a `${ENV}` reference; never the key itself
//! ```
//!
//! Without a `pii:` block, the environment variable `SLUICE_PII_KEY` (the project's `.env` counts).

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::ConfigError;

/// The environment variable read when `sluice.yml` names no key.
pub const PII_KEY_ENV: &str = "SLUICE_PII_KEY";

/// The `pii:` block of `sluice.yml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// The key as text, normally a `${ENV}` reference (expanded at load).
    #[serde(default)]
    pub key: Option<String>,
    /// A file holding the key (relative to the project; `${ENV}` allowed); surrounding whitespace and
    /// the trailing newline are not part of the key.
    #[serde(default)]
    pub key_file: Option<String>,
}

/// A PII key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PiiKey(Arc<[u8]>);

impl PiiKey {
    /// A key from its bytes.
    pub fn new(bytes: &[u8]) -> PiiKey {
        PiiKey(Arc::from(bytes))
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiiKey([redacted])")
    }
}

impl PiiConfig {
    /// Resolves the key: `key_file`, else `key`, else `$SLUICE_PII_KEY`; `None` when none is set.
    /// `sluice_yml` is the project file (relative paths resolve from its folder; errors name it).
    pub fn resolve(&self, sluice_yml: &Path) -> Result<Option<PiiKey>, ConfigError> {
        self.resolve_with(sluice_yml, |name| std::env::var(name).ok())
    }

    /// [`PiiConfig::resolve`] with an explicit environment (for tests).
    pub fn resolve_with(
        &self,
        sluice_yml: &Path,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<PiiKey>, ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: sluice_yml.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let text = match (&self.key_file, &self.key) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "pii",
                    "give `key_file` or `key`, not both".to_string(),
                ));
            }
            (Some(file), None) => {
                let file = crate::env::expand_with(file, sluice_yml, &lookup)?;
                let root = sluice_yml.parent().unwrap_or(Path::new(""));
                let path = root.join(&file);
                std::fs::read_to_string(&path)
                    .map_err(|e| {
                        invalid(
                            "pii.key_file",
                            format!("cannot read the PII key file {}: {e}", path.display()),
                        )
                    })?
                    .trim()
                    .to_string()
            }
            (None, Some(key)) => crate::env::expand_with(key, sluice_yml, &lookup)?
                .trim()
                .to_string(),
            (None, None) => match lookup(PII_KEY_ENV) {
                Some(v) => v.trim().to_string(),
                None => return Ok(None),
            },
        };
        if text.is_empty() {
            let field = if self.key_file.is_some() {
                "pii.key_file"
            } else if self.key.is_some() {
                "pii.key"
            } else {
                PII_KEY_ENV
            };
            return Err(invalid(field, "the PII key is empty".to_string()));
        }
        Ok(Some(PiiKey::new(text.as_bytes())))
    }
}

/// What a source table with a `hash` rule and no key configured is told.
pub fn missing_key_message(source: &str, table: &str, column: &str) -> String {
    format!(
        "source `{source}`: table `{table}`: column `{column}` has `pii: hash`, which needs the \
         project's PII key: set the environment variable {PII_KEY_ENV} (or in the project's .env), \
         or `pii: {{key_file: <path>}}` in sluice.yml"
    )
}

/// One error per `hash` rule of `decl` (of `table` only, when given), at the rule's position: for a
/// project that has no PII key.
pub fn missing_key_errors(decl: &crate::SourceDecl, table: Option<&str>) -> Vec<ConfigError> {
    decl.hashed_columns()
        .into_iter()
        .filter(|(t, _, _)| table.is_none_or(|want| want == t))
        .map(|(t, column, pos)| {
            ConfigError::at(
                &decl.path,
                Some(pos),
                &format!("pii.{column}"),
                missing_key_message(&decl.name, &t, &column),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> PiiConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn key_comes_from_file_yaml_or_environment() {
        let dir = tempfile::tempdir().unwrap();
        let yml = dir.path().join("sluice.yml");
        std::fs::write(dir.path().join("pii.key"), "s3cret\n").unwrap();
        let env = |name: &str| (name == PII_KEY_ENV).then(|| "from-env".to_string());
        let key = cfg("key_file: pii.key").resolve_with(&yml, env).unwrap();
        assert_eq!(key.unwrap().bytes(), b"s3cret");
        let key = cfg("key: \"${SLUICE_PII_KEY}\"")
            .resolve_with(&yml, env)
            .unwrap();
        assert_eq!(key.unwrap().bytes(), b"from-env");
        let key = PiiConfig::default().resolve_with(&yml, env).unwrap();
        assert_eq!(key.unwrap().bytes(), b"from-env");
        assert!(
            PiiConfig::default()
                .resolve_with(&yml, |_| None)
                .unwrap()
                .is_none()
        );
        let err = cfg("key_file: missing.key")
            .resolve_with(&yml, env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pii.key_file") && err.contains("missing.key"),
            "{err}"
        );
        let err = cfg("{key: x, key_file: y}")
            .resolve_with(&yml, env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not both"), "{err}");
        let err = cfg("key: \"${NOPE}\"")
            .resolve_with(&yml, env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("NOPE"), "{err}");
        assert_eq!(
            format!("{:?}", PiiKey::new(b"s3cret")),
            "PiiKey([redacted])"
        );
    }
}
