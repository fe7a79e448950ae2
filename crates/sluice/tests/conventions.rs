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

/// dbt's `state:modified.<part>` sub-selectors (docs.getdbt.com, "state" method): a macro called
/// through another macro, a contract's column types, a persisted description and a model's relation.
#[test]
fn state_modified_sub_selectors_as_dbt_documents_them() {
    let (tmp, dir) = common::init_project();
    let write = |rel: &str, text: &str| common::write(&dir, rel, text);
    write(
        "macros/money.sql",
        "{% macro cents(c) %}{{ round_to(c) }} * 100{% endmacro %}\n\
         {% macro round_to(x) %}round({{ x }}, 2){% endmacro %}\n\
         {% macro unused() %}1{% endmacro %}\n",
    );
    write(
        "models/gold/sales_cents.sql",
        "select region, {{ cents('revenue') }} as revenue_cents from {{ ref('sales_by_region') }}\n",
    );
    write(
        "models/gold/cents_total.sql",
        "select sum(revenue_cents) as total from {{ ref('sales_cents') }}\n",
    );
    let props = "version: 2\nmodels:\n  - name: sales_cents\n    description: Revenue in cents.\n    \
                 config:\n      contract: {enforced: true}\n      persist_docs: {relation: true}\n    \
                 columns:\n      - name: region\n        data_type: varchar\n      \
                 - name: revenue_cents\n        data_type: bigint\n";
    write("models/gold/cents.yml", props);
    sluice_ok(&dir, &["run"]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("target/manifest.json")).unwrap())
            .unwrap();
    let node = &manifest["nodes"]["model.my_project.sales_cents"];
    assert_eq!(
        node["depends_on"]["macros"],
        serde_json::json!(["macro.my_project.cents"])
    );
    assert_eq!(
        manifest["macros"]["macro.my_project.cents"]["depends_on"]["macros"],
        serde_json::json!(["macro.my_project.round_to"])
    );
    assert_eq!(node["contract"]["enforced"], true);
    assert_eq!(node["columns"]["revenue_cents"]["data_type"], "bigint");

    let state = tmp.path().join("prod-artifacts");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        dir.join("target/manifest.json"),
        state.join("manifest.json"),
    )
    .unwrap();
    let state = state.to_str().unwrap().to_string();
    let ls = |sel: &str| -> Vec<String> {
        let out = sluice_ok(&dir, &["ls", "-s", sel, "--state", &state, "-o", "name"]);
        lines(&out).into_iter().map(str::to_string).collect()
    };
    assert!(ls("state:modified").is_empty());

    // A macro two calls away changed: the model that calls it is modified (`.macros`), not its body.
    let macros = std::fs::read_to_string(dir.join("macros/money.sql")).unwrap();
    write(
        "macros/money.sql",
        &macros.replace("round({{ x }}, 2)", "round({{ x }}, 0)"),
    );
    assert_eq!(ls("state:modified.macros"), ["sales_cents"]);
    assert_eq!(ls("state:modified.macros+"), ["sales_cents", "cents_total"]);
    assert_eq!(ls("state:modified"), ["sales_cents"]);
    assert!(ls("state:modified.body").is_empty());
    // A macro nobody calls changes nothing.
    write("macros/money.sql", &macros.replace("%}1{%", "%}2{%"));
    assert!(ls("state:modified").is_empty());
    write("macros/money.sql", &macros);

    // A column's data type in an enforced contract: `.contract`, not `.configs`.
    write("models/gold/cents.yml", &props.replace("bigint", "double"));
    assert_eq!(ls("state:modified.contract"), ["sales_cents"]);
    assert!(ls("state:modified.configs").is_empty());
    // The description, persisted by persist_docs: `.persisted_descriptions`.
    write(
        "models/gold/cents.yml",
        &props.replace("Revenue in cents.", "Revenue, in cents."),
    );
    assert_eq!(ls("state:modified.persisted_descriptions"), ["sales_cents"]);
    assert!(ls("state:modified.contract").is_empty());
    write("models/gold/cents.yml", props);

    // Moved to another layer: its relation (`silver.cents_total`) changed, not its body.
    let sql = std::fs::read_to_string(dir.join("models/gold/cents_total.sql")).unwrap();
    std::fs::remove_file(dir.join("models/gold/cents_total.sql")).unwrap();
    write("models/silver/cents_total.sql", &sql);
    assert_eq!(ls("state:modified.relation"), ["cents_total"]);
    assert!(ls("state:modified.body").is_empty());
    assert_eq!(ls("state:modified"), ["cents_total"]);
}

/// In a dbt project `--target` picks the profile's output (its adapter sets the SQL semantics;
/// `target.*` shows it) and, with a sluice.yml beside dbt_project.yml, the same name's `targets:`
/// entry (lake, state); a name with no output is an error listing the outputs.
#[test]
fn dbt_target_picks_the_profile_output_and_sluice_yml_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("jaffle");
    let write = |rel: &str, text: &str| common::write(&dir, rel, text);
    write(
        "dbt_project.yml",
        "name: jaffle\nprofile: jaffle\nmodel-paths: [models]\n",
    );
    write(
        "profiles.yml",
        "jaffle:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      schema: dbt_alice\n    \
         prod:\n      type: postgres\n      dbname: analytics\n      schema: marts\n      password: hunter2\n",
    );
    write(
        "models/marts/facts.sql",
        "select '{{ target.name }}' as name, '{{ target.type }}' as type, '{{ target.schema }}' as schema_, \
         '{{ target.database }}' as db, '{{ target.password | default(\"none\") }}' as pw, 7 / 2 as half\n",
    );
    let row = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("run");
        sluice_ok(&dir, &all);
        let out = sluice_ok(
            &dir,
            &[
                "query",
                "--format",
                "csv",
                "select name, type, schema_, db, pw, half from gold.facts",
            ],
        );
        lines(&out)[1].to_string()
    };
    // The profile's default output: DuckDB semantics (7 / 2 = 3.5).
    assert_eq!(row(&[]), "dev,duckdb,dbt_alice,sluice,none,3.5");

    // A sluice.yml beside dbt_project.yml: its `targets:` entry of the same name applies too.
    let prod_lake = tmp.path().join("prod-lake");
    write(
        "sluice.yml",
        &format!(
            "name: ignored\ntargets:\n  prod:\n    lake: {}\n    state: .sluice/prod.db\n",
            prod_lake.display()
        ),
    );
    // PostgreSQL semantics (7 / 2 = 3), its schema and database; never its password.
    let out = {
        sluice_ok(&dir, &["--target", "prod", "run"]);
        sluice_ok(
            &dir,
            &[
                "--target",
                "prod",
                "query",
                "--format",
                "csv",
                "select name, type, schema_, db, pw, half from gold.facts",
            ],
        )
    };
    assert_eq!(lines(&out)[1], "prod,postgres,marts,analytics,none,3");
    assert!(
        prod_lake.join("gold/facts").is_dir(),
        "the prod lake was not used"
    );
    assert!(dir.join(".sluice/prod.db").is_file());
    let out = sluice_ok(&dir, &["compile", "-s", "facts"]);
    assert!(out.contains("'dev' as name"), "{out}");

    let err = fails(&dir, &["--target", "prd", "ls"]);
    assert!(
        err.contains("profiles.yml:4:5")
            && err.contains("--target `prd` names no output of profile `jaffle` (did you mean `prod`?); its outputs: dev, prod"),
        "{err}"
    );
}
