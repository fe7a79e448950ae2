//! `${ENV_VAR}` substitution for secrets in project files, and the project's `.env` file.

use std::path::Path;

use crate::error::ConfigError;

/// Replaces every `${NAME}` in `value` with the environment variable `NAME`, and `${NAME:-default}`
/// with `default` when `NAME` is unset or empty. `$${` escapes a literal `${`. A missing variable
/// without a default is an error naming the file and the variable, so secrets never silently become "".
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
            let (name, default) = match body[..end].split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (&body[..end], None),
            };
            let val = match (
                lookup(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => {
                    return Err(ConfigError::MissingEnv {
                        path: path.to_path_buf(),
                        name: name.to_string(),
                    });
                }
            };
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

/// Reads `KEY=VALUE` lines of a `.env` file: `#` comments, blank lines, an optional `export `, and
/// values in single quotes (literal), double quotes (`\n`, `\"` and `\\` escapes) or bare (a ` #`
/// starts a comment). Returns the pairs in file order, or the line that is not `KEY=VALUE`.
pub fn parse_dotenv(text: &str, path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let bad = |message: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            field: format!("line {}", i + 1),
            message: message.to_string(),
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad("expected KEY=VALUE"));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(
                "expected a variable name (letters, digits, `_`) before `=`",
            ));
        }
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('\'') {
            v.strip_suffix('\'')
                .ok_or_else(|| bad("unclosed `'`"))?
                .to_string()
        } else if let Some(v) = value.strip_prefix('"') {
            let v = v.strip_suffix('"').ok_or_else(|| bad("unclosed `\"`"))?;
            v.replace("\\n", "\n")
                .replace("\\\"", "\"")
                .replace("\\\\", "\\")
        } else {
            value
                .split(" #")
                .next()
                .unwrap_or("")
                .trim_end()
                .to_string()
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// The variables of `<dir>/.env` that the environment does not already set (the environment wins, as
/// with dbt and docker compose). No file: none.
pub fn dotenv_to_apply(dir: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let path = dir.join(".env");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ConfigError::Invalid {
                path,
                field: String::new(),
                message: e.to_string(),
            });
        }
    };
    Ok(parse_dotenv(&text, &path)?
        .into_iter()
        .filter(|(k, _)| std::env::var_os(k).is_none())
        .collect())
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
        assert_eq!(expand_with("${NOPE:-lake}/x", p, look).unwrap(), "lake/x");
        assert_eq!(expand_with("${PW:-other}", p, look).unwrap(), "s3cret");
        let empty = |_: &str| Some(String::new());
        assert_eq!(expand_with("${E:-d}", p, empty).unwrap(), "d");
        assert_eq!(expand_with("${E}", p, empty).unwrap(), "");
    }

    #[test]
    fn dotenv_lines() {
        let p = Path::new(".env");
        let text = "# secrets\nexport A=1\nB = 'x # y'\nC=\"a\\nb\"\nD=plain # comment\n\nE=\n";
        let got = parse_dotenv(text, p).unwrap();
        let want = [
            ("A", "1"),
            ("B", "x # y"),
            ("C", "a\nb"),
            ("D", "plain"),
            ("E", ""),
        ];
        assert_eq!(
            got,
            want.map(|(k, v)| (k.to_string(), v.to_string())).to_vec()
        );
        let err = parse_dotenv("ok=1\nnot a pair\n", p).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn dotenv_does_not_override_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        // PATH is always set; the other name is unique to this test.
        std::fs::write(
            dir.path().join(".env"),
            "PATH=/nowhere\nSLUICE_DOTENV_TEST_ONLY=1\n",
        )
        .unwrap();
        let got = dotenv_to_apply(dir.path()).unwrap();
        assert_eq!(
            got,
            [("SLUICE_DOTENV_TEST_ONLY".to_string(), "1".to_string())]
        );
        assert!(
            dotenv_to_apply(&dir.path().join("none"))
                .unwrap()
                .is_empty()
        );
    }
}
