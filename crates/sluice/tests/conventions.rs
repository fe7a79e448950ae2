//! dbt's conventions on the command line: selection (`--select`, `--exclude`, `--state`), `sluice ls`,
//! `sluice compile`, `--vars`, `--target` with `targets:` in sluice.yml, `${ENV}` in `lake:`/`state:`,
//! the project's `.env`, and `--log-format json`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{sluice, sluice_ok};

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.is_empty()).collect()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = sluice(dir, args);
    assert!(!out.status.success(), "sluice {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ls_lists_what_a_selection_picks() {
    let (_tmp, dir) = common::init_project();
    assert_eq!(
        lines(&sluice_ok(&dir, &["ls", "--output", "name"])),
        ["files.sales", "stg_sales", "sales_by_region"]
    );
    // dbt's default output: qualified names, sources prefixed.
    assert_eq!(
        lines(&sluice_ok(&dir, &["ls"])),
        [
            "source:my_project.files.sales",
            "my_project.silver.stg_sales",
            "my_project.gold.sales_by_region"
        ]
    );
    // Graph operators, --exclude, several --select values (a union), methods.
    let out = sluice_ok(
        &dir,
        &[
            "ls",
            "-s",
            "+sales_by_region",
            "--exclude",
            "files.sales",
            "-o",
            "name",
        ],
    );
    assert_eq!(lines(&out), ["stg_sales", "sales_by_region"]);
    let out = sluice_ok(
        &dir,
        &["ls", "-s", "stg_sales", "files.sales", "-o", "name"],
    );
    assert_eq!(lines(&out), ["files.sales", "stg_sales"]);
    let out = sluice_ok(&dir, &["ls", "-s", "path:models/gold", "-o", "path"]);
    assert_eq!(lines(&out), ["models/gold/sales_by_region.sql"]);
    let out = sluice_ok(&dir, &["ls", "-s", "silver", "-o", "name"]);
    assert_eq!(
        lines(&out),
        ["stg_sales"],
        "a folder name selects its models (fqn)"
    );
    let out = sluice_ok(
        &dir,
        &[
            "ls",
            "-s",
            "config.materialized:table,stg_sales+",
            "-o",
            "name",
        ],
    );
    assert_eq!(lines(&out), ["stg_sales", "sales_by_region"]);
    let out = sluice_ok(&dir, &["ls", "--resource-type", "source", "-o", "name"]);
    assert_eq!(lines(&out), ["files.sales"]);
    let out = sluice_ok(&dir, &["ls", "-s", "stg_sales", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(lines(&out)[0]).unwrap();
    assert_eq!(v["unique_id"], "model.my_project.stg_sales");
    assert_eq!(v["depends_on"]["nodes"], serde_json::json!(["files.sales"]));
    assert!(dir.join("target/manifest.json").is_file());

    // Errors: where, and what was expected; a typo gets a suggestion; a comma list gets a hint.
    let err = fails(&dir, &["ls", "-s", "tags:daily"]);
    assert!(
        err.contains("column 1") && err.contains("did you mean `tag:`"),
        "{err}"
    );
    let err = fails(&dir, &["ls", "-s", "stg_sale"]);
    assert!(err.contains("did you mean `stg_sales`"), "{err}");
    let err = fails(&dir, &["ls", "-s", "stg_sales,sales_by_region"]);
    assert!(err.contains("separate them with spaces"), "{err}");
    let err = fails(&dir, &["ls", "--resource-type", "table"]);
    assert!(err.contains("expected one of"), "{err}");
}

#[test]
fn state_modified_compares_with_a_previous_manifest() {
    let (tmp, dir) = common::init_project();
    let err = fails(&dir, &["ls", "-s", "state:modified+"]);
    assert!(err.contains("--state"), "{err}");
    sluice_ok(&dir, &["run"]);
    let state = tmp.path().join("prod-artifacts");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        dir.join("target/manifest.json"),
        state.join("manifest.json"),
    )
    .unwrap();
    let state = state.to_str().unwrap();
    let modified = |dir: &Path| {
        let out = sluice_ok(
            dir,
            &[
                "ls",
                "-s",
                "state:modified+",
                "--state",
                state,
                "-o",
                "name",
            ],
        );
        out.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert!(modified(&dir).is_empty());
    let gold = dir.join("models/gold/sales_by_region.sql");
    let sql = std::fs::read_to_string(&gold).unwrap();
    std::fs::write(&gold, format!("{sql}-- changed\n")).unwrap();
    assert_eq!(modified(&dir), ["sales_by_region"]);
    let silver = dir.join("models/silver/stg_sales.sql");
    let sql = std::fs::read_to_string(&silver).unwrap();
    std::fs::write(
        &silver,
        sql.replace("select", "{{ config(materialized='view') }}\nselect"),
    )
    .unwrap();
    assert_eq!(modified(&dir), ["stg_sales", "sales_by_region"]);
    let out = sluice_ok(
        &dir,
        &[
            "ls",
            "-s",
            "state:modified.configs",
            "--state",
            state,
            "-o",
            "name",
        ],
    );
    assert_eq!(lines(&out), ["stg_sales"]);
    // `sluice run` takes the same selection and records it.
    let out = sluice_ok(
        &dir,
        &[
            "run",
            "-s",
            "state:modified+",
            "--state",
            state,
            "--exclude",
            "sales_by_region",
        ],
    );
    assert!(
        out.contains("stg_sales") && !out.contains("sales_by_region |"),
        "{out}"
    );
    let err = fails(
        &dir,
        &["ls", "-s", "state:modified", "--state", "/nonexistent"],
    );
    assert!(err.contains("manifest.json"), "{err}");
}

#[test]
fn compile_vars_targets_env_and_dotenv() {
    let (tmp, dir) = common::init_project();
    std::fs::write(
        dir.join("models/gold/big_sales.sql"),
        "select * from {{ ref('stg_sales') }} where quantity >= {{ var('min_qty') }} -- {{ target.name }}\n",
    )
    .unwrap();
    let lake_env = tmp.path().join("lake-from-dotenv");
    std::fs::write(
        dir.join("sluice.yml"),
        "name: my_project\nlake: '${SLUICE_TEST_LAKE:-lake}'\nstate: .sluice/state.db\nvars: {min_qty: 2}\n\
         targets:\n  prod:\n    lake: '${SLUICE_TEST_PROD_LAKE}'\n    state: .sluice/prod.db\n    vars: {min_qty: 4}\n  broken:\n    connections: {files: 'x'}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(".env"),
        format!("SLUICE_TEST_PROD_LAKE={}\n", lake_env.display()),
    )
    .unwrap();

    // compile: prints one model's SQL and writes it under target/compiled/.
    let out = sluice_ok(&dir, &["compile", "-s", "big_sales"]);
    assert!(out.contains("quantity >= 2 -- dev"), "{out}");
    let file = dir.join("target/compiled/my_project/models/gold/big_sales.sql");
    assert!(
        std::fs::read_to_string(file)
            .unwrap()
            .contains("quantity >= 2")
    );
    // --vars wins over the target's vars, which win over sluice.yml's.
    let out = sluice_ok(&dir, &["--target", "prod", "compile", "-s", "big_sales"]);
    assert!(out.contains("quantity >= 4 -- prod"), "{out}");
    let out = sluice_ok(
        &dir,
        &[
            "compile",
            "-s",
            "big_sales",
            "--target",
            "prod",
            "--vars",
            "{min_qty: 5}",
        ],
    );
    assert!(out.contains("quantity >= 5"), "{out}");
    let out = sluice_ok(
        &dir,
        &["compile", "-s", "big_sales", "--vars", r#"{"min_qty": 3}"#],
    );
    assert!(out.contains("quantity >= 3"), "{out}");
    let err = fails(&dir, &["compile", "--vars", "[1, 2]"]);
    assert!(err.contains("--vars: expected a mapping"), "{err}");

    // --target prod: the lake from .env (the environment did not set it) and its own state database.
    sluice_ok(&dir, &["--target", "prod", "run"]);
    assert!(
        lake_env.join("gold/big_sales").is_dir(),
        "prod lake not written"
    );
    assert!(dir.join(".sluice/prod.db").is_file());
    assert!(!dir.join("lake").exists(), "the default lake was not used");
    // No target: `${SLUICE_TEST_LAKE:-lake}` falls back to `lake`.
    sluice_ok(&dir, &["run", "-s", "+big_sales"]);
    assert!(dir.join("lake/gold/big_sales").is_dir());
    // A variable set in the environment wins over .env.
    let other = tmp.path().join("lake-from-env");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "--project",
            dir.to_str().unwrap(),
            "--target",
            "prod",
            "run",
            "-s",
            "files.sales",
        ])
        .env("SLUICE_TEST_PROD_LAKE", &other)
        .env("SLUICE_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.join("bronze/files/sales").is_dir());

    let err = fails(&dir, &["--target", "prd", "ls"]);
    assert!(
        err.contains("no target `prd` (did you mean `prod`?)"),
        "{err}"
    );
    let err = fails(&dir, &["--target", "broken", "ls"]);
    assert!(
        err.contains("has no top-level `connection:` to replace"),
        "{err}"
    );
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let (_tmp, dir) = common::init_project();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "--project",
            dir.to_str().unwrap(),
            "--log-format",
            "json",
            "run",
        ])
        .env("SLUICE_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(!logs.is_empty(), "no log lines at info");
    assert!(
        logs.iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
}
