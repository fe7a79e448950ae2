//! No import loops between the modules of a crate: every crate's top-level modules form a graph
//! without cycles (the references are `crate::x` anywhere in module `y`, and `super::x` in its
//! top-level file), so each crate reads bottom-up. Pieces that are really mutually recursive (a
//! renderer that inlines what it renders) share one module folder. Tests (`*_tests.rs`, `tests.rs`,
//! `#[cfg(test)] mod tests`) are left out: they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module name → the top-level modules it refers to.
type ModuleGraph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The identifiers following `prefix` in `text` (`crate::` → `runner`, `summary`, …).
fn refs(text: &str, prefix: &str) -> BTreeSet<String> {
    text.match_indices(prefix)
        .filter(|(i, _)| {
            // `crate::` inside `$crate::` or `sluice_core::crate::` is not this crate.
            text[..*i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'))
        })
        .filter_map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                .then(|| name.to_string())
        })
        .collect()
}

fn module_graph(src: &Path) -> ModuleGraph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = ModuleGraph::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap_or(&file);
        let parts: Vec<String> = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let Some(top) = parts.first() else {
            continue;
        };
        let is_test = |n: &str| n == "tests" || n.ends_with("_tests") || n == "test_support";
        if top == "lib" || top == "main" || parts.iter().any(|p| is_test(p)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // Unit tests at the end of a file may use anything.
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text,
        };
        // Doc links (`[`crate::x`]`) and comments are not imports.
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let text = code.as_str();
        let mut deps = refs(text, "crate::");
        if parts.len() == 1 {
            deps.extend(refs(text, "super::"));
        }
        let entry = graph.entry(top.clone()).or_default();
        entry.extend(deps.into_iter().filter(|d| d != top));
    }
    let names: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| names.contains(d));
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &ModuleGraph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a ModuleGraph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn the_checker_finds_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a; mod b; mod c;").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::Thing;").unwrap();
    std::fs::write(src.join("b/mod.rs"), "mod inner;").unwrap();
    std::fs::write(src.join("b/inner.rs"), "fn f() { crate::c::g() }").unwrap();
    std::fs::write(src.join("c.rs"), "use super::a;\nfn g() {}").unwrap();
    std::fs::write(src.join("c_tests.rs"), "use crate::a;").unwrap();
    let graph = module_graph(src);
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
    std::fs::write(
        src.join("c.rs"),
        "fn g() {}\n#[cfg(test)]\nmod tests { use crate::a; }",
    )
    .unwrap();
    assert!(cycles(&module_graph(src)).is_empty());
}

#[test]
fn no_crate_has_an_import_loop() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "crates found: {dirs:?}");
    for src in dirs {
        let graph = module_graph(&src);
        for comp in cycles(&graph) {
            let edges: Vec<String> = comp
                .iter()
                .map(|m| {
                    let inside: Vec<&str> = graph[m]
                        .iter()
                        .filter(|d| comp.contains(d))
                        .map(String::as_str)
                        .collect();
                    format!("{m} -> {}", inside.join(", "))
                })
                .collect();
            found.push(format!(
                "{}: {}\n      {}",
                src.parent().unwrap().file_name().unwrap().to_string_lossy(),
                comp.join(" ↔ "),
                edges.join("\n      ")
            ));
        }
    }
    assert!(
        found.is_empty(),
        "module import loops (lay the modules out in layers; see docs/ARCHITECTURE.md):\n  {}",
        found.join("\n  ")
    );
}
