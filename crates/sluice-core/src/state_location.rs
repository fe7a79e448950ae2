//! Where the state database is: `state:` in `sluice.yml` (or a target's), told apart into a SQLite
//! file or a PostgreSQL URL *before* any path resolution — a URL must never become a folder named
//! `postgresql:` inside the project.
//!
//! ```
//! use sluice_core::state_location::StateLocation;
//! use std::path::Path;
//!
//! let root = Path::new("/srv/project");
//! let sqlite = StateLocation::parse(".sluice/state.db", root).unwrap();
//! assert_eq!(sqlite.to_string(), "/srv/project/.sluice/state.db");
//! let pg = StateLocation::parse("postgres://app:s3cret@db:5433/sluice?schema=shop", root).unwrap();
//! assert_eq!(pg.to_string(), "postgres://app@db:5433/sluice?schema=shop");
//! assert!(!format!("{pg:?}").contains("s3cret"));
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

/// The state database of a project.
#[derive(Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A SQLite file (resolved against the project folder).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://` or `postgresql://`).
    Postgres(PostgresUrl),
}

/// A PostgreSQL state location: the URL to connect with, an optional schema, and how it is shown.
///
/// Its `Display` and `Debug` never contain the password (nor any query parameter but `schema`, as
/// `?password=` is also a way to pass one).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// The URL for the driver, without `schema`.
    connect: String,
    /// The schema holding the state tables (`?schema=name`); `None`: the server's `search_path`.
    schema: Option<String>,
    /// `postgres://user@host:port/db[?schema=name]`.
    shown: String,
}

impl PostgresUrl {
    /// Parses a `postgres://` or `postgresql://` URL. The error says what is wrong without repeating
    /// the URL (it may hold a password).
    pub fn parse(value: &str) -> Result<PostgresUrl, String> {
        let url = url::Url::parse(value).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "`{}://` is not a PostgreSQL URL (postgres:// or postgresql://)",
                url.scheme()
            ));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("a PostgreSQL URL needs a host: postgres://user@host:5432/database")?;
        let database = url.path().trim_start_matches('/');
        let mut schema = None;
        let mut rest = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url.query_pairs() {
            if key == "schema" {
                check_schema(&value)?;
                schema = Some(value.into_owned());
            } else {
                rest.append_pair(&key, &value);
            }
        }
        let mut connect = url.clone();
        let rest = rest.finish();
        connect.set_query((!rest.is_empty()).then_some(rest.as_str()));
        let user = match url.username() {
            "" => String::new(),
            u => format!("{u}@"),
        };
        let shown = format!(
            "{}://{user}{host}:{}/{database}{}",
            url.scheme(),
            url.port().unwrap_or(5432),
            schema
                .as_deref()
                .map(|s| format!("?schema={s}"))
                .unwrap_or_default()
        );
        Ok(PostgresUrl {
            connect: connect.to_string(),
            schema,
            shown,
        })
    }

    /// The URL to hand to the driver (with the password; never print it).
    pub fn connection_url(&self) -> &str {
        &self.connect
    }

    /// The schema named by `?schema=`, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// This location with another schema (tests give each a schema of its own).
    pub fn with_schema(&self, schema: &str) -> Result<PostgresUrl, String> {
        check_schema(schema)?;
        let base = self.shown.split('?').next().unwrap_or_default();
        Ok(PostgresUrl {
            connect: self.connect.clone(),
            schema: Some(schema.to_string()),
            shown: format!("{base}?schema={schema}"),
        })
    }
}

/// A schema name is used unquoted in `search_path` and quoted in `CREATE SCHEMA`: letters, digits
/// and `_`, not starting with a digit, at most 63 bytes (PostgreSQL's limit), lower case (an
/// unquoted name is folded to lower case by the server).
fn check_schema(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schema `{s}`: use lower-case letters, digits and `_` (not first), at most 63 characters"
        ))
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", self.shown)
    }
}

impl StateLocation {
    /// Tells `value` (already `${ENV}`-expanded) apart: a `postgres://` or `postgresql://` URL, a
    /// URL of another scheme (refused: only these two backends exist), or a SQLite file path,
    /// resolved against `root` when relative.
    pub fn parse(value: &str, root: &Path) -> Result<StateLocation, String> {
        let lower = value.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return PostgresUrl::parse(value).map(StateLocation::Postgres);
        }
        if let Some((scheme, _)) = value.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            return Err(format!(
                "`{scheme}://` is not a state backend: use a SQLite file path or a postgres:// URL"
            ));
        }
        if value.is_empty() {
            return Err("empty: use a SQLite file path or a postgres:// URL".into());
        }
        let path = Path::new(value);
        Ok(StateLocation::Sqlite(if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        }))
    }

    /// A SQLite file.
    pub fn sqlite(path: impl Into<PathBuf>) -> StateLocation {
        StateLocation::Sqlite(path.into())
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            StateLocation::Sqlite(_) => "sqlite",
            StateLocation::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Sqlite(p) => write!(f, "{}", p.display()),
            StateLocation::Postgres(u) => u.fmt(f),
        }
    }
}

impl fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            StateLocation::Postgres(u) => f.debug_tuple("Postgres").field(u).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<StateLocation, String> {
        StateLocation::parse(v, Path::new("/p"))
    }

    #[test]
    fn paths_resolve_against_the_project_and_urls_are_not_paths() {
        assert_eq!(
            parse(".sluice/state.db").unwrap(),
            StateLocation::sqlite("/p/.sluice/state.db")
        );
        assert_eq!(
            parse("/var/s.db").unwrap(),
            StateLocation::sqlite("/var/s.db")
        );
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h:6543/db",
            "POSTGRESQL://u@h/db",
        ] {
            assert!(
                matches!(parse(url), Ok(StateLocation::Postgres(_))),
                "{url}"
            );
        }
        let err = parse("mysql://root@h/db").unwrap_err();
        assert!(err.contains("`mysql://` is not a state backend"), "{err}");
        assert!(parse("").is_err());
    }

    #[test]
    fn the_password_is_never_shown() {
        let StateLocation::Postgres(u) = parse(
            "postgres://app:pa%40ss@db.internal/state?password=x&sslmode=disable&schema=team_a",
        )
        .unwrap() else {
            panic!("not postgres")
        };
        assert_eq!(
            u.to_string(),
            "postgres://app@db.internal:5432/state?schema=team_a"
        );
        assert_eq!(
            format!("{u:?}"),
            "PostgresUrl(postgres://app@db.internal:5432/state?schema=team_a)"
        );
        assert_eq!(u.schema(), Some("team_a"));
        // The driver gets everything but `schema`, which it would refuse as unknown.
        assert_eq!(
            u.connection_url(),
            "postgres://app:pa%40ss@db.internal/state?password=x&sslmode=disable"
        );
        let other = u.with_schema("team_b").unwrap();
        assert_eq!(
            other.to_string(),
            "postgres://app@db.internal:5432/state?schema=team_b"
        );
    }

    #[test]
    fn malformed_urls_are_errors_that_do_not_repeat_the_url() {
        for (url, says) in [
            ("postgres://u:secret@/db", "empty host"),
            ("postgres:///db?password=secret", "needs a host"),
            (
                "postgres://u:secret@h:99999/db",
                "not a valid PostgreSQL URL",
            ),
            (
                "postgres://u:secret@h/db?schema=Bad-Name",
                "schema `Bad-Name`",
            ),
        ] {
            let err = parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
