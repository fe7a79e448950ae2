//! `sluice validate` over a folder of broken projects (Sluice and dbt ones): every problem of each
//! project is reported at once, each as `file:line:column: field `x`: message`, exactly as listed in
//! its `expected.txt`.

mod common;

use std::path::{Path, PathBuf};

use common::sluice;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let mut out: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.txt").is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn validate_reports_every_problem_of_each_broken_project() {
    let cases = cases();
    assert!(cases.len() >= 5, "{cases:?}");
    let mut failures = Vec::new();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Vec<String> = std::fs::read_to_string(case.join("expected.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        // A copy, so that nothing a run might write lands in the source tree.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(&name);
        copy_dir(&case, &dir);
        std::fs::remove_file(dir.join("expected.txt")).unwrap();
        let out = sluice(&dir, &["validate"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let found: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  "))
            .map(str::to_string)
            .collect();
        // A dbt project (a folder with `dbt_project.yml` and no `sluice.yml`) says so in its header.
        let header = format!("{} problem(s) in the project:", expected.len());
        let dbt_header = format!("{} problem(s) in the dbt project:", expected.len());
        let headed = text.contains(&header) || text.contains(&dbt_header);
        if out.status.success() || found != expected || !headed {
            failures.push(format!(
                "case `{name}`:\n  expected:\n    {}\n  found:\n    {}\n  output:\n{text}",
                expected.join("\n    "),
                found.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
