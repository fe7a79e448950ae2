//! A generated dbt project for benchmarks (`sluice bench --dbt-models N`).
//!
//! It looks like a real one: staging / intermediate (ephemeral) / marts folders with a config tree, a
//! macro called by every model, `var()`, `is_incremental()` blocks, Jinja loops, refs to one or two
//! upstream models, a seed, and a properties file with two tests on every tenth model.

use std::path::Path;

/// Writes a dbt project with `n` models into `dir`.
pub fn generate_project(dir: &Path, n: usize) -> std::io::Result<()> {
    let w = |rel: &str, text: &str| -> std::io::Result<()> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)
    };
    w(
        "dbt_project.yml",
        "name: bench\nconfig-version: 2\nvars:\n  min_amount: 0\nmodels:\n  bench:\n    +materialized: view\n    staging:\n      +tags: [staging]\n    intermediate:\n      +materialized: ephemeral\n    marts:\n      +materialized: table\n",
    )?;
    w(
        "seeds/raw_orders.csv",
        "id,customer_id,amount_cents,status\n1,1,1000,placed\n2,2,250,shipped\n",
    )?;
    w(
        "macros/money.sql",
        "{% macro cents_to_dollars(col, scale=2) -%}\nround(cast({{ col }} as double) / 100, {{ scale }})\n{%- endmacro %}\n",
    )?;
    let staging = (n / 10).max(1);
    let intermediate = (n * 3 / 10).max(1);
    let mut props = String::from("version: 2\nmodels:\n");
    for i in 0..n {
        let (folder, upstream): (&str, Vec<String>) = if i < staging {
            ("staging", Vec::new())
        } else if i < staging + intermediate {
            ("intermediate", vec![format!("m{}", i % staging)])
        } else {
            let a = staging + (i * 7919) % intermediate;
            let b = i.saturating_sub(1 + i % 50).max(staging);
            let mut ups = vec![format!("m{a}")];
            if b != a && b < i {
                ups.push(format!("m{b}"));
            }
            ("marts", ups)
        };
        let mut sql = String::new();
        if i % 5 == 0 && folder == "marts" {
            sql.push_str("{{ config(materialized='incremental', unique_key='id') }}\n");
        }
        sql.push_str("{% set statuses = ['placed', 'shipped', 'completed'] %}\nselect\n    id,\n    customer_id,\n");
        sql.push_str("    {{ cents_to_dollars('amount_cents') }} as amount,\n");
        sql.push_str("    {% for s in statuses -%}\n    case when status = '{{ s }}' then 1 else 0 end as is_{{ s }},\n    {% endfor -%}\n");
        sql.push_str("    amount_cents,\n    status\n");
        // Every model has a WHERE, so that the incremental filter can add to it.
        match upstream.as_slice() {
            [] => sql.push_str("from {{ ref('raw_orders') }}\nwhere 1 = 1\n"),
            [a] => sql.push_str(&format!("from {{{{ ref('{a}') }}}}\nwhere 1 = 1\n")),
            [a, b, ..] => sql.push_str(&format!(
                "from {{{{ ref('{a}') }}}}\nwhere id in (select id from {{{{ ref('{b}') }}}})\n"
            )),
        }
        sql.push_str("{% if is_incremental() %}\n  and amount_cents >= {{ var('min_amount') }}\n{% endif %}\n");
        w(&format!("models/{folder}/m{i}.sql"), &sql)?;
        if i % 10 == 0 {
            props.push_str(&format!(
                "  - name: m{i}\n    description: Model {i}.\n    columns:\n      - name: id\n        tests: [not_null]\n      - name: status\n        tests:\n          - accepted_values:\n              values: [placed, shipped, completed]\n"
            ));
        }
    }
    w("models/schema.yml", &props)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_projects_compile() {
        let d = tempfile::tempdir().unwrap();
        generate_project(d.path(), 120).unwrap();
        let compiled = crate::compile(crate::load(d.path()).unwrap()).unwrap();
        assert_eq!(compiled.models.len(), 121);
        assert_eq!(compiled.project.checks.len(), 24);
    }

    /// `cargo test -p sluice-dbt --lib -- --ignored --nocapture bench_10k`: the 10,000-model timing.
    #[test]
    #[ignore]
    fn bench_10k() {
        let d = tempfile::tempdir().unwrap();
        generate_project(d.path(), 10_000).unwrap();
        let t = std::time::Instant::now();
        let p = crate::load(d.path()).unwrap();
        let parse = t.elapsed();
        let c = crate::compile(p).unwrap();
        println!(
            "models {} parse {:?} compile {:?}",
            c.models.len(),
            parse,
            t.elapsed() - parse
        );
    }
}
