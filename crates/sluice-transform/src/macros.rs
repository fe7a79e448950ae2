//! Project macros as one Jinja prelude placed before every model's SQL, so that models (and macros)
//! call them as dbt does, without imports.
//!
//! The prelude holds only `{% macro %}` blocks and blank lines; a template error's line is mapped back
//! to the model (line minus the prelude's lines) or to the macro file it falls in.

use std::path::PathBuf;

use sluice_core::macros::MacroFile;

/// Every macro file joined, with the line span of each.
#[derive(Debug, Clone, Default)]
pub struct MacroPrelude {
    /// The text placed before a model's SQL.
    pub text: String,
    /// Lines the prelude takes.
    pub lines: usize,
    /// `(file, first line in the prelude (1-based), lines)`.
    pub files: Vec<(PathBuf, usize, usize)>,
    /// Every macro name, for the unsupported-feature scan and suggestions.
    pub names: Vec<String>,
}

impl MacroPrelude {
    /// Joins `files` into one prelude.
    pub fn new(files: &[MacroFile]) -> MacroPrelude {
        let mut p = MacroPrelude::default();
        for f in files {
            let mut text = f.text.clone();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            let n = text.matches('\n').count();
            p.files.push((f.path.clone(), p.lines + 1, n));
            p.lines += n;
            p.text.push_str(&text);
            p.names.extend(f.names.iter().cloned());
        }
        p
    }

    /// Whether there are no macros.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Maps a line of the combined template to the macro file and line it falls in, or `None` when it
    /// is a line of the model (then the model's line is `line - self.lines`).
    pub fn locate(&self, line: usize) -> Option<(PathBuf, usize)> {
        self.files
            .iter()
            .find(|(_, start, n)| line >= *start && line < start + n)
            .map(|(path, start, _)| (path.clone(), line - start + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn locates_lines() {
        let a = MacroFile::parse(Path::new("a.sql"), "{% macro a() %}1{% endmacro %}\n\n");
        let b = MacroFile::parse(
            Path::new("b.sql"),
            "\n{% macro b() %}\n{{ oops }}\n{% endmacro %}",
        );
        let p = MacroPrelude::new(&[a, b]);
        assert_eq!(p.lines, 6);
        assert_eq!(p.locate(1), Some((PathBuf::from("a.sql"), 1)));
        assert_eq!(p.locate(5), Some((PathBuf::from("b.sql"), 3)));
        assert_eq!(p.locate(7), None);
        assert_eq!(p.names, ["a", "b"]);
    }
}
