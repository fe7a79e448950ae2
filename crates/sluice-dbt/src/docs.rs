//! `{% docs name %}…{% enddocs %}` blocks in `.md` files, and `{{ doc('name') }}` in descriptions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, Error, ErrorKind};
use sluice_core::macros::find_tag;

/// Docs blocks by name, with the file that defined each.
#[derive(Debug, Clone, Default)]
pub struct DocsBlocks {
    blocks: BTreeMap<String, (String, PathBuf)>,
}

impl DocsBlocks {
    /// Adds every block of one file; returns the names defined twice.
    pub fn add_file(&mut self, path: &Path, text: &str) -> Vec<String> {
        let mut dupes = Vec::new();
        let mut rest = text;
        while let Some(start) = find_tag(rest, "docs") {
            let after = &rest[start..];
            let Some(open_end) = after.find("%}") else {
                break;
            };
            let header = &after[2..open_end];
            let name = header
                .trim_matches(|c: char| c == '-' || c.is_whitespace())
                .trim_start_matches("docs")
                .trim()
                .to_string();
            let body_start = open_end + 2;
            let Some(end) = find_tag(&after[body_start..], "enddocs") else {
                break;
            };
            let body = after[body_start..body_start + end].trim().to_string();
            let close = after[body_start + end..]
                .find("%}")
                .map(|i| body_start + end + i + 2)
                .unwrap_or(after.len());
            if self.blocks.contains_key(&name) {
                dupes.push(name.clone());
            }
            self.blocks.insert(name, (body, path.to_path_buf()));
            rest = &after[close..];
        }
        dupes
    }

    /// A block's text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.blocks.get(name).map(|(t, _)| t.as_str())
    }

    /// How many blocks there are.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Resolves `{{ doc('name') }}` in a description; text without Jinja is returned as is.
    pub fn render(&self, description: &str) -> Result<String, String> {
        if !description.contains("{{") && !description.contains("{%") {
            return Ok(description.to_string());
        }
        let mut env = Environment::new();
        let blocks = self.blocks.clone();
        env.add_function("doc", move |name: String| -> Result<String, Error> {
            blocks.get(&name).map(|(t, _)| t.clone()).ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedError,
                    format!("doc('{name}'): no {{% docs {name} %}} block in the project"),
                )
            })
        });
        env.render_str(description, ()).map_err(|e| {
            e.detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_and_resolves_doc_calls() {
        let mut d = DocsBlocks::default();
        let text = "# Docs\n{% docs order_status %}\nOne of **placed**, shipped.\n{% enddocs %}\n\n{%- docs other -%}x{%- enddocs -%}";
        assert!(d.add_file(Path::new("docs.md"), text).is_empty());
        assert_eq!(d.get("order_status"), Some("One of **placed**, shipped."));
        assert_eq!(d.get("other"), Some("x"));
        assert_eq!(
            d.render("Status: {{ doc('order_status') }}").unwrap(),
            "Status: One of **placed**, shipped."
        );
        assert!(
            d.render("{{ doc('nope') }}")
                .unwrap_err()
                .contains("no {% docs nope %}")
        );
        assert_eq!(d.render("plain").unwrap(), "plain");
    }
}
