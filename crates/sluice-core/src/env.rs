//! `${ENV_VAR}` substitution for secrets in project files.

use std::path::Path;

use crate::error::ConfigError;

/// Replaces every `${NAME}` in `value` with the environment variable `NAME`. `$${` escapes a literal `${`.
/// A missing variable is an error naming the file and the variable, so secrets never silently become "".
pub fn expand_env(value: &str, path: &Path) -> Result<String, ConfigError> {
    expand_with(value, path, |name| std::env::var(name).ok())
}

/// [`expand_env`] with an explicit lookup (for tests).
pub fn expand_with(
    value: &str,
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let name = &body[..end];
            let val = lookup(name).ok_or_else(|| ConfigError::MissingEnv {
                path: path.to_path_buf(),
                name: name.to_string(),
            })?;
            out.push_str(&val);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_escapes() {
        let look = |n: &str| (n == "PW").then(|| "s3cret".to_string());
        let p = Path::new("s.yml");
        assert_eq!(expand_with("a ${PW} b", p, look).unwrap(), "a s3cret b");
        assert_eq!(expand_with("$${PW} $5", p, look).unwrap(), "${PW} $5");
        let err = expand_with("${NOPE}", p, look).unwrap_err();
        assert!(err.to_string().contains("`NOPE` is not set"));
    }
}
