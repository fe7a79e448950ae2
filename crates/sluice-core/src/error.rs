//! Errors for reading and validating a project.
//!
//! Every user-facing error carries where it happened (file, and line/column when the parser knows them),
//! so that a malformed project file is reported the way a compiler reports a syntax error.

use std::fmt;
use std::path::PathBuf;

/// A position in a file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Position {
    /// The line and column (in characters, both 1-based) of a byte offset in `text`; an offset past
    /// the end or inside a character counts as the nearest character boundary before it.
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Errors raised while loading or validating a project.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A YAML file is malformed or does not have the expected shape.
    #[error("{path}{}: {message}", position.map(|p| format!(":{p}")).unwrap_or_default())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Where the parser stopped, when known.
        position: Option<Position>,
        /// The parser's message (names the field and what was expected).
        message: String,
    },
    /// A value at a known place in a file: `file:line:column: field `x`: what was expected, what
    /// was found`.
    #[error("{}:{position}: {}{message}", path.display(), if field.is_empty() { String::new() } else { format!("field `{field}`: ") })]
    At {
        /// The file.
        path: PathBuf,
        /// Where the value (or key) starts.
        position: Position,
        /// The dotted field path, e.g. `tables[2].mode`.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A value is well-formed YAML but not valid for its field.
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted field path, e.g. `tables[2].mode`.
        field: String,
        /// What was expected.
        message: String,
    },
    /// Several problems of one file, reported together.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ConfigError>),
    /// The project folder has no `sluice.yml`.
    #[error("{0}: not a Sluice project (no sluice.yml); run `sluice init DIR` to create one")]
    NotAProject(PathBuf),
    /// Two assets share a name.
    #[error("duplicate {kind} `{name}`: defined in {first} and {second}")]
    Duplicate {
        /// What kind of thing (model, source).
        kind: &'static str,
        /// The duplicated name.
        name: String,
        /// First definition.
        first: PathBuf,
        /// Second definition.
        second: PathBuf,
    },
    /// An environment variable referenced as `${NAME}` is not set.
    #[error("{path}: environment variable `{name}` is not set (referenced as ${{{name}}})")]
    MissingEnv {
        /// The file that referenced it.
        path: PathBuf,
        /// The variable.
        name: String,
    },
}

impl ConfigError {
    /// One error, or [`ConfigError::Many`] for several.
    pub fn many(mut errors: Vec<ConfigError>) -> ConfigError {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            ConfigError::Many(errors)
        }
    }

    /// The problems one by one ([`ConfigError::Many`] flattened).
    pub fn into_list(self) -> Vec<ConfigError> {
        match self {
            ConfigError::Many(list) => list.into_iter().flat_map(ConfigError::into_list).collect(),
            other => vec![other],
        }
    }

    /// The file the problem is in, when it is one file.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            ConfigError::Io { path, .. }
            | ConfigError::Yaml { path, .. }
            | ConfigError::At { path, .. }
            | ConfigError::Invalid { path, .. }
            | ConfigError::MissingEnv { path, .. } => Some(path),
            ConfigError::Duplicate { second, .. } => Some(second),
            ConfigError::Many(list) => list.first().and_then(ConfigError::file),
            ConfigError::NotAProject(_) => None,
        }
    }

    /// A problem at `position` when it is known, else naming the file and field only.
    pub fn at(
        path: &std::path::Path,
        position: Option<Position>,
        field: &str,
        message: String,
    ) -> ConfigError {
        match position {
            Some(position) => ConfigError::At {
                path: path.to_path_buf(),
                position,
                field: field.to_string(),
                message,
            },
            None => ConfigError::Invalid {
                path: path.to_path_buf(),
                field: field.to_string(),
                message,
            },
        }
    }
}

/// Errors in the asset graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// A dependency names an asset that does not exist.
    #[error("{from}: unknown {kind} `{target}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownRef {
        /// Where the reference is: the file defining the asset, with `:line:column` of the call
        /// when it is written there (not in a macro).
        from: String,
        /// `ref` or `source`.
        kind: &'static str,
        /// The missing name.
        target: String,
        /// The closest existing name, if one is close.
        suggestion: Option<String>,
    },
    /// The graph has a cycle; the path is closed (first == last).
    #[error("cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A selector matched nothing.
    #[error("selector `{0}` matches no asset")]
    EmptySelection(String),
    /// A selection that cannot be parsed, names nothing, or needs a previous state.
    #[error(transparent)]
    Selector(#[from] SelectorError),
}

/// A list of errors reported together (validation collects all, then reports).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct Errors(pub Vec<String>);

/// A selection that cannot be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The text does not follow the grammar.
    #[error("bad selection `{selection}` at column {column}: expected {expected}, found {found}")]
    Syntax {
        /// The whole selection.
        selection: String,
        /// 1-based column of the problem.
        column: usize,
        /// What the grammar expected there.
        expected: String,
        /// What was there.
        found: String,
    },
    /// A name, path or source selector matched no node.
    #[error("selector `{selector}` matches no node{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    NoMatch {
        /// The selector as written.
        selector: String,
        /// The closest node name, if one is close.
        suggestion: Option<String>,
    },
    /// A `state:` selector without a previous manifest.
    #[error(
        "selector `{0}` compares with a previous run: pass --state DIR (a folder holding that run's manifest.json, e.g. a copy of target/)"
    )]
    NoState(String),
    /// An intersection of selectors that each match something matched nothing together.
    #[error(
        "selection `{0}` selects nothing: a comma intersects selectors (as in dbt); separate them with spaces to select both"
    )]
    EmptyIntersection(String),
}
