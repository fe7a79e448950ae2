//! The run core has no import loops: every module uses only modules of a lower layer (the map in the
//! crate docs), and the modules below the run core do not use it. Read from the source text, so a
//! new `use crate::…` that points up fails here with the file and the module it reached.

use std::path::{Path, PathBuf};

/// The run core's modules by layer; anything else named here is below the run core (layer 0).
const RUN_CORE: &[(&str, u8)] = &[
    ("node", 1),
    ("summary", 2),
    ("checks", 2),
    ("partition", 3),
    ("maintain", 3),
    ("execute", 4),
    ("attempt", 4),
    ("runner", 5),
];

/// Modules the run core builds on; they must not use it.
const BELOW: &[&str] = &[
    "ranges", "policy", "state", "control", "abandon", "retry", "process",
];

fn layer(module: &str) -> Option<u8> {
    RUN_CORE
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, l)| *l)
        .or_else(|| BELOW.contains(&module).then_some(0))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code (not its comments, not its tests) refers to as `crate::x`.
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for line in code.lines().map(str::trim) {
        if line.starts_with("//") {
            continue;
        }
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn run_core_dependencies_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // Test files of a module (`tests.rs`, `*_tests.rs`, `testkit.rs`) may use anything.
        let name = rel.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name.ends_with("_tests.rs") || name == "testkit.rs" {
            continue;
        }
        let Some(own) = layer(&module) else { continue };
        seen += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for used in uses(&text) {
            if used == module {
                continue;
            }
            let ok = match layer(&used) {
                Some(l) if own == 0 => l == 0,
                Some(l) => l < own,
                // Outside the map: the scheduler sits above the run core.
                None => used != "schedule" || own == 0,
            };
            if !ok {
                wrong.push(format!(
                    "{} (layer {own}) uses crate::{used}",
                    rel.display()
                ));
            }
        }
    }
    assert!(seen > 15, "only {seen} files read from {}", src.display());
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    assert_eq!(
        uses(
            "use crate::node::NodeOutput;\n// crate::runner\nfn f() { crate::attempt::x(); }\n#[cfg(test)]\nuse crate::runner;"
        ),
        ["node", "attempt"]
    );
}
